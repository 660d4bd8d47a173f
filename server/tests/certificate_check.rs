//! The shipped binary checks WhatsApp's certificate: pointed at the WhatsApp double (whose chain
//! carries zero signatures), it says so in `--version` and `/api/health`, and its client stops
//! after the double's hello — the double counts a connection that never became a device, and no
//! login. (The test build, `--features whatsapp-double`, is the one that links through the
//! double: tests/whatsapp_double.rs.)
#![cfg(not(feature = "whatsapp-double"))]

mod common;

use common::Server;
use std::time::{Duration, Instant};

#[test]
fn the_binary_says_it_checks_whatsapps_certificate() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_botlink-server"))
        .arg("--version")
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("WhatsApp certificate check: on"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointed_at_the_double_the_shipped_binary_refuses_its_certificate() {
    let double = wa_double::start(wa_double::Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: None,
    })
    .await
    .expect("the double starts");
    let server = tokio::task::block_in_place(|| Server::start(&["--whatsapp-url", &double.ws_url]));
    let (status, health) = server.call("GET", "/api/health", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(health["whatsappCertificateCheck"], "on", "{health}");
    let (token, _) = server.session().await;
    let bot = server.bot(&token, "Checked").await;
    let (status, body) = server
        .call("POST", &format!("/api/bots/{bot}/qr"), Some(&token), None)
        .await;
    assert_eq!(
        status, 503,
        "no QR from a WhatsApp whose certificate is wrong: {body}"
    );
    let stats = |d: &wa_double::Running| d.double.world().witness.snapshot();
    let t0 = Instant::now();
    while stats(&double).totals.unbound_connections == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{:?}",
            stats(&double)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = stats(&double);
    assert!(s.totals.connections >= 1, "{s:?}");
    assert_eq!(
        s.totals.handshakes, 0,
        "the client never finished a handshake: {s:?}"
    );
    assert_eq!(s.totals.logins, 0, "{s:?}");
    assert_eq!(s.totals.qrs_offered, 0, "{s:?}");
}
