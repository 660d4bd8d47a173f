//! botlink's pairing-code extension (docs/protocol.md): `POST /api/bots/{id}/pairing-code`,
//! against the real binary on the real link, with the WhatsApp double's phone entering the code
//! (`POST /admin/code`), as a person types it into WhatsApp's "Link with phone number instead".

mod common;
use common::{Server, Sio, auth};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Asks the server for a code for `phone`: (status, answer).
async fn ask(s: &Server, token: &str, bot: &str, phone: &str) -> (u16, Value) {
    s.call(
        "POST",
        &format!("/api/bots/{bot}/pairing-code"),
        Some(token),
        Some(json!({ "phone": phone })),
    )
    .await
}

async fn row(s: &Server, token: &str, bot: &str) -> Value {
    s.call("GET", &format!("/api/bots/{bot}"), Some(token), None)
        .await
        .1
}

/// Waits (bounded) until the bot's row satisfies `done`; returns the row.
async fn until(s: &Server, token: &str, bot: &str, done: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let r = row(s, token, bot).await;
        if done(&r) {
            return r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not within 30 s: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_links_the_bot_like_a_scan_and_only_once() {
    let s = Server::start(&[]);
    let (t, user) = s.session().await;
    let id = s.bot(&t, "Phone bot").await;
    let (mut sio, _) = Sio::connect(&s, auth(&t, &user, &id)).await;

    let (status, answer) = ask(&s, &t, &id, "+49 151 2345-678").await;
    assert_eq!(status, 200, "{answer}");
    let code = answer["code"].as_str().unwrap().to_owned();
    // WhatsApp's code, as whatsapp-rust gives it: eight letters and digits.
    let plain = code.replace('-', "");
    assert_eq!(plain.len(), 8, "{code}");
    assert!(
        plain
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{code}"
    );
    assert_eq!(answer["expiresInMs"], 180_000);
    assert_eq!(
        row(&s, &t, &id).await["status"],
        "pairing",
        "asking for a code starts the pairing"
    );

    // Typed as a person would: lower case, with the dash.
    let typed = format!("{}-{}", &plain[..4], &plain[4..]).to_lowercase();
    let (status, entered) = s.double().enter_code("+491512345678", &typed).await;
    assert_eq!(status, 200, "{entered}");
    let mut seen = Vec::new();
    while let Some(e) = sio.next_whatsapp().await {
        seen.push(e["type"].as_str().unwrap_or_default().to_owned());
        if seen.last().map(String::as_str) == Some("whatsapp_connected") {
            assert_eq!(e["phone"], "+491512345678", "{e}");
            break;
        }
    }
    assert!(
        seen.ends_with(&["qr_scanned".into(), "whatsapp_connected".into()]),
        "{seen:?}"
    );

    let (status, body) = s.double().enter_code("+491512345678", &code).await;
    assert_eq!(status, 404, "a used code links nothing: {body}");
    let (status, _) = ask(&s, &t, &id, "+4915123456789").await;
    assert_eq!(status, 409, "the bot is connected now");
    s.double().assert_never_two_sessions().await;
}

#[tokio::test]
async fn bad_phone_numbers_and_other_users_get_clear_answers() {
    let s = Server::start(&[]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Strict bot").await;
    for (phone, says) in [
        ("123", "has 3"),
        ("+1 555 CALL-NOW", "not 'C'"),
        ("", "Enter the phone number"),
    ] {
        let (status, body) = ask(&s, &t, &id, phone).await;
        assert_eq!(status, 400, "{phone}: {body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
    let path = format!("/api/bots/{id}/pairing-code");
    let (status, _) = s.call("POST", &path, Some(&t), Some(json!({}))).await;
    assert_eq!(status, 400, "no phone at all");
    assert_eq!(
        row(&s, &t, &id).await["status"],
        "created",
        "a refused number starts nothing"
    );

    let (other, _) = s.session().await;
    let (status, _) = ask(&s, &other, &id, "+15551234567").await;
    assert_eq!(status, 404, "another user's bot does not exist for you");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_code_replaces_the_old_one() {
    let s = Server::start(&[]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Twice").await;
    let first = ask(&s, &t, &id, "+15551234567").await.1;
    let second = ask(&s, &t, &id, "+15551234567").await.1;
    assert_ne!(first["code"], second["code"], "{first} {second}");
    // The phone cannot tell a wrong code when it is typed (the code only unwraps a key): the
    // double takes any eight characters then, so what is proven
    // here is that the new code is the one that links.
    let (status, body) = s
        .double()
        .enter_code("+15551234567", second["code"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{body}");
    until(&s, &t, &id, |r| r["status"] == "connected").await;
    let stats = s.double().stats().await;
    assert_eq!(stats["totals"]["logins"], 1, "{stats}");
    s.double().assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_code_keeps_its_pairing_open_after_the_last_qr_expired() {
    // whatsapp-rust's clocks 20 times faster: the connection's six QRs run out in 8 s.
    let s = Server::start(&["--whatsapp-time-divisor", "20"]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Slow typist").await;
    let (status, answer) = ask(&s, &t, &id, "+1 555 010 0300").await;
    assert_eq!(status, 200, "{answer}");
    let code = answer["code"].as_str().unwrap().to_owned();
    // Every QR of the connection runs out; the code does not.
    let t0 = Instant::now();
    loop {
        let r = row(&s, &t, &id).await;
        if r["pairing"]["attempt"] == 6 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "{r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        row(&s, &t, &id).await["status"],
        "pairing",
        "every QR expired, the code has not"
    );
    let (status, body) = s.double().enter_code("+15550100300", &code).await;
    assert_eq!(status, 200, "{body}");
    let r = until(&s, &t, &id, |r| r["status"] == "connected").await;
    assert_eq!(r["phone"], "+15550100300", "{r}");
    let stats = s.double().stats().await;
    assert_eq!(stats["totals"]["logins"], 1, "{stats}");
    s.double().assert_never_two_sessions().await;
}
