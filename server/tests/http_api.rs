//! PROTOCOL.md §1 and §8 over HTTP, against the real binary.

mod common;
use common::Server;
use serde_json::json;

#[tokio::test]
async fn a_refresh_replaces_the_token_the_old_one_stops_working_and_a_retry_is_no_logout() {
    let s = Server::start(&[]);
    let (t1, user) = s.session().await;
    let (status, fresh) = s.call("POST", "/api/auth/refresh", Some(&t1), None).await;
    assert_eq!(status, 200);
    assert_eq!(fresh["userId"], user.as_str());
    let t2 = fresh["token"].as_str().unwrap();
    assert_ne!(t1, t2);
    assert!(fresh["expiresAt"].as_str().unwrap().ends_with('Z'));
    let (status, body) = s.call("GET", "/api/bots", Some(&t1), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token_expired"))
    );
    assert_eq!(s.call("GET", "/api/bots", Some(t2), None).await.0, 200);
    // The client lost the answer and retries: a new token, not a logout (docs/protocol.md).
    let (status, again) = s.call("POST", "/api/auth/refresh", Some(&t1), None).await;
    assert_eq!(
        (status, again["userId"].as_str()),
        (200, Some(user.as_str()))
    );
    let t3 = again["token"].as_str().unwrap();
    assert_ne!(t3, t2);
    assert_eq!(s.call("GET", "/api/bots", Some(t3), None).await.0, 200);
    assert_eq!(s.call("GET", "/api/bots", Some(t2), None).await.0, 200);
    // A revoked session cannot be traded, by its old token or its new.
    assert_eq!(
        s.call("POST", "/api/dev/tokens/revoke", Some(t3), None)
            .await
            .0,
        204
    );
    let (status, body) = s.call("POST", "/api/auth/refresh", Some(&t1), None).await;
    assert_eq!((status, body["error"].is_string()), (401, true));
}

#[tokio::test]
async fn a_session_can_name_its_user_and_bad_names_are_refused() {
    let s = Server::start(&[]);
    let (status, body) = s
        .call(
            "POST",
            "/api/auth/session",
            None,
            Some(json!({"userId": "u1"})),
        )
        .await;
    assert_eq!((status, body["userId"].as_str()), (200, Some("u1")));
    let (status, body) = s
        .call(
            "POST",
            "/api/auth/session",
            None,
            Some(json!({"userId": "../../etc"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = s
        .call(
            "POST",
            "/api/auth/session",
            None,
            Some(json!({"userId": 5})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bots_are_created_listed_read_and_deleted() {
    let s = Server::start(&[]);
    let (t, _) = s.session().await;
    let (status, bot) = s
        .call(
            "POST",
            "/api/bots",
            Some(&t),
            Some(json!({"name": "  Support bot  "})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(bot["name"], "Support bot", "trimmed");
    assert_eq!(bot["status"], "created");
    assert_eq!(bot["phone"], serde_json::Value::Null);
    assert_eq!(bot["messages"], 0);
    assert_eq!(bot["pairing"], serde_json::Value::Null);
    let id = bot["id"].as_str().unwrap();
    let (status, list) = s.call("GET", "/api/bots", Some(&t), None).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    assert_eq!(
        s.call("GET", &format!("/api/bots/{id}"), Some(&t), None)
            .await
            .0,
        200
    );
    assert_eq!(
        s.call("DELETE", &format!("/api/bots/{id}"), Some(&t), None)
            .await
            .0,
        204
    );
    assert_eq!(
        s.call("GET", &format!("/api/bots/{id}"), Some(&t), None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call("DELETE", &format!("/api/bots/{id}"), Some(&t), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn names_must_be_1_to_64_characters_after_trimming() {
    let s = Server::start(&[]);
    let (t, _) = s.session().await;
    for bad in ["", "   ", &"é".repeat(65)] {
        let (status, body) = s
            .call("POST", "/api/bots", Some(&t), Some(json!({"name": bad})))
            .await;
        assert_eq!(status, 400, "{bad:?}");
        assert!(body["error"].is_string());
    }
    assert_eq!(
        s.call(
            "POST",
            "/api/bots",
            Some(&t),
            Some(json!({"name": "é".repeat(64)}))
        )
        .await
        .0,
        201
    );
}

#[tokio::test]
async fn another_users_bot_does_not_exist_for_you() {
    let s = Server::start(&[]);
    let (alice, _) = s.session().await;
    let (bob, _) = s.session().await;
    let id = s.bot(&alice, "Alice's bot").await;
    for (method, path) in [
        ("GET", format!("/api/bots/{id}")),
        ("DELETE", format!("/api/bots/{id}")),
        ("POST", format!("/api/bots/{id}/qr")),
        ("POST", format!("/api/bots/{id}/logout")),
        ("POST", format!("/api/dev/bots/{id}/emit")),
    ] {
        let body = (path.ends_with("emit")).then(|| {
            json!({"event": "whatsapp_connection_event",
                   "data": {"type": "connection_failed", "botId": id, "code": 440}})
        });
        assert_eq!(
            s.call(method, &path, Some(&bob), body).await.0,
            404,
            "{method} {path}"
        );
    }
    assert_eq!(
        s.call("GET", "/api/bots", Some(&bob), None).await.1,
        json!([])
    );
    assert_eq!(
        s.call("GET", &format!("/api/bots/{id}"), Some(&alice), None)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_starts_or_joins_the_one_pairing_and_409_once_connected() {
    let s = Server::start(&[]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Pair").await;
    let (status, first) = s
        .call("POST", &format!("/api/bots/{id}/qr"), Some(&t), None)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["attempt"].as_u64(), first["attempts"].as_u64()),
        (Some(1), Some(6))
    );
    // WhatsApp's first QR lives 60 s; the answer says what is left of it.
    let expires = first["expiresInMs"].as_u64().unwrap();
    assert!((50_000..=60_000).contains(&expires), "{first}");
    let (_, again) = s
        .call("POST", &format!("/api/bots/{id}/qr"), Some(&t), None)
        .await;
    assert_eq!(first["qr"], again["qr"], "joined, not restarted");
    assert_eq!(again["attempt"], 1);
    let stats = s.stats().await;
    assert_eq!(
        (&stats["whatsappClientsStarted"], &stats["pairingsStarted"]),
        (&json!(1), &json!(1)),
        "{stats}"
    );
    let (_, bot) = s
        .call("GET", &format!("/api/bots/{id}"), Some(&t), None)
        .await;
    assert_eq!(bot["status"], "pairing");
    assert_eq!(bot["pairing"]["qr"], first["qr"]);

    let linked = s
        .double()
        .scan(first["qr"].as_str().unwrap(), Some("+1 555 010 0300"))
        .await;
    let bot = until(&s, &t, &id, |b| b["status"] == "connected").await;
    assert_eq!(bot["phone"], linked["phone"]);
    assert_eq!(bot["phone"], "+15550100300");
    let (status, body) = s
        .call("POST", &format!("/api/bots/{id}/qr"), Some(&t), None)
        .await;
    assert_eq!(status, 409, "{body}");

    assert_eq!(
        s.call("POST", &format!("/api/bots/{id}/logout"), Some(&t), None)
            .await
            .0,
        204
    );
    let (_, bot) = s
        .call("GET", &format!("/api/bots/{id}"), Some(&t), None)
        .await;
    assert_eq!(
        (bot["status"].as_str(), &bot["phone"]),
        (Some("logged_out"), &serde_json::Value::Null)
    );
    s.double().assert_never_two_sessions().await;
}

/// Waits (bounded: 30 s) until the bot's row satisfies `done`; returns the row.
async fn until(
    s: &Server,
    token: &str,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t0 = std::time::Instant::now();
    loop {
        let (_, row) = s
            .call("GET", &format!("/api/bots/{id}"), Some(token), None)
            .await;
        if done(&row) {
            return row;
        }
        assert!(t0.elapsed().as_secs() < 30, "not within 30 s: {row}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bad_requests_get_contract_errors_not_crashes() {
    let s = Server::start(&[]);
    let (t, _) = s.session().await;
    let client = reqwest::Client::new();
    let post = |body: String, ct: &'static str| {
        client
            .post(format!("{}/api/bots", s.url))
            .bearer_auth(&t)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    for (body, ct, want) in [
        ("{not json".to_string(), "application/json", 400),
        (r#"{"name": 5}"#.to_string(), "application/json", 400),
        ("null".to_string(), "application/json", 400),
        (r#""a string""#.to_string(), "application/json", 400),
        (r#"{"name": "ok"}"#.to_string(), "text/plain", 400),
        (
            format!(r#"{{"name": "{}"}}"#, "x".repeat(20_000)),
            "application/json",
            413,
        ),
    ] {
        let resp = post(body, ct).await.unwrap();
        assert_eq!(resp.status().as_u16(), want);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert!(v["error"].is_string(), "{v}");
    }
    assert_eq!(s.call("GET", "/api/bots", None, None).await.0, 401);
    assert_eq!(
        s.call("GET", "/api/bots", Some("garbage"), None).await.0,
        401
    );
    assert_eq!(
        s.call("GET", "/api/bots/..%2F..%2Fetc", Some(&t), None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call(
            "GET",
            &format!("/api/bots/{}", "a".repeat(500)),
            Some(&t),
            None
        )
        .await
        .0,
        404
    );
    let (status, body) = s.call("GET", "/api/nothing-here", Some(&t), None).await;
    assert_eq!((status, body["error"].is_string()), (404, true));
    // Still alive.
    assert_eq!(s.call("GET", "/api/health", None, None).await.0, 200);
}

#[tokio::test]
async fn dev_mode_admits_loopback_origins_only() {
    let s = Server::start(&[]);
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}/api/bots", s.url))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let ok = preflight("http://127.0.0.1:5555").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5555"
    );
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "no cookies"
    );
    let evil = preflight("http://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn production_has_no_dev_extras_and_mints_sessions_by_command() {
    let dir = std::env::temp_dir().join(format!("botlink-prod-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("prod.db");
    let db = db.to_str().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_botlink-server"))
        .args(["--db", db, "token", "create", "--user", "ops"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.len(), 32, "128 bits in hex");

    let s = Server::start_with_db(
        db,
        &["--production", "--allow-origin", "https://app.example"],
    );
    assert_eq!(s.call("POST", "/api/auth/session", None, None).await.0, 404);
    assert_eq!(s.call("GET", "/api/dev/stats", None, None).await.0, 404);
    assert_eq!(
        s.call("POST", "/api/dev/tokens/expire", Some(&token), None)
            .await
            .0,
        404
    );
    assert_eq!(s.call("GET", "/api/bots", Some(&token), None).await.0, 200);
    let client = reqwest::Client::new();
    let origin = |o: &'static str| {
        client
            .get(format!("{}/api/health", s.url))
            .header("origin", o)
            .send()
    };
    let allowed = origin("https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let loopback = origin("http://127.0.0.1:8080").await.unwrap();
    assert!(
        loopback
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_restart_on_the_same_database_keeps_bots_and_sessions() {
    let dir = std::env::temp_dir().join(format!("botlink-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("restart.db");
    let db = db.to_str().unwrap();
    let s = Server::start_with_db(db, &[]);
    let (t, _) = s.session().await;
    let id = s.bot(&t, "Durable").await;
    s.kill();
    let s = Server::start_with_db(db, &[]);
    let (status, bot) = s
        .call("GET", &format!("/api/bots/{id}"), Some(&t), None)
        .await;
    assert_eq!(status, 200, "the session survived");
    assert_eq!(bot["name"], "Durable");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn qr_requests_beyond_the_limit_get_429_with_retry_after() {
    let s = Server::start(&[]); // the default: 60 a minute
    let (stormy, _) = s.session().await;
    let (calm, _) = s.session().await;
    let bot = s.bot(&stormy, "Stormy").await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/bots/{bot}/qr", s.url);
    for i in 0..60 {
        let resp = client.post(&url).bearer_auth(&stormy).send().await.unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
    }
    let resp = client.post(&url).bearer_auth(&stormy).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
    let calm_bot = s.bot(&calm, "Calm").await;
    assert_eq!(
        s.call(
            "POST",
            &format!("/api/bots/{calm_bot}/qr"),
            Some(&calm),
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn kill_9_while_creating_bots_loses_none_that_were_acknowledged() {
    let dir = std::env::temp_dir().join(format!("botlink-kill9-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("kill9.db");
    let db = db.to_str().unwrap();
    let s = Server::start_with_db(db, &[]);
    let (t, _) = s.session().await;
    let url = s.url.clone();
    // Two clients create bots as fast as they can; the server is killed in the middle.
    let mut loops = Vec::new();
    for worker in 0..2 {
        let (url, t) = (url.clone(), t.clone());
        loops.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for i in 0..10_000 {
                let resp = client
                    .post(format!("{url}/api/bots"))
                    .bearer_auth(&t)
                    .json(&json!({"name": format!("bot {worker}-{i}")}))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 201 => {
                        let bot: serde_json::Value = r.json().await.unwrap_or_default();
                        if let Some(id) = bot["id"].as_str() {
                            acknowledged.push(id.to_owned());
                        }
                    }
                    _ => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    s.kill(); // SIGKILL: no shutdown, no checkpoint
    let mut acknowledged = Vec::new();
    for l in loops {
        acknowledged.extend(l.await.unwrap());
    }
    assert!(
        acknowledged.len() > 10,
        "the loop ran: {}",
        acknowledged.len()
    );

    let s = Server::start_with_db(db, &[]);
    let (status, list) = s.call("GET", "/api/bots", Some(&t), None).await;
    assert_eq!(
        status, 200,
        "the database opened cleanly and the session survived"
    );
    let stored: std::collections::HashSet<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged bots lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The database refuses one kind of write from now on (a trigger on the server's own file).
fn refuse(db: &std::path::Path, what: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "CREATE TRIGGER refuse BEFORE {what} ON bots BEGIN SELECT RAISE(FAIL, 'disk on fire'); END;"
    ))
    .unwrap();
}

#[tokio::test]
async fn a_logout_whose_status_was_not_stored_is_no_success() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("botlink.db");
    let s = Server::start_with_db(db.to_str().unwrap(), &[]);
    let (t, _) = s.session().await;
    let bot = s.bot(&t, "Support").await;
    refuse(&db, "UPDATE OF status");
    let (status, body) = s
        .call("POST", &format!("/api/bots/{bot}/logout"), Some(&t), None)
        .await;
    assert_eq!((status, body["error"].is_string()), (500, true), "{body}");
    let (_, row) = s
        .call("GET", &format!("/api/bots/{bot}"), Some(&t), None)
        .await;
    assert_eq!(row["status"], "created", "nothing stored, and none claimed");
}

#[tokio::test]
async fn a_delete_the_database_refused_unlinks_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("botlink.db");
    let s = Server::start_with_db(db.to_str().unwrap(), &[]);
    let (t, _) = s.session().await;
    let bot = s.bot(&t, "Support").await;
    let (status, _) = s
        .call("POST", &format!("/api/bots/{bot}/qr"), Some(&t), None)
        .await;
    assert_eq!(status, 200);
    refuse(&db, "DELETE");
    let (status, body) = s
        .call("DELETE", &format!("/api/bots/{bot}"), Some(&t), None)
        .await;
    assert_eq!((status, body["error"].is_string()), (500, true), "{body}");
    let (status, row) = s
        .call("GET", &format!("/api/bots/{bot}"), Some(&t), None)
        .await;
    assert_eq!(status, 200, "the bot is still there");
    assert_eq!(
        row["status"], "pairing",
        "and its pairing still runs: {row}"
    );
    assert!(row["pairing"].is_object(), "{row}");
}
