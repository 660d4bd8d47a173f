//! The Socket.IO side (PROTOCOL.md §2, §5): CONNECT auth, one live socket per user on any node,
//! the state replay on CONNECT, and counters. Client events are not part of the contract: logged,
//! dropped.
//!
//! One socket per user, cluster-wide: each CONNECT gets the user's next generation (from
//! `coordination`), and its socket joins the room of that generation. The newer socket wins
//! wherever it lands: it tells the rooms of the older generations to disconnect (a room holds
//! one socket, so a late message can never reach a newer one), and a socket that finds a newer
//! generation after joining its room goes itself. Two CONNECTs at once on two nodes leave one.

use crate::{
    cluster::coordination::{Coordination, Limit},
    core::bot_status::{qr_event, status_event},
    core::context::Ctx,
    core::context::user_room,
    link::Link,
    realtime::adapter::Adapter,
    store::TokenCheck,
};
use protocol::{ServerEvent, codes::Refusal, frames::ConnectAuth};
use socketioxide::{
    extract::{Data, Event, Extension, SocketRef, State, TryData},
    handler::ConnectHandler,
    socket::DisconnectReason,
};
use std::sync::Arc;

/// Who a socket belongs to, set by the auth middleware.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user_id: String,
    pub bot_id: Option<String>,
    /// Its place among the user's sockets (the newest wins).
    pub generation: u64,
    /// The user's older sockets it found when it came: each is told to go.
    pub older: Vec<u64>,
}

/// The room of one generation of a user's sockets: it holds at most one socket.
fn generation_room(user_id: &str, generation: u64) -> String {
    format!("gen:{user_id}:{generation}")
}

/// A refused CONNECT; its text is the `message` of the `44` packet.
#[derive(Debug)]
pub struct Refused(Refusal);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Registers the namespace; in a cluster, once its adapter has subscribed to the other nodes.
pub async fn register(ctx: &Ctx) -> Result<(), String> {
    let Some(io) = ctx.io.get() else {
        return Ok(());
    };
    io.ns("/", on_connect.with(authenticate))
        .await
        .map_err(|e| format!("the Socket.IO adapter could not subscribe: {e}"))
}

async fn authenticate(
    s: SocketRef<Adapter>,
    State(ctx): State<Ctx>,
    State(coordination): State<Arc<Coordination>>,
    TryData(auth): TryData<ConnectAuth>,
) -> Result<(), Refused> {
    let refuse = |why: Refusal| {
        ctx.stats.update(|c| c.connect_errors += 1);
        tracing::info!(sid = %s.id, "socket refused: {}", why.as_str());
        Err(Refused(why))
    };
    let Ok(auth) = auth else {
        return refuse(Refusal::Unauthorized);
    };
    // Whatever fails on our side (the database, Redis) is `rate_limited`: the one refusal the
    // app retries, with backoff. Never `unauthorized`, which would end the person's session.
    let user_id = match ctx.store.check_token(&auth.token).await {
        Ok(TokenCheck::Valid { user_id }) => user_id,
        Ok(TokenCheck::Expired { .. }) => return refuse(Refusal::TokenExpired),
        Ok(TokenCheck::Unknown) => return refuse(Refusal::Unauthorized),
        Err(e) => {
            tracing::warn!("token check failed: {e}");
            return refuse(Refusal::RateLimited);
        }
    };
    match coordination.take(Limit::Connect, &user_id).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return refuse(Refusal::RateLimited),
        Err(e) => {
            tracing::warn!("rate limit not checked: {e}");
            return refuse(Refusal::RateLimited);
        }
    }
    let generation = match coordination.arrive(&user_id).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!("socket generation not given: {e}");
            return refuse(Refusal::RateLimited);
        }
    };
    let bot_id = auth.bot_id.filter(|b| valid_id(b));
    s.extensions.insert(Authed {
        user_id,
        bot_id,
        generation: generation.mine,
        older: generation.older,
    });
    Ok(())
}

pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn on_connect(
    s: SocketRef<Adapter>,
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    State(coordination): State<Arc<Coordination>>,
    Extension(who): Extension<Authed>,
) {
    let user = who.user_id.clone();
    s.on_disconnect(on_disconnect);
    s.on_fallback(
        async |s: SocketRef<Adapter>, Event(event): Event, Data(_): Data<serde_json::Value>| {
            tracing::info!(sid = %s.id, "dropped a client event the contract does not have: {event:?}");
        },
    );
    // Counted before the socket joins its rooms: from then on a newer socket (on any node) can
    // disconnect it, and its `on_disconnect` must find it counted.
    ctx.stats.update(|c| {
        c.sockets_opened += 1;
        c.sockets_open += 1;
    });
    ctx.stats.user(&user, |u| {
        u.opened += 1;
        u.open += 1;
    });
    s.join([user_room(&user), generation_room(&user, who.generation)]);
    // Looked at again now that the socket is in its room: a newer one may have come meanwhile.
    let (mut older, newer) = match coordination.recheck(&user, who.generation).await {
        Ok(g) => (g.older, g.newer),
        Err(e) => {
            tracing::warn!(%user, "could not look for newer sockets: {e}");
            (Vec::new(), false)
        }
    };
    older.extend(&who.older);
    if newer {
        tracing::info!(%user, sid = %s.id, "a newer socket of the user came first: this one goes");
        let _ = s.disconnect();
        return;
    }
    if let Some(io) = ctx.io.get() {
        for old in older {
            if let Err(e) = io.to(generation_room(&user, old)).disconnect().await {
                tracing::warn!(%user, "could not disconnect an older socket: {e}");
            }
        }
    }
    tracing::info!(%user, sid = %s.id, bot = ?who.bot_id, generation = who.generation, "socket connected");
    if let Some(bot) = &who.bot_id
        && let Some(event) = replay(&ctx, link.as_ref(), &user, bot).await
    {
        let _ = s.emit(event.name(), &event);
    }
}

/// The state a socket gets at once on CONNECT with a `botId` (§5): its current QR while it
/// pairs, else its status.
async fn replay(ctx: &Ctx, link: &dyn Link, user_id: &str, bot_id: &str) -> Option<ServerEvent> {
    let bot = ctx.store.get_bot(user_id, bot_id).await.ok().flatten()?;
    Some(match link.pairing(ctx, bot_id).await {
        Some(qr) => qr_event(bot_id, qr),
        None => status_event(&bot.id, bot.status),
    })
}

async fn on_disconnect(
    s: SocketRef<Adapter>,
    State(ctx): State<Ctx>,
    State(coordination): State<Arc<Coordination>>,
    Extension(who): Extension<Authed>,
    reason: DisconnectReason,
) {
    let user = who.user_id;
    coordination.leave(&user, who.generation).await;
    // The server disconnects a namespace socket for one reason only: a newer socket of its user.
    let replaced = reason == DisconnectReason::ServerNSDisconnect;
    ctx.stats.update(|c| {
        c.sockets_open = c.sockets_open.saturating_sub(1);
        c.sockets_replaced += u64::from(replaced);
    });
    ctx.stats.user(&user, |u| {
        u.open = u.open.saturating_sub(1);
        u.replaced += u64::from(replaced);
    });
    tracing::info!(%user, sid = %s.id, "socket disconnected: {reason}");
}

/// After Redis came back (it may have restarted empty): every socket of this node registers its
/// generation again, so a newer socket of its user, anywhere, still finds it and replaces it.
pub async fn rejoin_all(ctx: &Ctx, coordination: &Coordination) {
    let (Some(io), Coordination::Redis(redis)) = (ctx.io.get(), coordination) else {
        return;
    };
    let sockets = io.local().sockets();
    for s in &sockets {
        if let Some(who) = s.extensions.get::<Authed>()
            && let Err(e) = redis.rejoin(&who.user_id, who.generation).await
        {
            tracing::warn!(user = %who.user_id, "could not register a socket again: {e}");
        }
    }
    tracing::info!(
        "Redis reconnected: {} sockets registered again",
        sockets.len()
    );
}
