//! The cluster suite: three botlink-server nodes behind HAProxy, on PostgreSQL and Redis, all real
//! processes on loopback. Every rule of the contract holds across nodes; the witnesses are the
//! counters summed over the nodes (`/api/dev/stats/cluster`). Run by `scripts/cluster-test`.

mod cluster_support;
mod common;

use cluster_support::{Cluster, eventually};
use common::{Server, Sio, auth};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A session and a bot, made through the load balancer.
async fn user_with_bot(c: &Cluster) -> (String, String, String) {
    let (token, user) = c.lb.session().await;
    let bot = c.lb.bot(&token, "Cluster").await;
    (token, user, bot)
}

async fn start_qr(node: &Server, token: &str, bot: &str) -> (u16, Value) {
    node.call("POST", &format!("/api/bots/{bot}/qr"), Some(token), None)
        .await
}

/// The ref of a QR link (`<public-url>/link/<ref>`).
fn qr_ref(pairing: &Value) -> String {
    let qr = pairing["qr"].as_str().expect("a qr");
    qr.rsplit('/').next().unwrap().to_owned()
}

async fn scan(node: &Server, qr_ref: &str) -> u16 {
    node.call("POST", &format!("/link/{qr_ref}"), None, None)
        .await
        .0
}

fn user_counter(sum: &Value, user: &str, field: &str) -> u64 {
    sum["perUser"][user][field].as_u64().unwrap_or(0)
}

/// The call is answered `503` with `Retry-After` (not 401: the session is not over).
async fn unavailable(node: &Server, method: &str, path: &str, token: &str) {
    let resp = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", node.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status(), 503, "{method} {path}");
    assert!(
        resp.headers().get("retry-after").is_some(),
        "with Retry-After"
    );
}

/// Whether the socket is told `41` (replaced) within `within`; events before it are skipped.
async fn told_to_go(sio: &mut Sio, within: Duration) -> bool {
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, sio.next_socket_packet()).await {
            Ok(Some(p)) if p == "41" => return true,
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn the_newer_socket_wins_across_nodes_and_simultaneous_connects_leave_one() {
    let c = Cluster::start(&[]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (mut first, ok) = Sio::connect(c.node(0), auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    let (_second, ok) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    assert!(
        told_to_go(&mut first, Duration::from_secs(3)).await,
        "the older socket gets 41"
    );
    c.until_sum("one replaced, one open", |s| {
        user_counter(s, &user, "replaced") == 1 && user_counter(s, &user, "open") == 1
    })
    .await;

    // 20 rounds, each a user whose two sockets CONNECT at the same moment on two nodes.
    let mut rounds = Vec::new();
    for round in 0..20 {
        let (token, user) = c.lb.session().await;
        let (a, b) = (c.node(round % 3), c.node((round + 1) % 3));
        let ((mut x, _), (mut y, _)) = tokio::join!(Sio::open(a), Sio::open(b));
        let connect = format!("40{}", json!({"token": token}));
        tokio::join!(x.send(&connect), y.send(&connect));
        rounds.push((user, x, y));
    }
    let mut checks = Vec::new();
    for (user, mut x, mut y) in rounds {
        checks.push(tokio::spawn(async move {
            let _ = (x.next_socket_packet().await, y.next_socket_packet().await);
            let (gone_x, gone_y) = tokio::join!(
                told_to_go(&mut x, Duration::from_secs(2)),
                told_to_go(&mut y, Duration::from_secs(2))
            );
            assert!(
                gone_x != gone_y,
                "{user}: exactly one of the two goes ({gone_x}, {gone_y})"
            );
            // Both are kept open until the counters are read: a dropped one would close.
            (user, x, y)
        }));
    }
    let mut kept = Vec::new();
    for check in checks {
        kept.push(check.await.expect("a round"));
    }
    let users: Vec<_> = kept.iter().map(|(user, ..)| user.clone()).collect();
    c.until_sum("each round leaves one socket", |s| {
        users.iter().all(|u| {
            user_counter(s, u, "opened") == 2
                && user_counter(s, u, "open") == 1
                && user_counter(s, u, "replaced") == 1
        })
    })
    .await;
}

#[tokio::test]
async fn thirty_concurrent_qr_requests_over_three_nodes_start_one_pairing() {
    let c = Cluster::start(&[]).await;
    let (token, _, bot) = user_with_bot(&c).await;
    let mut calls = Vec::new();
    for i in 0..30 {
        let url = c.node(i % 3).url.clone();
        let (token, bot) = (token.clone(), bot.clone());
        calls.push(tokio::spawn(async move {
            start_qr(&Server::at(url), &token, &bot).await
        }));
    }
    let mut qrs = std::collections::BTreeSet::new();
    for call in calls {
        let (status, pairing) = call.await.unwrap();
        assert_eq!(status, 200, "{pairing}");
        qrs.insert(pairing["qr"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        qrs.len(),
        1,
        "every answer shows the one pairing's QR: {qrs:?}"
    );
    let sum = c
        .until_sum("one pairing, driven by one node", |s| {
            s["pairingsDriven"] == 1
        })
        .await;
    assert_eq!(sum["pairingsStarted"], 1, "{sum:#}");
}

#[tokio::test]
async fn scan_socket_and_pairing_on_three_nodes_deliver_the_events_in_order() {
    let c = Cluster::start(&["--restart-ms", "300"]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (status, pairing) = start_qr(c.node(2), &token, &bot).await;
    assert_eq!(status, 200, "{pairing}");
    let (_, node3) = c.node(2).call("GET", "/api/dev/stats", None, None).await;
    assert_eq!(node3["pairingsDriven"], 1, "node 3 owns the pairing");
    let (mut sio, ok) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    let replay = sio.next_whatsapp().await.expect("the replay");
    assert_eq!(
        (replay["type"].as_str(), replay["attempt"].as_u64()),
        (Some("qr_updated"), Some(1))
    );
    assert_eq!(scan(c.node(0), &qr_ref(&pairing)).await, 200);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let (name, payload) = sio.next_event().await.expect("an event");
        let what = payload["type"]
            .as_str()
            .or(payload["status"].as_str())
            .unwrap()
            .to_owned();
        seen.push(format!("{name}:{what}"));
    }
    assert_eq!(
        seen,
        [
            "whatsapp_connection_event:qr_scanned",
            "whatsapp_connection_event:whatsapp_connected",
            "bot_status_update:connected"
        ]
    );
    let (_, b) =
        c.lb.call("GET", &format!("/api/bots/{bot}"), Some(&token), None)
            .await;
    assert_eq!(
        (b["status"].as_str(), b["pairing"].is_null()),
        (Some("connected"), true)
    );
}

#[tokio::test]
async fn rate_limits_are_per_user_across_the_cluster() {
    let c = Cluster::start(&["--qr-limit-per-min", "5", "--connect-limit-per-min", "4"]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    for i in 0..5 {
        assert_eq!(
            start_qr(c.node(i % 3), &token, &bot).await.0,
            200,
            "request {i}"
        );
    }
    for i in 0..3 {
        let (status, body) = start_qr(c.node(i), &token, &bot).await;
        assert_eq!(status, 429, "node {}: {body}", i + 1);
    }
    let (other, _, other_bot) = user_with_bot(&c).await;
    assert_eq!(
        start_qr(c.node(0), &other, &other_bot).await.0,
        200,
        "another user is not affected"
    );
    for i in 0..4 {
        let (_s, ok) = Sio::connect(c.node(i % 3), auth(&token, &user, &bot)).await;
        assert!(ok.starts_with("40"), "connect {i}: {ok}");
    }
    for i in 0..3 {
        let (_s, refused) = Sio::connect(c.node(i), auth(&token, &user, &bot)).await;
        assert!(
            refused.starts_with("44") && refused.contains("rate_limited"),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn a_killed_owners_pairing_is_adopted_by_one_node_within_5_s_and_links() {
    let c = Cluster::start(&[
        "--qr-first-ms",
        "1500",
        "--qr-next-ms",
        "1500",
        "--qr-count",
        "30",
        "--restart-ms",
        "200",
    ])
    .await;
    let mut c = c;
    let (token, user, bot) = user_with_bot(&c).await;
    assert_eq!(start_qr(c.node(0), &token, &bot).await.0, 200);
    let (mut sio, ok) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    let mut attempts = vec![
        sio.next_whatsapp().await.expect("the replay")["attempt"]
            .as_u64()
            .unwrap(),
    ];
    // Right after a rotation, so none is half done when the owner dies.
    let next = sio.next_whatsapp().await.expect("a rotation");
    attempts.push(next["attempt"].as_u64().unwrap());
    c.nodes[0].take().expect("node 1").kill();
    let killed = Instant::now();
    let sum = eventually("adopted", Duration::from_secs(5), || async {
        let s = c.sum().await;
        (s["pairingsAdopted"] == 1 && s["pairingsDriven"] == 1).then_some(s)
    })
    .await;
    let adopted_after = killed.elapsed();
    assert!(adopted_after < Duration::from_secs(5), "{adopted_after:?}");
    let owners: Vec<_> = sum["nodes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n["pairingsDriven"] == 1)
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(owners.len(), 1, "exactly one node drives it: {sum:#}");
    // The numbering goes on: no QR shown twice, none skipped.
    let mut last = None;
    while attempts.len() < 5 {
        let e = sio.next_whatsapp().await.expect("the next QR");
        assert_eq!(e["type"], "qr_updated", "{e}");
        attempts.push(e["attempt"].as_u64().unwrap());
        last = Some(e);
    }
    let first = attempts[0];
    assert_eq!(
        attempts,
        (first..first + 5).collect::<Vec<_>>(),
        "attempts continue"
    );
    assert_eq!(
        scan(&c.lb, &qr_ref(&last.unwrap())).await,
        200,
        "a scan after failover links"
    );
    assert_eq!(sio.next_whatsapp().await.unwrap()["type"], "qr_scanned");
    assert_eq!(
        sio.next_whatsapp().await.unwrap()["type"],
        "whatsapp_connected"
    );
    println!("pairing adopted {adopted_after:?} after its node was killed");
}

#[tokio::test]
async fn the_app_reconnects_through_haproxy_when_its_sockets_node_dies() {
    let mut c = Cluster::start(&[]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (mut sio, ok) = Sio::connect(&c.lb, auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    let holder = eventually("the socket's node", Duration::from_secs(5), || async {
        let s = c.sum().await;
        s["nodes"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, n)| n["socketsOpen"] == 1)
            .map(|(k, _)| k.trim_start_matches("node").parse::<usize>().unwrap() - 1)
    })
    .await;
    let owner = (holder + 1) % 3;
    let (_, pairing) = start_qr(c.node(owner), &token, &bot).await;
    assert_eq!(
        sio.next_event().await.expect("status").0,
        "bot_status_update"
    );
    c.nodes[holder].take().unwrap().kill();
    // Events already on their way (the pairing's first QR) may come first; then it closes.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while sio.next_socket_packet().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the socket closed with its node");
    c.until_balanced().await;
    let (mut again, ok) = Sio::connect(&c.lb, auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    let replay = again.next_whatsapp().await.expect("the current QR");
    assert_eq!(replay["type"], "qr_updated");
    assert_eq!(
        replay["qr"], pairing["qr"],
        "the same QR, from another node"
    );
}

#[tokio::test]
async fn a_sigterm_drain_hands_the_pairings_over_and_closes_transports_without_41() {
    let mut c = Cluster::start(&[]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    assert_eq!(start_qr(c.node(0), &token, &bot).await.0, 200);
    let (mut sio, ok) = Sio::connect(c.node(0), auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    assert_eq!(sio.next_whatsapp().await.unwrap()["attempt"], 1);
    let drained = Instant::now();
    let status = c.nodes[0].take().unwrap().terminate();
    assert!(status.success(), "the node stops cleanly: {status}");
    let mut packets = Vec::new();
    while let Some(p) = sio.next_socket_packet().await {
        packets.push(p);
    }
    assert!(
        !packets.iter().any(|p| p == "41"),
        "no 41: the app reconnects ({packets:?})"
    );
    // The drained node's counters leave the sum as it stops: the one pairing counted is the
    // adopted one, not the drained node's last published figure.
    let sum = c
        .until_sum("adopted", |s| {
            s["pairingsDriven"] == 1 && s["pairingsAdopted"] == 1
        })
        .await;
    assert!(sum["nodes"].get("node1").is_none(), "{sum:#}");
    let handed_over = drained.elapsed();
    assert!(
        handed_over < Duration::from_millis(2_500),
        "handed over in {handed_over:?}"
    );
    let (mut again, ok) = Sio::connect(&c.lb, auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    assert_eq!(
        again.next_whatsapp().await.unwrap()["attempt"],
        1,
        "the same pairing goes on"
    );
}

#[tokio::test]
async fn redis_down_refuses_for_now_and_after_its_restart_service_resumes() {
    let mut c = Cluster::start(&["--restart-ms", "200"]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (_, pairing) = start_qr(c.node(0), &token, &bot).await;
    let (mut sio, _) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    assert_eq!(sio.next_whatsapp().await.unwrap()["type"], "qr_updated");

    c.redis.stop();
    let (_s, refused) = Sio::connect(c.node(2), auth(&token, &user, &bot)).await;
    assert!(
        refused.contains("rate_limited"),
        "the one refusal the app retries: {refused}"
    );
    unavailable(c.node(2), "POST", &format!("/api/bots/{bot}/qr"), &token).await;

    c.redis.start_again();
    // The nodes reconnect (every 500 ms) and subscribe again. Then CONNECTs work, and an event
    // made on node 3 reaches a socket on node 2: a 515 (the pairing goes on) until one arrives.
    let mut fresh = eventually("CONNECT works again", Duration::from_secs(10), || async {
        let (s, ok) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
        ok.starts_with("40").then_some(s)
    })
    .await;
    assert_eq!(fresh.next_whatsapp().await.unwrap()["type"], "qr_updated");
    let back = Instant::now();
    loop {
        let fail = json!({"code": 515});
        let path = format!("/api/dev/bots/{bot}/fail");
        c.node(2)
            .call("POST", &path, Some(&token), Some(fail))
            .await;
        match tokio::time::timeout(Duration::from_millis(300), fresh.next_whatsapp()).await {
            Ok(Some(e)) if e["type"] == "connection_failed" => break,
            _ => assert!(
                back.elapsed() < Duration::from_secs(10),
                "events never crossed nodes again"
            ),
        }
    }
    // Any other 515s still on their way are read before the scan's events.
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_millis(500), fresh.next_whatsapp()).await
    {
        assert_eq!(e["type"], "connection_failed", "{e}");
    }
    assert_eq!(scan(c.node(2), &qr_ref(&pairing)).await, 200);
    assert_eq!(fresh.next_whatsapp().await.unwrap()["type"], "qr_scanned");
    assert_eq!(
        fresh.next_whatsapp().await.unwrap()["type"],
        "whatsapp_connected"
    );
}

#[tokio::test]
async fn postgres_down_answers_503_and_after_its_restart_nothing_is_lost() {
    let c = Cluster::start(&[
        "--qr-first-ms",
        "2000",
        "--qr-next-ms",
        "2000",
        "--qr-count",
        "30",
    ])
    .await;
    let (token, user, bot) = user_with_bot(&c).await;
    assert_eq!(start_qr(c.node(0), &token, &bot).await.0, 200);
    let (mut sio, _) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    let first = sio.next_whatsapp().await.unwrap()["attempt"]
        .as_u64()
        .unwrap();

    c.pg.stop();
    unavailable(c.node(2), "GET", "/api/bots", &token).await;
    let (_s, refused) = Sio::connect(c.node(2), auth(&token, &user, &bot)).await;
    assert!(refused.contains("rate_limited"), "{refused}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    c.pg.start_again();

    let bots = eventually("PostgreSQL back", Duration::from_secs(10), || async {
        let (s, v) = c.lb.call("GET", "/api/bots", Some(&token), None).await;
        (s == 200).then_some(v)
    })
    .await;
    assert_eq!(bots[0]["id"], bot.as_str(), "the bot is still there");
    // The pairing went on: its next QRs keep counting from where they were.
    let mut seen = vec![first];
    while seen.len() < 3 {
        let e = sio.next_whatsapp().await.expect("the next QR");
        seen.push(e["attempt"].as_u64().unwrap());
    }
    assert!(seen.windows(2).all(|w| w[1] == w[0] + 1), "{seen:?}");
}

/// What `/api/dev/stats` of node `i` says of the real link's clients.
#[cfg(feature = "whatsapp-double")]
async fn clients_started(c: &Cluster, i: usize) -> u64 {
    c.node(i).stats().await["whatsappClientsStarted"]
        .as_u64()
        .unwrap_or(0)
}

/// The real link in a cluster, through the WhatsApp double: a test build of the nodes
/// (`--features cluster-suite,whatsapp-double`, in target/double; scripts/cluster-test runs it),
/// each node's real whatsapp-rust client against the double, the double's phone scanning the QR
/// the app would show. The double is the witness that no device ever had two connections open.
#[cfg(feature = "whatsapp-double")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_link_a_bots_session_is_pinned_to_its_node_and_a_gone_node_is_said_until_it_returns() {
    let double = wa_double::start(wa_double::Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: None,
    })
    .await
    .expect("the double starts");
    let witness = || double.double.world().witness.snapshot();
    let mut c = Cluster::start(&["--link", "whatsapp", "--whatsapp-url", &double.ws_url]).await;
    let (token, _, bot) = user_with_bot(&c).await;
    let (status, pairing) = start_qr(c.node(0), &token, &bot).await;
    assert_eq!(status, 200, "{pairing}");
    // Asked on another node, node 1 answers: it holds the bot's device; no second client.
    let (status, again) = start_qr(c.node(1), &token, &bot).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["qr"], pairing["qr"], "the same pairing");
    // A request that only claims to be passed on by a node is passed on all the same: the node
    // that does not hold the device never answers for it (it would say "try again").
    let (status, forged) = c
        .node(2)
        .call_with_header(
            "POST",
            &format!("/api/bots/{bot}/qr"),
            Some(&token),
            ("x-botlink-forwarded-by", "node1"),
        )
        .await;
    assert_eq!((status, &forged["qr"]), (200, &pairing["qr"]), "{forged}");
    assert_eq!(
        (
            clients_started(&c, 0).await,
            clients_started(&c, 1).await,
            clients_started(&c, 2).await
        ),
        (1, 0, 0),
        "one client, on node 1"
    );
    // The phone scans the QR: the device is linked, by the real path (no hand-written hold).
    assert_eq!(witness().totals.qrs_offered, 6);
    let (status, linked) = Server::at(double.url.clone())
        .call(
            "POST",
            "/admin/scan",
            None,
            Some(json!({"qr": pairing["qr"]})),
        )
        .await;
    assert_eq!(status, 200, "{linked}");
    eventually("the bot connected", Duration::from_secs(20), || async {
        let (_, row) =
            c.lb.call("GET", &format!("/api/bots/{bot}"), Some(&token), None)
                .await;
        (row["status"] == "connected").then_some(())
    })
    .await;
    assert_eq!(witness().totals.logins, 1);
    c.nodes[0].take().unwrap().kill();
    let killed = Instant::now();
    let row = eventually(
        "the bot says its node stopped",
        Duration::from_secs(6),
        || async {
            let (_, row) =
                c.lb.call("GET", &format!("/api/bots/{bot}"), Some(&token), None)
                    .await;
            let reason = row["statusReason"].as_str().unwrap_or_default();
            reason.contains("(node1) stopped").then_some(row)
        },
    )
    .await;
    assert_eq!(row["status"], "disconnected", "{row}");
    println!("told {:?} after its node was killed", killed.elapsed());
    // Its device is node 1's: no other node starts a client for it meanwhile.
    let (status, body) = start_qr(c.node(2), &token, &bot).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("has stopped"),
        "{body}"
    );
    assert_eq!(clients_started(&c, 2).await, 0);
    assert_eq!(
        witness().totals.handshakes,
        2,
        "no other node connected the device"
    );
    // Node 1 returns (its name, its directory): it resumes the device, one login more.
    c.nodes[0] = Some(c.start_node(0));
    c.until_balanced().await;
    eventually("the resumed login", Duration::from_secs(10), || async {
        (witness().totals.logins == 2).then_some(())
    })
    .await;
    eventually(
        "the bot connected again",
        Duration::from_secs(10),
        || async {
            let (_, row) =
                c.lb.call("GET", &format!("/api/bots/{bot}"), Some(&token), None)
                    .await;
            (row["status"] == "connected").then_some(())
        },
    )
    .await;
    assert_eq!(
        (clients_started(&c, 0).await, clients_started(&c, 2).await),
        (1, 0),
        "the returned node runs it"
    );
    let s = witness();
    assert!(
        s.totals.most_open_at_once <= 1,
        "two connections of one device: {s:?}"
    );
}
