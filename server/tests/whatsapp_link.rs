//! The real WhatsApp link through the server binary, offline (WhatsApp's servers are out of
//! reach here): a pairing that cannot reach WhatsApp answers in time and explains itself, and
//! the data directory admits one server process.

mod common;

use common::Server;
use std::{process::Command, time::Duration};

#[tokio::test]
async fn a_qr_request_that_cannot_reach_whatsapp_answers_503_within_10_s_and_explains_itself() {
    let server = Server::start(&[]);
    let (token, _) = server.session().await;
    let bot = server.bot(&token, "Support").await;
    let started = std::time::Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/api/bots/{bot}/qr", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(11), "answered in {took:?}");
    assert_eq!(resp.status().as_u16(), 503);
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!(retry_after >= 1);
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    // The dashboard can explain it with no socket open.
    let (status, row) = server
        .call("GET", &format!("/api/bots/{bot}"), Some(&token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(row["status"], "disconnected", "{row}");
    assert!(
        row["statusReason"].as_str().is_some_and(|r| !r.is_empty()),
        "{row}"
    );
    let stats = server.stats().await;
    assert_eq!(stats["whatsappClientsStarted"], 1, "{stats}");
    server.kill();
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().expect("a directory");
    let db = dir.path().join("botlink.db");
    let db = db.to_str().expect("a UTF-8 path");
    let first = Server::start_with_db(db, &[]);
    let second = Command::new(env!("CARGO_BIN_EXE_botlink-server"))
        .args(["--addr", "127.0.0.1:0", "--db", db])
        .output()
        .expect("runs");
    assert!(!second.status.success(), "the second server must not start");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another botlink-server is already running"),
        "{said}"
    );
    first.kill();
    // Once the first is gone (even by SIGKILL), the directory is free again.
    let third = Server::start_with_db(db, &[]);
    third.kill();
}
