//! The failover benchmark (issue #24): N linked bots on one node of a 3-node cluster (PostgreSQL,
//! Redis, HAProxy, the WhatsApp double as WhatsApp), that node killed (`kill -9`); the time until
//! each bot's device is logged in again from another node, as the double saw it (median, max).
//! Then the same for a drain (SIGTERM) of the node holding the most. Prints figures, asserts
//! nothing. `bench/failover [N]` (default 100) runs it.

#[path = "../tests/cluster_support/mod.rs"]
mod cluster_support;
#[path = "../tests/common/mod.rs"]
mod common;

use cluster_support::Cluster;
use serde_json::Value;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

/// Each device's logins, as the double counts them (by noise key).
async fn logins(c: &Cluster) -> BTreeMap<String, u64> {
    let stats = c.double.stats().await;
    stats["devices"]
        .as_object()
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v["logins"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// Until every device in `of` has logged in once more than it had (or `within` ran out): how
/// long each took, from `t0`.
async fn relogins(
    c: &Cluster,
    of: &BTreeMap<String, u64>,
    t0: Instant,
    within: Duration,
) -> Vec<Duration> {
    let mut took: BTreeMap<String, Duration> = BTreeMap::new();
    while took.len() < of.len() && t0.elapsed() < within {
        let now = logins(c).await;
        for (device, before) in of {
            if !took.contains_key(device) && now.get(device).copied().unwrap_or(0) > *before {
                took.insert(device.clone(), t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut all: Vec<Duration> = took.into_values().collect();
    all.sort();
    all
}

fn figures(name: &str, n: usize, took: &[Duration]) {
    let s = |d: Option<&Duration>| d.map_or("—".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    println!(
        "| {name} | {}/{n} | {} | {} |",
        took.len(),
        s(took.get(took.len() / 2)),
        s(took.last())
    );
}

/// The running clients of each node (`whatsappClientsRunning`).
async fn running(c: &Cluster) -> Vec<u64> {
    let mut all = Vec::new();
    for node in c.nodes.iter() {
        all.push(match node {
            Some(n) => n.stats().await["whatsappClientsRunning"]
                .as_u64()
                .unwrap_or(0),
            None => 0,
        });
    }
    all
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let mut c = Cluster::start(&["--qr-limit-per-min", "0", "--connect-limit-per-min", "0"]).await;
    let (token, _) = c.lb.session().await;
    eprintln!("linking {n} bots on node 1…");
    let linking = Instant::now();
    let mut bots = Vec::new();
    for i in 0..n {
        bots.push(c.lb.bot(&token, &format!("Bot {i}")).await);
    }
    for chunk in bots.chunks(10) {
        let pairings = futures_util::future::join_all(chunk.iter().map(|bot| {
            let (node, token) = (c.node(0), token.as_str());
            async move {
                node.call("POST", &format!("/api/bots/{bot}/qr"), Some(token), None)
                    .await
            }
        }))
        .await;
        for (status, pairing) in pairings {
            assert_eq!(status, 200, "{pairing}");
            c.double.scan(pairing["qr"].as_str().unwrap(), None).await;
        }
    }
    loop {
        let linked = logins(&c).await.values().filter(|l| **l >= 1).count();
        if linked >= n {
            break;
        }
        assert!(
            linking.elapsed() < Duration::from_secs(300),
            "{linked}/{n} linked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{n} linked in {:?}", linking.elapsed());
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = logins(&c).await;
    c.nodes[0].take().unwrap().kill();
    let killed = Instant::now();
    let after_kill = relogins(&c, &before, killed, Duration::from_secs(60)).await;
    let spread = running(&c).await;
    eprintln!("after the kill, clients per node: {spread:?}");

    // The drain: node 1 back (empty), then the node holding the most drains.
    c.nodes[0] = Some(c.start_node(0));
    c.until_balanced().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spread = running(&c).await;
    let busiest = (0..3).max_by_key(|i| spread[*i]).unwrap();
    let held = spread[busiest] as usize;
    let before = logins(&c).await;
    let drained = Instant::now();
    let node = c.nodes[busiest].take().unwrap();
    let draining = tokio::task::spawn_blocking(move || node.terminate());
    let all = relogins(&c, &before, drained, Duration::from_secs(60)).await;
    // Only the drained node's devices log in again.
    let _ = draining.await;
    let stats: Value = c.double.stats().await;
    println!(
        "### Failover of linked bots — {}, {} cores, test build (debug) on the WhatsApp double\n",
        time_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| event | logged in again | median | max |\n|---|---|---|---|");
    figures(
        &format!("`kill -9` of the node holding {n} linked bots"),
        n,
        &after_kill,
    );
    figures(
        &format!("SIGTERM drain of a node holding {held}"),
        held,
        &all,
    );
    println!(
        "\nWhatsApp's witness: most connections of one device open at once {}, 440s sent {}.",
        stats["totals"]["mostOpenAtOnce"], stats["totals"]["replacedSent"]
    );
}

fn time_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
