//! Cluster mode's link to Redis: the clients (one for commands, one subscriber for the Socket.IO
//! adapter, subscribed again after a reconnect), and each node's counters published for the
//! cluster-wide sum of `/api/dev/stats/cluster`.

use crate::core::{context::Ctx, stats::Counters};
use fred::{
    clients::{Client, SubscriberClient},
    interfaces::{ClientLike, EventInterface, LuaInterface},
    types::{
        RespVersion,
        config::{Config, ReconnectPolicy},
    },
};
use socketioxide_redis::drivers::fred::FredDriver;
use std::{collections::BTreeMap, time::Duration};

/// A command Redis has not answered in this long fails (the caller answers 503 or refuses).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a node publishes its counters, and how long they live without it.
const STATS_EVERY: Duration = Duration::from_millis(250);
const STATS_TTL_MS: u64 = 2_000;

fn builder(url: &str) -> Result<fred::types::Builder, String> {
    let mut config = Config::from_url(url).map_err(|e| format!("--redis-url: {e}"))?;
    // The Socket.IO adapter's sharded pub/sub needs RESP3 (Redis 7).
    config.version = RespVersion::RESP3;
    let mut b = fred::types::Builder::from_config(config);
    // Reconnect forever, every half second: a Redis restart is an outage, not an end.
    b.set_policy(ReconnectPolicy::new_constant(0, 500));
    b.with_connection_config(|c| {
        c.connection_timeout = Duration::from_secs(2);
        c.internal_command_timeout = Duration::from_secs(2);
    });
    b.with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT);
    Ok(b)
}

/// Connects both clients; fails if Redis cannot be reached now.
pub async fn connect(url: &str) -> Result<(Client, FredDriver), String> {
    let b = builder(url)?;
    let client: Client = b.build().map_err(|e| e.to_string())?;
    client
        .init()
        .await
        .map_err(|e| format!("Redis at --redis-url: {e}"))?;
    let subscriber: SubscriberClient = b.build_subscriber_client().map_err(|e| e.to_string())?;
    let driver = FredDriver::new(subscriber.clone())
        .await
        .map_err(|e| format!("Redis subscriber: {e}"))?;
    tokio::spawn(resubscribe(subscriber));
    Ok((client, driver))
}

/// After a reconnect (Redis restarted), subscribes again to every channel the adapter listened
/// to. fred's own `manage_subscriptions` first sends a plain SUBSCRIBE with no channel when there
/// are only sharded ones (the adapter's), which Redis refuses, and it stops there.
async fn resubscribe(subscriber: SubscriberClient) {
    use fred::interfaces::PubsubInterface;
    use tokio::sync::broadcast::error::RecvError;
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        match reconnects.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        let channels = subscriber.tracked_shard_channels();
        for channel in &channels {
            if let Err(e) = subscriber.ssubscribe(channel.to_string()).await {
                tracing::warn!("could not subscribe again to {channel}: {e}");
            }
        }
        tracing::info!(
            "Redis reconnected: {} channels subscribed again",
            channels.len()
        );
    }
}

const PUBLISH: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 0
";

/// Every live node's counters: {node, json, node, json, ...}. Nodes gone quiet are dropped.
const READ: &str = r"
local out = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local v = redis.call('GET', 'botlink:stats:' .. n)
  if v then
    table.insert(out, n)
    table.insert(out, v)
  else
    redis.call('SREM', KEYS[1], n)
  end
end
return out
";

/// A node gone quiet is dropped from the sum only when its counters expire; a node that stops
/// on purpose takes them out at once, so the sum never counts a drained node's pairings twice.
const WITHDRAW: &str = r"
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 0
";

/// The task that publishes this node's counters, until it is told the node stops.
pub struct StatsPublisher {
    stop: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl StatsPublisher {
    pub fn start(st: Ctx, client: Client) -> StatsPublisher {
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(publish_stats(st, client, stop.clone()));
        StatsPublisher { stop, task }
    }

    /// Stops publishing and removes this node's counters; returns once they are gone. The task
    /// itself removes them, after its last publish has been answered, so none lands after.
    pub async fn withdraw(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

async fn publish_stats(st: Ctx, client: Client, stop: std::sync::Arc<tokio::sync::Notify>) {
    let keys = || vec![format!("botlink:stats:{}", st.node), "botlink:nodes".into()];
    let mut tick = tokio::time::interval(STATS_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.notified() => break,
        }
        let Ok(json) = serde_json::to_string(&st.counters()) else {
            continue;
        };
        let published: Result<u64, _> = client
            .eval(
                PUBLISH,
                keys(),
                vec![json, STATS_TTL_MS.to_string(), st.node.clone()],
            )
            .await;
        if let Err(e) = published {
            tracing::debug!("counters not published: {e}");
        }
    }
    let withdrawn: Result<u64, _> = client.eval(WITHDRAW, keys(), vec![st.node.clone()]).await;
    if let Err(e) = withdrawn {
        tracing::warn!("counters not withdrawn (they expire in {STATS_TTL_MS} ms): {e}");
    }
}

/// The counters of every live node (as last published, at most `STATS_EVERY` old).
pub async fn read_stats(client: &Client) -> Result<BTreeMap<String, Counters>, String> {
    let flat: Vec<String> = client
        .eval(READ, vec!["botlink:nodes".to_owned()], Vec::<String>::new())
        .await
        .map_err(|e| e.to_string())?;
    let mut nodes = BTreeMap::new();
    for pair in flat.chunks(2) {
        if let [node, json] = pair
            && let Ok(c) = serde_json::from_str::<Counters>(json)
        {
            nodes.insert(node.clone(), c);
        }
    }
    Ok(nodes)
}
