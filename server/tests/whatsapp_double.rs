//! The real link end to end: the botlink-server binary (a test build, `--features
//! whatsapp-double`) and its real, unmodified whatsapp-rust client against the WhatsApp double
//! (`crates/wa-double`), over real sockets. The double is the witness: every test ends by
//! asserting from its counts that no device ever had two connections open at once.
//!
//! Run with `cargo test -p botlink-server --features whatsapp-double --target-dir target/double`
//! (scripts/test does): a build that skips WhatsApp's certificate check gets its own target
//! directory, so it never overwrites the production binary.

mod common;

use common::{Server, Sio, auth};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// whatsapp-rust's clocks, compressed: the six QRs of a connection last 160 s / 20 = 8 s.
const DIVISOR: &str = "20";

struct Rig {
    double: wa_double::Running,
    server: Option<Server>,
    db: tempfile::TempDir,
    token: String,
    user: String,
}

impl Rig {
    /// The double, and a server on a database file of its own (so a restart finds its bots).
    async fn start() -> Rig {
        let double = wa_double::start(wa_double::Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir: None,
        })
        .await
        .expect("the double starts");
        let db = tempfile::tempdir().expect("a directory");
        let mut rig = Rig {
            double,
            server: None,
            db,
            token: String::new(),
            user: String::new(),
        };
        rig.start_server();
        let (token, user) = rig.server().session().await;
        rig.token = token;
        rig.user = user;
        rig
    }

    fn start_server(&mut self) {
        let db = self.db.path().join("botlink.db");
        let db = db.to_str().expect("UTF-8").to_owned();
        let ws = self.double.ws_url.clone();
        let server = tokio::task::block_in_place(|| {
            Server::start_with_db(
                &db,
                &["--whatsapp-url", &ws, "--whatsapp-time-divisor", DIVISOR],
            )
        });
        self.server = Some(server);
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("a server")
    }

    fn kill_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.kill();
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        Server::at(self.double.url.clone())
            .call(method, path, None, body)
            .await
    }

    /// Asks the double for a failure of the device `selector` names (`{"jid": …}`, …).
    async fn fail(&self, selector: Value, kind: &str, times: Option<u32>) {
        let mut body = selector;
        body["kind"] = json!(kind);
        if let Some(n) = times {
            body["times"] = json!(n);
        }
        let (status, answer) = self.admin("POST", "/admin/devices/fail", Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }

    /// No new connection reaches the double for a while: the client stopped. (whatsapp-rust's
    /// shortest reconnect wait is 1 s, 50 ms at this divisor: 800 ms is 16 of them.)
    async fn assert_quiet(&self, after: &str) {
        let before = self.stats().await["totals"]["connections"].clone();
        tokio::time::sleep(Duration::from_millis(800)).await;
        let stats = self.stats().await;
        assert_eq!(
            stats["totals"]["connections"], before,
            "a new connection after {after}: {stats}"
        );
    }

    async fn stats(&self) -> Value {
        self.admin("GET", "/admin/stats", None).await.1
    }

    async fn bot(&self, id: &str) -> Value {
        self.server()
            .call("GET", &format!("/api/bots/{id}"), Some(&self.token), None)
            .await
            .1
    }

    async fn new_bot(&self, name: &str) -> String {
        self.server().bot(&self.token, name).await
    }

    async fn qr(&self, bot: &str) -> (u16, Value) {
        self.server()
            .call(
                "POST",
                &format!("/api/bots/{bot}/qr"),
                Some(&self.token),
                None,
            )
            .await
    }

    /// Waits (bounded) until the bot's row satisfies `done`; returns the row.
    async fn until(&self, bot: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let row = self.bot(bot).await;
            if done(&row) {
                return row;
            }
            assert!(t0.elapsed() < within, "not within {within:?}: {row}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Pairs the bot through a QR the phone scans; returns what the phone linked.
    async fn link(&self, bot: &str) -> Value {
        let (status, pairing) = self.qr(bot).await;
        assert_eq!(status, 200, "{pairing}");
        let (status, linked) = self
            .admin("POST", "/admin/scan", Some(json!({"qr": pairing["qr"]})))
            .await;
        assert_eq!(status, 200, "{linked}");
        let row = self
            .until(bot, Duration::from_secs(30), |r| r["status"] == "connected")
            .await;
        assert_eq!(row["phone"], linked["phone"], "{row}");
        linked
    }

    /// The rule this project exists for, as WhatsApp saw it.
    async fn assert_never_two_sessions(&self) {
        let stats = self.stats().await;
        assert!(
            stats["totals"]["mostOpenAtOnce"].as_u64().unwrap_or(9) <= 1,
            "a device had two connections open at once: {stats}"
        );
    }
}

/// The next `connection_failed` the app hears.
async fn next_failure(sio: &mut Sio) -> Value {
    loop {
        let e = sio.next_whatsapp().await.expect("connection_failed");
        if e["type"] == "connection_failed" {
            return e;
        }
    }
}

fn device_stats<'a>(stats: &'a Value, linked: &Value) -> &'a Value {
    let jid = linked["jid"].as_str().unwrap();
    stats["devices"]
        .as_object()
        .unwrap()
        .values()
        .find(|d| d["jid"] == jid)
        .unwrap_or_else(|| panic!("no device {jid} in {stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_links_the_bot_and_the_app_hears_every_step() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Support").await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;

    let (status, pairing) = rig.qr(&bot).await;
    assert_eq!(status, 200, "{pairing}");
    let qr = pairing["qr"].as_str().unwrap().to_owned();
    // WhatsApp's own QR string: ref, noise key, identity key, adv secret, client type.
    assert_eq!(qr.split(',').count(), 5, "{qr}");
    assert!(qr.starts_with("2@"), "{qr}");
    assert_eq!(pairing["attempt"], 1);
    assert_eq!(pairing["attempts"], 6);
    let first = sio.next_whatsapp().await.expect("qr_updated");
    assert_eq!(first["type"], "qr_updated", "{first}");

    let (status, linked) = rig
        .admin(
            "POST",
            "/admin/scan",
            Some(json!({"qr": qr, "phone": "+1 555 010 0200"})),
        )
        .await;
    assert_eq!(status, 200, "{linked}");
    assert_eq!(linked["phone"], "+15550100200");

    let mut seen = Vec::new();
    while let Some(e) = sio.next_whatsapp().await {
        let t = e["type"].as_str().unwrap_or_default().to_owned();
        seen.push(t.clone());
        if t == "whatsapp_connected" {
            assert_eq!(e["phone"], "+15550100200", "{e}");
            break;
        }
        assert!(seen.len() < 20, "{seen:?}");
    }
    assert!(seen.contains(&"qr_scanned".to_owned()), "{seen:?}");
    let row = rig.bot(&bot).await;
    assert_eq!(row["status"], "connected", "{row}");
    assert_eq!(row["phone"], "+15550100200");

    let stats = rig.stats().await;
    let d = device_stats(&stats, &linked);
    assert_eq!(d["qrsOffered"], 6, "{stats}");
    assert_eq!(d["logins"], 1, "{stats}");
    assert_eq!(
        d["handshakes"], 2,
        "the pairing connection and the login: {stats}"
    );
    // The client looked up WhatsApp Web's version where the test build sends it: at the double.
    assert!(
        stats["totals"]["versionLookups"].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_qr_of_a_connection_is_shown_then_qr_expired_and_the_client_stops() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Nobody scans").await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    let (status, pairing) = rig.qr(&bot).await;
    assert_eq!(status, 200, "{pairing}");
    // 60 s for the first QR, divided like whatsapp-rust's clock.
    let expires = pairing["expiresInMs"].as_u64().unwrap();
    assert!((2_000..=3_000).contains(&expires), "{pairing}");

    let mut qrs = std::collections::BTreeSet::new();
    let mut attempts = Vec::new();
    let t0 = Instant::now();
    loop {
        let e = sio.next_whatsapp().await.expect("an event within 5 s");
        match e["type"].as_str() {
            Some("qr_updated") => {
                qrs.insert(e["qr"].as_str().unwrap().to_owned());
                attempts.push(e["attempt"].as_u64().unwrap());
            }
            Some("qr_expired") => break,
            _ => {}
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{attempts:?}");
    }
    assert_eq!(qrs.len(), 6, "six refs, six QRs");
    assert_eq!(attempts, vec![1, 2, 3, 4, 5, 6]);
    let row = rig
        .until(&bot, Duration::from_secs(5), |r| r["status"] != "pairing")
        .await;
    assert_eq!(row["pairing"], Value::Null, "{row}");
    let stats = rig.stats().await;
    assert_eq!(stats["totals"]["qrsOffered"], 6, "{stats}");
    assert_eq!(
        stats["totals"]["handshakes"], 1,
        "one pairing connection: {stats}"
    );
    // The client stopped: no new connection comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.stats().await["totals"]["connections"], 1);
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_the_linked_bot_with_one_login_and_no_qr() {
    let mut rig = Rig::start().await;
    let bot = rig.new_bot("Resumed").await;
    let linked = rig.link(&bot).await;
    rig.kill_server();
    // The kernel closes the dead server's socket; the double sees it go.
    let t0 = Instant::now();
    while rig.stats().await["totals"]["openNow"] != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the old connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.start_server();
    let started = Instant::now();
    // The stored row still says `connected`; the double's login count says when it really is.
    while device_stats(&rig.stats().await, &linked)["logins"] != 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no login after the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "resume: logged in {:?} after the server started",
        started.elapsed()
    );
    let row = rig
        .until(&bot, Duration::from_secs(10), |r| {
            r["status"] == "connected"
        })
        .await;
    assert_eq!(row["pairing"], Value::Null);
    assert_eq!(row["phone"], linked["phone"]);
    let stats = rig.stats().await;
    let d = device_stats(&stats, &linked);
    assert_eq!(
        d["logins"], 2,
        "one login after the scan, one after the restart: {stats}"
    );
    assert_eq!(d["qrsOffered"], 6, "no new QR: {stats}");
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_removing_the_device_logs_the_bot_out_for_good() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Removed").await;
    let linked = rig.link(&bot).await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    let (status, _) = rig
        .admin(
            "POST",
            "/admin/devices/remove",
            Some(json!({"jid": linked["jid"]})),
        )
        .await;
    assert_eq!(status, 200);
    let failed = next_failure(&mut sio).await;
    assert_eq!(failed["code"], 401, "{failed}");
    let row = rig
        .until(&bot, Duration::from_secs(5), |r| {
            r["status"] == "logged_out"
        })
        .await;
    assert!(
        row["statusReason"].as_str().is_some_and(|r| !r.is_empty()),
        "{row}"
    );
    rig.assert_quiet("the device was removed").await;
    // A new QR is a new device (the old one's store was wiped).
    let (status, pairing) = rig.qr(&bot).await;
    assert_eq!(status, 200, "{pairing}");
    let noise = noise_of(&pairing["qr"]);
    let stats = rig.stats().await;
    assert!(stats["devices"][&noise].is_object(), "{stats}");
    assert_ne!(device_stats(&stats, &linked)["jid"], Value::Null);
    assert!(
        stats["devices"][&noise]["jid"].is_null(),
        "the new QR comes from a new device: {stats}"
    );
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_session_of_the_device_throws_the_first_out_with_440_never_to_return() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Replaced").await;
    let linked = rig.link(&bot).await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    rig.fail(json!({"phone": linked["phone"]}), "replaced", None)
        .await;
    let failed = next_failure(&mut sio).await;
    assert_eq!(failed["code"], 440, "{failed}");
    rig.until(&bot, Duration::from_secs(5), |r| r["status"] == "conflict")
        .await;
    rig.assert_quiet("a 440").await;
    let stats = rig.stats().await;
    assert_eq!(device_stats(&stats, &linked)["replacedSent"], 1);
    assert_eq!(stats["totals"]["openNow"], 0, "{stats}");
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_failing_every_login_with_503_sees_the_retry_budget_then_nothing() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Unavailable").await;
    let linked = rig.link(&bot).await;
    // The open session gets a 503 stream error, and every later login fails with 503.
    rig.fail(json!({"jid": linked["jid"]}), "503", None).await;
    let row = rig
        .until(&bot, Duration::from_secs(30), |r| {
            r["status"] == "disconnected"
        })
        .await;
    assert!(
        row["statusReason"]
            .as_str()
            .is_some_and(|r| r.contains("gave up after 6")),
        "{row}"
    );
    let stats = rig.stats().await;
    let d = device_stats(&stats, &linked).clone();
    // The budget: 6 attempts without a stable session — the pairing connection, the login
    // after the scan, and four more, each refused.
    assert_eq!(d["handshakes"], 6, "{stats}");
    assert_eq!(d["logins"], 1, "{stats}");
    rig.assert_quiet("the budget was spent").await;
    assert_eq!(device_stats(&rig.stats().await, &linked)["handshakes"], 6);
    rig.assert_never_two_sessions().await;
}

/// Links a bot, arms a login failure, then drops the session (a 503 that fails no login): the
/// reconnect meets the failure. Returns the `connection_failed` and the row.
async fn failed_login(kind: &str) -> (Value, Value) {
    let rig = Rig::start().await;
    let bot = rig.new_bot(kind).await;
    let linked = rig.link(&bot).await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    let device = json!({"jid": linked["jid"]});
    rig.fail(device.clone(), kind, Some(1)).await;
    rig.fail(device, "503", Some(0)).await;
    let failed = next_failure(&mut sio).await;
    let row = rig
        .until(&bot, Duration::from_secs(5), |r| r["status"] != "connected")
        .await;
    rig.assert_quiet(kind).await;
    rig.assert_never_two_sessions().await;
    (failed, row)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_client_is_told_to_update_and_stops() {
    let (failed, row) = failed_login("405").await;
    assert_eq!(failed["code"], 426, "{failed}");
    assert_eq!(row["status"], "disconnected", "{row}");
    assert!(
        row["statusReason"].as_str().unwrap().contains("outdated"),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_account_logs_the_bot_out() {
    let (failed, row) = failed_login("403").await;
    assert_eq!(failed["code"], 403, "{failed}");
    assert_eq!(row["status"], "logged_out", "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_ban_says_how_long_and_stops() {
    let (failed, row) = failed_login("ban").await;
    assert_eq!(failed["code"], 403, "{failed}");
    assert_eq!(row["status"], "disconnected", "{row}");
    assert!(
        row["statusReason"].as_str().unwrap().contains("60 min"),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_qr_requests_make_one_device_at_whatsapp() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Stampede").await;
    let answers = futures_util::future::join_all((0..50).map(|_| rig.qr(&bot))).await;
    let qrs: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, p)| {
            assert_eq!(*status, 200, "{p}");
            p["qr"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(qrs.len(), 1, "one pairing, one QR: {qrs:?}");
    let stats = rig.stats().await;
    assert_eq!(stats["devices"].as_object().unwrap().len(), 1, "{stats}");
    assert_eq!(stats["totals"]["connections"], 1, "{stats}");
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_build_says_so_and_refuses_whatsapp_itself() {
    let rig = Rig::start().await;
    let (status, health) = rig.server().call("GET", "/api/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(health["whatsappCertificateCheck"], "off", "{health}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_botlink-server"))
        .args(["--addr", "127.0.0.1:0", "--db", ":memory:"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--whatsapp-url"), "{said}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_botlink-server"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--whatsapp-url",
            "wss://web.whatsapp.com/ws/chat",
        ])
        .output()
        .expect("runs");
    assert!(
        !out.status.success(),
        "a test build never dials WhatsApp itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_messages_raise_the_bots_count_by_exactly_the_messages_sent() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Inbox").await;
    let linked = rig.link(&bot).await;
    let before = rig.bot(&bot).await["messages"].as_u64().unwrap();
    assert_eq!(before, 0, "the phone's key share is no message");
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    for text in ["hello", "are you there?", "third"] {
        // The device uploads its prekeys in the background of its first login: a contact can
        // write once they are there (the double says 404 until then).
        let t0 = Instant::now();
        loop {
            let (status, body) = rig
                .admin(
                    "POST",
                    "/admin/devices/message",
                    Some(json!({"jid": linked["jid"], "text": text})),
                )
                .await;
            if status == 200 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "{status} {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut last = 0;
    while last < before + 3 {
        let (name, payload) = sio.next_event().await.expect("message_sync");
        if name == "message_sync" {
            last = payload["messages"].as_u64().unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let row = rig.bot(&bot).await;
    assert_eq!(row["messages"], before + 3, "{row}");
    assert_eq!(row["status"], "connected", "{row}");
    // A message to a device that is not online is refused with a reason.
    let (status, body) = rig
        .admin(
            "POST",
            "/admin/devices/message",
            Some(json!({"jid": "15550000000:9@s.whatsapp.net", "text": "x"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_shares_its_app_state_key_so_the_first_connect_needs_no_10_s_wait() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Quick").await;
    let (status, pairing) = rig.qr(&bot).await;
    assert_eq!(status, 200, "{pairing}");
    let scanned = Instant::now();
    let (status, linked) = rig
        .admin("POST", "/admin/scan", Some(json!({"qr": pairing["qr"]})))
        .await;
    assert_eq!(status, 200, "{linked}");
    rig.until(&bot, Duration::from_secs(30), |r| {
        r["status"] == "connected"
    })
    .await;
    let took = scanned.elapsed();
    eprintln!("first connect: connected {took:?} after the scan");
    assert!(
        took < Duration::from_secs(5),
        "whatsapp-rust waited for the key share: {took:?}"
    );
    rig.assert_never_two_sessions().await;
}

/// The noise key of the device showing this QR (its second field): how the double names a
/// device that has no JID yet.
fn noise_of(qr: &Value) -> String {
    qr.as_str().unwrap().split(',').nth(1).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_error_ends_the_pairing_with_500_and_forgets_the_device() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Pair error").await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    let (_, pairing) = rig.qr(&bot).await;
    let noise = noise_of(&pairing["qr"]);
    rig.fail(json!({"noise": noise}), "pair-error", Some(1))
        .await;
    let (status, body) = rig
        .admin("POST", "/admin/scan", Some(json!({"qr": pairing["qr"]})))
        .await;
    assert_eq!(status, 200, "{body}");
    let failed = next_failure(&mut sio).await;
    assert_eq!(failed["code"], 500, "{failed}");
    let row = rig
        .until(&bot, Duration::from_secs(5), |r| {
            r["status"] == "disconnected"
        })
        .await;
    assert_eq!(row["phone"], Value::Null, "{row}");
    assert_eq!(rig.stats().await["totals"]["logins"], 0);
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_request_asks_the_person_to_finish_on_the_phone() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Passkey").await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    let (_, pairing) = rig.qr(&bot).await;
    rig.fail(json!({"noise": noise_of(&pairing["qr"])}), "passkey", None)
        .await;
    loop {
        let e = sio.next_whatsapp().await.expect("finish_on_phone");
        if e["type"] == "finish_on_phone" {
            break;
        }
    }
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_stalled_after_the_scan_shows_scanned_until_whatsapp_lets_it_in() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Stalled").await;
    let (mut sio, _) = Sio::connect(rig.server(), auth(&rig.token, &rig.user, &bot)).await;
    let (status, body) = rig
        .admin("POST", "/admin/hold-login", Some(json!({"ms": 1500})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, pairing) = rig.qr(&bot).await;
    let scanned_at = Instant::now();
    let (status, _) = rig
        .admin("POST", "/admin/scan", Some(json!({"qr": pairing["qr"]})))
        .await;
    assert_eq!(status, 200);
    loop {
        let e = sio.next_whatsapp().await.expect("qr_scanned");
        if e["type"] == "qr_scanned" {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rig.bot(&bot).await["status"], "pairing", "held by WhatsApp");
    rig.until(&bot, Duration::from_secs(10), |r| {
        r["status"] == "connected"
    })
    .await;
    assert!(scanned_at.elapsed() >= Duration::from_millis(1500));
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_drops_the_session_and_the_client_comes_back_once() {
    let rig = Rig::start().await;
    let bot = rig.new_bot("Rate limited").await;
    let linked = rig.link(&bot).await;
    rig.fail(json!({"jid": linked["jid"]}), "429", Some(0))
        .await;
    let t0 = Instant::now();
    while device_stats(&rig.stats().await, &linked)["logins"] != 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{}",
            rig.stats().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.until(&bot, Duration::from_secs(5), |r| r["status"] == "connected")
        .await;
    rig.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_answers_bad_input_with_a_reason() {
    let rig = Rig::start().await;
    for (path, body, want) in [
        ("/admin/scan", json!({"qr": "nonsense"}), 400),
        ("/admin/scan", json!({"qr": 5}), 400),
        ("/admin/scan", json!({"qr": "2@x,AAAA"}), 400),
        (
            "/admin/code",
            json!({"phone": "12", "code": "ABCDEFGH"}),
            400,
        ),
        (
            "/admin/code",
            json!({"phone": "+15550100400", "code": "SHORT"}),
            400,
        ),
        ("/admin/devices/fail", json!({"kind": "503"}), 400),
        (
            "/admin/devices/fail",
            json!({"phone": "+15550100400", "kind": "teapot"}),
            400,
        ),
        (
            "/admin/devices/remove",
            json!({"phone": "+15550100400"}),
            404,
        ),
        ("/admin/hold-login", json!({"ms": -1}), 400),
    ] {
        let (status, answer) = rig.admin("POST", path, Some(body.clone())).await;
        assert_eq!(status, want, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }
    // A scan of a well-formed QR nobody offers.
    let bot = rig.new_bot("Real").await;
    let (_, pairing) = rig.qr(&bot).await;
    let stale = pairing["qr"].as_str().unwrap().replacen("2@", "2@stale", 1);
    let (status, answer) = rig
        .admin("POST", "/admin/scan", Some(json!({"qr": stale})))
        .await;
    assert_eq!(status, 404, "{answer}");
    // What whatsapp-rust 0.7 cannot be made to see is refused, not faked.
    let (status, answer) = rig
        .admin(
            "POST",
            "/admin/devices/fail",
            Some(json!({"noise": noise_of(&pairing["qr"]), "kind": "411"})),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
}
