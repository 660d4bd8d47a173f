//! The real link on the real `whatsapp_rust::Client`, driven through scripted transports (the
//! public `TransportFactory` trait) with whatsapp-rust's own timers compressed 100×: the
//! supervisor, one client per bot, close-before-new, 440, resume, unlink.

use super::{
    Slots, WhatsAppLink,
    connector::Connector,
    session::{Phase, Purpose},
};
use crate::{
    app::state::AppState,
    cluster::coordination::{Coordination, PerMinute},
    config::Cli,
    core::stats::Counters,
    store::SqliteStore,
};
use clap::Parser;
use protocol::{Bot, BotStatus};
use std::{
    sync::{
        Arc,
        atomic::{AtomicI32, AtomicU32, Ordering},
    },
    time::Duration,
};
use whatsapp_rust::{
    anyhow,
    async_channel::Receiver,
    async_trait,
    transport::{Transport, TransportEvent, TransportFactory},
    types::events::{self as ev, Event},
    wacore::net::{HttpClient, HttpRequest, HttpResponse},
};

#[derive(Clone, Copy)]
enum Mode {
    /// Every connection attempt fails at once (WhatsApp unreachable).
    Refuse,
    /// Every attempt hangs until the client gives it up (a black hole).
    Hang,
}

struct ScriptedTransport {
    mode: Mode,
    calls: AtomicU32,
    pending: AtomicI32,
    most_pending: AtomicI32,
}

struct Pending<'a>(&'a ScriptedTransport);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl TransportFactory for ScriptedTransport {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, Receiver<TransportEvent>), anyhow::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode {
            Mode::Refuse => Err(anyhow::anyhow!("connection refused (test)")),
            Mode::Hang => {
                let now = self.pending.fetch_add(1, Ordering::SeqCst) + 1;
                self.most_pending.fetch_max(now, Ordering::SeqCst);
                let _guard = Pending(self);
                std::future::pending::<()>().await;
                unreachable!()
            }
        }
    }
}

/// No network: the version look-up fails at once.
struct Offline;

#[async_trait]
impl HttpClient for Offline {
    async fn execute(&self, _request: HttpRequest) -> anyhow::Result<HttpResponse> {
        Err(anyhow::anyhow!("offline (test)"))
    }
}

struct Fixture {
    st: AppState,
    slots: Arc<Slots>,
    transport: Arc<ScriptedTransport>,
    _dir: tempfile::TempDir,
}

fn fixture(mode: Mode, answer_within: Duration) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let devices = dir.path().join("devices");
    std::fs::create_dir(&devices).expect("the devices directory");
    let store = Box::new(SqliteStore::open(":memory:").expect("a store"));
    node_on(dir, devices, mode, answer_within, "test", store, false)
}

fn node_on(
    dir: tempfile::TempDir,
    devices: std::path::PathBuf,
    mode: Mode,
    answer_within: Duration,
    name: &str,
    store: Box<dyn crate::store::Store>,
    pinned: bool,
) -> Fixture {
    let transport = Arc::new(ScriptedTransport {
        mode,
        calls: AtomicU32::new(0),
        pending: AtomicI32::new(0),
        most_pending: AtomicI32::new(0),
    });
    let mut link = WhatsAppLink::new(
        devices,
        Connector {
            transport: transport.clone(),
            http: Arc::new(Offline),
            time_divisor: 100,
        },
        pinned,
    );
    link.answer_within = answer_within;
    let slots = link.slots.clone();
    let cfg = Cli::parse_from(["botlink-server", "--db", ":memory:"]).serve;
    let limits = PerMinute::of_args(&cfg);
    let st = AppState::new(
        cfg,
        name.into(),
        store,
        Coordination::local(limits),
        Box::new(link),
    );
    Fixture {
        st,
        slots,
        transport,
        _dir: dir,
    }
}

impl Fixture {
    async fn bot(&self, name: &str) -> Bot {
        self.st.store.create_bot("u1", name).await.expect("a bot")
    }

    fn stats(&self) -> Counters {
        self.st.stats.snapshot()
    }

    async fn row(&self, id: &str) -> Bot {
        self.st
            .store
            .get_bot("u1", id)
            .await
            .unwrap()
            .expect("the bot")
    }

    /// Waits (bounded) until no client runs.
    async fn until_no_client_runs(&self) {
        for _ in 0..400 {
            if self.stats().whatsapp_clients_running == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "a client still runs: {:?}",
            self.stats().whatsapp_clients_running
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_reach_whatsapp_stops_when_its_budget_is_spent() {
    let f = fixture(Mode::Refuse, super::ANSWER_WITHIN);
    let bot = f.bot("Support").await;
    let started = std::time::Instant::now();
    let err =
        f.st.link
            .start(&f.st.ctx, "u1", &bot)
            .await
            .expect_err("no QR can come");
    assert!(started.elapsed() < super::ANSWER_WITHIN, "answered in time");
    let text = err.to_string();
    assert!(text.contains("gave up after 6"), "{text}");
    f.until_no_client_runs().await;
    let row = f.row(&bot.id).await;
    assert_eq!(row.status, BotStatus::Disconnected);
    assert!(
        row.status_reason
            .unwrap_or_default()
            .contains("could not be reached")
    );
    let stats = f.stats();
    assert_eq!(
        f.transport.calls.load(Ordering::SeqCst),
        super::budget::ATTEMPTS
    );
    assert_eq!(
        stats.whatsapp_connect_attempts,
        u64::from(super::budget::ATTEMPTS)
    );
    assert_eq!(stats.whatsapp_budgets_spent, 1);
    assert_eq!(stats.whatsapp_clients_started, 1);
    // 300 ms is 30 s of the client's own (compressed) time: no attempt past the budget.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        f.transport.calls.load(Ordering::SeqCst),
        super::budget::ATTEMPTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_starts_share_one_client_and_answer_in_time() {
    let f = fixture(Mode::Hang, Duration::from_millis(400));
    let bot = f.bot("Support").await;
    let mut calls = Vec::new();
    for _ in 0..50 {
        let st = f.st.clone();
        let bot = bot.clone();
        calls.push(tokio::spawn(async move {
            st.link.start(&st.ctx, "u1", &bot).await
        }));
    }
    for call in calls {
        let answer = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("answers")
            .expect("no panic");
        let err = answer.expect_err("no QR comes from a black hole");
        assert!(err.to_string().contains("did not answer"), "{err}");
    }
    assert_eq!(
        f.stats().whatsapp_clients_started,
        1,
        "one client for 50 starts"
    );
    f.until_no_client_runs().await;
    assert_eq!(f.row(&bot.id).await.status, BotStatus::Disconnected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_starts_only_once_the_old_one_has_stopped() {
    let f = fixture(Mode::Hang, Duration::from_millis(200));
    let bot = f.bot("Support").await;
    for _ in 0..3 {
        let err = f.st.link.start(&f.st.ctx, "u1", &bot).await;
        assert!(err.is_err());
    }
    f.until_no_client_runs().await;
    assert_eq!(f.stats().whatsapp_clients_started, 3);
    assert_eq!(
        f.transport.most_pending.load(Ordering::SeqCst),
        1,
        "two clients of one bot were connecting at once"
    );
}

/// Starts a client for `bot` and hands back its core and client, for events injected as the
/// library would deliver them.
async fn running(
    f: &Fixture,
    bot: &Bot,
) -> (Arc<super::session::Core>, Arc<whatsapp_rust::Client>) {
    let core = f
        .slots
        .ensure(&f.st.ctx, "u1", &bot.id, Purpose::Pair, false)
        .await
        .expect("starts")
        .expect("a client");
    let client = f
        .slots
        .slot(&bot.id)
        .lock()
        .await
        .as_ref()
        .expect("running")
        .client
        .clone();
    (core, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_440_stops_the_client_for_good() {
    let f = fixture(Mode::Hang, Duration::from_secs(5));
    let bot = f.bot("Support").await;
    let (core, client) = running(&f, &bot).await;
    core.on_event_for_test(
        &Event::StreamReplaced(ev::StreamReplaced::builder().build()),
        &client,
    );
    assert!(matches!(core.current(), Phase::Ended(e) if e.code == 440));
    f.until_no_client_runs().await;
    let row = f.row(&bot.id).await;
    assert_eq!(row.status, BotStatus::Conflict);
    let calls = f.transport.calls.load(Ordering::SeqCst);
    // No reconnect, and a restart does not resume a conflict either.
    f.st.link.resume(&f.st.ctx).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.transport.calls.load(Ordering::SeqCst), calls);
    assert_eq!(f.stats().whatsapp_clients_started, 1);
    // Later events of the stopped client are not the bot's news.
    core.on_event_for_test(&Event::Connected(ev::Connected::builder().build()), &client);
    assert_eq!(f.row(&bot.id).await.status, BotStatus::Conflict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_logs_out_and_wipes_the_device() {
    let f = fixture(Mode::Hang, Duration::from_secs(5));
    let bot = f.bot("Support").await;
    running(&f, &bot).await;
    let device = f.slots.device_file(&bot.id);
    assert!(device.exists());
    f.st.link
        .unlink(&f.st.ctx, &bot.id)
        .await
        .expect("unlinked");
    assert!(!device.exists(), "the device store is gone");
    for f in super::device_files(&f.slots.devices, &bot.id) {
        assert!(!f.exists(), "{} is gone", f.display());
    }
    assert_eq!(f.stats().whatsapp_clients_running, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_device_is_forgotten_and_the_next_start_gets_a_new_one() {
    let f = fixture(Mode::Hang, Duration::from_millis(300));
    let bot = f.bot("Support").await;
    let (core, client) = running(&f, &bot).await;
    core.on_event_for_test(
        &Event::LoggedOut(
            ev::LoggedOut::builder()
                .on_connect(true)
                .reason(ev::ConnectFailureReason::LoggedOut)
                .build(),
        ),
        &client,
    );
    f.until_no_client_runs().await;
    assert_eq!(f.row(&bot.id).await.status, BotStatus::LoggedOut);
    for _ in 0..100 {
        if !f.slots.device_file(&bot.id).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !f.slots.device_file(&bot.id).exists(),
        "the device is forgotten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_linked_bots_without_a_qr() {
    let f = fixture(Mode::Hang, Duration::from_secs(5));
    let linked = f.bot("Linked").await;
    let unregistered = f.bot("Never linked").await;
    let _no_device = f.bot("No device").await;
    // A registered device, as a finished pairing leaves it: the phone's JID in the store.
    write_device(&f, &linked, Some(JID)).await;
    write_device(&f, &unregistered, None).await;
    f.st.store
        .set_status(&linked.id, BotStatus::Connected, Some("+15551234567"), None)
        .await
        .unwrap();
    f.st.link.resume(&f.st.ctx).await;
    for _ in 0..200 {
        if f.stats().whatsapp_clients_started == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.stats().whatsapp_clients_started, 1, "only the linked bot");
    let core = crate::core::sync::lock(&f.slots.cores)
        .get(&linked.id)
        .cloned()
        .expect("the linked bot runs");
    assert_eq!(
        core.current(),
        Phase::Starting,
        "no QR for a registered device"
    );
    assert!(f.st.link.pairing(&f.st.ctx, &linked.id).await.is_none());
    f.st.link.shutdown(&f.st.ctx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_device_store_explains_itself_and_loses_nothing() {
    let f = fixture(Mode::Hang, Duration::from_secs(5));
    let bot = f.bot("Support").await;
    let healthy = f.bot("Healthy").await;
    let file = f.slots.device_file(&bot.id);
    let garbage = b"this is not an SQLite database, and it must survive".repeat(100);
    std::fs::write(&file, &garbage).unwrap();
    let asked = std::time::Instant::now();
    let err =
        f.st.link
            .start(&f.st.ctx, "u1", &bot)
            .await
            .expect_err("a corrupt store cannot start");
    assert!(
        asked.elapsed() < super::ANSWER_WITHIN,
        "answered in {:?}",
        asked.elapsed()
    );
    assert!(matches!(err, crate::link::LinkError::Broken(_)), "{err}");
    let row = f.row(&bot.id).await;
    assert_eq!(row.status, BotStatus::Disconnected);
    assert!(
        row.status_reason
            .unwrap_or_default()
            .contains("device store")
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        garbage,
        "the file is left as it was"
    );
    // The other bots are not touched: one starts as usual.
    running(&f, &healthy).await;
    assert_eq!(f.stats().whatsapp_clients_running, 1);
    f.st.link.shutdown(&f.st.ctx).await;
}

/// The phone a registered device of these tests belongs to.
const JID: &str = "15551234567@s.whatsapp.net";

/// The bot's device store with the client stopped: registered to `jid` (as a finished pairing
/// leaves it), or never linked.
async fn write_device(f: &Fixture, bot: &Bot, jid: Option<&str>) {
    let file = f.slots.device_file(&bot.id);
    crate::store::data_dir::create_private_file(&file).unwrap();
    let store = whatsapp_rust::store::SqliteStore::new(&file.to_string_lossy())
        .await
        .unwrap();
    let built = whatsapp_rust::bot::Bot::builder()
        .with_backend(store)
        .build()
        .await
        .unwrap();
    if let Some(jid) = jid {
        let pm = built.client().persistence_manager();
        pm.process_command(whatsapp_rust::store::commands::DeviceCommand::SetId(Some(
            jid.parse().unwrap(),
        )))
        .await;
        pm.flush().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_stops_only_the_client_it_saw_running_never_a_newer_one() {
    let f = fixture(Mode::Hang, Duration::from_secs(5));
    let bot = f.bot("Support").await;
    let (old, _) = running(&f, &bot).await;
    // The round looks at what runs, then renews; meanwhile that client ends and a newer one
    // starts, with a hold of its own.
    let seen = vec![(bot.id.clone(), old.generation)];
    assert!(f.slots.stop(&bot.id, Some(old.generation), false).await);
    let (newer, _) = running(&f, &bot).await;
    assert_ne!(newer.generation, old.generation);
    let orders = super::pinning::Orders {
        stop: vec![bot.id.clone()],
        pause: false,
        resume: vec![],
    };
    super::pinning::stop_ordered(&f.st.ctx, &f.slots, &orders, &seen).await;
    assert_eq!(
        f.stats().whatsapp_clients_running,
        1,
        "the newer client runs on (a stop with no generation stopped it)"
    );
    // What a round saw running is what it stops.
    let seen = vec![(bot.id.clone(), newer.generation)];
    super::pinning::stop_ordered(&f.st.ctx, &f.slots, &orders, &seen).await;
    f.until_no_client_runs().await;
}

/// The cluster's rules on PostgreSQL, where a cluster keeps its devices: nodes of one database,
/// each its own link. Run by scripts/cluster-test (it starts the database).
#[cfg(feature = "cluster-suite")]
mod pinned {
    use super::*;
    use crate::store::{
        PostgresStore, device,
        postgres::tests::{database_of_its_own, url_of},
    };

    /// Cluster nodes on one new database (each test its own).
    async fn nodes(db: &str, names: &[&str], mode: Mode) -> Vec<Fixture> {
        drop(database_of_its_own(db).await);
        let mut nodes = Vec::new();
        for name in names {
            nodes.push(node(db, name, mode).await);
        }
        nodes
    }

    /// One node on the database `db` (a new process: a new link, a new directory).
    async fn node(db: &str, name: &str, mode: Mode) -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let devices = dir.path().join("devices");
        std::fs::create_dir(&devices).expect("the devices directory");
        let store = PostgresStore::open(&url_of(db))
            .await
            .expect("the database");
        node_on(
            dir,
            devices,
            mode,
            Duration::from_millis(400),
            name,
            Box::new(store),
            true,
        )
    }

    async fn registered(f: &Fixture, bot: &Bot) -> bool {
        let pool = f.st.store.device_pool().expect("devices in the database");
        device::registered(&pool, &bot.id).await.unwrap()
    }

    /// A bot linked on node `a`: its client sees the session open and the phone's JID saved to
    /// its device (in the database), its hold registered.
    async fn linked(
        a: &Fixture,
        name: &str,
    ) -> (
        Bot,
        Arc<super::super::session::Core>,
        Arc<whatsapp_rust::Client>,
    ) {
        let bot = a.bot(name).await;
        let (core, client) = running(a, &bot).await;
        let pm = client.persistence_manager();
        pm.process_command(whatsapp_rust::store::commands::DeviceCommand::SetId(Some(
            JID.parse().unwrap(),
        )))
        .await;
        pm.flush().await.unwrap();
        core.on_event_for_test(&Event::Connected(ev::Connected::builder().build()), &client);
        until("registered", || async {
            a.st.store
                .device_hold(&bot.id)
                .await
                .unwrap()
                .is_some_and(|h| h.registered)
        })
        .await;
        // The library's saver may still be writing an older snapshot: until the last lands.
        until("the device in the database", || async {
            registered(a, &bot).await
        })
        .await;
        (bot, core, client)
    }

    async fn until<F: std::future::Future<Output = bool>>(what: &str, f: impl Fn() -> F) {
        for _ in 0..300 {
            if f().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}: never so");
    }

    /// What a holder frozen past its hold leaves: its hold run out by the database's clock,
    /// while its client still runs.
    async fn freeze(f: &Fixture) {
        let pool = f.st.store.device_pool().unwrap();
        pool.get()
            .await
            .unwrap()
            .execute(
                "UPDATE device_holds SET hold_until = botlink_now_ms() - 60000 WHERE node = $1",
                &[&f.st.node],
            )
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pinned_a_bot_runs_only_on_the_node_holding_its_device_and_its_qr_shows_everywhere() {
        let n = nodes("botlink_pinned_runs", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        let bot = a.bot("Support").await;
        let (core, client) = running(a, &bot).await;
        let hold = b.st.link.holder(&b.st.ctx, &bot.id).await.expect("held");
        assert_eq!((hold.node.as_str(), hold.live()), ("node-a", true));
        assert!(
            a.st.link.holder(&a.st.ctx, &bot.id).await.is_none(),
            "its own"
        );
        // Asked on the other node (not forwarded): no second client, an answer to retry.
        let err =
            b.st.link
                .start(&b.st.ctx, "u1", &bot)
                .await
                .expect_err("not here");
        assert!(
            err.to_string().contains("runs on server node node-a"),
            "{err}"
        );
        assert_eq!(b.transport.calls.load(Ordering::SeqCst), 0);
        assert_eq!(b.stats().whatsapp_clients_started, 0);
        // The QR the holder shows is replayed by the other node.
        core.on_event_for_test(
            &Event::PairingQrCode(
                ev::PairingQrCode::builder()
                    .code("2@abc,def".into())
                    .timeout(Duration::from_secs(60))
                    .build(),
            ),
            &client,
        );
        until("the QR in the hold", || async {
            b.st.link.pairing(&b.st.ctx, &bot.id).await.is_some()
        })
        .await;
        let shown = b.st.link.pairing(&b.st.ctx, &bot.id).await.unwrap();
        assert_eq!(Some(shown), a.st.link.pairing(&a.st.ctx, &bot.id).await);
        a.st.link.shutdown(&a.st.ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drained_holders_linked_bot_is_adopted_by_another_node_and_resumed_from_the_database()
    {
        let n = nodes("botlink_pinned_adopted", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        let (bot, _, _) = linked(a, "Support").await;
        a.st.link.shutdown(&a.st.ctx).await;
        // Node b adopts it at once (the drain let the hold lapse well past the margin), and
        // resumes it: no QR, no pairing.
        super::super::pinning::adopt(&b.st.ctx, &b.slots).await;
        until("resumed on node b", || async {
            b.stats().whatsapp_clients_running == 1
        })
        .await;
        let hold = a.st.link.holder(&a.st.ctx, &bot.id).await.expect("held");
        assert!(
            hold.live() && hold.registered && hold.node == "node-b",
            "{hold:?}"
        );
        assert_eq!(
            (b.stats().devices_adopted, b.stats().pairings_started),
            (1, 0)
        );
        // The bot is never told "stopped": it stays as its holder left it.
        super::super::pinning::carry_pairings(&b.st.ctx, &b.slots).await;
        assert_eq!(b.row(&bot.id).await.status, BotStatus::Connected);
        // Node a returns: the bot is node b's now; a resumes nothing.
        let a = node("botlink_pinned_adopted", "node-a", Mode::Hang).await;
        a.slots.resume_one(&a.st.ctx, &bot.id).await;
        assert_eq!(a.stats().whatsapp_clients_started, 0);
        b.st.link.shutdown(&b.st.ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_frozen_holders_client_is_fenced_out_its_writes_refused_its_440_told_to_nobody() {
        let n = nodes("botlink_pinned_fenced", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        let (bot, core, client) = linked(a, "Support").await;
        // Node a froze past its hold; node b adopts the device and resumes it.
        freeze(a).await;
        super::super::pinning::adopt(&b.st.ctx, &b.slots).await;
        until("resumed on node b", || async {
            b.stats().whatsapp_clients_running == 1
        })
        .await;
        // Node a wakes: WhatsApp tells its client another connected (440) — that was node b's.
        core.on_event_for_test(
            &Event::StreamReplaced(ev::StreamReplaced::builder().build()),
            &client,
        );
        a.until_no_client_runs().await;
        let row = b.row(&bot.id).await;
        assert_eq!(
            row.status,
            BotStatus::Connected,
            "no conflict stored: {row:?}"
        );
        assert!(
            registered(b, &bot).await,
            "the device stays: it is node b's"
        );
        assert_eq!(b.stats().whatsapp_clients_running, 1);
        b.st.link.shutdown(&b.st.ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_holders_device_write_stops_its_client_and_forgets_nothing() {
        let n = nodes("botlink_pinned_write", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        let (bot, _, client) = linked(a, "Support").await;
        freeze(a).await;
        super::super::pinning::adopt(&b.st.ctx, &b.slots).await;
        until("resumed on node b", || async {
            b.stats().whatsapp_clients_running == 1
        })
        .await;
        // Node a's client writes its device: refused, and the client stops at once.
        let pm = client.persistence_manager();
        pm.process_command(whatsapp_rust::store::commands::DeviceCommand::SetPushName(
            "stale".into(),
        ))
        .await;
        // Refused, whether this flush or the library's own saver wrote it first.
        let _ = pm.flush().await;
        a.until_no_client_runs().await;
        let pool = b.st.store.device_pool().unwrap();
        let device: String = pool
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT convert_from(device, 'UTF8') FROM wa_devices WHERE bot_id = $1",
                &[&bot.id],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            !device.contains("stale"),
            "the stale write is not in the device"
        );
        assert!(registered(b, &bot).await, "not forgotten");
        assert_eq!(b.row(&bot.id).await.status, BotStatus::Connected);
        b.st.link.shutdown(&b.st.ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_conflicted_bot_is_not_resumed_after_an_outage_nor_adopted() {
        let n = nodes("botlink_pinned_conflict", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        let (bot, core, client) = linked(a, "Support").await;
        // A real 440 while node a holds the device: the person decides, not a resume.
        core.on_event_for_test(
            &Event::StreamReplaced(ev::StreamReplaced::builder().build()),
            &client,
        );
        a.until_no_client_runs().await;
        until("conflict stored", || async {
            a.row(&bot.id).await.status == BotStatus::Conflict
        })
        .await;
        // The keeper's resume after a database outage asks the same as a restart.
        a.slots.resume_one(&a.st.ctx, &bot.id).await;
        assert_eq!(
            a.stats().whatsapp_clients_running,
            0,
            "not resumed after an outage"
        );
        a.st.link.shutdown(&a.st.ctx).await;
        super::super::pinning::adopt(&b.st.ctx, &b.slots).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(b.stats().whatsapp_clients_started, 0, "nor by an adopter");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_device_an_earlier_botlink_kept_in_a_file_moves_into_the_database_once_on_resume() {
        let n = nodes("botlink_pinned_import", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        // What a node of before leaves: its hold (registered), the device in its directory.
        let bot = a.bot("Upgraded").await;
        let lease = crate::store::Lease {
            node: "node-a",
            ttl_ms: 60_000,
        };
        a.st.store
            .hold_device(&bot.id, "u1", lease, "http://a")
            .await
            .unwrap();
        a.st.store
            .show_on_hold(&bot.id, "node-a", None, true)
            .await
            .unwrap();
        write_device(a, &bot, Some(JID)).await;
        let file = a.slots.device_file(&bot.id);
        assert!(!registered(a, &bot).await);
        // Nobody else adopts what is not in the database yet, even once its hold lapsed.
        freeze(a).await;
        super::super::pinning::adopt(&b.st.ctx, &b.slots).await;
        assert_eq!(b.stats().devices_adopted, 0);
        // Its node resumes it: the device moves in, and the client runs on it (registered).
        a.slots.resume_one(&a.st.ctx, &bot.id).await;
        assert_eq!(a.stats().whatsapp_clients_started, 1, "resumed");
        assert!(registered(a, &bot).await, "in the database");
        assert!(!file.exists(), "the file is not read again");
        let mut done = file.clone().into_os_string();
        done.push(".imported");
        assert!(std::path::Path::new(&done).exists(), "kept, renamed");
        // The same device: its identity, its phone.
        use whatsapp_rust::wacore::store::traits::DeviceStore;
        let pool = a.st.store.device_pool().unwrap();
        let hold = a.st.store.device_hold(&bot.id).await.unwrap().unwrap();
        assert_eq!(hold.node, "node-a");
        let fence = crate::store::device::Fence::new(&bot.id, 0);
        let moved = device::PgDevice::new(pool, fence)
            .load()
            .await
            .unwrap()
            .unwrap();
        let old = whatsapp_rust::store::SqliteStore::new(
            &std::path::PathBuf::from(&done).to_string_lossy(),
        )
        .await
        .unwrap()
        .load()
        .await
        .unwrap()
        .unwrap();
        assert_eq!(moved.identity_key.public_key, old.identity_key.public_key);
        assert_eq!(
            moved.pn.map(|j| j.user.to_string()).as_deref(),
            Some("15551234567")
        );
        a.st.link.shutdown(&a.st.ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bot_unlinked_while_its_holder_is_gone_is_not_resumed_and_pairs_anew_elsewhere() {
        let n = nodes("botlink_pinned_unlinked", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        let (bot, _, _) = linked(a, "Support").await;
        a.st.link.shutdown(&a.st.ctx).await;
        b.st.link
            .unlink(&b.st.ctx, &bot.id)
            .await
            .expect("the hold lapsed: unlinked here");
        assert!(b.st.store.device_hold(&bot.id).await.unwrap().is_none());
        assert!(
            !registered(b, &bot).await,
            "the device is gone from the database"
        );
        let a = node("botlink_pinned_unlinked", "node-a", Mode::Hang).await;
        a.slots.resume_one(&a.st.ctx, &bot.id).await;
        assert_eq!(a.stats().whatsapp_clients_started, 0, "not resumed");
        // Paired anew on node b, which now holds it.
        running(b, &bot).await;
        assert_eq!(
            a.st.link.holder(&a.st.ctx, &bot.id).await.map(|h| h.node),
            Some("node-b".into())
        );
        b.st.link.shutdown(&b.st.ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unlink_that_reached_a_node_not_holding_the_device_is_refused_and_keeps_the_hold() {
        let n = nodes(
            "botlink_pinned_unlink_refused",
            &["node-a", "node-b"],
            Mode::Hang,
        )
        .await;
        let (a, b) = (&n[0], &n[1]);
        let bot = a.bot("Support").await;
        let _ = running(a, &bot).await;
        let err =
            b.st.link
                .unlink(&b.st.ctx, &bot.id)
                .await
                .expect_err("node-a runs the session");
        assert!(err.to_string().contains("node-a"), "{err}");
        let hold =
            b.st.store
                .device_hold(&bot.id)
                .await
                .unwrap()
                .expect("kept");
        assert_eq!((hold.node.as_str(), hold.live()), ("node-a", true));
        assert_eq!(a.stats().whatsapp_clients_running, 1, "its client runs on");
        // The holder itself unlinks: the client stops and the hold goes.
        a.st.link
            .unlink(&a.st.ctx, &bot.id)
            .await
            .expect("unlinked");
        assert!(b.st.store.device_hold(&bot.id).await.unwrap().is_none());
        a.st.link.shutdown(&a.st.ctx).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_shutting_down_closes_its_clients_at_once_then_gives_holds_back_and_starts_none()
    {
        let n = nodes("botlink_pinned_shutdown", &["node-a", "node-b"], Mode::Hang).await;
        let (a, b) = (&n[0], &n[1]);
        a.st.link.resume(&a.st.ctx).await; // the hold keeper
        let mut bots = Vec::new();
        for name in ["One", "Two", "Three"] {
            let bot = a.bot(name).await;
            let _ = running(a, &bot).await;
            bots.push(bot);
        }
        let started = a.stats().whatsapp_clients_started;
        let t0 = std::time::Instant::now();
        a.st.link.shutdown(&a.st.ctx).await;
        let took = t0.elapsed();
        eprintln!("shutdown of 3 clients took {took:?}");
        assert!(
            took < super::super::DRAIN_CLOSE + Duration::from_secs(1),
            "{took:?}"
        );
        for bot in &bots {
            assert!(
                a.slots.slot(&bot.id).lock().await.is_none(),
                "every client closed"
            );
            let hold = b.st.store.device_hold(&bot.id).await.unwrap().unwrap();
            assert!(!hold.live(), "given back after the clients closed");
        }
        // A request that still reaches the node starts nothing: no client outlives the shutdown.
        let late = a.bot("Late").await;
        let err =
            a.st.link
                .start(&a.st.ctx, "u1", &late)
                .await
                .expect_err("shutting down");
        assert!(err.to_string().contains("shutting down"), "{err}");
        assert_eq!(a.stats().whatsapp_clients_started, started);
        assert!(b.st.store.device_hold(&late.id).await.unwrap().is_none());
    }
}
