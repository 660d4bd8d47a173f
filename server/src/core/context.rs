//! What the API, the sockets and the WhatsApp link share: the store, the notifier (the
//! outbox and the Socket.IO handle), the counters, the node's name and its configuration. A
//! link gets this narrow context, never the whole application state (`state.rs`), so the link
//! depends on the core and never the other way round.

use crate::{
    config::ServeArgs,
    core::outbox::{Kind, Outbox},
    core::stats::{Counters, Stats},
    realtime::adapter::Io,
    store::Store,
};
use protocol::{ServerEvent, WhatsAppEvent};
use std::sync::{Arc, OnceLock, atomic::AtomicBool};

pub type Ctx = Arc<Context>;

pub struct Context {
    pub cfg: ServeArgs,
    /// This node's name in the cluster (`--node-id`; alone, its address).
    pub node: String,
    pub store: Box<dyn Store>,
    /// Set once, right after the Socket.IO layer is built (its handlers need this state).
    pub io: OnceLock<Io>,
    pub outbox: Outbox,
    pub stats: Stats,
    /// Set on SIGTERM: health says 503.
    pub draining: AtomicBool,
}

/// The room of a user's sockets (one live at a time, on any node).
pub fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

impl Context {
    pub fn new(cfg: ServeArgs, node: String, store: Box<dyn Store>) -> Ctx {
        let stats = Stats::new(!cfg.production);
        Arc::new(Context {
            cfg,
            node,
            store,
            io: OnceLock::new(),
            outbox: Outbox::default(),
            stats,
            draining: AtomicBool::new(false),
        })
    }

    /// This node's counters now.
    pub fn counters(&self) -> Counters {
        self.stats.snapshot()
    }

    /// Sends an event to the user's socket, wherever it is connected, after every event put
    /// in before it about the same bot (the outbox keeps the order, and coalesces QRs and
    /// statuses that wait).
    pub fn emit_to_user(&self, user_id: &str, event: &ServerEvent) {
        let Some(io) = self.io.get().cloned() else {
            return;
        };
        let bot = event.bot_id().unwrap_or_default().to_owned();
        let (user, event) = (user_id.to_owned(), event.clone());
        self.outbox.put(&bot, kind_of(&event), async move {
            send(&io, &user, &event).await;
        });
    }

    /// Sends an event as JSON, unchecked (`POST /api/dev/bots/{id}/emit`), in the bot's order.
    pub fn emit_json_to_user(
        &self,
        user_id: &str,
        bot_id: &str,
        name: String,
        data: serde_json::Value,
    ) {
        let Some(io) = self.io.get().cloned() else {
            return;
        };
        let room = user_room(user_id);
        self.outbox.put(bot_id, Kind::Once, async move {
            if let Err(e) = io.to(room).emit(&name, &data).await {
                tracing::warn!("could not emit {name}: {e}");
            }
        });
    }

    /// Sends an event now: only from work running in the outbox (it keeps the order).
    pub async fn send(&self, user_id: &str, event: &ServerEvent) {
        if let Some(io) = self.io.get() {
            send(io, user_id, event).await;
        }
    }
}

/// How an event waiting in the outbox coalesces: a QR and a non-final status announcement are
/// replaced by newer ones; everything else is sent.
fn kind_of(event: &ServerEvent) -> Kind {
    match event {
        ServerEvent::WhatsApp(WhatsAppEvent::QrUpdated { .. }) => Kind::Qr,
        ServerEvent::BotStatus(update) if !update.status.is_ending() => Kind::Status {
            stores: false,
            announces: true,
        },
        _ => Kind::Once,
    }
}

async fn send(io: &Io, user: &str, event: &ServerEvent) {
    if let Err(e) = io.to(user_room(user)).emit(event.name(), event).await {
        tracing::warn!(%user, "could not emit {}: {e}", event.name());
    }
}
