//! Holds N authenticated Socket.IO sockets on a local server — botlink-server (`--server`) or the
//! Node.js socket.io 4 stack it replaces (`--node bench/node/server.mjs`), one user each, as the
//! contract allows one live socket per user — and prints: connect rate, the server's resident
//! memory in total and per socket, and event fan-out latency (p50/p99) with all of them
//! connected. The same client for both. Loopback only; bounded in count (`--sockets`) and time
//! (`--max-seconds`).
//!
//! `--cluster`: botlink-server as three nodes on PostgreSQL and Redis (both started here, in a
//! temporary directory). Socket i goes to node i mod 3 and its events are triggered on the next
//! node, so every event crosses nodes through Redis. It adds each node's memory.
//!
//! The events are contract events a backend sends a bot's sockets (`POST
//! /api/dev/bots/{id}/emit`, a `connection_failed` 515): sockets and fan-out need no pairing, so
//! no WhatsApp is involved and the production binary is measured. (Failover of linked bots has a
//! benchmark of its own once a linked bot can move between nodes.)

use clap::Parser;
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, oneshot};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// The botlink-server binary (a release build).
    #[arg(long, conflicts_with = "node", required_unless_present = "node")]
    server: Option<String>,
    /// Instead: a Node.js server script with the same API (bench/node/server.mjs).
    #[arg(long)]
    node: Option<String>,
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Events sent for the fan-out figure.
    #[arg(long, default_value_t = 1_000)]
    events: usize,
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Stop, whatever happened, after this long.
    #[arg(long, default_value_t = 240)]
    max_seconds: u64,
    /// Print one JSON object (for bench/run's side-by-side) instead of the table.
    #[arg(long)]
    json: bool,
    /// botlink-server as 3 nodes on PostgreSQL and Redis.
    #[arg(long, requires = "server")]
    cluster: bool,
}

/// One server process under load.
struct Node {
    pid: u32,
    url: String,
    /// Held for its `kill_on_drop`: the process ends with the bench.
    _child: tokio::process::Child,
}

type Waiters = Arc<Mutex<Vec<Option<oneshot::Sender<Instant>>>>>;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let limit = Duration::from_secs(args.max_seconds);
    match tokio::time::timeout(limit, run(&args)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("load: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("load: stopped after {} s", args.max_seconds);
            std::process::exit(1);
        }
    }
}

/// POSTs `body` (with the bearer `token`, if any) and reads the JSON answer.
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Option<Value> {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.ok()?.json().await.ok()
}

/// GETs `url` and reads the JSON answer.
async fn get(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    http.get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn run(args: &Args) -> Result<(), String> {
    if args.cluster {
        return run_cluster(args).await;
    }
    // The server: loopback, in memory, no rate limits, pings rare enough not to be measured.
    let command = match (&args.server, &args.node) {
        (Some(server), _) => botlink_server(server),
        (None, Some(script)) => {
            let mut node = tokio::process::Command::new("node");
            node.arg(script);
            node
        }
        (None, None) => return Err("--server or --node".into()),
    };
    let node = spawn(command).await?;
    run_against(args, std::slice::from_ref(&node)).await
}

/// Starts a server and finds where it listens.
async fn spawn(mut command: tokio::process::Command) -> Result<Node, String> {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let pid = child.id().ok_or("no pid")?;
    // The address: the one line the server prints at info level is filtered out at warn, so
    // ask the kernel which port the process listens on instead.
    let url = find_url(pid).await?;
    Ok(Node {
        pid,
        url,
        _child: child,
    })
}

/// PostgreSQL (scripts/lib/postgres.sh) and Redis in a temporary directory; stopped on drop.
struct Infra {
    dir: std::path::PathBuf,
    redis: std::process::Child,
    pg_port: u16,
    redis_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn postgres(action: &str, dir: &std::path::Path, port: u16) -> Result<(), String> {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/lib/postgres.sh");
    let ok = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {lib}; {action} {}/pg {port}",
            dir.display()
        ))
        .status()
        .map_err(|e| e.to_string())?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("PostgreSQL {action} failed"))
    }
}

impl Infra {
    fn start() -> Result<Infra, String> {
        let dir = std::env::temp_dir().join(format!("botlink-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let (pg_port, redis_port) = (free_port(), free_port());
        postgres("pg_start", &dir, pg_port)?;
        let redis = std::process::Command::new("redis-server")
            .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(Infra {
            dir,
            redis,
            pg_port,
            redis_port,
        })
    }
}

impl Drop for Infra {
    fn drop(&mut self) {
        let _ = self.redis.kill();
        let _ = postgres("pg_stop", &self.dir, 0);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn run_cluster(args: &Args) -> Result<(), String> {
    let server = args.server.as_deref().ok_or("--server")?;
    let infra = Infra::start()?;
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let mut command = botlink_server(server);
        command.args([
            "--node-id".to_owned(),
            format!("node{i}"),
            "--database-url".to_owned(),
            format!("postgres://postgres@127.0.0.1:{}/postgres", infra.pg_port),
            "--redis-url".to_owned(),
            format!("redis://127.0.0.1:{}", infra.redis_port),
            "--cluster-secret".to_owned(),
            "the-load-benchs-cluster-secret".to_owned(),
        ]);
        nodes.push(spawn(command).await?);
    }
    run_against(args, &nodes).await?;
    drop(nodes);
    drop(infra);
    Ok(())
}

/// botlink-server on loopback, in memory, no rate limits, pings rare enough not to be measured.
fn botlink_server(binary: &str) -> tokio::process::Command {
    let mut server = tokio::process::Command::new(binary);
    server
        .args([
            "--addr",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--connect-limit-per-min",
            "0",
        ])
        .args([
            "--qr-limit-per-min",
            "0",
            "--ping-interval-ms",
            "600000",
            "--ping-timeout-ms",
            "60000",
        ])
        .env(
            "RUST_LOG",
            "botlink_server=warn,socketioxide=error,engineioxide=error",
        );
    server
}

async fn run_against(args: &Args, nodes: &[Node]) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let rss_idle: Vec<u64> = nodes.iter().map(|n| rss_kb(n.pid)).collect();
    let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
    let url = urls[0].clone();
    // User i lives on node i mod n; its events are triggered on the next node.
    let home = |i: usize| urls[i % urls.len()].clone();
    let other = |i: usize| urls[(i + 1) % urls.len()].clone();

    // Users, each with a bot.
    let t0 = Instant::now();
    let users: Vec<(String, String, String)> = stream::iter(0..args.sockets)
        .map(|i| {
            let (http, url) = (http.clone(), home(i));
            async move {
                let s = post(
                    &http,
                    &format!("{url}/api/auth/session"),
                    None,
                    json!({"userId": format!("load{i}")}),
                )
                .await?;
                let token = s["token"].as_str()?.to_owned();
                let b = post(
                    &http,
                    &format!("{url}/api/bots"),
                    Some(&token),
                    json!({"name": "load"}),
                )
                .await?;
                Some((format!("load{i}"), token, b["id"].as_str()?.to_owned()))
            }
        })
        .buffer_unordered(args.concurrency)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    if users.len() != args.sockets {
        return Err(format!(
            "only {} of {} users were created",
            users.len(),
            args.sockets
        ));
    }
    let setup = t0.elapsed();

    // The sockets.
    let waiters: Waiters = Arc::new(Mutex::new((0..users.len()).map(|_| None).collect()));
    let ws_url = |i: usize| {
        format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            home(i).replacen("http://", "ws://", 1)
        )
    };
    let t1 = Instant::now();
    let connected: Vec<Result<usize, String>> = stream::iter(users.iter().enumerate())
        .map(|(i, (user, token, bot))| {
            let (ws_url, waiters) = (ws_url(i), waiters.clone());
            let auth = json!({"token": token, "userId": user, "botId": bot}).to_string();
            async move {
                let (mut ws, _) = match tokio_tungstenite::connect_async(&ws_url).await {
                    Ok(ws) => ws,
                    Err(e) => return Err(format!("connect: {e}")),
                };
                let open = match ws.next().await {
                    Some(Ok(Message::Text(open))) => open,
                    other => return Err(format!("open: {other:?}")),
                };
                if !open.starts_with('0')
                    || ws.send(Message::text(format!("40{auth}"))).await.is_err()
                {
                    return Err("send".into());
                }
                // The first heartbeat may come before the CONNECT answer: answer it and read on.
                let answer = loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t == "2" => {
                            let _ = ws.send(Message::text("3")).await;
                        }
                        Some(Ok(Message::Text(answer))) => break answer,
                        other => return Err(format!("answer: {other:?}")),
                    }
                };
                if !answer.starts_with("40") {
                    return Err(format!("refused: {answer}"));
                }
                // Hold the socket; report each connection_failed event's arrival to its waiter.
                tokio::spawn(async move {
                    while let Some(Ok(msg)) = ws.next().await {
                        if let Message::Text(t) = msg {
                            if t == "2" {
                                let _ = ws.send(Message::text("3")).await;
                            } else if t.contains("connection_failed")
                                && let Some(tx) = waiters.lock().await[i].take()
                            {
                                let _ = tx.send(Instant::now());
                            }
                        }
                    }
                });
                Ok(i)
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let connect_time = t1.elapsed();
    let held = connected.iter().filter(|c| c.is_ok()).count();
    let mut reasons: Vec<&String> = connected.iter().filter_map(|c| c.as_ref().err()).collect();
    reasons.sort();
    reasons.dedup();
    for r in reasons.iter().take(5) {
        eprintln!("load: a socket failed: {r}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_held: Vec<u64> = nodes.iter().map(|n| rss_kb(n.pid)).collect();
    let stats_path = if nodes.len() > 1 {
        "/api/dev/stats/cluster"
    } else {
        "/api/dev/stats"
    };
    let stats = get(&http, &format!("{url}{stats_path}")).await?;

    // Fan-out: events to many users at once, with every socket connected.
    let held_ids: Vec<usize> = connected
        .iter()
        .filter_map(|c| c.as_ref().ok().copied())
        .collect();
    let step = (held_ids.len() / args.events.max(1)).max(1);
    let sample: Vec<usize> = held_ids
        .iter()
        .copied()
        .step_by(step)
        .take(args.events)
        .collect();
    let mut latencies: Vec<f64> = stream::iter(sample)
        .map(|i| {
            let (http, url, waiters) = (http.clone(), other(i), waiters.clone());
            let (_, token, bot) = users[i].clone();
            async move {
                let (tx, rx) = oneshot::channel();
                waiters.lock().await[i] = Some(tx);
                let sent = Instant::now();
                let failed = json!({"type": "connection_failed", "botId": bot, "code": 515});
                http.post(format!("{url}/api/dev/bots/{bot}/emit"))
                    .bearer_auth(&token)
                    .json(&json!({"event": "whatsapp_connection_event", "data": failed}))
                    .send()
                    .await
                    .ok()?;
                let got = tokio::time::timeout(Duration::from_secs(10), rx)
                    .await
                    .ok()?
                    .ok()?;
                Some(got.duration_since(sent).as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(64)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };

    let per_node: Vec<String> = rss_idle
        .iter()
        .zip(&rss_held)
        .enumerate()
        .map(|(i, (a, b))| {
            format!(
                "node{}: {:.1} → {:.1} MB",
                i + 1,
                *a as f64 / 1000.0,
                *b as f64 / 1000.0
            )
        })
        .collect();
    let (rss_idle, rss_held): (u64, u64) = (rss_idle.iter().sum(), rss_held.iter().sum());
    let per_socket = rss_held.saturating_sub(rss_idle) as f64 / held.max(1) as f64;
    let rate = held as f64 / connect_time.as_secs_f64();
    if args.json {
        println!(
            "{}",
            json!({"sockets": held, "connectRate": rate, "rssIdleKb": rss_idle, "rssHeldKb": rss_held,
                   "perSocketKb": per_socket, "p50": pct(0.5), "p99": pct(0.99),
                   "events": latencies.len(), "nodes": per_node})
        );
        return Ok(());
    }
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| users and bots created | {} in {:.1} s |",
        users.len(),
        setup.as_secs_f64()
    );
    println!(
        "| sockets held (accepted by the server) | {held} of {} (server: {} open) |",
        args.sockets, stats["socketsOpen"]
    );
    println!(
        "| connect rate | {rate:.0} sockets/s ({} concurrent) |",
        args.concurrency
    );
    println!(
        "| server resident memory, idle → with all sockets | {:.1} MB → {:.1} MB |",
        rss_idle as f64 / 1000.0,
        rss_held as f64 / 1000.0
    );
    if nodes.len() > 1 {
        println!("| resident memory of each node | {} |", per_node.join(", "));
    }
    println!(
        "| resident memory per socket (incl. its user, session and bot) | {per_socket:.1} KB |"
    );
    println!(
        "| event fan-out latency, HTTP call → event on the socket | p50 {:.2} ms, p99 {:.2} ms ({} events, 64 at a time) |",
        pct(0.5),
        pct(0.99),
        latencies.len()
    );
    Ok(())
}

/// The server's listening URL, read from /proc: the socket inode it listens on, matched in
/// /proc/net/tcp. Loopback only.
async fn find_url(pid: u32) -> Result<String, String> {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map_err(|e| e.to_string())?
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter_map(|l| {
                l.to_str()?
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')
                    .map(str::to_owned)
            })
            .collect();
        let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        for line in tcp.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // state 0A = LISTEN; local address 0100007F:PORT = 127.0.0.1
            if f.len() > 9
                && f[3] == "0A"
                && inodes.iter().any(|i| i == f[9])
                && let Some(port) = f[1].strip_prefix("0100007F:")
            {
                let port = u16::from_str_radix(port, 16).map_err(|e| e.to_string())?;
                return Ok(format!("http://127.0.0.1:{port}"));
            }
        }
    }
    Err("the server did not start listening".into())
}
