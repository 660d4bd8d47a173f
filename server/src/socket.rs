//! The Socket.IO side (PROTOCOL.md §2, §5): CONNECT auth, one live socket per user, the state
//! replay on CONNECT, and counters. Client events are not part of the contract: logged, dropped.

use crate::{
    pairing,
    state::{Shared, lock},
    store::TokenCheck,
};
use serde::Deserialize;
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectAuth {
    token: String,
    #[serde(default)]
    bot_id: Option<String>,
}

/// A refused CONNECT; its text is the `message` of the `44` packet.
#[derive(Debug)]
pub struct Refused(&'static str);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
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
    let refuse = |why: &'static str| {
        st.stats.update(|c| c.connect_errors += 1);
        tracing::info!(sid = %s.id, "socket refused: {why}");
        Err(Refused(why))
    };
    let Ok(auth) = auth else {
        return refuse("unauthorized");
    };
    let user_id = match st.store.check_token(&auth.token) {
        Ok(TokenCheck::Valid { user_id }) => user_id,
        Ok(TokenCheck::Expired { .. }) => return refuse("token_expired"),
        Ok(TokenCheck::Unknown) => return refuse("unauthorized"),
        Err(e) => {
            tracing::error!("token check failed: {e}");
            return refuse("unauthorized");
        }
    };
    if st.connect_limit.take(&user_id).is_err() {
        return refuse("rate_limited");
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
        && let Some((event, payload)) = pairing::replay(&st, &user, bot)
    {
        let _ = s.emit(event, &payload);
    }
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
