//! The WhatsApp link, on the whatsapp-rust crate, with the discipline
//! the seed backends learned the hard way, by construction:
//!
//! - **one client per bot**: each bot has one slot, and every start and stop of its client
//!   happens under that slot's lock — a second start (also 50 at once) joins the running client;
//! - **the old client fully closed before a new one starts** (its run loop has ended);
//! - **no reconnect after 401, 403, 411, 440**: those end the session (`events.rs`), and a
//!   whatsapp-rust reconnect after any drop asks the bot's retry budget first (`budget.rs`);
//! - **devices survive restarts**: each bot's device store is its own file in the data
//!   directory; a restarted server resumes every linked bot without a new QR;
//! - **in a cluster, a bot's session is pinned** to the node that holds its device
//!   (`pinning.rs`): no other node starts a client for it.
//!
//! The link, its event table, its tests and the WhatsApp double: docs/whatsapp.md.

pub mod budget;
pub mod certificate;
pub mod connector;
pub mod events;
pub mod pinning;
pub mod session;
#[cfg(test)]
mod tests;

use crate::store::device::{self, Fence};
use crate::{
    core::context::Ctx,
    core::sync::lock,
    link::{Link, LinkError},
    realtime::socket::valid_id,
};
use connector::Connector;
use pinning::HoldClock;
use protocol::{Bot, Pairing, http::PairingCode};
use session::{Phase, Pinned, Purpose, Session, StartArgs};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// `POST .../qr` answers within this, QR or not.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

use super::RETRY_AFTER;

/// How long WhatsApp keeps a pairing code valid.
const CODE_TTL: Duration = Duration::from_secs(180);

pub struct WhatsAppLink {
    slots: Arc<Slots>,
    /// `POST .../qr` answers within this ([`ANSWER_WITHIN`]; shorter in tests).
    answer_within: Duration,
}

/// Each bot's one slot, and the device stores' directory.
struct Slots {
    devices: PathBuf,
    connector: Connector,
    /// The lock of a bot's client: held across every start and stop of it.
    slots: Mutex<HashMap<String, Arc<AsyncMutex<Option<Session>>>>>,
    /// The running sessions' shared parts, readable without waiting for a slot.
    cores: Mutex<HashMap<String, Arc<session::Core>>>,
    /// Pinned: the fence each bot's client here runs under (the last its hold took).
    fences: Mutex<HashMap<String, Arc<Fence>>>,
    /// Pinned: until when this node surely holds its devices.
    clock: Arc<HoldClock>,
    generations: AtomicU64,
    /// In a cluster: every client runs under this node's hold on its bot's device.
    pinned: bool,
    this: Weak<Slots>,
    /// Cancelled when the node shuts down: no client starts after it.
    stopping: CancellationToken,
    /// The hold keeper (pinned): it renews the holds until every client has closed.
    keeper: TaskTracker,
    keeper_stop: CancellationToken,
}

/// What a client start runs under.
enum Hold {
    /// One node: the bot's device is its file here, and nothing is held.
    Alone,
    /// In a cluster: this node holds the device, under this fence.
    Pinned(Pinned),
    /// A resume found the device no longer this node's (unlinked, or taken by another).
    NotOurs,
}

/// How long a shutting-down node waits for each client's clean stop (all at once) before it
/// aborts the rest: the holds are renewed meanwhile, so this bounds only the shutdown's length.
const DRAIN_CLOSE: Duration = Duration::from_secs(3);

impl WhatsAppLink {
    /// `pinned`: in a cluster (a bot's device stays on the node that holds it).
    pub fn new(devices: PathBuf, connector: Connector, pinned: bool) -> WhatsAppLink {
        WhatsAppLink {
            answer_within: ANSWER_WITHIN,
            slots: Arc::new_cyclic(|this| Slots {
                devices,
                connector,
                slots: Mutex::new(HashMap::new()),
                cores: Mutex::new(HashMap::new()),
                fences: Mutex::new(HashMap::new()),
                clock: Arc::default(),
                generations: AtomicU64::new(0),
                pinned,
                this: this.clone(),
                stopping: CancellationToken::new(),
                keeper: TaskTracker::new(),
                keeper_stop: CancellationToken::new(),
            }),
        }
    }
}

/// Waits for the bot's writes before an answer, within [`FLUSH_WITHIN`]: a slow database
/// must not break "answers within 10 s" (the write still happens, after the answer).
async fn flush(st: &Ctx, bot_id: &str) {
    if tokio::time::timeout(FLUSH_WITHIN, st.outbox.flush(bot_id))
        .await
        .is_err()
    {
        tracing::warn!(
            bot = bot_id,
            "answering before the bot's status was stored (the store is slow)"
        );
    }
}

/// How long an answer waits for the bot's writes.
const FLUSH_WITHIN: Duration = Duration::from_secs(2);

/// The files of a bot's device store (the database and SQLite's `-wal` and `-shm`).
fn device_files(devices: &Path, bot_id: &str) -> [PathBuf; 3] {
    let db = devices.join(format!("{bot_id}.sqlite"));
    let with = |suffix: &str| {
        let mut s = db.clone().into_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    [with("-wal"), with("-shm"), db]
}

impl Slots {
    fn slot(&self, bot_id: &str) -> Arc<AsyncMutex<Option<Session>>> {
        lock(&self.slots)
            .entry(bot_id.to_owned())
            .or_default()
            .clone()
    }

    fn device_file(&self, bot_id: &str) -> PathBuf {
        device_files(&self.devices, bot_id)[2].clone()
    }

    /// Whether the bot has a linked device to resume: in the database (pinned), else a file
    /// here. A database that does not answer: not now (the keeper and the adoption try again).
    async fn has_device(&self, st: &Ctx, bot_id: &str) -> bool {
        match (self.pinned, st.store.device_pool()) {
            // A file of an earlier botlink counts: it is imported when the client starts.
            (true, Some(pool)) => match device::registered(&pool, bot_id).await {
                Ok(linked) => linked || self.device_file(bot_id).exists(),
                Err(e) => {
                    tracing::warn!(bot = bot_id, "could not look for the bot's device: {e}");
                    false
                }
            },
            _ => self.device_file(bot_id).exists(),
        }
    }

    /// The fence the bot's client here runs under (pinned).
    fn fence_of(&self, bot_id: &str) -> Option<i64> {
        lock(&self.fences).get(bot_id).map(|f| f.number)
    }

    /// The bots whose client runs here now, each with its client's generation.
    fn running_clients(&self) -> Vec<(String, u64)> {
        lock(&self.cores)
            .iter()
            .map(|(bot, core)| (bot.clone(), core.generation))
            .collect()
    }

    fn user_of(&self, bot_id: &str) -> Option<String> {
        lock(&self.cores).get(bot_id).map(|c| c.user_id.clone())
    }

    /// Forgets the bot's device: its files, and (pinned) its hold. Only with its client stopped.
    /// A hold that could not be forgotten is an error for the caller to answer: the device is
    /// gone from this disk, and a hold left naming this node would resume nothing.
    async fn forget(&self, st: &Ctx, bot_id: &str) -> Result<(), LinkError> {
        self.forget_device(st, bot_id).await?;
        if self.pinned
            && let Err(e) = st.store.forget_hold(bot_id).await
        {
            tracing::error!(bot = bot_id, "could not forget the device's hold: {e}");
            return Err(e.into());
        }
        Ok(())
    }

    /// Pinned: takes (or renews) this node's hold on the bot's device before its client
    /// starts, with a new fence (every client start takes one: nothing of an earlier client
    /// writes after it).
    async fn take_hold(
        &self,
        st: &Ctx,
        user_id: &str,
        bot_id: &str,
        purpose: Purpose,
        fresh_device: &mut bool,
    ) -> Result<Hold, LinkError> {
        if !self.pinned {
            return Ok(Hold::Alone);
        }
        let Some(devices) = st.store.device_pool() else {
            return Err(LinkError::Broken(
                "cluster mode keeps devices in PostgreSQL, and this store is not".into(),
            ));
        };
        let url = st.cfg.node_url();
        let lease = pinning::lease(st);
        let sent = std::time::Instant::now();
        let hold = if purpose == Purpose::Resume {
            // Only what is still this node's (or adopted by it): a bot unlinked meanwhile stays so.
            let Some(hold) = st.store.retake_hold(bot_id, lease, &url).await? else {
                tracing::info!(
                    bot = bot_id,
                    "not resumed: this node no longer holds the bot's device (unlinked, or \
                     taken by another node, meanwhile)"
                );
                return Ok(Hold::NotOurs);
            };
            hold
        } else {
            let (hold, anew) = st.store.hold_device(bot_id, user_id, lease, &url).await?;
            if hold.node != st.node {
                return Err(LinkError::held_elsewhere(&hold));
            }
            // No device of an earlier holder counts (a pairing left unfinished).
            *fresh_device |= anew;
            hold
        };
        let Some(number) = hold.fence else {
            return Err(LinkError::Broken(
                "the device's hold came without a fence".into(),
            ));
        };
        self.clock.renewed(sent);
        let fence = Fence::new(bot_id, number);
        lock(&self.fences).insert(bot_id.to_owned(), fence.clone());
        Ok(Hold::Pinned(Pinned {
            fence,
            devices,
            clock: self.clock.clone(),
        }))
    }

    /// Starts a paused bot's client again (its hold is this node's once more).
    async fn resume_one(&self, st: &Ctx, bot_id: &str) {
        let user = match st.store.get_bot_any(bot_id).await {
            // A conflict (440) is never resumed on its own, after an outage or an adoption as
            // after a restart: the person decides.
            Ok(Some((_, bot))) if bot.status == protocol::BotStatus::Conflict => {
                tracing::info!(
                    bot = bot_id,
                    "not resumed: the bot's session ended in a conflict (440)"
                );
                return;
            }
            Ok(Some((user, _))) => user,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(bot = bot_id, "could not resume: {e}");
                return;
            }
        };
        match self.ensure(st, &user, bot_id, Purpose::Resume, false).await {
            Ok(Some(_)) => tracing::info!(bot = bot_id, "resumed the paused bot"),
            Ok(None) => tracing::info!(bot = bot_id, "no registered device to resume"),
            Err(e) => tracing::warn!(bot = bot_id, "could not resume: {e}"),
        }
    }

    /// Wipes the bot's device: in the database (pinned; under this node's fence if it has
    /// one), and any file of it here. Only ever with its client stopped.
    async fn forget_device(&self, st: &Ctx, bot_id: &str) -> Result<(), LinkError> {
        if let (true, Some(pool)) = (self.pinned, st.store.device_pool()) {
            let fence = lock(&self.fences).get(bot_id).cloned();
            if let Err(e) = device::forget(&pool, bot_id, fence.as_deref()).await {
                tracing::error!(bot = bot_id, "could not forget the bot's device: {e}");
                return Err(LinkError::Unavailable {
                    reason: format!("the bot's device could not be forgotten: {e}"),
                    retry_after: crate::store::RETRY_WHEN_DOWN,
                });
            }
        }
        self.forget_file(bot_id)
    }

    /// Pinned: a device an earlier botlink kept in a file here (whatsapp-rust's SQLite store)
    /// moves into the database, under the fence just taken, once: the file is then renamed
    /// `….imported` (kept, never read again). Only while the database has no device of the bot.
    async fn import_file(&self, bot_id: &str, p: &Pinned) -> Result<(), LinkError> {
        let file = self.device_file(bot_id);
        if !file.exists() {
            return Ok(());
        }
        let broken = |why: String| {
            tracing::error!(bot = bot_id, file = %file.display(), "could not move the device into the database: {why}");
            LinkError::Broken(format!(
                "this bot's device could not be moved into the database ({why})"
            ))
        };
        if device::registered(&p.devices, bot_id)
            .await
            .map_err(broken)?
        {
            tracing::warn!(bot = bot_id, file = %file.display(), "a device file, and a device in the database: the file is stale, left as it is");
            return Ok(());
        }
        let to = device::PgDevice::new(p.devices.clone(), p.fence.clone());
        let imported = device::import::import(&file, &to).await.map_err(broken)?;
        for f in device_files(&self.devices, bot_id) {
            let mut done = f.clone().into_os_string();
            done.push(".imported");
            match std::fs::rename(&f, &done) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(broken(format!("renaming {}: {e}", f.display()))),
            }
        }
        tracing::info!(
            bot = bot_id,
            rows = imported.rows,
            registered = imported.registered,
            "moved the bot's device from its file into the database"
        );
        Ok(())
    }

    /// Removes the bot's device file (and SQLite's `-wal` and `-shm`).
    fn forget_file(&self, bot_id: &str) -> Result<(), LinkError> {
        for f in device_files(&self.devices, bot_id) {
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(bot = bot_id, "could not remove a device file: {e}");
                    return Err(LinkError::Broken(format!(
                        "could not remove the bot's device file {}: {e}",
                        f.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The bot's running client, or a new one: never two. A finished client is fully closed
    /// before its successor starts. `None`: a resume found no registered device.
    async fn ensure(
        &self,
        st: &Ctx,
        user_id: &str,
        bot_id: &str,
        purpose: Purpose,
        mut fresh_device: bool,
    ) -> Result<Option<Arc<session::Core>>, LinkError> {
        let slot = self.slot(bot_id);
        let mut running = slot.lock().await;
        if let Some(s) = running.as_ref()
            && !s.core.is_over()
        {
            return Ok(Some(s.core.clone()));
        }
        if self.stopping.is_cancelled() {
            // A client started now would outlive the shutdown's closing of every client, and
            // its device's hold: another node would start a second one.
            return Err(LinkError::Unavailable {
                reason: "This server node is shutting down; try again.".into(),
                retry_after: Duration::from_secs(1),
            });
        }
        if let Some(old) = running.take() {
            self.closed(st, &old.core.bot_id);
            old.close().await;
        }
        let pinned = match self
            .take_hold(st, user_id, bot_id, purpose, &mut fresh_device)
            .await?
        {
            Hold::Alone => None,
            Hold::Pinned(p) => Some(p),
            Hold::NotOurs => return Ok(None),
        };
        if let Some(p) = &pinned
            && !fresh_device
        {
            self.import_file(bot_id, p).await?;
        }
        if purpose == Purpose::Resume && !self.has_device(st, bot_id).await {
            return Ok(None);
        }
        if fresh_device {
            self.forget_device(st, bot_id).await?;
        }
        let this = self.this.clone();
        let stop_bot = bot_id.to_owned();
        let stop = Box::new(move |generation: u64, forget: bool| {
            let Some(slots) = this.upgrade() else { return };
            let bot = stop_bot.clone();
            tokio::spawn(async move { slots.stop(&bot, Some(generation), forget).await });
        });
        // Boxed: the client's start is a deep future, and every caller's would carry it.
        let started = Box::pin(Session::start(StartArgs {
            st,
            user_id,
            bot_id,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
            device_file: &self.device_file(bot_id),
            connector: &self.connector,
            purpose,
            stop,
            pinned,
        }))
        .await?;
        let Some(session) = started else {
            return Ok(None);
        };
        let core = session.core.clone();
        if self.pinned {
            let (st, bot) = (Arc::downgrade(st), bot_id.to_owned());
            tokio::spawn(pinning::show_phases(st, bot, core.phase()));
        }
        lock(&self.cores).insert(bot_id.to_owned(), core.clone());
        st.stats.update(|c| {
            c.whatsapp_clients_started += 1;
            c.whatsapp_clients_running += 1;
            if purpose == Purpose::Pair {
                c.pairings_started += 1;
            }
        });
        tracing::info!(
            bot = bot_id,
            generation = core.generation,
            ?purpose,
            "WhatsApp client started"
        );
        *running = Some(session);
        Ok(Some(core))
    }

    /// Bookkeeping of a client that is being closed.
    fn closed(&self, st: &Ctx, bot_id: &str) {
        lock(&self.cores).remove(bot_id);
        st.stats
            .update(|c| c.whatsapp_clients_running = c.whatsapp_clients_running.saturating_sub(1));
    }

    /// Stops the bot's client (only generation `generation`, if given), then maybe forgets its
    /// device — in that order, under the slot's lock. Whether a client was stopped.
    async fn stop(&self, bot_id: &str, generation: Option<u64>, forget: bool) -> bool {
        self.stop_within(bot_id, generation, forget, session::STOP_TIMEOUT)
            .await
    }

    /// [`Slots::stop`], aborting the client if it has not closed `within`.
    async fn stop_within(
        &self,
        bot_id: &str,
        generation: Option<u64>,
        forget: bool,
        within: Duration,
    ) -> bool {
        let slot = self.slot(bot_id);
        let mut running = slot.lock().await;
        let matches = running
            .as_ref()
            .is_some_and(|s| generation.is_none_or(|g| s.core.generation == g));
        if !matches {
            return false;
        }
        let Some(old) = running.take() else {
            return false;
        };
        let st = old.core.st();
        if let Some(st) = &st {
            self.closed(st, bot_id);
        }
        // A client stopped because another node took its device forgets nothing.
        let fenced = old.core.fenced();
        old.close_within(within).await;
        // A stop that forgets (logged out, removed) has no caller to answer: what failed is
        // logged where it failed.
        let _ = match (forget && !fenced, st) {
            (true, Some(st)) => self.forget(&st, bot_id).await,
            (true, None) => self.forget_file(bot_id),
            (false, _) => Ok(()),
        };
        true
    }

    /// Waits (until `deadline`) for a QR, an open session or the end.
    async fn settle(core: &session::Core, deadline: tokio::time::Instant) -> Phase {
        let mut phase = core.phase();
        let waited =
            tokio::time::timeout_at(deadline, phase.wait_for(|p| !matches!(p, Phase::Starting)))
                .await;
        match waited {
            Ok(Ok(p)) => p.clone(),
            _ => core.current(),
        }
    }
}

#[async_trait::async_trait]
impl Link for WhatsAppLink {
    async fn start(&self, st: &Ctx, user: &str, bot: &Bot) -> Result<Pairing, LinkError> {
        let deadline = tokio::time::Instant::now() + self.answer_within;
        let mut fresh = false;
        loop {
            let core = self
                .slots
                .ensure(st, user, &bot.id, Purpose::Pair, fresh)
                .await?
                .ok_or_else(|| LinkError::Broken("the bot's client did not start".into()))?;
            match Slots::settle(&core, deadline).await {
                Phase::Qr(view) | Phase::Scanned(view) => return Ok(view),
                Phase::Open => return Err(LinkError::AlreadyConnected),
                // The stored device is gone from WhatsApp: once more, with a new device (a QR).
                Phase::Ended(e) if e.forget_device && !fresh => fresh = true,
                Phase::Ended(e) => {
                    // The bot's status and reason are stored before the answer: a client that
                    // reloads at once sees why.
                    flush(st, &bot.id).await;
                    return Err(LinkError::Unavailable {
                        reason: e.reason,
                        retry_after: RETRY_AFTER,
                    });
                }
                Phase::Starting => {
                    let reason = format!(
                        "WhatsApp did not answer within {} s",
                        self.answer_within.as_secs_f64()
                    );
                    core.end(events::Ending {
                        code: protocol::codes::TIMED_OUT,
                        reason: reason.clone(),
                        status: crate::core::bot_status::Next::Is(
                            protocol::BotStatus::Disconnected,
                        ),
                        forget_device: false,
                    });
                    flush(st, &bot.id).await;
                    return Err(LinkError::Unavailable {
                        reason,
                        retry_after: RETRY_AFTER,
                    });
                }
            }
        }
    }

    async fn pairing(&self, st: &Ctx, bot_id: &str) -> Option<Pairing> {
        if let Some(core) = lock(&self.slots.cores).get(bot_id) {
            return core.view();
        }
        // Pinned: the QR its holder shows, as it recorded it.
        let hold = self.holder(st, bot_id).await?;
        hold.live()
            .then(|| serde_json::from_str(hold.view.as_deref()?).ok())
            .flatten()
    }

    async fn holder(&self, st: &Ctx, bot_id: &str) -> Option<crate::store::DeviceHold> {
        if !self.slots.pinned {
            return None;
        }
        match st.store.device_hold(bot_id).await {
            Ok(hold) => hold.filter(|h| h.node != st.node),
            Err(e) => {
                tracing::debug!(bot = bot_id, "could not read the device's hold: {e}");
                None
            }
        }
    }

    async fn pairing_code(
        &self,
        st: &Ctx,
        user: &str,
        bot: &Bot,
        phone: &str,
    ) -> Result<PairingCode, LinkError> {
        // A code rides the pairing connection: the same start (and the same answers) as a QR.
        self.start(st, user, bot).await?;
        let slot = self.slots.slot(&bot.id);
        let client = slot
            .lock()
            .await
            .as_ref()
            .map(|s| s.client.clone())
            .ok_or_else(|| LinkError::Unavailable {
                reason: "the pairing ended".into(),
                retry_after: RETRY_AFTER,
            })?;
        // One outstanding code per client: a new one replaces the old.
        client.cancel_pair_code().await;
        let options = whatsapp_rust::pair_code::PairCodeOptions {
            phone_number: phone.to_owned(),
            ..Default::default()
        };
        match tokio::time::timeout(ANSWER_WITHIN, client.pair_with_code(options)).await {
            Ok(Ok(code)) => Ok(PairingCode {
                code,
                expires_in_ms: CODE_TTL.as_millis() as u64,
            }),
            Ok(Err(e)) => Err(LinkError::Unavailable {
                reason: format!("WhatsApp gave no pairing code: {e}"),
                retry_after: RETRY_AFTER,
            }),
            Err(_) => Err(LinkError::Unavailable {
                reason: "WhatsApp gave no pairing code within 10 s".into(),
                retry_after: RETRY_AFTER,
            }),
        }
    }

    async fn unlink(&self, st: &Ctx, bot_id: &str) -> Result<(), LinkError> {
        if self.slots.pinned
            && let Some(hold) = st.store.device_hold(bot_id).await?
            && hold.live()
            && hold.node != st.node
        {
            // The session runs on that node (a request that reached this one was not passed
            // on): deleting its hold here would orphan a linked device on the phone.
            return Err(LinkError::held_elsewhere(&hold));
        }
        let slot = self.slots.slot(bot_id);
        let mut running = slot.lock().await;
        if let Some(session) = running.take() {
            self.slots.closed(st, bot_id);
            session.log_out().await;
        }
        // Pinned, with the holder gone: its copy stays on its disk, and it resumes nothing.
        self.slots.forget(st, bot_id).await
    }

    async fn resume(&self, st: &Ctx) {
        if self.slots.pinned {
            self.slots.keeper.spawn(pinning::keep_holds(
                st.clone(),
                self.slots.clone(),
                self.slots.keeper_stop.clone(),
            ));
        }
        let bots = match st.store.all_bots().await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("could not list the bots to resume: {e}");
                return;
            }
        };
        for (user, bot) in bots {
            // A conflict (440) is never resumed on its own: the person decides.
            if !valid_id(&bot.id)
                || bot.status == protocol::BotStatus::Conflict
                || !self.slots.has_device(st, &bot.id).await
            {
                continue;
            }
            let slots = self.slots.clone();
            let st = st.clone();
            tokio::spawn(async move {
                match slots
                    .ensure(&st, &user, &bot.id, Purpose::Resume, false)
                    .await
                {
                    Ok(Some(_)) => tracing::info!(bot = %bot.id, "resuming the linked bot"),
                    Ok(None) => tracing::info!(bot = %bot.id, "no registered device to resume"),
                    Err(e) => tracing::warn!(bot = %bot.id, "could not resume: {e}"),
                }
            });
        }
    }

    async fn shutdown(&self, st: &Ctx) {
        // In this order, so that no device ever has a client here and another elsewhere:
        // 1. no client starts any more;
        self.slots.stopping.cancel();
        // 2. every client closes, all at once, while the keeper still renews their holds;
        let slots: Vec<_> = lock(&self.slots.slots).values().cloned().collect();
        futures_util::future::join_all(slots.into_iter().map(|slot| async move {
            if let Some(session) = slot.lock().await.take() {
                session.close_within(DRAIN_CLOSE).await;
            }
        }))
        .await;
        // 3. the keeper ends (after the round it is in), and only then the holds are given back.
        self.slots.keeper_stop.cancel();
        self.slots.keeper.close();
        self.slots.keeper.wait().await;
        if self.slots.pinned
            && let Err(e) = st.store.lapse_holds(&st.node).await
        {
            // The other nodes show these bots `disconnected` at their next look.
            tracing::warn!("could not let the device holds lapse (they run out instead): {e}");
        }
    }
}
