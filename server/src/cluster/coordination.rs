//! What every node must agree on, beyond the database: each user's rate limits, and which of a
//! user's sockets is the newest. One process keeps them in memory; a cluster keeps them in Redis,
//! each a Lua script (atomic, on Redis's clock). Both give the same answers.

use crate::{cluster::limits::RateLimiter, core::sync::lock};
use std::{collections::HashMap, sync::Mutex, time::Duration};

/// Redis could not answer: the caller refuses for now (`rate_limited`, 503), never ends a session.
#[derive(Debug, thiserror::Error)]
#[error("Redis is unavailable: {0}")]
pub struct Down(pub String);

/// The per-user limits of the contract.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// Socket.IO CONNECTs (`rate_limited` beyond).
    Connect,
    /// `POST .../qr` and `.../pairing-code` (429 beyond).
    Qr,
}

impl Limit {
    fn key(self) -> &'static str {
        match self {
            Limit::Connect => "connect",
            Limit::Qr => "qr",
        }
    }
}

/// A socket's place among its user's sockets: its generation, and the others' when it came.
#[derive(Debug, PartialEq, Eq)]
pub struct Generation {
    pub mine: u64,
    /// Older sockets of the user: each must go (the newer socket wins).
    pub older: Vec<u64>,
    /// Whether a newer socket of the user exists already (then this one goes).
    pub newer: bool,
}

/// Requests a minute for each limit (0: none).
#[derive(Clone, Copy, Debug)]
pub struct PerMinute {
    pub connect: u32,
    pub qr: u32,
}

impl PerMinute {
    /// The limits the command line sets (`--connect-limit-per-min`, `--qr-limit-per-min`).
    pub fn of_args(cfg: &crate::config::ServeArgs) -> Self {
        PerMinute {
            connect: cfg.connect_limit_per_min,
            qr: cfg.qr_limit_per_min,
        }
    }

    fn of(&self, limit: Limit) -> u32 {
        match limit {
            Limit::Connect => self.connect,
            Limit::Qr => self.qr,
        }
    }
}

pub enum Coordination {
    /// Boxed: two limiters and a map, against Redis's one client handle.
    Local(Box<Local>),
    Redis(Redis),
}

impl Coordination {
    pub fn local(limits: PerMinute) -> Self {
        Coordination::Local(Box::new(Local {
            connect: RateLimiter::new(limits.connect),
            qr: RateLimiter::new(limits.qr),
            live: Mutex::default(),
        }))
    }

    /// Takes one request of `who`'s allowance, or says how long until one is free.
    pub async fn take(&self, limit: Limit, who: &str) -> Result<Result<(), Duration>, Down> {
        match self {
            Coordination::Local(l) => Ok(l.limiter(limit).take(who)),
            Coordination::Redis(r) => r.take(limit, who).await,
        }
    }

    /// A new socket of `user`: its generation, and the live ones it finds.
    pub async fn arrive(&self, user: &str) -> Result<Generation, Down> {
        match self {
            Coordination::Local(l) => Ok(l.arrive(user, None)),
            Coordination::Redis(r) => r.sockets(user, None).await,
        }
    }

    /// Looks again after the socket joined its rooms: is there a newer one now?
    pub async fn recheck(&self, user: &str, mine: u64) -> Result<Generation, Down> {
        match self {
            Coordination::Local(l) => Ok(l.arrive(user, Some(mine))),
            Coordination::Redis(r) => r.sockets(user, Some(mine)).await,
        }
    }

    /// A socket of `user` left.
    pub async fn leave(&self, user: &str, generation: u64) {
        match self {
            Coordination::Local(l) => {
                let mut live = lock(&l.live);
                if let Some(set) = live.get_mut(user) {
                    set.1.retain(|&g| g != generation);
                    if set.1.is_empty() {
                        live.remove(user);
                    }
                }
            }
            Coordination::Redis(r) => r.leave(user, generation).await,
        }
    }
}

pub struct Local {
    connect: RateLimiter,
    qr: RateLimiter,
    /// Per user: the last generation handed out, and the live ones, ascending (each new one is
    /// the largest). A `Vec` sized to its one usual entry: a `BTreeSet`'s node is about 100 bytes
    /// for each connected user.
    live: Mutex<HashMap<String, (u64, Vec<u64>)>>,
}

impl Local {
    fn limiter(&self, limit: Limit) -> &RateLimiter {
        match limit {
            Limit::Connect => &self.connect,
            Limit::Qr => &self.qr,
        }
    }

    fn arrive(&self, user: &str, recheck: Option<u64>) -> Generation {
        let mut live = lock(&self.live);
        let (last, set) = live.entry(user.to_owned()).or_default();
        let mine = match recheck {
            Some(mine) => mine,
            None => {
                *last += 1;
                set.reserve_exact(1);
                set.push(*last);
                *last
            }
        };
        // Ascending: the older ones are a prefix, a newer one is the last.
        let older: Vec<u64> = set.drain(..set.partition_point(|&g| g < mine)).collect();
        Generation {
            mine,
            older,
            newer: set.last().is_some_and(|&g| g > mine),
        }
    }
}

/// Keys live a day after their last use: a user who left leaves nothing behind for long.
const KEY_TTL_S: u64 = 86_400;

/// GCRA (as `governor` does): `KEYS[1]` holds the theoretical arrival time in ms. ARGV: the
/// emission interval and the burst, in requests. Returns 0, or the ms to wait. Redis's clock.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - now - interval * (burst - 1)
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now + 1000)
return 0
";

/// A user's sockets: `KEYS[1]` holds the last generation, `KEYS[2]` is the sorted set of live
/// ones. ARGV[1]: 0 for a new socket (it gets the next generation), else the generation to
/// recheck. Returns {mine, newer (0/1), older...}; the older ones are removed (their sockets are
/// told to go by the caller). A generation is at least Redis's clock in µs, so it still grows
/// after Redis restarted empty (the nodes then register their live sockets again: `rejoin`).
const SOCKETS: &str = r"
local mine = tonumber(ARGV[1])
if mine == 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  mine = math.max(tonumber(redis.call('GET', KEYS[1]) or 0) + 1, now)
  redis.call('SET', KEYS[1], string.format('%d', mine))
  redis.call('ZADD', KEYS[2], mine, string.format('%d', mine))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
-- Lua prints large numbers in floating point: scores are written as integers by hand.
local m = string.format('%d', mine)
local older = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. m)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. m)
local newer = redis.call('ZCOUNT', KEYS[2], '(' .. m, '+inf')
local out = {mine, newer}
for _, g in ipairs(older) do table.insert(out, tonumber(g)) end
return out
";

pub struct Redis {
    client: fred::clients::Client,
    limits: PerMinute,
}

impl Redis {
    pub fn new(client: fred::clients::Client, limits: PerMinute) -> Self {
        Redis { client, limits }
    }

    pub fn client(&self) -> &fred::clients::Client {
        &self.client
    }

    async fn take(&self, limit: Limit, who: &str) -> Result<Result<(), Duration>, Down> {
        use fred::interfaces::LuaInterface;
        let per_minute = self.limits.of(limit);
        if per_minute == 0 {
            return Ok(Ok(()));
        }
        let interval = 60_000 / u64::from(per_minute);
        let key = format!("botlink:limit:{}:{who}", limit.key());
        let wait: u64 = self
            .client
            .eval(GCRA, vec![key], vec![interval, u64::from(per_minute)])
            .await
            .map_err(|e| Down(e.to_string()))?;
        Ok(match wait {
            0 => Ok(()),
            ms => Err(Duration::from_millis(ms)),
        })
    }

    async fn sockets(&self, user: &str, recheck: Option<u64>) -> Result<Generation, Down> {
        use fred::interfaces::LuaInterface;
        let keys = vec![
            format!("botlink:gen:{user}"),
            format!("botlink:live:{user}"),
        ];
        let out: Vec<u64> = self
            .client
            .eval(SOCKETS, keys, vec![recheck.unwrap_or(0), KEY_TTL_S])
            .await
            .map_err(|e| Down(e.to_string()))?;
        match out.as_slice() {
            [mine, newer, older @ ..] => Ok(Generation {
                mine: *mine,
                older: older.to_vec(),
                newer: *newer > 0,
            }),
            _ => Err(Down(format!("unexpected answer {out:?}"))),
        }
    }

    /// Registers a live socket again (after Redis restarted and forgot it).
    pub async fn rejoin(&self, user: &str, generation: u64) -> Result<(), Down> {
        use fred::interfaces::LuaInterface;
        let _: u64 = self
            .client
            .eval(
                "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1]) \
                 redis.call('EXPIRE', KEYS[1], ARGV[2]) return 0",
                vec![format!("botlink:live:{user}")],
                vec![generation, KEY_TTL_S],
            )
            .await
            .map_err(|e| Down(e.to_string()))?;
        Ok(())
    }

    async fn leave(&self, user: &str, generation: u64) {
        use fred::interfaces::LuaInterface;
        let removed: Result<u64, _> = self
            .client
            .eval(
                "return redis.call('ZREM', KEYS[1], ARGV[1])",
                vec![format!("botlink:live:{user}")],
                vec![generation],
            )
            .await;
        if let Err(e) = removed {
            // The entry is removed by the user's next socket anyway (it is older).
            tracing::warn!(%user, "could not note a socket's leaving in Redis: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Box<Local> {
        match Coordination::local(PerMinute { connect: 0, qr: 0 }) {
            Coordination::Local(l) => l,
            Coordination::Redis(_) => unreachable!(),
        }
    }

    #[test]
    fn the_newest_socket_wins_whichever_looks_last() {
        let l = local();
        let a = l.arrive("u", None);
        assert_eq!((a.mine, a.older.clone(), a.newer), (1, vec![], false));
        let b = l.arrive("u", None);
        assert_eq!(
            (b.mine, b.older, b.newer),
            (2, vec![1], false),
            "b tells a to go"
        );
        assert!(
            l.arrive("u", Some(1)).newer,
            "a, looking again, sees b and goes"
        );
        assert!(!l.arrive("u", Some(2)).newer);
        assert_eq!(l.arrive("v", None).mine, 1, "users are apart");
    }
}
