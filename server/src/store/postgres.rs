//! The store on PostgreSQL (cluster mode): every node shares it. Device holds are measured by the
//! database's clock (`botlink_now_ms()`), and every change of a hold is one statement.

use super::{
    DeviceHold, Lease, REFRESH_GRACE_MS, Store, StoreError, TokenCheck, TokenRow, hash, new_bot,
    now_ms, random_id, token_check,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use protocol::{Bot, BotStatus};
use std::time::Duration;
use tokio_postgres::{NoTls, Row, types::ToSql};

/// Migrations, applied in order inside one transaction each; `botlink_migrations` says how many
/// ran. An advisory lock keeps two nodes starting at once from running one twice.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        force_expired BOOLEAN NOT NULL DEFAULT false
     );
     CREATE INDEX sessions_user ON sessions(user_id);
     CREATE TABLE bots (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        phone TEXT,
        created_at TEXT NOT NULL,
        messages BIGINT NOT NULL DEFAULT 0,
        status_reason TEXT
     );
     CREATE INDEX bots_user ON bots(user_id);
     CREATE FUNCTION botlink_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE
        AS 'SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT';
     CREATE SEQUENCE pairing_fences;
     CREATE TABLE pairings (
        bot_id TEXT PRIMARY KEY REFERENCES bots(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        qr_ref TEXT NOT NULL UNIQUE,
        attempt BIGINT NOT NULL,
        qr_expires_at BIGINT NOT NULL,
        qr_ms BIGINT NOT NULL,
        linked_at BIGINT,
        code TEXT UNIQUE,
        code_expires_at BIGINT,
        owner TEXT NOT NULL,
        fence BIGINT NOT NULL,
        lease_until BIGINT NOT NULL
     );
     CREATE INDEX pairings_owner ON pairings(owner);
     CREATE INDEX pairings_lease ON pairings(lease_until);
     CREATE TABLE spent (key TEXT PRIMARY KEY, why TEXT NOT NULL, at BIGINT NOT NULL);",
    // Which node holds each bot's WhatsApp device (the real link in a cluster).
    "CREATE TABLE device_holds (
        bot_id TEXT PRIMARY KEY REFERENCES bots(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        node TEXT NOT NULL,
        url TEXT NOT NULL,
        hold_until BIGINT NOT NULL,
        registered BOOLEAN NOT NULL DEFAULT false,
        view TEXT,
        lapse_told BOOLEAN NOT NULL DEFAULT false
     );
     CREATE INDEX device_holds_node ON device_holds(node);
     CREATE INDEX device_holds_until ON device_holds(hold_until);",
    // A refresh marks the token it traded instead of deleting it (a retry may trade it again).
    "ALTER TABLE sessions ADD COLUMN traded_at BIGINT;",
    // A hold's QR is kept only while it lives (it holds the device's keys).
    "ALTER TABLE device_holds ADD COLUMN view_until BIGINT;
     UPDATE device_holds SET view = NULL;",
    // The simulated link is gone: its pairings, spent refs and fence sequence with it.
    "DROP TABLE pairings;
     DROP TABLE spent;
     DROP SEQUENCE pairing_fences;",
    // Devices in the database (store/device): any node can resume a linked bot. A fence per
    // device, apart from its hold (a share lock on the hold would block its renewals); the
    // device's own rows go with the device.
    "CREATE SEQUENCE device_fence_numbers;
     CREATE TABLE device_fences (
        bot_id TEXT PRIMARY KEY REFERENCES bots(id) ON DELETE CASCADE,
        fence BIGINT NOT NULL
     );
     CREATE TABLE wa_devices (
        bot_id TEXT PRIMARY KEY REFERENCES bots(id) ON DELETE CASCADE,
        device BYTEA NOT NULL,
        registered BOOLEAN NOT NULL
     );
     CREATE TABLE wa_identities (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        address TEXT NOT NULL, key BYTEA NOT NULL, PRIMARY KEY (bot_id, address));
     CREATE TABLE wa_sessions (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        address TEXT NOT NULL, record BYTEA NOT NULL, PRIMARY KEY (bot_id, address));
     CREATE TABLE wa_prekeys (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        id BIGINT NOT NULL, record BYTEA NOT NULL, uploaded BOOLEAN NOT NULL,
        PRIMARY KEY (bot_id, id));
     CREATE TABLE wa_signed_prekeys (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        id BIGINT NOT NULL, record BYTEA NOT NULL, PRIMARY KEY (bot_id, id));
     CREATE TABLE wa_sender_keys (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        address TEXT NOT NULL, record BYTEA NOT NULL, PRIMARY KEY (bot_id, address));
     CREATE TABLE wa_sync_keys (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        key_id BYTEA NOT NULL, key_data BYTEA NOT NULL, fingerprint BYTEA NOT NULL,
        timestamp BIGINT NOT NULL, PRIMARY KEY (bot_id, key_id));
     CREATE TABLE wa_app_state_versions (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        name TEXT NOT NULL, state BYTEA NOT NULL, PRIMARY KEY (bot_id, name));
     CREATE TABLE wa_mutation_macs (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        name TEXT NOT NULL, index_mac BYTEA NOT NULL, version BIGINT NOT NULL,
        value_mac BYTEA NOT NULL, PRIMARY KEY (bot_id, name, index_mac));
     CREATE TABLE wa_sender_key_devices (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        group_jid TEXT NOT NULL, device_jid TEXT NOT NULL, has_key BOOLEAN NOT NULL,
        PRIMARY KEY (bot_id, group_jid, device_jid));
     CREATE TABLE wa_lid_mappings (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        lid TEXT NOT NULL, phone_number TEXT NOT NULL, created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL, learning_source TEXT NOT NULL, PRIMARY KEY (bot_id, lid));
     CREATE INDEX wa_lid_mappings_phone ON wa_lid_mappings(bot_id, phone_number);
     CREATE TABLE wa_base_keys (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        address TEXT NOT NULL, message_id TEXT NOT NULL, base_key BYTEA NOT NULL,
        PRIMARY KEY (bot_id, address, message_id));
     CREATE TABLE wa_device_lists (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        user_id TEXT NOT NULL, record BYTEA NOT NULL, PRIMARY KEY (bot_id, user_id));
     CREATE TABLE wa_group_metadata (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        group_jid TEXT NOT NULL, info BYTEA NOT NULL, PRIMARY KEY (bot_id, group_jid));
     CREATE TABLE wa_tc_tokens (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        jid TEXT NOT NULL, token BYTEA NOT NULL, token_timestamp BIGINT NOT NULL,
        sender_timestamp BIGINT, PRIMARY KEY (bot_id, jid));
     CREATE TABLE wa_sent_messages (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        chat TEXT NOT NULL, id TEXT NOT NULL, payload BYTEA NOT NULL,
        created_at BIGINT NOT NULL, PRIMARY KEY (bot_id, chat, id));
     CREATE TABLE wa_pending_inbound (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        chat TEXT NOT NULL, sender TEXT NOT NULL, id TEXT NOT NULL, message BYTEA NOT NULL,
        inserted_at BIGINT NOT NULL, PRIMARY KEY (bot_id, chat, sender, id));
     CREATE TABLE wa_msg_secrets (
        bot_id TEXT NOT NULL REFERENCES wa_devices(bot_id) ON DELETE CASCADE,
        chat TEXT NOT NULL, sender TEXT NOT NULL, msg_id TEXT NOT NULL, secret BYTEA NOT NULL,
        expires_at BIGINT NOT NULL, message_ts BIGINT NOT NULL,
        PRIMARY KEY (bot_id, chat, sender, msg_id));",
];

/// A device hold's columns, with what is left by the database's clock.
const HOLD: &str = "bot_id, user_id, node, url, hold_until - botlink_now_ms(), registered, \
     CASE WHEN view_until > botlink_now_ms() THEN view END";

const BOT: &str = "id, name, status, phone, created_at, messages, status_reason";

/// Waiting longer than this for a connection means the database is down (a 503, not a hang).
const WAIT: Duration = Duration::from_secs(2);

pub struct PostgresStore {
    pool: Pool,
    /// The device stores' own pool (store/device): a busy bot's Signal writes never wait
    /// behind the API's queries, nor these behind them.
    devices: Pool,
}

/// A pool of `size` connections to `config`.
fn pool(config: tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(WAIT))
        .recycle_timeout(Some(WAIT))
        .build()
        .map_err(|e| StoreError::Sql(e.to_string()))
}

impl PostgresStore {
    /// Connects (a few tries: nodes and the database may start together) and migrates.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Sql(format!("--database-url: {e}")))?;
        config.connect_timeout(WAIT);
        config.application_name("botlink-server");
        let mut devices = config.clone();
        devices.application_name("botlink-server devices");
        // A device write's transaction lasts milliseconds. One left open by a frozen node (SIGSTOP,
        // a paused VM) would keep the share lock on its fence, and no other node could take the
        // device: the database ends such a transaction after a second.
        devices.options("-c idle_in_transaction_session_timeout=1000");
        let store = PostgresStore {
            pool: pool(config, 16)?,
            devices: pool(devices, 16)?,
        };
        let mut tries = 0;
        loop {
            match store.migrate().await {
                Ok(()) => return Ok(store),
                Err(StoreError::Down(why)) if tries < 10 => {
                    tries += 1;
                    tracing::warn!("PostgreSQL not reachable yet ({why}); trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(down)?;
        let tx = client.transaction().await.map_err(sql)?;
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7262521);
             CREATE TABLE IF NOT EXISTS botlink_migrations (version BIGINT NOT NULL);",
        )
        .await
        .map_err(sql)?;
        let done: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM botlink_migrations",
                &[],
            )
            .await
            .map_err(sql)?
            .get(0);
        for (i, migration) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(done).unwrap_or(0))
        {
            tx.batch_execute(migration).await.map_err(sql)?;
            tx.execute(
                "INSERT INTO botlink_migrations VALUES ($1)",
                &[&(i as i64 + 1)],
            )
            .await
            .map_err(sql)?;
        }
        tx.commit().await.map_err(sql)
    }

    async fn rows(&self, q: &str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let client = self.pool.get().await.map_err(down)?;
        let stmt = client.prepare_cached(q).await.map_err(sql)?;
        client.query(&stmt, p).await.map_err(sql)
    }

    async fn exec(&self, q: &str, p: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(down)?;
        let stmt = client.prepare_cached(q).await.map_err(sql)?;
        client.execute(&stmt, p).await.map_err(sql)
    }

    async fn bots(&self, q: &str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<Bot>, StoreError> {
        Ok(self.rows(q, p).await?.iter().map(bot_from_row).collect())
    }

    /// Runs `q` — a statement that takes holds and returns them (`{HOLD}` first, maybe more
    /// columns) — and gives every hold it took a new fence, in one transaction: every write
    /// under an older fence is refused from its commit on. Each hold with its row.
    async fn take_holds(
        &self,
        q: &str,
        p: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<(DeviceHold, Row)>, StoreError> {
        let mut client = self.pool.get().await.map_err(down)?;
        let tx = client.transaction().await.map_err(sql)?;
        tx.batch_execute(FENCE_WAIT).await.map_err(sql)?;
        let rows = tx.query(q, p).await.map_err(sql)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let bots: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let fences = tx
            .query(
                "INSERT INTO device_fences (bot_id, fence)
                 SELECT b, nextval('device_fence_numbers') FROM UNNEST($1::text[]) AS t(b)
                 ON CONFLICT (bot_id) DO UPDATE SET fence = nextval('device_fence_numbers')
                 RETURNING bot_id, fence",
                &[&bots],
            )
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)?;
        let fence_of = |bot: &str| {
            fences
                .iter()
                .find(|f| f.get::<_, &str>(0) == bot)
                .map(|f| f.get::<_, i64>(1))
        };
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut hold = hold_from_row(&r);
                hold.fence = fence_of(&hold.bot_id);
                (hold, r)
            })
            .collect())
    }
}

/// The pool could not hand out a connection: the database is down or unreachable.
fn down(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Down(e.to_string())
}

/// A statement failed: the database refused it (a bug), or the connection broke (down).
fn sql(e: tokio_postgres::Error) -> StoreError {
    if e.as_db_error().is_some() {
        StoreError::Sql(e.to_string())
    } else {
        StoreError::Down(e.to_string())
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn create_session(
        &self,
        user_id: &str,
        ttl_ms: u64,
    ) -> Result<(String, i64), StoreError> {
        let token = random_id(16);
        let expires_at = now_ms() + ttl_ms as i64;
        self.exec(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
            &[&hash(&token), &user_id, &expires_at],
        )
        .await?;
        Ok((token, expires_at))
    }

    async fn check_token(&self, token: &str) -> Result<TokenCheck, StoreError> {
        let rows = self
            .rows(
                "SELECT user_id, expires_at, force_expired, traded_at FROM sessions \
                 WHERE token_hash = $1",
                &[&hash(token)],
            )
            .await?;
        Ok(token_check(rows.first().map(|r| TokenRow {
            user_id: r.get(0),
            expires_at: r.get(1),
            forced: r.get(2),
            traded_at: r.get(3),
        })))
    }

    async fn refresh(
        &self,
        token: &str,
        ttl_ms: u64,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        // One statement, so one transaction: the old token is marked traded (kept for a retry
        // within the grace) and the new one inserted, or neither.
        let now = now_ms();
        let new = random_id(16);
        let expires_at = now + ttl_ms as i64;
        let rows = self
            .rows(
                "WITH gone AS (DELETE FROM sessions WHERE traded_at < $4),
                      old AS (UPDATE sessions SET traded_at = COALESCE(traded_at, $3)
                              WHERE token_hash = $1 AND (traded_at IS NULL OR traded_at >= $4)
                              RETURNING user_id)
                 INSERT INTO sessions (token_hash, user_id, expires_at)
                 SELECT $2, user_id, $5 FROM old RETURNING user_id",
                &[
                    &hash(token),
                    &hash(&new),
                    &now,
                    &(now - REFRESH_GRACE_MS),
                    &expires_at,
                ],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| (new, r.get::<_, String>(0), expires_at)))
    }

    async fn expire_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.exec(
            "UPDATE sessions SET force_expired = true WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .map(drop)
    }

    async fn revoke_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        self.exec("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
            .await
            .map(drop)
    }

    async fn create_bot(&self, user_id: &str, name: &str) -> Result<Bot, StoreError> {
        let bot = new_bot(name);
        self.exec(
            "INSERT INTO bots (id, user_id, name, status, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[
                &bot.id,
                &user_id,
                &bot.name,
                &bot.status.as_str(),
                &bot.created_at,
            ],
        )
        .await?;
        Ok(bot)
    }

    async fn list_bots(&self, user_id: &str) -> Result<Vec<Bot>, StoreError> {
        self.bots(
            &format!("SELECT {BOT} FROM bots WHERE user_id = $1 ORDER BY created_at, id"),
            &[&user_id],
        )
        .await
    }

    async fn get_bot(&self, user_id: &str, id: &str) -> Result<Option<Bot>, StoreError> {
        Ok(self
            .bots(
                &format!("SELECT {BOT} FROM bots WHERE user_id = $1 AND id = $2"),
                &[&user_id, &id],
            )
            .await?
            .pop())
    }

    async fn get_bot_any(&self, id: &str) -> Result<Option<(String, Bot)>, StoreError> {
        let rows = self
            .rows(
                &format!("SELECT {BOT}, user_id FROM bots WHERE id = $1"),
                &[&id],
            )
            .await?;
        Ok(rows.first().map(|r| (r.get(7), bot_from_row(r))))
    }

    async fn delete_bot(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        // Its pairing goes with it (ON DELETE CASCADE).
        Ok(self
            .exec(
                "DELETE FROM bots WHERE user_id = $1 AND id = $2",
                &[&user_id, &id],
            )
            .await?
            > 0)
    }

    async fn set_status(
        &self,
        id: &str,
        status: BotStatus,
        phone: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE bots SET status = $2, phone = $3, status_reason = $4 WHERE id = $1",
            &[&id, &status.as_str(), &phone, &reason],
        )
        .await
        .map(drop)
    }

    async fn set_status_fenced(
        &self,
        id: &str,
        status: BotStatus,
        phone: Option<&str>,
        reason: Option<&str>,
        fence: i64,
    ) -> Result<(), StoreError> {
        // The fence row shared-locked: a takeover waits for this write, or this one sees it.
        let changed = self
            .exec(
                "UPDATE bots SET status = $2, phone = $3, status_reason = $4
                 WHERE id = $1 AND EXISTS (SELECT 1 FROM device_fences
                                           WHERE bot_id = $1 AND fence = $5 FOR SHARE)",
                &[&id, &status.as_str(), &phone, &reason, &fence],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::Fenced);
        }
        Ok(())
    }

    async fn count_messages(&self, id: &str, received: i64) -> Result<i64, StoreError> {
        let rows = self
            .rows(
                "UPDATE bots SET messages = messages + $2 WHERE id = $1 RETURNING messages",
                &[&id, &received],
            )
            .await?;
        rows.first()
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Sql(format!("no bot {id}")))
    }

    async fn all_bots(&self) -> Result<Vec<(String, Bot)>, StoreError> {
        let rows = self
            .rows(
                &format!("SELECT {BOT}, user_id FROM bots ORDER BY created_at, id"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(7), bot_from_row(r))).collect())
    }

    async fn hold_device(
        &self,
        bot_id: &str,
        user_id: &str,
        lease: Lease<'_>,
        url: &str,
    ) -> Result<(DeviceHold, bool), StoreError> {
        // Taken when free, renewed when ours, taken over only from a lapsed, unregistered hold
        // (a registered one is adopted: `adopt_holds`); `anew` compares with the holder before
        // it.
        let taken = self
            .take_holds(
                &format!(
                    "WITH before AS (SELECT node FROM device_holds WHERE bot_id = $1)
                     INSERT INTO device_holds AS h (bot_id, user_id, node, url, hold_until)
                     VALUES ($1, $2, $3, $4, botlink_now_ms() + $5)
                     ON CONFLICT (bot_id) DO UPDATE SET user_id = excluded.user_id,
                        node = excluded.node, url = excluded.url,
                        hold_until = excluded.hold_until, lapse_told = false,
                        registered = h.registered AND h.node = excluded.node,
                        view = CASE WHEN h.node = excluded.node THEN h.view END
                     WHERE h.node = excluded.node
                        OR (h.hold_until < botlink_now_ms() AND NOT h.registered)
                     RETURNING {HOLD},
                        (SELECT node FROM before) IS DISTINCT FROM $3"
                ),
                &[&bot_id, &user_id, &lease.node, &url, &lease.ttl_ms],
            )
            .await?;
        if let Some((hold, row)) = taken.into_iter().next() {
            return Ok((hold, row.get(7)));
        }
        let held = self
            .device_hold(bot_id)
            .await?
            .ok_or_else(|| StoreError::Sql("a hold vanished while it was taken".into()))?;
        Ok((held, false))
    }

    async fn retake_hold(
        &self,
        bot_id: &str,
        lease: Lease<'_>,
        url: &str,
    ) -> Result<Option<DeviceHold>, StoreError> {
        let taken = self
            .take_holds(
                &format!(
                    "UPDATE device_holds SET hold_until = botlink_now_ms() + $3, url = $4,
                        lapse_told = false
                     WHERE bot_id = $1 AND node = $2 RETURNING {HOLD}"
                ),
                &[&bot_id, &lease.node, &lease.ttl_ms, &url],
            )
            .await?;
        Ok(taken.into_iter().next().map(|(hold, _)| hold))
    }

    async fn adopt_holds(
        &self,
        lease: Lease<'_>,
        url: &str,
        margin_ms: i64,
    ) -> Result<Vec<DeviceHold>, StoreError> {
        // SKIP LOCKED: nodes adopting at once share the orphans, each adopted by one of them.
        // Only a device in the database: one still in its holder's file (an earlier botlink,
        // not yet imported) waits for that node.
        let taken = self
            .take_holds(
                &format!(
                    "UPDATE device_holds SET node = $1, url = $2,
                        hold_until = botlink_now_ms() + $3, lapse_told = false, view = NULL
                     WHERE bot_id IN (SELECT bot_id FROM device_holds
                                      WHERE registered AND node <> $1
                                        AND hold_until + $4 < botlink_now_ms()
                                        AND bot_id IN (SELECT bot_id FROM wa_devices
                                                       WHERE registered)
                                      FOR UPDATE SKIP LOCKED)
                     RETURNING {HOLD}"
                ),
                &[&lease.node, &url, &lease.ttl_ms, &margin_ms],
            )
            .await?;
        Ok(taken.into_iter().map(|(hold, _)| hold).collect())
    }

    fn device_pool(&self) -> Option<deadpool_postgres::Pool> {
        Some(self.devices.clone())
    }

    async fn device_hold(&self, bot_id: &str) -> Result<Option<DeviceHold>, StoreError> {
        let rows = self
            .rows(
                &format!("SELECT {HOLD} FROM device_holds WHERE bot_id = $1"),
                &[&bot_id],
            )
            .await?;
        Ok(rows.first().map(hold_from_row))
    }

    async fn show_on_hold(
        &self,
        bot_id: &str,
        node: &str,
        view: Option<(&str, i64)>,
        registered: bool,
    ) -> Result<(), StoreError> {
        let (view, lives_ms) = view.unzip();
        self.exec(
            "UPDATE device_holds SET view = $3, view_until = botlink_now_ms() + $5,
                registered = registered OR $4
             WHERE bot_id = $1 AND node = $2",
            &[&bot_id, &node, &view, &registered, &lives_ms],
        )
        .await
        .map(drop)
    }

    async fn renew_holds(&self, lease: Lease<'_>) -> Result<Vec<String>, StoreError> {
        let rows = self
            .rows(
                "UPDATE device_holds SET hold_until = botlink_now_ms() + $2, lapse_told = false,
                    view = CASE WHEN view_until > botlink_now_ms() THEN view END
                 WHERE node = $1 RETURNING bot_id",
                &[&lease.node, &lease.ttl_ms],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn lapse_holds(&self, node: &str) -> Result<(), StoreError> {
        self.exec(
            // Well past the adoption margin: the others adopt them at their next look.
            "UPDATE device_holds SET hold_until = botlink_now_ms() - 60000 WHERE node = $1",
            &[&node],
        )
        .await
        .map(drop)
    }

    async fn lapsed_holds(&self) -> Result<Vec<DeviceHold>, StoreError> {
        // SKIP LOCKED: nodes looking at once each get different holds; each hold once.
        let rows = self
            .rows(
                &format!(
                    "UPDATE device_holds SET lapse_told = true
                     WHERE bot_id IN (SELECT bot_id FROM device_holds
                                      WHERE hold_until < botlink_now_ms() AND NOT lapse_told
                                        AND NOT registered
                                      FOR UPDATE SKIP LOCKED)
                     RETURNING {HOLD}"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(hold_from_row).collect())
    }

    async fn forget_hold(&self, bot_id: &str) -> Result<(), StoreError> {
        self.exec("DELETE FROM device_holds WHERE bot_id = $1", &[&bot_id])
            .await
            .map(drop)
    }
}

fn bot_from_row(r: &Row) -> Bot {
    Bot {
        id: r.get(0),
        name: r.get(1),
        status: BotStatus::parse(r.get::<_, &str>(2)),
        phone: r.get(3),
        created_at: r.get(4),
        messages: r.get::<_, i64>(5).max(0) as u64,
        pairing: None,
        status_reason: r.get(6),
    }
}

fn hold_from_row(r: &Row) -> DeviceHold {
    DeviceHold {
        bot_id: r.get(0),
        user_id: r.get(1),
        node: r.get(2),
        url: r.get(3),
        left_ms: r.get(4),
        registered: r.get(5),
        view: r.get(6),
        fence: None,
    }
}

/// A takeover waits this long for the writes in flight under the older fence (their share
/// locks), then fails (and is tried again next round); a holder frozen inside a write loses its
/// transaction to the device pool's `idle_in_transaction_session_timeout` meanwhile.
const FENCE_WAIT: &str = "SET LOCAL lock_timeout = '1s'";

#[cfg(all(test, feature = "cluster-suite"))]
pub mod tests {
    use super::PostgresStore;
    use crate::store::{Lease, Store};

    /// Run by `scripts/cluster-test`, which starts a PostgreSQL and says where.
    #[tokio::test]
    async fn it_keeps_the_store_contract() {
        let store = database_of_its_own("botlink_store_contract").await;
        super::super::contract::check(&store).await;
    }

    /// A database of the test's own, new (the store contract's checks count every bot of
    /// theirs).
    /// A database of the test's own, new (the store contract's checks count every bot of
    /// theirs); its URL is [`url_of`]`(name)`.
    pub async fn database_of_its_own(name: &str) -> PostgresStore {
        let url = std::env::var("BOTLINK_TEST_DATABASE_URL")
            .expect("BOTLINK_TEST_DATABASE_URL: run this through scripts/cluster-test");
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        for statement in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            client.batch_execute(&statement).await.unwrap();
        }
        PostgresStore::open(&url_of(name)).await.unwrap()
    }

    /// The test database `name`, on the server scripts/cluster-test started.
    pub fn url_of(name: &str) -> String {
        let url = std::env::var("BOTLINK_TEST_DATABASE_URL")
            .expect("BOTLINK_TEST_DATABASE_URL: run this through scripts/cluster-test");
        let (server, _) = url.rsplit_once('/').expect("a database URL");
        format!("{server}/{name}")
    }

    use crate::store::contract::{A, B};
    const C: Lease<'static> = Lease {
        node: "node-c",
        ttl_ms: 3_000,
    };

    /// A linked device in the database (what adoption looks for), its bytes beside the point.
    async fn linked_device(s: &PostgresStore, bot: &str) {
        s.devices
            .get()
            .await
            .unwrap()
            .execute(
                "INSERT INTO wa_devices (bot_id, device, registered) VALUES ($1, '\\x00', true)",
                &[&bot],
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_linked_device_whose_holder_stopped_is_adopted_once_under_a_new_fence() {
        let s = database_of_its_own("botlink_adoption").await;
        let bot = s.create_bot("u1", "Adopted").await.unwrap();
        let (h1, _) = s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
        let (h2, _) = s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
        let (f1, f2) = (h1.fence.unwrap(), h2.fence.unwrap());
        assert!(f2 > f1, "every take takes a new fence");
        // Unregistered (a pairing): never adopted.
        s.lapse_holds("node-a").await.unwrap();
        assert!(s.adopt_holds(B, "http://b", 500).await.unwrap().is_empty());
        let h3 = s
            .retake_hold(&bot.id, A, "http://a")
            .await
            .unwrap()
            .unwrap();
        let f3 = h3.fence.unwrap();
        assert!(f3 > f2);
        s.show_on_hold(&bot.id, "node-a", None, true).await.unwrap();
        // Linked, but its device not in the database (a file of before): nobody adopts it.
        s.lapse_holds("node-a").await.unwrap();
        assert!(s.adopt_holds(B, "http://b", 500).await.unwrap().is_empty());
        s.retake_hold(&bot.id, A, "http://a")
            .await
            .unwrap()
            .unwrap();
        linked_device(&s, &bot.id).await;
        // Live: nobody adopts it.
        assert!(s.adopt_holds(B, "http://b", 500).await.unwrap().is_empty());
        // Lapsed, but not yet by the margin: nobody either.
        let short = Lease {
            node: "node-a",
            ttl_ms: 1,
        };
        s.retake_hold(&bot.id, short, "http://a").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(
            s.adopt_holds(B, "http://b", 10_000)
                .await
                .unwrap()
                .is_empty()
        );
        // Its node drained (or died long enough ago): exactly one node adopts it.
        s.lapse_holds("node-a").await.unwrap();
        let (b, c) = tokio::join!(
            s.adopt_holds(B, "http://b", 500),
            s.adopt_holds(C, "http://c", 500)
        );
        let adopted: Vec<_> = b.unwrap().into_iter().chain(c.unwrap()).collect();
        assert_eq!(adopted.len(), 1, "one adopter: {adopted:?}");
        let h = &adopted[0];
        assert!(h.live() && h.registered && h.fence.unwrap() > f3);
        assert_eq!(s.device_hold(&bot.id).await.unwrap().unwrap().node, h.node);
        // The old holder resumes nothing, and cannot take it back while the adopter lives.
        assert!(
            s.retake_hold(&bot.id, A, "http://a")
                .await
                .unwrap()
                .is_none()
        );
        let (held, _) = s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
        assert_eq!(held.node, h.node);
        assert_eq!(held.fence, None, "no fence taken by a refused take");
    }

    #[tokio::test]
    async fn a_status_write_under_a_lost_fence_is_refused() {
        let s = database_of_its_own("botlink_status_fence").await;
        let bot = s.create_bot("u1", "Fenced").await.unwrap();
        let (old, _) = s.hold_device(&bot.id, "u1", A, "http://a").await.unwrap();
        let old = old.fence.unwrap();
        s.set_status_fenced(
            &bot.id,
            protocol::BotStatus::Connected,
            Some("+1555"),
            None,
            old,
        )
        .await
        .unwrap();
        s.show_on_hold(&bot.id, "node-a", None, true).await.unwrap();
        linked_device(&s, &bot.id).await;
        s.lapse_holds("node-a").await.unwrap();
        let adopted = s.adopt_holds(B, "http://b", 500).await.unwrap();
        assert_eq!(adopted.len(), 1);
        let refused = s
            .set_status_fenced(
                &bot.id,
                protocol::BotStatus::Conflict,
                None,
                Some("440"),
                old,
            )
            .await;
        assert!(
            matches!(refused, Err(crate::store::StoreError::Fenced)),
            "{refused:?}"
        );
        let now = s.get_bot("u1", &bot.id).await.unwrap().unwrap();
        assert_eq!(
            now.status,
            protocol::BotStatus::Connected,
            "the old holder's 440 is not stored"
        );
        s.set_status_fenced(
            &bot.id,
            protocol::BotStatus::Connected,
            None,
            None,
            adopted[0].fence.unwrap(),
        )
        .await
        .unwrap();
    }
}
