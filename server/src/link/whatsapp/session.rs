//! One bot's WhatsApp client: built on the bot's own device store, started once, its events
//! turned into the contract's (through the table of `events.rs`) and its connection attempts
//! counted against the bot's retry budget (`budget.rs`). Its owner (`slots.rs`) starts and stops
//! it; nothing else does.

use super::{
    budget::{Budget, Verdict},
    connector::{Connector, ScaledRuntime, SharedHttp, Supervised},
    events::{self, Ending, Outcome, QR_REFS_PER_CONNECTION},
};
use super::{connector::HoldGate, pinning::HoldClock};
use crate::store::device::{Fence, PgDevice};
use crate::{
    core::bot_status::{
        Next, announce_status, qr_event, set_status, set_status_in_order, store_status_in_order,
    },
    core::context::{Context, Ctx},
    core::outbox::Kind,
    core::sync::lock,
    link::LinkError,
};
use protocol::{
    BotStatus, Pairing as PairingView, ServerEvent, WhatsAppEvent,
    events::{ConnectionUpdate, MessageSync},
    status::ConnectionState,
};
use std::{
    path::Path,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::watch;
use whatsapp_rust::{
    Client,
    bot::{Bot, BotHandle, EventDelivery},
    store::SqliteStore,
    types::events::Event,
    wacore::store::traits::Backend,
};

/// Where a session is, as the pairing API waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connecting; nothing from WhatsApp yet.
    Starting,
    /// A QR is on offer.
    Qr(PairingView),
    /// The phone scanned; WhatsApp restarts the stream before the session opens.
    Scanned(PairingView),
    /// The session is open.
    Open,
    /// The session ended; the client is being stopped.
    Ended(Ending),
}

/// Why a session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST .../qr` or a pairing code: a QR (new device) or a resumed session (registered one).
    Pair,
    /// A restarted server resumes a linked bot: only a registered device is started.
    Resume,
}

/// What the session's event handler, its budget gate and its owner share.
pub struct Core {
    pub bot_id: String,
    pub user_id: String,
    /// Which start of this bot it is: a stop aimed at an older session leaves a newer one alone.
    pub generation: u64,
    st: Weak<Context>,
    phase: watch::Sender<Phase>,
    progress: Mutex<Progress>,
    /// Asks the owner to stop this session (and maybe forget the device).
    stop: Box<dyn Fn(u64, bool) + Send + Sync>,
    /// whatsapp-rust's clocks run this many times faster (tests against the double): the QR
    /// lifetimes the app is told are divided to match.
    time_divisor: u32,
    /// Messages received and not yet counted in the store: one waiting count in the outbox
    /// takes them all, however many arrived while it waited.
    uncounted: Arc<AtomicU64>,
    /// In a cluster: the fence this client's node took with the device's hold. Once lost
    /// (another node took the device), nothing of this client's reaches the user or the store.
    fence: Option<Arc<Fence>>,
    /// The device stores' pool (cluster), where the fence is checked.
    devices: Option<deadpool_postgres::Pool>,
    /// Cluster: until when this node surely holds its devices. Past it (a node frozen, or cut
    /// off from the database) the client's news is not told: another node may run the bot.
    clock: Option<Arc<HoldClock>>,
}

struct Progress {
    budget: Budget,
    /// Distinct QR refs seen: the `attempt` of `qr_updated`.
    qr_refs: u32,
    last_qr: Option<String>,
    /// Our own stop is under way: what the client says now is not the bot's news.
    stopping: bool,
}

impl Core {
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// The server's state, while it runs.
    pub fn st(&self) -> Option<Ctx> {
        self.st.upgrade()
    }

    pub fn current(&self) -> Phase {
        self.phase.borrow().clone()
    }

    pub fn is_over(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::Ended(_))
            || lock(&self.progress).stopping
            || self.fenced()
    }

    /// The number of the fence its writes are made under (cluster mode).
    fn fence_number(&self) -> Option<i64> {
        self.fence.as_ref().map(|f| f.number)
    }

    /// The QR on offer, for `Bot.pairing` and the CONNECT replay.
    pub fn view(&self) -> Option<PairingView> {
        match &*self.phase.borrow() {
            Phase::Qr(v) | Phase::Scanned(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Another node took the device: this client was stopped for it.
    pub fn fenced(&self) -> bool {
        self.fence.as_ref().is_some_and(|f| f.is_lost())
    }

    /// From now on the client's events are ours (logout, shutdown), not the bot's.
    pub fn mark_stopping(&self) {
        lock(&self.progress).stopping = true;
    }

    /// Asked by the supervised transport before each connection attempt.
    fn admit_attempt(&self) -> bool {
        let Some(st) = self.st.upgrade() else {
            return false;
        };
        let verdict = {
            let mut p = lock(&self.progress);
            if p.stopping {
                return false;
            }
            p.budget.attempt(Instant::now())
        };
        match verdict {
            Verdict::Go => {
                st.stats.update(|c| c.whatsapp_connect_attempts += 1);
                true
            }
            Verdict::GiveUp { attempts } => {
                st.stats.update(|c| c.whatsapp_attempts_refused += 1);
                if !self.is_over() {
                    st.stats.update(|c| c.whatsapp_budgets_spent += 1);
                    self.finish(Ending {
                        code: 503,
                        reason: format!(
                            "WhatsApp could not be reached: gave up after {attempts} connection attempts"
                        ),
                        status: Next::Is(BotStatus::Disconnected),
                        forget_device: false,
                    }, true);
                }
                false
            }
        }
    }

    /// Ends the session once: `connection_failed`, the bot's status and reason, then the stop.
    /// In a cluster, a 440 (another client of the device connected) is first checked against
    /// the fence: when another node took the device, it was that node's client — a fenced stop,
    /// told to nobody, not a conflict.
    pub fn end(self: &Arc<Self>, ending: Ending) {
        let (Some(fence), Some(pool)) = (self.fence.clone(), self.devices.clone()) else {
            return self.finish(ending, true);
        };
        if ending.code != protocol::codes::CONFLICT {
            return self.finish(ending, true);
        }
        let core = self.clone();
        tokio::spawn(async move {
            match fence.holds(&pool).await {
                Ok(false) => fence.lose(),
                // Still ours (or not known): the conflict is real, as it would be on one node.
                _ => core.finish(ending, true),
            }
        });
    }

    /// Ends the session once; `connection_failed` only when `announce` (not after `qr_expired`).
    fn finish(&self, ending: Ending, announce: bool) {
        if self.is_over() {
            return;
        }
        self.phase.send_replace(Phase::Ended(ending.clone()));
        if let Some(st) = self.st.upgrade() {
            tracing::info!(bot = %self.bot_id, code = ending.code, "WhatsApp session ended: {}", ending.reason);
            if announce {
                st.emit_to_user(
                    &self.user_id,
                    &ServerEvent::WhatsApp(WhatsAppEvent::ConnectionFailed {
                        bot_id: self.bot_id.clone(),
                        code: ending.code,
                        reason: Some(ending.reason.clone()),
                    }),
                );
            }
            set_status_in_order(
                &st,
                &self.user_id,
                &self.bot_id,
                ending.status,
                Some(ending.reason.clone()),
                self.fence_number(),
            );
        }
        (self.stop)(self.generation, ending.forget_device);
    }

    /// An event as the library's bus would deliver it.
    #[cfg(test)]
    pub fn on_event_for_test(self: &Arc<Self>, event: &Event, client: &Client) {
        self.on_event(event, client);
    }

    /// One library event, through the table of `events.rs`.
    fn on_event(self: &Arc<Self>, event: &Event, client: &Client) {
        let outcome = events::outcome(event);
        if outcome == Outcome::Ignored || self.is_over() {
            return;
        }
        if let Some(clock) = &self.clock
            && !clock.safe(Instant::now())
            && !matches!(outcome, Outcome::Ended(_))
        {
            // An ending still goes to `end` (a 440 is checked against the fence there).
            tracing::debug!(bot = %self.bot_id, "not told: this node's hold may have run out");
            return;
        }
        let Some(st) = self.st.upgrade() else { return };
        let emit = |event: ServerEvent| st.emit_to_user(&self.user_id, &event);
        let bot_id = || self.bot_id.clone();
        match outcome {
            Outcome::Qr {
                code,
                expires_in_ms,
            } => {
                let view = {
                    let mut p = lock(&self.progress);
                    if p.last_qr.as_deref() != Some(code.as_str()) {
                        p.qr_refs += 1;
                        p.last_qr = Some(code.clone());
                    }
                    PairingView {
                        qr: code,
                        attempt: p.qr_refs,
                        attempts: QR_REFS_PER_CONNECTION.max(p.qr_refs),
                        expires_in_ms: expires_in_ms / u64::from(self.time_divisor.max(1)),
                    }
                };
                let first = !matches!(self.current(), Phase::Qr(_));
                self.phase.send_replace(Phase::Qr(view.clone()));
                if first {
                    set_status_in_order(
                        &st,
                        &self.user_id,
                        &self.bot_id,
                        Next::Is(BotStatus::Pairing),
                        None,
                        self.fence_number(),
                    );
                }
                emit(qr_event(&self.bot_id, view));
            }
            Outcome::QrExpired => {
                emit(ServerEvent::WhatsApp(WhatsAppEvent::QrExpired {
                    bot_id: bot_id(),
                }));
                let ending = Ending {
                    code: 408,
                    reason: "nobody scanned the QR code in time".into(),
                    status: Next::Back,
                    forget_device: false,
                };
                self.finish(ending, false);
            }
            Outcome::Scanned => {
                let view = self.view();
                if let Some(v) = view {
                    self.phase.send_replace(Phase::Scanned(v));
                }
                emit(ServerEvent::WhatsApp(WhatsAppEvent::QrScanned {
                    bot_id: bot_id(),
                }));
            }
            Outcome::Connected => {
                lock(&self.progress).budget.opened(Instant::now());
                let was_pairing = matches!(self.current(), Phase::Qr(_) | Phase::Scanned(_));
                self.phase.send_replace(Phase::Open);
                let phone = client.pn().and_then(|jid| events::e164(&jid.user));
                store_status_in_order(
                    &st,
                    &self.bot_id,
                    BotStatus::Connected,
                    phone.clone(),
                    self.fence_number(),
                );
                if was_pairing {
                    emit(ServerEvent::WhatsApp(WhatsAppEvent::WhatsappConnected {
                        bot_id: bot_id(),
                        phone,
                    }));
                }
                announce_status(&st, &self.user_id, &self.bot_id, BotStatus::Connected);
            }
            Outcome::Dropped { reason } => {
                lock(&self.progress).budget.closed(Instant::now());
                tracing::info!(bot = %self.bot_id, "WhatsApp connection dropped: {reason}");
                emit(ServerEvent::ConnectionUpdate(ConnectionUpdate {
                    bot_id: bot_id(),
                    state: ConnectionState::Close,
                    code: None,
                }));
            }
            Outcome::Ended(ending) => self.end(ending),
            Outcome::FinishOnPhone => {
                emit(ServerEvent::WhatsApp(WhatsAppEvent::FinishOnPhone {
                    bot_id: bot_id(),
                }));
            }
            Outcome::PairingCodeDead { reason } => {
                emit(ServerEvent::WhatsApp(WhatsAppEvent::PairingCodeExpired {
                    bot_id: bot_id(),
                    reason: Some(reason),
                }));
            }
            Outcome::Messages(n) => {
                let (st2, user, bot) = (st.clone(), self.user_id.clone(), bot_id());
                self.uncounted.fetch_add(n as u64, Ordering::SeqCst);
                let uncounted = self.uncounted.clone();
                st.outbox.put(&self.bot_id, Kind::Messages, async move {
                    let n = uncounted.swap(0, Ordering::SeqCst);
                    match st2.store.count_messages(&bot, n as i64).await {
                        Ok(total) => {
                            let sync = MessageSync {
                                bot_id: bot,
                                messages: total.max(0) as u64,
                            };
                            st2.send(&user, &ServerEvent::MessageSync(sync)).await;
                        }
                        Err(e) => tracing::error!(%bot, "could not count messages: {e}"),
                    }
                });
            }
            Outcome::Ignored => {}
        }
    }
}

/// A running client and what it shares.
pub struct Session {
    pub core: Arc<Core>,
    pub client: Arc<Client>,
    handle: BotHandle,
}

/// How long a client may take to stop before it is aborted.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct StartArgs<'a> {
    pub st: &'a Ctx,
    pub user_id: &'a str,
    pub bot_id: &'a str,
    pub generation: u64,
    pub device_file: &'a Path,
    pub connector: &'a Connector,
    pub purpose: Purpose,
    pub stop: Box<dyn Fn(u64, bool) + Send + Sync>,
    /// In a cluster: the device is in the database, written under this fence, and every
    /// connection attempt asks the hold first.
    pub pinned: Option<Pinned>,
}

/// What a client in a cluster runs under.
pub struct Pinned {
    pub fence: Arc<Fence>,
    pub devices: deadpool_postgres::Pool,
    pub clock: Arc<HoldClock>,
}

impl Session {
    /// Builds the bot's client on its device store and starts it. `Ok(None)`: a resume found no
    /// registered device, so nothing was started.
    pub async fn start(a: StartArgs<'_>) -> Result<Option<Session>, LinkError> {
        let (st, user_id, bot_id, file) = (a.st, a.user_id, a.bot_id, a.device_file);
        match Self::build(a).await {
            Ok(session) => Ok(session),
            Err(why) => Err(broken(st, user_id, bot_id, file, &why).await),
        }
    }

    /// The bot's device store: in the database under the hold's fence (cluster), else the
    /// bot's own SQLite file.
    async fn device_store(a: &StartArgs<'_>) -> Result<Arc<dyn Backend>, String> {
        if let Some(p) = &a.pinned {
            return Ok(Arc::new(PgDevice::new(p.devices.clone(), p.fence.clone())));
        }
        crate::store::data_dir::create_private_file(a.device_file).map_err(|e| e.to_string())?;
        // A file that is not a database is refused at once: the store's connection pool would
        // retry it for 30 s, past the 10 s the pairing API promises.
        check_database(a.device_file).map_err(|e| e.to_string())?;
        let url = a.device_file.to_string_lossy().into_owned();
        let store = tokio::time::timeout(STOP_TIMEOUT, SqliteStore::new(&url))
            .await
            .map_err(|_| "the device store did not open within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }

    /// [`Session::start`]; an error says why the device store cannot be used.
    async fn build(a: StartArgs<'_>) -> Result<Option<Session>, String> {
        let store = Self::device_store(&a).await?;
        let core = Arc::new(Core {
            bot_id: a.bot_id.to_owned(),
            user_id: a.user_id.to_owned(),
            generation: a.generation,
            st: Arc::downgrade(a.st),
            phase: watch::Sender::new(Phase::Starting),
            progress: Mutex::new(Progress {
                budget: Budget::default(),
                qr_refs: 0,
                last_qr: None,
                stopping: false,
            }),
            stop: a.stop,
            time_divisor: a.connector.time_divisor,
            uncounted: Arc::default(),
            fence: a.pinned.as_ref().map(|p| p.fence.clone()),
            devices: a.pinned.as_ref().map(|p| p.devices.clone()),
            clock: a.pinned.as_ref().map(|p| p.clock.clone()),
        });
        if let Some(p) = &a.pinned {
            // Another node took the device: this client stops at once, told to nobody, and its
            // device stays (it is that node's now).
            let lost = Arc::downgrade(&core);
            p.fence.on_lost(move || {
                if let Some(core) = lost.upgrade() {
                    core.mark_stopping();
                    (core.stop)(core.generation, false);
                }
            });
        }
        let gate_core = Arc::downgrade(&core);
        let events_core = Arc::downgrade(&core);
        let bot = Bot::builder()
            .with_backend_arc(store)
            .with_transport_factory(Supervised {
                inner: a.connector.transport.clone(),
                gate: Arc::new(move || gate_core.upgrade().is_some_and(|c| c.admit_attempt())),
                hold: a.pinned.as_ref().map(|p| HoldGate {
                    fence: p.fence.clone(),
                    devices: p.devices.clone(),
                    clock: p.clock.clone(),
                }),
            })
            .with_http_client(SharedHttp(a.connector.http.clone()))
            .with_runtime(ScaledRuntime {
                divisor: a.connector.time_divisor,
            })
            // In order: a QR, its scan and the open session reach the app in that order.
            .with_event_delivery(EventDelivery::Ordered { capacity: 1024 })
            .on_event(move |event: Arc<Event>, client: Arc<Client>| {
                let core = events_core.clone();
                async move {
                    if let Some(core) = core.upgrade() {
                        core.on_event(&event, &client);
                    }
                }
            })
            .build()
            .await
            .map_err(|e| e.to_string())?;
        let client = bot.client();
        if a.purpose == Purpose::Resume && client.pn().is_none() {
            return Ok(None);
        }
        let handle = bot.spawn();
        Ok(Some(Session {
            core,
            client,
            handle,
        }))
    }

    /// Stops the client and waits until its run loop has ended (or aborts it after 10 s): the
    /// old client is fully closed before a new one can start.
    pub async fn close(self) {
        self.close_within(STOP_TIMEOUT).await;
    }

    /// [`Session::close`], aborting the client when it has not stopped within `deadline`
    /// (dropping its handle aborts its task).
    pub async fn close_within(self, deadline: Duration) {
        self.core.mark_stopping();
        if tokio::time::timeout(deadline, self.handle.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(bot = %self.core.bot_id, "the WhatsApp client did not stop within {deadline:?}: aborted");
        }
    }

    /// Tells WhatsApp this device is gone (best effort: offline it sends nothing), then stops.
    pub async fn log_out(self) {
        self.core.mark_stopping();
        if tokio::time::timeout(STOP_TIMEOUT, self.client.logout())
            .await
            .is_err()
        {
            tracing::warn!(bot = %self.core.bot_id, "logging out of WhatsApp took over 10 s");
        }
        self.close().await;
    }
}

/// Reads the device store's schema once: an unreadable or corrupt file fails here, at once.
fn check_database(file: &Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(file)?;
    conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}

/// The bot's device store cannot be used: the bot says so (stored before the answer), the server
/// log says which file.
async fn broken(st: &Ctx, user_id: &str, bot_id: &str, file: &Path, why: &str) -> LinkError {
    tracing::error!(bot = bot_id, file = %file.display(), "the bot's device store cannot be used: {why}");
    let reason =
        "this bot's WhatsApp device store cannot be read (the server log says which file and why)";
    let _ = set_status(
        st,
        user_id,
        bot_id,
        BotStatus::Disconnected,
        None,
        Some(reason),
    )
    .await;
    LinkError::Broken(reason.into())
}
