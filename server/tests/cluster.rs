//! The cluster suite: three botlink-server nodes behind HAProxy, on PostgreSQL and Redis, all real
//! processes on loopback. Every rule of the contract holds across nodes; the witnesses are the
//! counters summed over the nodes (`/api/dev/stats/cluster`) and the WhatsApp double every node
//! links through (a test build of the nodes, `--features cluster-suite,whatsapp-double`, in
//! target/double): its phone scans, and it counts every connection of every device. Run by
//! `scripts/cluster-test`.

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

/// The double's phone scans the QR of `pairing` (an answer or a `qr_updated` event).
async fn scan(c: &Cluster, pairing: &Value) -> Value {
    c.double
        .scan(pairing["qr"].as_str().expect("a qr"), None)
        .await
}

/// What `/api/dev/stats` of node `i` says of the real link's clients.
async fn clients_started(c: &Cluster, i: usize) -> u64 {
    c.node(i).stats().await["whatsappClientsStarted"]
        .as_u64()
        .unwrap_or(0)
}

/// The double's phone scans the QR of `pairing`: the bot is `connected` (within 20 s) with the
/// phone's number, and WhatsApp never saw two sessions of a device.
async fn links(c: &Cluster, token: &str, bot: &str, pairing: &Value) {
    let linked = scan(c, pairing).await;
    let connected = eventually("connected", Duration::from_secs(20), || async {
        let r = row(c, token, bot).await;
        (r["status"] == "connected").then_some(r)
    })
    .await;
    assert_eq!(connected["phone"], linked["phone"]);
    c.double.assert_never_two_sessions().await;
}

/// The bot's row, read through the load balancer.
async fn row(c: &Cluster, token: &str, bot: &str) -> Value {
    c.lb.call("GET", &format!("/api/bots/{bot}"), Some(token), None)
        .await
        .1
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
        .until_sum("one client, on one node", |s| {
            s["whatsappClientsStarted"] == 1
        })
        .await;
    let stats = c.double.stats().await;
    assert_eq!(
        stats["totals"]["handshakes"], 1,
        "one device at WhatsApp: {stats} {sum:#}"
    );
    c.double.assert_never_two_sessions().await;
}

#[tokio::test]
async fn scan_socket_and_pairing_on_three_nodes_deliver_the_events_in_order() {
    let c = Cluster::start(&[]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (status, pairing) = start_qr(c.node(2), &token, &bot).await;
    assert_eq!(status, 200, "{pairing}");
    assert_eq!(clients_started(&c, 2).await, 1, "node 3 runs the client");
    let (mut sio, ok) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    let replay = sio.next_whatsapp().await.expect("the replay");
    assert_eq!(
        (replay["type"].as_str(), replay["attempt"].as_u64()),
        (Some("qr_updated"), Some(1))
    );
    let linked = scan(&c, &pairing).await;
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
    assert_eq!(b["phone"], linked["phone"]);
    c.double.assert_never_two_sessions().await;
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

/// A pairing on screen whose node is killed starts again on another node: the waiting app is
/// sent a new QR (the old one was that connection's) within 5 s, and nothing on its screen says
/// anything went wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_pairing_starts_again_elsewhere_and_the_waiting_app_gets_a_new_qr_within_5_s()
 {
    let mut c = Cluster::start(&[]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (status, first) = start_qr(c.node(0), &token, &bot).await;
    assert_eq!(status, 200, "{first}");
    let (mut sio, ok) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    assert_eq!(sio.next_whatsapp().await.unwrap()["qr"], first["qr"]);
    c.nodes[0].take().expect("node 1").kill();
    let killed = Instant::now();
    let mut heard = Vec::new();
    let again = loop {
        let left = Duration::from_secs(5).saturating_sub(killed.elapsed());
        let (name, event) = tokio::time::timeout(left, sio.next_event())
            .await
            .unwrap_or_else(|_| panic!("no new QR within 5 s; heard {heard:?}"))
            .expect("the socket stays open");
        if name == "whatsapp_connection_event"
            && event["type"] == "qr_updated"
            && event["qr"] != first["qr"]
        {
            break event;
        }
        heard.push((name, event));
    };
    let took = killed.elapsed();
    println!("a new QR {took:?} after the pairing's node was killed");
    let errors = trouble(&heard, "pairing");
    assert!(
        errors.is_empty(),
        "the screen was told of trouble: {errors:?}"
    );
    assert_eq!(
        clients_started(&c, 1).await + clients_started(&c, 2).await,
        1,
        "one new client"
    );
    // The app's next request shows the same new pairing, and the phone links it.
    let (status, shown) = start_qr(&c.lb, &token, &bot).await;
    assert_eq!((status, &shown["qr"]), (200, &again["qr"]), "{shown}");
    links(&c, &token, &bot, &again).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_drain_gives_the_pairings_device_back_and_closes_transports_without_41() {
    let mut c = Cluster::start(&[]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (status, first) = start_qr(c.node(0), &token, &bot).await;
    assert_eq!(status, 200, "{first}");
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
    // The drained node's counters leave the sum as it stops.
    let sum = c
        .until_sum("node 1 gone from the sum", |s| {
            s["nodes"].get("node1").is_none()
        })
        .await;
    assert_eq!(sum["whatsappClientsStarted"], 0, "{sum:#}");
    // Its client closed and its hold was given back: the app, reconnected through the load
    // balancer, gets a pairing from a node that stays at once, with no wait for a lapse.
    let (mut again, ok) = Sio::connect(&c.lb, auth(&token, &user, &bot)).await;
    assert!(ok.starts_with("40"), "{ok}");
    let (status, next) = start_qr(&c.lb, &token, &bot).await;
    assert_eq!(status, 200, "{next}");
    let handed_over = drained.elapsed();
    assert!(
        handed_over < Duration::from_secs(5),
        "a new pairing {handed_over:?} after the drain began"
    );
    assert_ne!(next["qr"], first["qr"], "a new device, a new QR");
    loop {
        let e = again.next_whatsapp().await.expect("the new QR");
        if e["type"] == "qr_updated" {
            assert_eq!(e["qr"], next["qr"]);
            break;
        }
    }
    c.double.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_refuses_for_now_and_after_its_restart_service_resumes() {
    let mut c = Cluster::start(&[]).await;
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
    // sent from node 3 reaches a socket on node 2: a contract event (`connection_update`, which
    // changes nothing) until one arrives.
    let mut fresh = eventually("CONNECT works again", Duration::from_secs(10), || async {
        let (s, ok) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
        ok.starts_with("40").then_some(s)
    })
    .await;
    assert_eq!(fresh.next_whatsapp().await.unwrap()["type"], "qr_updated");
    let back = Instant::now();
    let probe = json!({"event": "connection_update",
                       "data": {"botId": bot, "connection": "connecting"}});
    loop {
        let path = format!("/api/dev/bots/{bot}/emit");
        let (status, body) = c
            .node(2)
            .call("POST", &path, Some(&token), Some(probe.clone()))
            .await;
        assert_eq!(status, 204, "{body}");
        match tokio::time::timeout(Duration::from_millis(300), fresh.next_event()).await {
            Ok(Some((name, _))) if name == "connection_update" => break,
            _ => assert!(
                back.elapsed() < Duration::from_secs(10),
                "events never crossed nodes again"
            ),
        }
    }
    // Any other probes still on their way are read before the scan's events.
    let linked = scan(&c, &pairing).await;
    let mut seen = Vec::new();
    while !seen.contains(&"whatsapp_connected".to_owned()) {
        let e = fresh.next_whatsapp().await.expect("the scan's events");
        seen.push(e["type"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        seen.ends_with(&["qr_scanned".into(), "whatsapp_connected".into()]),
        "{seen:?}"
    );
    assert_eq!(row(&c, &token, &bot).await["phone"], linked["phone"]);
    c.double.assert_never_two_sessions().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_and_after_its_restart_nothing_is_lost() {
    let c = Cluster::start(&[]).await;
    let (token, user, bot) = user_with_bot(&c).await;
    let (status, first) = start_qr(c.node(0), &token, &bot).await;
    assert_eq!(status, 200, "{first}");
    let (mut sio, _) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    assert_eq!(sio.next_whatsapp().await.unwrap()["qr"], first["qr"]);

    c.pg.stop();
    unavailable(c.node(2), "GET", "/api/bots", &token).await;
    let (_s, refused) = Sio::connect(c.node(2), auth(&token, &user, &bot)).await;
    assert!(refused.contains("rate_limited"), "{refused}");
    // Longer than the device's hold: its holder, unable to renew it, stops the client before
    // another node could take the device (never two clients of one device).
    tokio::time::sleep(Duration::from_secs(4)).await;
    c.pg.start_again();

    let bots = eventually("PostgreSQL back", Duration::from_secs(10), || async {
        let (s, v) = c.lb.call("GET", "/api/bots", Some(&token), None).await;
        (s == 200).then_some(v)
    })
    .await;
    assert_eq!(bots[0]["id"], bot.as_str(), "the bot is still there");
    // The pairing comes back once the hold is renewed, and the phone can link it.
    let again = eventually("the pairing back", Duration::from_secs(10), || async {
        let (status, again) = start_qr(&c.lb, &token, &bot).await;
        (status == 200).then_some(again)
    })
    .await;
    links(&c, &token, &bot, &again).await;
}

/// Until the double has counted `n` logins in all (within `within`): `what` says which.
async fn until_logins(c: &Cluster, n: u64, within: Duration, what: &str) {
    eventually(what, within, || async {
        (totals(&c.double, "logins").await == n).then_some(())
    })
    .await;
}

/// One of the double's totals (`/admin/stats`).
async fn totals(double: &common::Double, what: &str) -> u64 {
    double.stats().await["totals"][what].as_u64().unwrap_or(0)
}

/// A linked bot's session runs on the node holding its device; when that node is killed (`kill
/// -9`: the kernel closes its sockets), another node adopts the device from PostgreSQL and logs
/// it in within 5 s, and WhatsApp never sees two connections of it, nor sends a 440.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_link_a_killed_holders_linked_bot_is_logged_in_from_another_node_within_5_s() {
    let mut c = Cluster::start(&[]).await;
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
    assert_eq!(totals(&c.double, "qrsOffered").await, 6);
    scan(&c, &pairing).await;
    eventually("the bot connected", Duration::from_secs(20), || async {
        let (_, row) =
            c.lb.call("GET", &format!("/api/bots/{bot}"), Some(&token), None)
                .await;
        (row["status"] == "connected").then_some(())
    })
    .await;
    assert_eq!(totals(&c.double, "logins").await, 1);
    c.nodes[0].take().unwrap().kill();
    let killed = Instant::now();
    until_logins(
        &c,
        2,
        Duration::from_secs(5),
        "the device logged in from another node",
    )
    .await;
    let took = killed.elapsed();
    println!("failover: logged in again {took:?} after its node was killed");
    assert!(took <= Duration::from_secs(5), "{took:?}");
    let row = eventually(
        "the dashboard shows it connected",
        Duration::from_secs(2),
        || async {
            let (_, row) =
                c.lb.call("GET", &format!("/api/bots/{bot}"), Some(&token), None)
                    .await;
            (row["status"] == "connected").then_some(row)
        },
    )
    .await;
    assert!(
        row["statusReason"].is_null()
            || !row["statusReason"]
                .as_str()
                .unwrap_or_default()
                .contains("stopped"),
        "{row}"
    );
    let adopters: Vec<u64> = [clients_started(&c, 1).await, clients_started(&c, 2).await].to_vec();
    assert_eq!(
        adopters.iter().sum::<u64>(),
        1,
        "one node adopted it: {adopters:?}"
    );
    assert_eq!(totals(&c.double, "qrsOffered").await, 6, "no new pairing");
    assert_eq!(totals(&c.double, "replacedSent").await, 0, "no 440");
    c.double.assert_never_two_sessions().await;
    // Node 1 returns (its name, its directory): the bot is another node's now; it starts none.
    c.nodes[0] = Some(c.start_node(0));
    c.until_balanced().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        clients_started(&c, 0).await,
        0,
        "the returned node resumes nothing"
    );
    assert_eq!(totals(&c.double, "logins").await, 2);
    c.double.assert_never_two_sessions().await;
}

/// A bot linked through node 1 (the node its first QR request reached): its token, user, id.
async fn linked_on_node_1(c: &Cluster) -> (String, String, String) {
    let (token, user, bot) = user_with_bot(c).await;
    let (status, pairing) = start_qr(c.node(0), &token, &bot).await;
    assert_eq!(status, 200, "{pairing}");
    links(c, &token, &bot, &pairing).await;
    assert_eq!(clients_started(c, 0).await, 1, "linked on node 1");
    (token, user, bot)
}

/// The events that would put trouble on the app's screen: a `connection_failed`, or a status
/// other than `expected`.
fn trouble<'a>(events: &'a [(String, Value)], expected: &str) -> Vec<&'a (String, Value)> {
    events
        .iter()
        .filter(|(name, v)| {
            name == "whatsapp_connection_event" && v["type"] == "connection_failed"
                || name == "bot_status_update" && v["status"] != expected
        })
        .collect()
}

/// The events a socket hears within `within`.
async fn events_within(sio: &mut Sio, within: Duration) -> Vec<(String, Value)> {
    let until = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(until, sio.next_event()).await {
        seen.push(e);
    }
    seen
}

/// The holder frozen (`SIGSTOP`) past its hold: another node adopts the device and logs it in;
/// WhatsApp throws out the frozen node's connection (`<conflict type="replaced">`), as it would.
/// Woken (`SIGCONT`), the old node never connects again, tells the user's sockets nothing, and
/// the bot stays `connected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_holder_is_replaced_and_once_awake_never_connects_writes_or_emits() {
    let c = Cluster::start(&[]).await;
    let (token, user, bot) = linked_on_node_1(&c).await;
    let (mut sio, _) = Sio::connect(c.node(1), auth(&token, &user, &bot)).await;
    c.node(0).signal("STOP");
    let frozen = Instant::now();
    until_logins(&c, 2, Duration::from_secs(5), "logged in from another node").await;
    println!(
        "frozen holder: logged in again {:?} after SIGSTOP",
        frozen.elapsed()
    );
    assert_eq!(
        totals(&c.double, "replacedSent").await,
        1,
        "the stale connection thrown out"
    );
    let handshakes = totals(&c.double, "handshakes").await;
    let before = events_within(&mut sio, Duration::from_millis(500)).await;
    c.node(0).signal("CONT");
    // Awake: its hold is gone, its fence lost, its clock past the safe time.
    let after = events_within(&mut sio, Duration::from_secs(4)).await;
    let told = trouble(&after, "connected");
    assert!(
        told.is_empty(),
        "the woken node told the user: {told:?} (before: {before:?})"
    );
    assert_eq!(
        totals(&c.double, "handshakes").await,
        handshakes,
        "it never connected again"
    );
    assert_eq!(totals(&c.double, "logins").await, 2);
    let r = row(&c, &token, &bot).await;
    assert_eq!(r["status"], "connected", "{r}");
    assert!(r["statusReason"].is_null(), "{r}");
    assert_eq!(
        c.node(0).stats().await["whatsappClientsRunning"],
        0,
        "its client stopped"
    );
}

/// PostgreSQL restarted under a linked bot, then Redis: the holder pauses its client before its
/// hold can run out and logs in again after; never two connections of the device, no 440, the
/// bot's phone and messages kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_bot_survives_postgres_and_redis_restarts_with_one_connection_and_no_440() {
    let mut c = Cluster::start(&[]).await;
    let (token, _, bot) = linked_on_node_1(&c).await;
    let linked = row(&c, &token, &bot).await;
    c.pg.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    c.pg.start_again();
    until_logins(&c, 2, Duration::from_secs(10), "logged in again").await;
    let back = eventually("connected again", Duration::from_secs(10), || async {
        let r = row(&c, &token, &bot).await;
        (r["status"] == "connected").then_some(r)
    })
    .await;
    assert_eq!(
        (&back["phone"], &back["messages"]),
        (&linked["phone"], &linked["messages"])
    );
    c.redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.redis.start_again();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        totals(&c.double, "logins").await,
        2,
        "Redis is not the session's business"
    );
    assert_eq!(row(&c, &token, &bot).await["status"], "connected");
    assert_eq!(totals(&c.double, "replacedSent").await, 0, "no 440");
    c.double.assert_never_two_sessions().await;
}

/// A contact's text to the bot's device, through the double: how it went (`sent` or `queued`).
async fn contact_writes(c: &Cluster, jid: &str, text: &str) -> Value {
    // The device uploads its prekeys in the background of its first login: a contact can write
    // once they are there (the double says 404 until then).
    let t0 = Instant::now();
    loop {
        let (status, body) = c
            .double
            .admin(
                "POST",
                "/admin/devices/message",
                Some(json!({"jid": jid, "text": text})),
            )
            .await;
        if status == 200 {
            return body;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages sent while no node holds the device (its holder killed, not yet adopted) wait at
/// WhatsApp; after the adoption the new holder's login receives them, and each is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_no_node_holds_the_device_arrive_after_the_adoption_counted_once() {
    let mut c = Cluster::start(&[]).await;
    let (token, _, bot) = linked_on_node_1(&c).await;
    let jid = c.double.stats().await["devices"]
        .as_object()
        .and_then(|d| {
            d.values()
                .find_map(|d| d["jid"].as_str().map(str::to_owned))
        })
        .expect("the linked device's JID");
    let first = contact_writes(&c, &jid, "before").await;
    assert_eq!(first["delivery"]["delivery"], "sent", "{first}");
    eventually(
        "the first message counted",
        Duration::from_secs(10),
        || async { (row(&c, &token, &bot).await["messages"] == 1).then_some(()) },
    )
    .await;
    c.nodes[0].take().unwrap().kill();
    eventually(
        "WhatsApp saw the connection close",
        Duration::from_secs(2),
        || async { (c.double.stats().await["totals"]["openNow"] == 0).then_some(()) },
    )
    .await;
    for text in ["one", "two", "three"] {
        let went = contact_writes(&c, &jid, text).await;
        assert_eq!(went["delivery"]["delivery"], "queued", "{went}");
    }
    until_logins(&c, 2, Duration::from_secs(5), "logged in from another node").await;
    assert_eq!(totals(&c.double, "offlineDelivered").await, 3);
    eventually("the three counted", Duration::from_secs(10), || async {
        (row(&c, &token, &bot).await["messages"] == 4).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        row(&c, &token, &bot).await["messages"],
        4,
        "each counted once"
    );
    c.double.assert_never_two_sessions().await;
}

/// The rolling upgrade: a device an earlier botlink kept as a file in its node's directory is
/// moved into PostgreSQL when that node (upgraded) takes its hold again; WhatsApp sees a login,
/// no new pairing; from then on any node can run it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_kept_in_a_file_by_an_earlier_botlink_resumes_from_postgres_with_a_login_and_no_pairing()
 {
    let mut c = Cluster::start(&[]).await;
    let (token, user) = c.lb.session().await;
    c.nodes[0].take().unwrap().kill();
    let dir = c.data_dir(0);
    // Linked by one server of before, its device a file in node 1's directory.
    let db = dir.join("before.db");
    let before = Server::start_with(&[
        "--addr",
        "127.0.0.1:0",
        "--db",
        db.to_str().unwrap(),
        "--data-dir",
        dir.to_str().unwrap(),
        "--whatsapp-url",
        &c.double.ws_url,
    ]);
    let (t, _) = before.session().await;
    let bot = before.bot(&t, "Upgraded").await;
    let (status, pairing) = start_qr(&before, &t, &bot).await;
    assert_eq!(status, 200, "{pairing}");
    scan(&c, &pairing).await;
    let linked = eventually("linked before", Duration::from_secs(20), || async {
        let (_, r) = before
            .call("GET", &format!("/api/bots/{bot}"), Some(&t), None)
            .await;
        (r["status"] == "connected").then_some(r)
    })
    .await;
    before.terminate();
    let file = dir.join("devices").join(format!("{bot}.sqlite"));
    assert!(file.exists(), "{}", file.display());
    let qrs = totals(&c.double, "qrsOffered").await;
    assert_eq!(totals(&c.double, "logins").await, 1);
    // What the upgrade finds in the cluster's database: the bot, and node 1's hold on it.
    let (pg, connection) = tokio_postgres::connect(&c.pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let phone = linked["phone"].as_str().unwrap();
    let url = format!("http://127.0.0.1:{}", c.ports[0]);
    pg.execute(
        "INSERT INTO bots (id, user_id, name, status, phone, created_at)
         VALUES ($1, $2, 'Upgraded', 'connected', $3, '2026-12-01T00:00:00Z')",
        &[&bot, &user, &phone],
    )
    .await
    .unwrap();
    pg.execute(
        "INSERT INTO device_holds (bot_id, user_id, node, url, hold_until, registered)
         VALUES ($1, $2, 'node1', $3, botlink_now_ms() + 60000, true)",
        &[&bot, &user, &url],
    )
    .await
    .unwrap();
    c.nodes[0] = Some(c.start_node(0));
    until_logins(
        &c,
        2,
        Duration::from_secs(10),
        "logged in from the database",
    )
    .await;
    assert_eq!(totals(&c.double, "qrsOffered").await, qrs, "no pairing");
    assert!(!file.exists(), "moved, the file renamed");
    let r = eventually(
        "connected in the cluster",
        Duration::from_secs(5),
        || async {
            let r = row(&c, &token, &bot).await;
            (r["status"] == "connected").then_some(r)
        },
    )
    .await;
    assert_eq!(r["phone"], linked["phone"], "{r}");
    // The device is the database's now: node 1 killed, another node logs it in.
    c.nodes[0].take().unwrap().kill();
    until_logins(&c, 3, Duration::from_secs(5), "adopted").await;
    assert_eq!(totals(&c.double, "replacedSent").await, 0);
    c.double.assert_never_two_sessions().await;
}

/// A drain (SIGTERM) hands a linked device over at once: the node closes its client and lets
/// the hold lapse well past the margin, and another node logs the device in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_drain_hands_a_linked_device_to_another_node_at_once() {
    let mut c = Cluster::start(&[]).await;
    let (token, _, bot) = linked_on_node_1(&c).await;
    let drained = Instant::now();
    let status = c.nodes[0].take().unwrap().terminate();
    assert!(status.success(), "{status:?}");
    until_logins(&c, 2, Duration::from_secs(5), "logged in from another node").await;
    println!(
        "drain: logged in again {:?} after SIGTERM",
        drained.elapsed()
    );
    assert_eq!(row(&c, &token, &bot).await["status"], "connected");
    assert_eq!(totals(&c.double, "replacedSent").await, 0);
    c.double.assert_never_two_sessions().await;
}
