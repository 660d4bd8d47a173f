//! The node's counters: the witnesses of "one socket per QR display" and of the real link's
//! discipline, read by `/api/dev/stats` and, in a cluster, summed over the nodes.

use crate::core::sync::lock;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, sync::Mutex};

pub struct Stats {
    counters: Mutex<Counters>,
    /// Counters per user are kept only where `/api/dev/stats` can read them (dev mode): in
    /// production they would grow with every user ever seen, and be cloned and published with
    /// every snapshot, under the lock every CONNECT takes.
    per_user: bool,
}

#[derive(Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counters {
    /// Namespace connections accepted.
    pub sockets_opened: u64,
    /// Namespace connections live now.
    pub sockets_open: u64,
    /// Live sockets closed because the same user connected again.
    pub sockets_replaced: u64,
    /// CONNECTs refused (`token_expired`, `unauthorized`, `rate_limited`).
    pub connect_errors: u64,
    /// Pairings started: clients started by a QR or pairing-code request (PROTOCOL.md §8; a
    /// restarted server resuming its linked bots starts none).
    pub pairings_started: u64,
    /// WebSocket upgrade requests on `/socket.io/` — every socket a client opened, accepted or not.
    pub ws_upgrades: u64,
    /// The real WhatsApp link: clients started, and running now (at most one per bot).
    pub whatsapp_clients_started: u64,
    pub whatsapp_clients_running: u64,
    /// Its connection attempts to WhatsApp, and those our retry budget refused.
    pub whatsapp_connect_attempts: u64,
    pub whatsapp_attempts_refused: u64,
    /// Clients stopped because their retry budget was spent.
    pub whatsapp_budgets_spent: u64,
    /// Cluster: linked devices this node adopted from a node that stopped.
    pub devices_adopted: u64,
    pub per_user: BTreeMap<String, UserCounters>,
}

#[derive(Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct UserCounters {
    pub opened: u64,
    pub open: u64,
    pub replaced: u64,
}

impl Counters {
    /// Adds another node's counters to these (the cluster-wide sum).
    pub fn add(&mut self, o: &Counters) {
        self.sockets_opened += o.sockets_opened;
        self.sockets_open += o.sockets_open;
        self.sockets_replaced += o.sockets_replaced;
        self.connect_errors += o.connect_errors;
        self.pairings_started += o.pairings_started;
        self.ws_upgrades += o.ws_upgrades;
        self.whatsapp_clients_started += o.whatsapp_clients_started;
        self.whatsapp_clients_running += o.whatsapp_clients_running;
        self.whatsapp_connect_attempts += o.whatsapp_connect_attempts;
        self.whatsapp_attempts_refused += o.whatsapp_attempts_refused;
        self.whatsapp_budgets_spent += o.whatsapp_budgets_spent;
        self.devices_adopted += o.devices_adopted;
        for (user, u) in &o.per_user {
            let mine = self.per_user.entry(user.clone()).or_default();
            mine.opened += u.opened;
            mine.open += u.open;
            mine.replaced += u.replaced;
        }
    }
}

impl Stats {
    /// `per_user`: keep each user's counters too (dev mode).
    pub fn new(per_user: bool) -> Stats {
        Stats {
            counters: Mutex::default(),
            per_user,
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.counters));
    }

    pub fn user(&self, user: &str, f: impl FnOnce(&mut UserCounters)) {
        if self.per_user {
            f(lock(&self.counters)
                .per_user
                .entry(user.to_owned())
                .or_default());
        }
    }

    pub fn snapshot(&self) -> Counters {
        lock(&self.counters).clone()
    }

    /// Zeroes the cumulative counters; what is open now stays counted as open.
    pub fn reset(&self) {
        let mut c = lock(&self.counters);
        let open = c.sockets_open;
        let running = c.whatsapp_clients_running;
        let per_user: BTreeMap<_, _> = c
            .per_user
            .iter()
            .filter(|(_, u)| u.open > 0)
            .map(|(k, u)| {
                (
                    k.clone(),
                    UserCounters {
                        open: u.open,
                        ..UserCounters::default()
                    },
                )
            })
            .collect();
        *c = Counters {
            sockets_open: open,
            whatsapp_clients_running: running,
            per_user,
            ..Counters::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn per_user_counters_are_kept_only_when_asked() {
        for (per_user, kept) in [(true, 1), (false, 0)] {
            let stats = Stats::new(per_user);
            for user in ["a", "b", "a"] {
                stats.user(user, |u| u.opened += 1);
            }
            stats.update(|c| c.sockets_opened += 3);
            let c = stats.snapshot();
            assert_eq!(c.sockets_opened, 3);
            assert_eq!(c.per_user.get("a").map_or(0, |_| 1), kept);
            assert_eq!(c.per_user.len(), 2 * kept);
        }
    }
}
