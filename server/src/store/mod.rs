//! Storage: sessions, bots, the simulated link's pairings, and (in a cluster) which node holds
//! each bot's WhatsApp device. One interface, [`Store`], with two
//! implementations: embedded SQLite (the default, one process) and PostgreSQL (cluster mode,
//! shared by every node). Each has its own migrations.
//!
//! Tokens are stored as SHA-256 hashes: a leaked database hands out no session.

pub mod data_dir;
mod postgres;
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

/// A running pairing of the simulated link: its row, leased to one node at a time. Times are
/// what is left, measured by the database's clock (nodes' clocks never decide a lease).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingRow {
    pub bot_id: String,
    pub user_id: String,
    pub qr_ref: String,
    pub attempt: u32,
    /// Until the current QR expires (≤ 0: it has).
    pub qr_left_ms: i64,
    /// Set by the scan: until the simulated restart (515) ends and the bot is linked.
    pub link_left_ms: Option<i64>,
    /// The pairing code handed out for it, and until it expires.
    pub code: Option<String>,
    pub code_left_ms: Option<i64>,
    /// The node that holds the lease, and the fencing token it holds it with. Fences come from
    /// one counter of the database: a fence is never reused, by any pairing.
    pub owner: String,
    pub fence: i64,
    /// The current QR's lifetime (`expiresInMs`).
    pub qr_ms: i64,
}

impl PairingRow {
    pub fn scanned(&self) -> bool {
        self.link_left_ms.is_some()
    }
}

/// A new pairing's first QR.
pub struct NewPairing<'a> {
    pub bot_id: &'a str,
    pub user_id: &'a str,
    pub qr_ref: &'a str,
    pub qr_ms: i64,
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
}

impl DeviceHold {
    pub fn live(&self) -> bool {
        self.left_ms > 0
    }
}

/// What the phone presented: a QR's ref, or a typed pairing code.
#[derive(Clone, Copy, Debug)]
pub enum Presented<'a> {
    Ref(&'a str),
    Code(&'a str),
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
    /// A bot by id alone, with its owner: for the `/link` page, which has no session.
    async fn get_bot_any(&self, id: &str) -> Result<Option<(String, Bot)>, StoreError>;
    async fn delete_bot(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;
    async fn set_status(
        &self,
        id: &str,
        status: BotStatus,
        phone: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Counts messages a bot received (the `messages` of `Bot`); returns the new count.
    async fn count_messages(&self, id: &str, received: i64) -> Result<i64, StoreError>;
    /// Every bot with its owner: what a restarted server resumes.
    async fn all_bots(&self) -> Result<Vec<(String, Bot)>, StoreError>;

    // The simulated link's pairings. Every change of a running pairing's course is a
    // compare-and-swap on its fence; what a person does (scan, code, end) acts on the row itself.

    /// Opens the bot's pairing leased to `lease.node`, unless one runs (then `None`).
    async fn open_pairing(
        &self,
        new: NewPairing<'_>,
        lease: Lease<'_>,
    ) -> Result<Option<PairingRow>, StoreError>;
    async fn pairing(&self, bot_id: &str) -> Result<Option<PairingRow>, StoreError>;
    /// The unscanned pairing showing `qr_ref` now.
    async fn pairing_by_ref(&self, qr_ref: &str) -> Result<Option<PairingRow>, StoreError>;
    /// The next QR, if `fence` still holds the pairing and it was not scanned.
    async fn rotate(
        &self,
        bot_id: &str,
        fence: i64,
        new_ref: &str,
        qr_ms: i64,
    ) -> Result<Option<PairingRow>, StoreError>;
    /// Hands the unscanned pairing a pairing code (replacing any); returns the replaced one.
    async fn set_code(
        &self,
        bot_id: &str,
        code: &str,
        ttl_ms: i64,
    ) -> Result<Option<Option<String>>, StoreError>;
    /// The phone presented a live ref or code: the pairing is scanned, its restart runs for
    /// `restart_ms`, and the lease passes to `lease.node` with a new fence (the node that saw
    /// the scan runs what follows). Returns the row as it was before (its code, to spend).
    async fn scan(
        &self,
        presented: Presented<'_>,
        restart_ms: i64,
        lease: Lease<'_>,
    ) -> Result<Option<PairingRow>, StoreError>;
    /// Ends the bot's pairing: with `Some(fence)` only if that fence still holds it.
    async fn close_pairing(
        &self,
        bot_id: &str,
        fence: Option<i64>,
    ) -> Result<Option<PairingRow>, StoreError>;
    /// Extends every lease `lease.node` holds; returns the pairings (bot, fence) it still holds.
    async fn renew_leases(&self, lease: Lease<'_>) -> Result<Vec<(String, i64)>, StoreError>;
    /// Takes the pairings whose lease ran out (their node died), each with a new fence.
    async fn adopt_expired(&self, lease: Lease<'_>) -> Result<Vec<PairingRow>, StoreError>;
    /// Gives back every lease of `node` (a drain): another node adopts them at once.
    async fn release_leases(&self, node: &str) -> Result<(), StoreError>;
    /// A ref or code that was shown and is gone: "expired" or "used".
    async fn spend(&self, key: &str, why: &str) -> Result<(), StoreError>;
    async fn spent(&self, key: &str) -> Result<Option<String>, StoreError>;

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
    /// The holds that ran out since they were last renewed, each answered once, to one node.
    async fn lapsed_holds(&self) -> Result<Vec<DeviceHold>, StoreError>;
    /// The device is gone (unlinked, logged out, deleted): nobody holds the bot any more.
    async fn forget_hold(&self, bot_id: &str) -> Result<(), StoreError>;
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

/// Spent refs older than this are forgotten (a link page then says "unknown").
const SPENT_KEEP_MS: i64 = 24 * 3_600_000;

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
