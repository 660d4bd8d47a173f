//! A bot's WhatsApp device in PostgreSQL (cluster mode): whatsapp-rust 0.7's `Backend` — its
//! identity, Signal sessions, prekeys, app-state keys and the rest — one table per kind, keyed by
//! bot, so any node can resume the bot when its holder dies. Single-node keeps whatsapp-rust's own
//! SQLite store.
//!
//! **Fenced.** Each takeover of a device (a node's first hold, an adoption) takes a new number
//! from a sequence into `device_fences`, in the transaction that takes the hold. A store is opened
//! with the fence its node took, and every write checks it in its own transaction
//! (`SELECT … FOR SHARE` on the fence row): a takeover waits for the writes in flight, and every
//! later write of the older holder is refused. A refused write trips the store's [`Fence`], which
//! stops that client at once (its device stays: it is the new holder's now). Reads need no fence.
//!
//! The library caches Signal state and batches its flushes; this store adds no cache.

mod app_sync;
#[cfg(test)]
mod contract;
mod device_row;
pub mod import;
mod protocol_store;
mod secrets;
mod signal;

use deadpool_postgres::{GenericClient, Pool};
use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicBool, Ordering},
};
use tokio_postgres::{Row, types::ToSql};
use whatsapp_rust::wacore::store::error::{Result, StoreError};

/// The fence a holder took, shared by its device store and its session: tripped by the first
/// write the database refused.
pub struct Fence {
    pub bot_id: String,
    pub number: i64,
    lost: AtomicBool,
    on_lost: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Fence {
    pub fn new(bot_id: &str, number: i64) -> Arc<Fence> {
        Arc::new(Fence {
            bot_id: bot_id.to_owned(),
            number,
            lost: AtomicBool::new(false),
            on_lost: OnceLock::new(),
        })
    }

    /// What happens (once) when the fence is found lost: the session stops its client.
    pub fn on_lost(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_lost.set(Box::new(f));
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Another node took the device: nothing of this holder's may reach it any more.
    pub fn lose(&self) {
        if !self.lost.swap(true, Ordering::SeqCst) {
            tracing::warn!(bot = %self.bot_id, fence = self.number, "another node took this bot's device: its client here stops");
            if let Some(f) = self.on_lost.get() {
                f();
            }
        }
    }

    /// Whether the database still names this fence (a read: it waits for no takeover).
    pub async fn holds(&self, pool: &Pool) -> std::result::Result<bool, String> {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let row = client
            .query_opt(
                "SELECT fence FROM device_fences WHERE bot_id = $1",
                &[&self.bot_id],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.is_some_and(|r| r.get::<_, i64>(0) == self.number))
    }
}

/// A write refused because another node took the device since this store was opened.
#[derive(Debug, thiserror::Error)]
#[error("the bot's device was taken by another node (fence {held:?}; this store's {ours})")]
pub struct Fenced {
    pub ours: i64,
    pub held: Option<i64>,
}

/// One bot's device in PostgreSQL, written under its holder's fence.
pub struct PgDevice {
    pool: Pool,
    bot: String,
    fence: Arc<Fence>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

fn db(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn conn(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Connection(Box::new(e))
}

impl PgDevice {
    /// The bot's device, written under `fence` (the fence its holder took with the hold).
    pub fn new(pool: Pool, fence: Arc<Fence>) -> PgDevice {
        PgDevice {
            pool,
            bot: fence.bot_id.clone(),
            fence,
        }
    }

    /// Rows of a read (no fence: a read changes nothing).
    async fn read(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let client = self.pool.get().await.map_err(conn)?;
        let stmt = client.prepare_cached(sql).await.map_err(db)?;
        client.query(&stmt, params).await.map_err(db)
    }

    async fn read_one(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        Ok(self.read(sql, params).await?.into_iter().next())
    }

    /// Runs the statements in one transaction, after checking the fence in it; the rows of the
    /// last. Refused (and the fence lost) when another node took the device.
    async fn write(&self, statements: &[(&str, Params<'_>)]) -> Result<(u64, Vec<Row>)> {
        let mut client = self.pool.get().await.map_err(conn)?;
        let tx = client.transaction().await.map_err(db)?;
        let check = tx
            .prepare_cached("SELECT fence FROM device_fences WHERE bot_id = $1 FOR SHARE")
            .await
            .map_err(db)?;
        let held: Option<i64> = tx
            .query_opt(&check, &[&self.bot])
            .await
            .map_err(db)?
            .map(|r| r.get(0));
        if held != Some(self.fence.number) {
            drop(tx);
            self.fence.lose();
            return Err(db(Fenced {
                ours: self.fence.number,
                held,
            }));
        }
        let mut changed = 0;
        let mut rows = Vec::new();
        for (sql, params) in statements {
            let stmt = tx.prepare_cached(sql).await.map_err(db)?;
            rows = tx.query(&stmt, params).await.map_err(db)?;
            changed += rows.len() as u64;
        }
        tx.commit().await.map_err(db)?;
        Ok((changed, rows))
    }

    /// One statement under the fence; how many rows it returned (write it with `RETURNING 1`
    /// to count what it changed).
    async fn write_one(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        Ok(self.write(&[(sql, params)]).await?.0)
    }
}

/// Whether the bot has a linked device in the database (what a resume or an adoption resumes).
pub async fn registered(pool: &Pool, bot_id: &str) -> std::result::Result<bool, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_opt(
            "SELECT registered FROM wa_devices WHERE bot_id = $1",
            &[&bot_id],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.is_some_and(|r| r.get(0)))
}

/// Deletes the bot's device and every row of it: under `fence` when its holder forgets it
/// (refused once another node took it), or outright when the bot is unlinked by whoever
/// answers (no node holds it).
pub async fn forget(
    pool: &Pool,
    bot_id: &str,
    fence: Option<&Fence>,
) -> std::result::Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let fence = fence.map(|f| f.number);
    client
        .execute(
            "DELETE FROM wa_devices WHERE bot_id = $1
             AND ($2::bigint IS NULL OR EXISTS (SELECT 1 FROM device_fences
                                               WHERE bot_id = $1 AND fence = $2 FOR SHARE))",
            &[&bot_id, &fence],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A count from the network or the database, as the trait's `u32`.
fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Bytes of a fixed length, or the row is corrupt.
fn array<const N: usize>(bytes: Vec<u8>, what: &str) -> Result<[u8; N]> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| StoreError::Validation(format!("{what}: {len} bytes, not {N}")))
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Serialization(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Serialization(Box::new(e)))
}
