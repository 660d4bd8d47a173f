//! Storage: sessions, bots, and (in a cluster) which node holds each bot's WhatsApp device. One interface, [`Store`], with two
//! implementations: embedded SQLite (the default, one process) and PostgreSQL (cluster mode,
//! shared by every node). Each has its own migrations.
//!
//! Tokens are stored as SHA-256 hashes: a leaked database hands out no session.

pub mod data_dir;
pub mod device;
pub(crate) mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use protocol::{Bot, BotStatus};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement the database refused: a bug of ours, answered 500.
    #[error("database: {0}")]
    Sql(String),
    /// The database cannot be reached now: answered 503 with `Retry-After`, never a logout.
    #[error("the database is unavailable: {0}")]
    Down(String),
    /// A write of a node that no longer holds the bot's device (another node took it since).
    #[error("refused: another server node holds this bot's device now")]
    Fenced,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e.to_string())
    }
}

/// How long a client is asked to wait when the database is down.
pub const RETRY_WHEN_DOWN: Duration = Duration::from_secs(2);

/// What a token is worth right now.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid { user_id: String },
    Expired { user_id: String },
    Unknown,
}

/// Who takes a lease, and for how long.
#[derive(Clone, Copy)]
pub struct Lease<'a> {
    pub node: &'a str,
    pub ttl_ms: i64,
}

/// Which node holds a bot's WhatsApp device (cluster mode, real link). The device store is a
/// file on that node's disk: only that node runs the bot's client, renewing the hold as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceHold {
    pub bot_id: String,
    pub user_id: String,
    pub node: String,
    /// Where other nodes reach the holder's API (requests about the bot are forwarded there).
    pub url: String,
    /// Until the hold runs out by the database's clock (≤ 0: its node stopped renewing it).
    pub left_ms: i64,
    /// A phone linked the device: no other node can stand in for it.
    pub registered: bool,
    /// The QR on offer now (the `Pairing`, as JSON), for the replay on any node; only while
    /// that QR lives (it holds the keys of the device being linked: no longer in the table
    /// than on a screen).
    pub view: Option<String>,
    /// The fence the taking of the hold took (PostgreSQL, when this answer took it): the
    /// holder's device writes, status writes and connections are made under it.
    pub fence: Option<i64>,
}

impl DeviceHold {
    pub fn live(&self) -> bool {
        self.left_ms > 0
    }
}

#[async_trait::async_trait]
pub trait Store: Send + Sync {
    // Sessions.

    /// A new session: a random 128-bit token, of which only the hash is kept.
    async fn create_session(&self, user_id: &str, ttl_ms: u64)
    -> Result<(String, i64), StoreError>;
    async fn check_token(&self, token: &str) -> Result<TokenCheck, StoreError>;
    /// Trades a known token (expired or not) for a new one, in one transaction: the old one stops
    /// authorizing, and can be traded again for [`REFRESH_GRACE_MS`] (a retry after a lost
    /// answer gets a new token too); after that it is unknown.
    async fn refresh(
        &self,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Option<(String, String, i64)>, StoreError>;
    async fn expire_tokens(&self, user_id: &str) -> Result<(), StoreError>;
    async fn revoke_tokens(&self, user_id: &str) -> Result<(), StoreError>;

    // Bots.

    async fn create_bot(&self, user_id: &str, name: &str) -> Result<Bot, StoreError>;
    async fn list_bots(&self, user_id: &str) -> Result<Vec<Bot>, StoreError>;
    /// The bot if it belongs to `user_id`; another user's bot does not exist for this one.
    async fn get_bot(&self, user_id: &str, id: &str) -> Result<Option<Bot>, StoreError>;
    /// A bot by id alone, with its owner: for the link, whose events name no user.
    async fn get_bot_any(&self, id: &str) -> Result<Option<(String, Bot)>, StoreError>;
    async fn delete_bot(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;
    async fn set_status(
        &self,
        id: &str,
        status: BotStatus,
        phone: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;
    /// [`Store::set_status`] by the holder of the bot's device under `fence` (the fence its hold
    /// took): refused ([`StoreError::Fenced`]) once another node took the device. A store
    /// without fences (SQLite: one node) writes it as it is.
    async fn set_status_fenced(
        &self,
        id: &str,
        status: BotStatus,
        phone: Option<&str>,
        reason: Option<&str>,
        fence: i64,
    ) -> Result<(), StoreError> {
        let _ = fence;
        self.set_status(id, status, phone, reason).await
    }
    /// Counts messages a bot received (the `messages` of `Bot`); returns the new count.
    async fn count_messages(&self, id: &str, received: i64) -> Result<i64, StoreError>;
    /// Every bot with its owner: what a restarted server resumes.
    async fn all_bots(&self) -> Result<Vec<(String, Bot)>, StoreError>;

    // Cluster mode, real link: which node holds each bot's WhatsApp device. A hold is taken by
    // the node that starts the bot's first client, renewed while that node lives, and kept when
    // it lapses (the device is on that node's disk) until it returns or the bot is unlinked.

    /// Takes the bot's hold for `lease.node` (or renews it, if the node has it) and answers
    /// who holds it now, and whether it was taken anew (no earlier device counts). It is taken
    /// from nobody, or from a node that stopped renewing an unregistered device (a pairing
    /// nobody finished).
    async fn hold_device(
        &self,
        bot_id: &str,
        user_id: &str,
        lease: Lease<'_>,
        url: &str,
    ) -> Result<(DeviceHold, bool), StoreError>;
    /// Renews the hold only if it still names `lease.node` (what a restarted node resumes).
    async fn retake_hold(
        &self,
        bot_id: &str,
        lease: Lease<'_>,
        url: &str,
    ) -> Result<Option<DeviceHold>, StoreError>;
    async fn device_hold(&self, bot_id: &str) -> Result<Option<DeviceHold>, StoreError>;
    /// What the holder's session shows now: its QR and how long it lives (or none), and
    /// whether a phone linked it. A QR is read back only while it lives, and erased at the next
    /// renewal after.
    async fn show_on_hold(
        &self,
        bot_id: &str,
        node: &str,
        view: Option<(&str, i64)>,
        registered: bool,
    ) -> Result<(), StoreError>;
    /// Extends every hold of `lease.node`; returns the bots it holds.
    async fn renew_holds(&self, lease: Lease<'_>) -> Result<Vec<String>, StoreError>;
    /// Lets every hold of `node` run out now (a drain): the others say so at once.
    async fn lapse_holds(&self, node: &str) -> Result<(), StoreError>;
    /// The holds of pairings (no phone linked) that ran out since they were last renewed, each
    /// answered once, to one node. (A linked device's lapsed hold is adopted: `adopt_holds`.)
    async fn lapsed_holds(&self) -> Result<Vec<DeviceHold>, StoreError>;
    /// The device is gone (unlinked, logged out, deleted): nobody holds the bot any more.
    async fn forget_hold(&self, bot_id: &str) -> Result<(), StoreError>;
    /// Takes for `lease.node` every hold of a linked device that lapsed over `margin_ms` ago
    /// (its node died, or drained), each with a new fence: each orphan goes to one node. Only a
    /// store that keeps devices (PostgreSQL) adopts; the others have nothing to adopt.
    async fn adopt_holds(
        &self,
        lease: Lease<'_>,
        url: &str,
        margin_ms: i64,
    ) -> Result<Vec<DeviceHold>, StoreError> {
        let _ = (lease, url, margin_ms);
        Ok(Vec::new())
    }
    /// The pool the device stores use (store/device), in a store that keeps devices.
    fn device_pool(&self) -> Option<deadpool_postgres::Pool> {
        None
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new bot's row, before it is stored.
fn new_bot(name: &str) -> Bot {
    Bot {
        id: format!("bot_{}", random_id(8)),
        name: name.to_owned(),
        status: BotStatus::Created,
        phone: None,
        created_at: now_rfc3339(),
        messages: 0,
        pairing: None,
        status_reason: None,
    }
}

/// How long a token traded by a refresh can still be traded again: a client whose refresh
/// answer was lost retries with the old token and gets a new one, instead of being logged out.
/// Meanwhile the old token authorizes nothing (it answers `token_expired`, so a request that
/// raced the refresh makes its client refresh, not log out).
pub const REFRESH_GRACE_MS: i64 = 60_000;

/// A session's row as a token check reads it.
struct TokenRow {
    user_id: String,
    expires_at: i64,
    forced: bool,
    /// When a refresh traded this token for a new one.
    traded_at: Option<i64>,
}

/// What a token check found, from its row.
fn token_check(row: Option<TokenRow>) -> TokenCheck {
    token_check_at(row, now_ms())
}

fn token_check_at(row: Option<TokenRow>, now: i64) -> TokenCheck {
    match row {
        None => TokenCheck::Unknown,
        Some(TokenRow {
            traded_at: Some(at),
            ..
        }) if now - at > REFRESH_GRACE_MS => TokenCheck::Unknown,
        Some(r) if r.forced || r.expires_at <= now || r.traded_at.is_some() => {
            TokenCheck::Expired { user_id: r.user_id }
        }
        Some(r) => TokenCheck::Valid { user_id: r.user_id },
    }
}

/// Whether a refresh may trade a token traded at `traded_at` (never, or within the grace).
fn tradable(traded_at: Option<i64>, now: i64) -> bool {
    traded_at.is_none_or(|at| now - at <= REFRESH_GRACE_MS)
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod contract;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(expires_at: i64, forced: bool, traded_at: Option<i64>) -> Option<TokenRow> {
        Some(TokenRow {
            user_id: "u".into(),
            expires_at,
            forced,
            traded_at,
        })
    }

    #[test]
    fn a_traded_token_is_expired_for_the_grace_then_unknown() {
        let now = 1_000_000;
        let (valid, expired) = (
            TokenCheck::Valid {
                user_id: "u".into(),
            },
            TokenCheck::Expired {
                user_id: "u".into(),
            },
        );
        assert_eq!(token_check_at(row(now + 1, false, None), now), valid);
        assert_eq!(token_check_at(row(now, false, None), now), expired);
        assert_eq!(token_check_at(row(now + 1, true, None), now), expired);
        let traded = now - REFRESH_GRACE_MS;
        assert_eq!(
            token_check_at(row(now + 1, false, Some(traded)), now),
            expired
        );
        assert!(tradable(Some(traded), now));
        assert_eq!(
            token_check_at(row(now + 1, false, Some(traded - 1)), now),
            TokenCheck::Unknown
        );
        assert!(!tradable(Some(traded - 1), now));
        assert!(tradable(None, now));
        assert_eq!(token_check_at(None, now), TokenCheck::Unknown);
    }
}
