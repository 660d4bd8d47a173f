//! The server's shared state and its counters (the witnesses of "one socket per QR display").

pub use crate::sync::lock;
use crate::{
    config::ServeArgs,
    limits::RateLimiter,
    links::Link,
    pairings::{Pairings, QrFormat},
    store::Store,
};
use protocol::ServerEvent;
use serde::Serialize;
use socketioxide::{SocketIo, socket::Sid};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, OnceLock},
};

pub type Shared = Arc<AppState>;

/// Pairing codes that may be tried a minute on `/link/code`, by everyone together.
const CODE_ENTRIES_PER_MIN: u32 = 60;

pub struct AppState {
    pub cfg: ServeArgs,
    pub store: Store,
    /// Set once, right after the Socket.IO layer is built (its handlers need this state).
    pub io: OnceLock<SocketIo>,
    pub stats: Stats,
    /// The one live socket of each user (PROTOCOL.md §5).
    pub sockets: Mutex<HashMap<String, Sid>>,
    /// The simulated link's pairings (its engine's state; empty with the real link).
    pub pairings: Pairings,
    /// The WhatsApp link every pairing goes through (`--link`).
    pub link: Box<dyn Link>,
    pub connect_limit: RateLimiter,
    pub qr_limit: RateLimiter,
    /// Pairing codes typed on `/link/code`, all phones together: guessing one is hopeless.
    pub code_entry_limit: RateLimiter,
}

impl AppState {
    pub fn new(cfg: ServeArgs, store: Store, link: Box<dyn Link>) -> Shared {
        let pairings = Pairings::new(QrFormat {
            style: cfg.qr_style,
            public_url: cfg.public_url(),
            count: cfg.qr_count,
        });
        Arc::new(AppState {
            connect_limit: RateLimiter::new(cfg.connect_limit_per_min),
            qr_limit: RateLimiter::new(cfg.qr_limit_per_min),
            code_entry_limit: RateLimiter::new(CODE_ENTRIES_PER_MIN),
            cfg,
            store,
            io: OnceLock::new(),
            stats: Stats::default(),
            sockets: Mutex::new(HashMap::new()),
            pairings,
            link,
        })
    }

    /// Sends an event to the user's socket, if it has one.
    pub fn emit_to_user(&self, user_id: &str, event: &ServerEvent) {
        let Some(io) = self.io.get() else { return };
        let sid = lock(&self.sockets).get(user_id).copied();
        if let Some(socket) = sid.and_then(|sid| io.get_socket(sid))
            && let Err(e) = socket.emit(event.name(), event)
        {
            tracing::warn!(user = user_id, "could not emit {}: {e}", event.name());
        }
    }
}

#[derive(Default)]
pub struct Stats(Mutex<Counters>);

#[derive(Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Namespace connections accepted.
    pub sockets_opened: u64,
    /// Namespace connections live now.
    pub sockets_open: u64,
    /// Live sockets closed because the same user connected again.
    pub sockets_replaced: u64,
    /// CONNECTs refused (`token_expired`, `unauthorized`, `rate_limited`).
    pub connect_errors: u64,
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
    pub per_user: BTreeMap<String, UserCounters>,
}

#[derive(Default, Clone, Serialize)]
pub struct UserCounters {
    pub opened: u64,
    pub open: u64,
    pub replaced: u64,
}

impl Stats {
    pub fn update(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut lock(&self.0));
    }

    pub fn user(&self, user: &str, f: impl FnOnce(&mut UserCounters)) {
        f(lock(&self.0).per_user.entry(user.to_owned()).or_default());
    }

    pub fn snapshot(&self) -> Counters {
        lock(&self.0).clone()
    }

    /// Zeroes the cumulative counters; what is open now stays counted as open.
    pub fn reset(&self) {
        let mut c = lock(&self.0);
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
