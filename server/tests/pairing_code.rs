//! botlink's pairing-code extension (docs/protocol.md): `POST /api/bots/{id}/pairing-code` and the
//! `/link/code` form where a phone enters the code, against the real binary.

mod common;
use common::{Server, Sio, auth};
use serde_json::json;

/// Posts the `/link/code` form as a phone's browser does.
async fn enter(s: &Server, code: &str) -> (u16, String) {
    let body = format!("code={}", code.replace('-', "%2D").replace(' ', "+"));
    let resp = reqwest::Client::new()
        .post(format!("{}/link/code", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("server answers");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_pairing_code_links_the_bot_like_a_scan_and_only_once() {
    let s = Server::start(&["--restart-ms", "20"]);
    let (t, user) = s.session().await;
    let id = s.bot(&t, "Phone bot").await;
    let (mut sio, _) = Sio::connect(&s, auth(&t, &user, &id)).await;

    let path = format!("/api/bots/{id}/pairing-code");
    let (status, answer) = s
        .call(
            "POST",
            &path,
            Some(&t),
            Some(json!({"phone": "+49 151 2345-678"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let code = answer["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8);
    assert!(
        code.bytes()
            .all(|b| b"ABCDEFGHJKMNPQRSTWXYZ23456789".contains(&b)),
        "no look-alike characters: {code}"
    );
    assert_eq!(answer["expiresInMs"], 180_000);
    let (_, bot) = s
        .call("GET", &format!("/api/bots/{id}"), Some(&t), None)
        .await;
    assert_eq!(
        bot["status"], "pairing",
        "asking for a code starts the pairing"
    );

    let page = reqwest::get(format!("{}/link/code", s.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(r#"name="code""#));

    // Typed as a person would: lower case, with the dash.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let (status, html) = enter(&s, &typed).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Linking Phone bot"), "{html}");
    let mut seen = Vec::new();
    while let Some(e) = sio.next_whatsapp().await {
        seen.push(e["type"].as_str().unwrap_or_default().to_owned());
        if seen.last().map(String::as_str) == Some("whatsapp_connected") {
            break;
        }
    }
    assert!(
        seen.ends_with(&["qr_scanned".into(), "whatsapp_connected".into()]),
        "{seen:?}"
    );

    let (status, html) = enter(&s, &code).await;
    assert_eq!(status, 410, "a used code links nothing: {html}");
    let (status, _) = s
        .call(
            "POST",
            &path,
            Some(&t),
            Some(json!({"phone": "+4915123456789"})),
        )
        .await;
    assert_eq!(status, 409, "the bot is connected now");
}

#[tokio::test]
async fn bad_phone_numbers_wrong_codes_and_other_users_get_clear_answers() {
    let s = Server::start(&[]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Strict bot").await;
    let path = format!("/api/bots/{id}/pairing-code");
    for (phone, says) in [
        ("123", "has 3"),
        ("+1 555 CALL-NOW", "not 'C'"),
        ("", "Enter the phone number"),
    ] {
        let (status, body) = s
            .call("POST", &path, Some(&t), Some(json!({ "phone": phone })))
            .await;
        assert_eq!(status, 400, "{phone}: {body}");
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, _) = s.call("POST", &path, Some(&t), Some(json!({}))).await;
    assert_eq!(status, 400, "no phone at all");

    let (other, _) = s.session().await;
    let (status, _) = s
        .call(
            "POST",
            &path,
            Some(&other),
            Some(json!({"phone": "+15551234567"})),
        )
        .await;
    assert_eq!(status, 404, "another user's bot does not exist for you");

    let (status, html) = enter(&s, "ABCD-EFGH").await;
    assert_eq!(status, 404);
    assert!(html.contains("not a valid pairing code"), "{html}");
    let (status, _) = enter(&s, "<script>").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_new_code_replaces_the_old_one() {
    let s = Server::start(&["--restart-ms", "20"]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Twice").await;
    let path = format!("/api/bots/{id}/pairing-code");
    let body = json!({"phone": "+15551234567"});
    let first = s.call("POST", &path, Some(&t), Some(body.clone())).await.1;
    let second = s.call("POST", &path, Some(&t), Some(body)).await.1;
    assert_ne!(first["code"], second["code"]);
    assert_eq!(
        enter(&s, first["code"].as_str().unwrap()).await.0,
        410,
        "replaced"
    );
    assert_eq!(enter(&s, second["code"].as_str().unwrap()).await.0, 200);
}

#[tokio::test]
async fn a_valid_code_keeps_its_pairing_open_after_the_last_qr_expired() {
    let s = Server::start(&[
        "--qr-first-ms",
        "100",
        "--qr-next-ms",
        "100",
        "--qr-count",
        "2",
        "--restart-ms",
        "20",
    ]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Slow typist").await;
    let (_, answer) = s
        .call(
            "POST",
            &format!("/api/bots/{id}/pairing-code"),
            Some(&t),
            Some(json!({"phone": "+15551234567"})),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, bot) = s
        .call("GET", &format!("/api/bots/{id}"), Some(&t), None)
        .await;
    assert_eq!(
        bot["status"], "pairing",
        "both QRs expired, the code has not"
    );
    let (status, html) = enter(&s, answer["code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{html}");
}
