//! The Socket.IO side (PROTOCOL.md §2, §5): CONNECT auth, one live socket per user, the state
//! replay on CONNECT, and counters. Client events are not part of the contract: logged, dropped.

use crate::{
    bot_status::status_event,
    pairing::qr_event,
    state::{Shared, lock},
    store::TokenCheck,
};
use protocol::{ServerEvent, codes::Refusal, frames::ConnectAuth};
use socketioxide::{
    extract::{Data, Event, Extension, SocketRef, State, TryData},
    handler::ConnectHandler,
    socket::DisconnectReason,
};

/// Who a socket belongs to, set by the auth middleware.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user_id: String,
    pub bot_id: Option<String>,
}

/// A refused CONNECT; its text is the `message` of the `44` packet.
#[derive(Debug)]
pub struct Refused(Refusal);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

pub fn register(st: &Shared) {
    let Some(io) = st.io.get() else { return };
    io.ns("/", on_connect.with(authenticate));
}

async fn authenticate(
    s: SocketRef,
    State(st): State<Shared>,
    TryData(auth): TryData<ConnectAuth>,
) -> Result<(), Refused> {
    let refuse = |why: Refusal| {
        st.stats.update(|c| c.connect_errors += 1);
        tracing::info!(sid = %s.id, "socket refused: {}", why.as_str());
        Err(Refused(why))
    };
    let Ok(auth) = auth else {
        return refuse(Refusal::Unauthorized);
    };
    let user_id = match st.store.check_token(&auth.token) {
        Ok(TokenCheck::Valid { user_id }) => user_id,
        Ok(TokenCheck::Expired { .. }) => return refuse(Refusal::TokenExpired),
        Ok(TokenCheck::Unknown) => return refuse(Refusal::Unauthorized),
        Err(e) => {
            tracing::error!("token check failed: {e}");
            return refuse(Refusal::Unauthorized);
        }
    };
    if st.connect_limit.take(&user_id).is_err() {
        return refuse(Refusal::RateLimited);
    }
    let bot_id = auth.bot_id.filter(|b| valid_id(b));
    s.extensions.insert(Authed { user_id, bot_id });
    Ok(())
}

pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn on_connect(s: SocketRef, State(st): State<Shared>, Extension(who): Extension<Authed>) {
    let user = who.user_id.clone();
    // One live socket per user: the older one is disconnected before the new one counts.
    let previous = lock(&st.sockets).insert(user.clone(), s.id);
    if let Some(old) = previous.filter(|old| *old != s.id)
        && let Some(old_socket) = st.io.get().and_then(|io| io.get_socket(old))
    {
        tracing::info!(%user, old = %old, new = %s.id, "socket replaced by a newer one of the same user");
        let _ = old_socket.disconnect();
        st.stats.update(|c| c.sockets_replaced += 1);
        st.stats.user(&user, |u| u.replaced += 1);
    }
    st.stats.update(|c| {
        c.sockets_opened += 1;
        c.sockets_open += 1;
    });
    st.stats.user(&user, |u| {
        u.opened += 1;
        u.open += 1;
    });
    tracing::info!(%user, sid = %s.id, bot = ?who.bot_id, "socket connected");

    s.on_disconnect(on_disconnect);
    s.on_fallback(async |s: SocketRef, Event(event): Event, Data(_): Data<serde_json::Value>| {
        tracing::info!(sid = %s.id, "dropped a client event the contract does not have: {event:?}");
    });

    if let Some(bot) = &who.bot_id
        && let Some(event) = replay(&st, &user, bot)
    {
        let _ = s.emit(event.name(), &event);
    }
}

/// The state a socket gets at once on CONNECT with a `botId` (§5): its current QR while it
/// pairs, else its status.
fn replay(st: &Shared, user_id: &str, bot_id: &str) -> Option<ServerEvent> {
    let bot = st.store.get_bot(user_id, bot_id).ok().flatten()?;
    Some(match st.link.pairing(st, bot_id) {
        Some(qr) => qr_event(bot_id, qr),
        None => status_event(&bot.id, bot.status),
    })
}

async fn on_disconnect(
    s: SocketRef,
    State(st): State<Shared>,
    Extension(who): Extension<Authed>,
    reason: DisconnectReason,
) {
    let user = who.user_id;
    {
        let mut sockets = lock(&st.sockets);
        if sockets.get(&user) == Some(&s.id) {
            sockets.remove(&user);
        }
    }
    st.stats
        .update(|c| c.sockets_open = c.sockets_open.saturating_sub(1));
    st.stats.user(&user, |u| u.open = u.open.saturating_sub(1));
    tracing::info!(%user, sid = %s.id, "socket disconnected: {reason}");
}
