//! The store on embedded SQLite: one process, WAL mode, migrations in code. The process's clock
//! is the database's clock; one connection behind a mutex makes each method atomic.

use super::{
    DeviceHold, Lease, REFRESH_GRACE_MS, Store, StoreError, TokenCheck, TokenRow, hash, new_bot,
    now_ms, random_id, token_check, tradable,
};
use protocol::{Bot, BotStatus};
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::{Mutex, MutexGuard};

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// Migrations, applied in order; `PRAGMA user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        force_expired INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX sessions_user ON sessions(user_id);
     CREATE TABLE bots (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        phone TEXT,
        created_at TEXT NOT NULL,
        messages INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX bots_user ON bots(user_id);",
    // Why a bot is in its status (a failure with no socket open is still explained).
    "ALTER TABLE bots ADD COLUMN status_reason TEXT;",
    // The simulated link's pairings, leased (dropped by a later migration with the simulator).
    "CREATE TABLE pairings (
        bot_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        qr_ref TEXT NOT NULL UNIQUE,
        attempt INTEGER NOT NULL,
        qr_expires_at INTEGER NOT NULL,
        qr_ms INTEGER NOT NULL,
        linked_at INTEGER,
        code TEXT UNIQUE,
        code_expires_at INTEGER,
        owner TEXT NOT NULL,
        fence INTEGER NOT NULL,
        lease_until INTEGER NOT NULL
     );
     CREATE TABLE spent (key TEXT PRIMARY KEY, why TEXT NOT NULL, at INTEGER NOT NULL);
     CREATE TABLE fences (last INTEGER NOT NULL);
     INSERT INTO fences VALUES (0);",
    // Which node holds each bot's WhatsApp device (cluster mode; kept here for one contract).
    "CREATE TABLE device_holds (
        bot_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        node TEXT NOT NULL,
        url TEXT NOT NULL,
        hold_until INTEGER NOT NULL,
        registered INTEGER NOT NULL DEFAULT 0,
        view TEXT,
        lapse_told INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX device_holds_node ON device_holds(node);",
    // A refresh marks the token it traded instead of deleting it (a retry may trade it again).
    "ALTER TABLE sessions ADD COLUMN traded_at INTEGER;",
    // A hold's QR is kept only while it lives (it holds the device's keys).
    "ALTER TABLE device_holds ADD COLUMN view_until INTEGER;
     UPDATE device_holds SET view = NULL;",
    // The simulated link is gone: its pairings, spent refs and fence counter with it.
    "DROP TABLE pairings;
     DROP TABLE spent;
     DROP TABLE fences;",
];

/// A device hold's columns, with what is left computed against `?1` (now).
const HOLD: &str = "bot_id, user_id, node, url, hold_until - ?1, registered, \
     CASE WHEN view_until > ?1 THEN view END";

impl SqliteStore {
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            conn.execute_batch(&format!(
                "BEGIN; {sql}; PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))?;
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// Runs SQLite work (the lock, the disk, the busy timeout) off tokio's workers: in the
    /// server's multi-threaded runtime the worker hands its other tasks on before it blocks
    /// (`block_in_place`); in a single-threaded runtime (some tests) it runs where it is.
    fn blocking<T>(&self, work: impl FnOnce() -> T) -> T {
        let multi_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_threaded {
            tokio::task::block_in_place(work)
        } else {
            work()
        }
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: take it anyway.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bot_query(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Bot>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(sql)?;
        let rows = stmt.query_map(p, bot_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

const BOT: &str = "id, name, status, phone, created_at, messages, status_reason";

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_session(
        &self,
        user_id: &str,
        ttl_ms: u64,
    ) -> Result<(String, i64), StoreError> {
        self.blocking(|| {
            let token = random_id(16);
            let expires_at = now_ms() + ttl_ms as i64;
            self.db().execute(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![hash(&token), user_id, expires_at],
            )?;
            Ok((token, expires_at))
        })
    }

    async fn check_token(&self, token: &str) -> Result<TokenCheck, StoreError> {
        self.blocking(|| {
            let row = self
                .db()
                .query_row(
                    "SELECT user_id, expires_at, force_expired, traded_at FROM sessions WHERE token_hash = ?1",
                    params![hash(token)],
                    |r| {
                        Ok(TokenRow {
                            user_id: r.get(0)?,
                            expires_at: r.get(1)?,
                            forced: r.get(2)?,
                            traded_at: r.get(3)?,
                        })
                    },
                )
                .optional()?;
            Ok(token_check(row))
        })
    }

    async fn refresh(
        &self,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        self.blocking(|| {
            let now = now_ms();
            let mut db = self.db();
            let tx = db.transaction()?;
            tx.execute(
                "DELETE FROM sessions WHERE traded_at < ?1",
                params![now - REFRESH_GRACE_MS],
            )?;
            let row: Option<(String, Option<i64>)> = tx
                .query_row(
                    "SELECT user_id, traded_at FROM sessions WHERE token_hash = ?1",
                    params![hash(token)],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((user, traded_at)) = row.filter(|(_, at)| tradable(*at, now)) else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE sessions SET traded_at = ?2 WHERE token_hash = ?1",
                params![hash(token), traded_at.unwrap_or(now)],
            )?;
            let new = random_id(16);
            let expires_at = now + ttl_ms as i64;
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
                params![hash(&new), user, expires_at],
            )?;
            tx.commit()?;
            Ok(Some((new, user, expires_at)))
        })
    }

    async fn expire_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.blocking(|| {
            self.db().execute(
                "UPDATE sessions SET force_expired = 1 WHERE user_id = ?1",
                params![user_id],
            )?;
            Ok(())
        })
    }

    async fn revoke_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.blocking(|| {
            self.db()
                .execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])?;
            Ok(())
        })
    }

    async fn create_bot(&self, user_id: &str, name: &str) -> Result<Bot, StoreError> {
        self.blocking(|| {
            let bot = new_bot(name);
            self.db().execute(
                "INSERT INTO bots (id, user_id, name, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    bot.id,
                    user_id,
                    bot.name,
                    bot.status.as_str(),
                    bot.created_at
                ],
            )?;
            Ok(bot)
        })
    }

    async fn list_bots(&self, user_id: &str) -> Result<Vec<Bot>, StoreError> {
        self.blocking(|| {
            self.bot_query(
                &format!("SELECT {BOT} FROM bots WHERE user_id = ?1 ORDER BY created_at, id"),
                params![user_id],
            )
        })
    }

    async fn get_bot(&self, user_id: &str, id: &str) -> Result<Option<Bot>, StoreError> {
        self.blocking(|| {
            Ok(self
                .bot_query(
                    &format!("SELECT {BOT} FROM bots WHERE user_id = ?1 AND id = ?2"),
                    params![user_id, id],
                )?
                .pop())
        })
    }

    async fn get_bot_any(&self, id: &str) -> Result<Option<(String, Bot)>, StoreError> {
        self.blocking(|| {
            Ok(self
                .db()
                .query_row(
                    &format!("SELECT {BOT}, user_id FROM bots WHERE id = ?1"),
                    params![id],
                    |r| Ok((r.get(7)?, bot_from_row(r)?)),
                )
                .optional()?)
        })
    }

    async fn delete_bot(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        self.blocking(|| {
            let db = self.db();
            let deleted = db.execute(
                "DELETE FROM bots WHERE user_id = ?1 AND id = ?2",
                params![user_id, id],
            )? > 0;
            if deleted {
                db.execute("DELETE FROM device_holds WHERE bot_id = ?1", params![id])?;
            }
            Ok(deleted)
        })
    }

    async fn set_status(
        &self,
        id: &str,
        status: BotStatus,
        phone: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.blocking(|| {
            self.db().execute(
                "UPDATE bots SET status = ?2, phone = ?3, status_reason = ?4 WHERE id = ?1",
                params![id, status.as_str(), phone, reason],
            )?;
            Ok(())
        })
    }

    async fn count_messages(&self, id: &str, received: i64) -> Result<i64, StoreError> {
        self.blocking(|| {
            Ok(self.db().query_row(
                "UPDATE bots SET messages = messages + ?2 WHERE id = ?1 RETURNING messages",
                params![id, received],
                |r| r.get(0),
            )?)
        })
    }

    async fn all_bots(&self) -> Result<Vec<(String, Bot)>, StoreError> {
        self.blocking(|| {
            let db = self.db();
            let mut stmt = db.prepare(&format!(
                "SELECT {BOT}, user_id FROM bots ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get(7)?, bot_from_row(r)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn hold_device(
        &self,
        bot_id: &str,
        user_id: &str,
        lease: Lease<'_>,
        url: &str,
    ) -> Result<(DeviceHold, bool), StoreError> {
        self.blocking(|| {
            let db = self.db();
            let now = now_ms();
            let anew = match hold_of(&db, now, bot_id)? {
                Some(h) if h.node == lease.node => false,
                Some(h) if h.live() || h.registered => return Ok((h, false)),
                _ => true,
            };
            db.execute(
                "INSERT INTO device_holds (bot_id, user_id, node, url, hold_until)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (bot_id) DO UPDATE SET user_id = excluded.user_id,
                    node = excluded.node, url = excluded.url, hold_until = excluded.hold_until,
                    lapse_told = 0,
                    registered = CASE WHEN node = excluded.node THEN registered ELSE 0 END,
                    view = CASE WHEN node = excluded.node THEN view ELSE NULL END",
                params![bot_id, user_id, lease.node, url, now + lease.ttl_ms],
            )?;
            let held =
                hold_of(&db, now, bot_id)?.ok_or_else(|| StoreError::Sql("no hold".into()))?;
            Ok((held, anew))
        })
    }

    async fn retake_hold(
        &self,
        bot_id: &str,
        lease: Lease<'_>,
        url: &str,
    ) -> Result<Option<DeviceHold>, StoreError> {
        self.blocking(|| {
            let now = now_ms();
            Ok(self
                .db()
                .query_row(
                    &format!(
                        "UPDATE device_holds SET hold_until = ?1 + ?4, url = ?5, lapse_told = 0
                         WHERE bot_id = ?2 AND node = ?3 RETURNING {HOLD}"
                    ),
                    params![now, bot_id, lease.node, lease.ttl_ms, url],
                    hold_from_row,
                )
                .optional()?)
        })
    }

    async fn device_hold(&self, bot_id: &str) -> Result<Option<DeviceHold>, StoreError> {
        self.blocking(|| Ok(hold_of(&self.db(), now_ms(), bot_id)?))
    }

    async fn show_on_hold(
        &self,
        bot_id: &str,
        node: &str,
        view: Option<(&str, i64)>,
        registered: bool,
    ) -> Result<(), StoreError> {
        self.blocking(|| {
            let (view, lives_ms) = view.unzip();
            self.db().execute(
                "UPDATE device_holds SET view = ?3, view_until = ?5 + ?6, registered = registered OR ?4
                 WHERE bot_id = ?1 AND node = ?2",
                params![bot_id, node, view, registered, now_ms(), lives_ms],
            )?;
            Ok(())
        })
    }

    async fn renew_holds(&self, lease: Lease<'_>) -> Result<Vec<String>, StoreError> {
        self.blocking(|| {
            let db = self.db();
            let mut stmt = db.prepare(
                "UPDATE device_holds SET hold_until = ?1 + ?3, lapse_told = 0,
                    view = CASE WHEN view_until > ?1 THEN view END
                 WHERE node = ?2 RETURNING bot_id",
            )?;
            let rows = stmt.query_map(params![now_ms(), lease.node, lease.ttl_ms], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn lapse_holds(&self, node: &str) -> Result<(), StoreError> {
        self.blocking(|| {
            self.db().execute(
                "UPDATE device_holds SET hold_until = ?1 - 1 WHERE node = ?2",
                params![now_ms(), node],
            )?;
            Ok(())
        })
    }

    async fn lapsed_holds(&self) -> Result<Vec<DeviceHold>, StoreError> {
        self.blocking(|| {
            let db = self.db();
            let mut stmt = db.prepare(&format!(
                "UPDATE device_holds SET lapse_told = 1
                 WHERE hold_until < ?1 AND lapse_told = 0 AND registered = 0
                 RETURNING {HOLD}"
            ))?;
            let rows = stmt.query_map(params![now_ms()], hold_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    async fn forget_hold(&self, bot_id: &str) -> Result<(), StoreError> {
        self.blocking(|| {
            self.db().execute(
                "DELETE FROM device_holds WHERE bot_id = ?1",
                params![bot_id],
            )?;
            Ok(())
        })
    }
}

fn bot_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Bot> {
    Ok(Bot {
        id: r.get(0)?,
        name: r.get(1)?,
        // Only this server writes the column; a word it does not know reads as `Unknown`.
        status: BotStatus::parse(&r.get::<_, String>(2)?),
        phone: r.get(3)?,
        created_at: r.get(4)?,
        messages: r.get::<_, i64>(5)?.max(0) as u64,
        pairing: None,
        status_reason: r.get(6)?,
    })
}

fn hold_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceHold> {
    Ok(DeviceHold {
        bot_id: r.get(0)?,
        user_id: r.get(1)?,
        node: r.get(2)?,
        url: r.get(3)?,
        left_ms: r.get(4)?,
        registered: r.get(5)?,
        view: r.get(6)?,
        fence: None,
    })
}

fn hold_of(db: &Connection, now: i64, bot_id: &str) -> rusqlite::Result<Option<DeviceHold>> {
    db.query_row(
        &format!("SELECT {HOLD} FROM device_holds WHERE bot_id = ?2"),
        params![now, bot_id],
        hold_from_row,
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_keeps_the_store_contract() {
        let store = SqliteStore::open(":memory:").unwrap();
        super::super::contract::check(&store).await;
    }

    /// The contract holds where the server runs it: on a multi-threaded runtime, off its workers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn it_keeps_the_store_contract_off_the_runtimes_workers() {
        let store = SqliteStore::open(":memory:").unwrap();
        super::super::contract::check(&store).await;
    }

    /// A store call that waits on SQLite (here: its lock, held as a slow disk would hold it)
    /// holds up no other task of the runtime: the worker hands them on before it blocks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_slow_database_holds_up_no_other_task() {
        use std::{sync::mpsc, time::Duration};
        let store = std::sync::Arc::new(SqliteStore::open(":memory:").unwrap());
        let (held_tx, held) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let slow = store.clone();
        // The "disk": holds the lock until another task releases it, or gives up after 5 s (so
        // a regression fails this test instead of hanging it).
        let disk = std::thread::spawn(move || {
            let _lock = slow.db();
            held_tx.send(()).unwrap();
            release_rx.recv_timeout(Duration::from_secs(5)).is_ok()
        });
        held.recv().unwrap();
        // The only worker takes a store call that blocks on the lock, then another task.
        let blocked = tokio::spawn({
            let store = store.clone();
            async move { store.create_bot("u1", "Waits").await.map(|b| b.name) }
        });
        tokio::spawn(async move {
            let _ = release.send(());
        });
        assert!(
            disk.join().unwrap(),
            "no other task ran while a store call waited on SQLite"
        );
        assert_eq!(blocked.await.unwrap().unwrap(), "Waits");
    }
}
