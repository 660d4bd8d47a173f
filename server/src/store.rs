//! SQLite storage: sessions and bots, surviving a restart. WAL mode; migrations in code.
//!
//! Tokens are stored as SHA-256 hashes: a leaked database file hands out no session.

use protocol::{Bot, BotStatus};
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
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
];

/// What a token is worth right now.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid { user_id: String },
    Expired { user_id: String },
    Unknown,
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

impl Store {
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
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: take it anyway.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session: a random 128-bit token, of which only the hash is kept.
    pub fn create_session(&self, user_id: &str, ttl_ms: u64) -> Result<(String, i64), StoreError> {
        let token = random_id(16);
        let expires_at = now_ms() + ttl_ms as i64;
        self.db().execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)",
            params![hash(&token), user_id, expires_at],
        )?;
        Ok((token, expires_at))
    }

    pub fn check_token(&self, token: &str) -> Result<TokenCheck, StoreError> {
        let row: Option<(String, i64, bool)> = self
            .db()
            .query_row(
                "SELECT user_id, expires_at, force_expired FROM sessions WHERE token_hash = ?1",
                params![hash(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => TokenCheck::Unknown,
            Some((user_id, expires_at, forced)) if forced || expires_at <= now_ms() => {
                TokenCheck::Expired { user_id }
            }
            Some((user_id, ..)) => TokenCheck::Valid { user_id },
        })
    }

    /// Trades a known token (expired or not) for a new one; the old one stops working.
    pub fn refresh(
        &self,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        let user = match self.check_token(token)? {
            TokenCheck::Unknown => return Ok(None),
            TokenCheck::Valid { user_id } | TokenCheck::Expired { user_id } => user_id,
        };
        self.db().execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            params![hash(token)],
        )?;
        let (token, expires_at) = self.create_session(&user, ttl_ms)?;
        Ok(Some((token, user, expires_at)))
    }

    pub fn expire_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.db().execute(
            "UPDATE sessions SET force_expired = 1 WHERE user_id = ?1",
            params![user_id],
        )?;
        Ok(())
    }

    pub fn revoke_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.db()
            .execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])?;
        Ok(())
    }

    pub fn create_bot(&self, user_id: &str, name: &str) -> Result<Bot, StoreError> {
        let bot = Bot {
            id: format!("bot_{}", random_id(8)),
            name: name.to_owned(),
            status: BotStatus::Created,
            phone: None,
            created_at: now_rfc3339(),
            messages: 0,
            pairing: None,
            status_reason: None,
        };
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
    }

    pub fn list_bots(&self, user_id: &str) -> Result<Vec<Bot>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, name, status, phone, created_at, messages, status_reason FROM bots WHERE user_id = ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![user_id], bot_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The bot if it belongs to `user_id`; another user's bot does not exist for this one.
    pub fn get_bot(&self, user_id: &str, id: &str) -> Result<Option<Bot>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, name, status, phone, created_at, messages, status_reason FROM bots WHERE user_id = ?1 AND id = ?2",
                params![user_id, id],
                bot_from_row,
            )
            .optional()?)
    }

    /// A bot by id alone, with its owner: for the `/link` page, which has no session.
    pub fn get_bot_any(&self, id: &str) -> Result<Option<(String, Bot)>, StoreError> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, name, status, phone, created_at, messages, status_reason, user_id FROM bots WHERE id = ?1",
                params![id],
                |r| Ok((r.get(7)?, bot_from_row(r)?)),
            )
            .optional()?)
    }

    pub fn delete_bot(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.db().execute(
            "DELETE FROM bots WHERE user_id = ?1 AND id = ?2",
            params![user_id, id],
        )? > 0)
    }

    pub fn set_status(
        &self,
        id: &str,
        status: BotStatus,
        phone: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db().execute(
            "UPDATE bots SET status = ?2, phone = ?3, status_reason = ?4 WHERE id = ?1",
            params![id, status.as_str(), phone, reason],
        )?;
        Ok(())
    }

    /// Counts messages a bot received (the `messages` of `Bot`); returns the new count.
    pub fn count_messages(&self, id: &str, received: i64) -> Result<i64, StoreError> {
        Ok(self.db().query_row(
            "UPDATE bots SET messages = messages + ?2 WHERE id = ?1 RETURNING messages",
            params![id, received],
            |r| r.get(0),
        )?)
    }

    /// Every bot with its owner: what a restarted server resumes.
    pub fn all_bots(&self) -> Result<Vec<(String, Bot)>, StoreError> {
        let db = self.db();
        let mut stmt = db.prepare(
            "SELECT id, name, status, phone, created_at, messages, status_reason, user_id FROM bots ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(7)?, bot_from_row(r)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
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

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_replaces_the_token_and_keeps_the_user() {
        let s = Store::open(":memory:").unwrap();
        let (t1, _) = s.create_session("u1", 60_000).unwrap();
        let (t2, user, _) = s.refresh(&t1, 60_000).unwrap().unwrap();
        assert_eq!(user, "u1");
        assert_eq!(s.check_token(&t1).unwrap(), TokenCheck::Unknown);
        assert_eq!(
            s.check_token(&t2).unwrap(),
            TokenCheck::Valid {
                user_id: "u1".into()
            }
        );
    }

    #[test]
    fn forced_expiry_is_refreshable_and_revocation_is_not() {
        let s = Store::open(":memory:").unwrap();
        let (t, _) = s.create_session("u1", 60_000).unwrap();
        s.expire_tokens("u1").unwrap();
        assert_eq!(
            s.check_token(&t).unwrap(),
            TokenCheck::Expired {
                user_id: "u1".into()
            }
        );
        let (t2, ..) = s.refresh(&t, 60_000).unwrap().unwrap();
        s.revoke_tokens("u1").unwrap();
        assert!(s.refresh(&t2, 60_000).unwrap().is_none());
    }

    #[test]
    fn a_bot_is_invisible_to_another_user() {
        let s = Store::open(":memory:").unwrap();
        let bot = s.create_bot("u1", "Support").unwrap();
        assert!(s.get_bot("u2", &bot.id).unwrap().is_none());
        assert!(!s.delete_bot("u2", &bot.id).unwrap());
        assert_eq!(s.list_bots("u1").unwrap(), vec![bot]);
    }
}
