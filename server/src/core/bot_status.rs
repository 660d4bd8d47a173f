//! A bot's status (§1): stored, then told to its user's socket (`bot_status_update`). Both links
//! use these; the status's word is the protocol crate's. Async callers await the store; the
//! WhatsApp library's synchronous callbacks use the `_in_order` forms, which run in the outbox
//! in the order they were called, among the events emitted around them.

use crate::{
    core::context::Ctx,
    core::outbox::Kind,
    store::{self, StoreError},
};
use protocol::{BotStatus, Pairing, ServerEvent, WhatsAppEvent, events::BotStatusUpdate};

/// Stores a status and tells the user's socket, in the bot's order among what the WhatsApp
/// library's callbacks wrote (the outbox), and waits for it. `reason` says why, in words
/// (`statusReason`). The socket is told even when the store failed (the screen shows what
/// happened); the error is logged and returned, for an HTTP answer to report it.
pub async fn set_status(
    st: &Ctx,
    user_id: &str,
    bot_id: &str,
    status: BotStatus,
    phone: Option<&str>,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    set_status_under(st, user_id, bot_id, status, phone, reason, None).await
}

/// [`set_status`] by the holder of the bot's device, under its `fence` (cluster mode): once
/// another node took the device, neither stored nor told (that node's word stands).
pub async fn set_status_under(
    st: &Ctx,
    user_id: &str,
    bot_id: &str,
    status: BotStatus,
    phone: Option<&str>,
    reason: Option<&str>,
    fence: Option<i64>,
) -> Result<(), StoreError> {
    let (st2, user, bot) = (st.clone(), user_id.to_owned(), bot_id.to_owned());
    let (phone, reason) = (phone.map(str::to_owned), reason.map(str::to_owned));
    let write = async move {
        let stored = store_status(
            &st2,
            &bot,
            status,
            phone.as_deref(),
            reason.as_deref(),
            fence,
        )
        .await;
        if !matches!(stored, Err(StoreError::Fenced)) {
            st2.send(&user, &status_event(&bot, status)).await;
        }
        stored
    };
    st.outbox
        .run(bot_id, write)
        .await
        .unwrap_or_else(|| Err(StoreError::Down("the server is stopping".into())))
}

/// Stores a status; the phone stays unless a new one comes or the bot logged out. Under
/// `fence`: only while the bot's device is still this node's ([`StoreError::Fenced`] if not).
pub async fn store_status(
    st: &Ctx,
    bot_id: &str,
    status: BotStatus,
    phone: Option<&str>,
    reason: Option<&str>,
    fence: Option<i64>,
) -> Result<(), StoreError> {
    let stored = async {
        let keep_phone = match (status, phone) {
            (_, Some(p)) => Some(p.to_owned()),
            (BotStatus::LoggedOut, None) => None,
            _ => st
                .store
                .get_bot_any(bot_id)
                .await?
                .and_then(|(_, b)| b.phone),
        };
        let phone = keep_phone.as_deref();
        match fence {
            Some(fence) => {
                st.store
                    .set_status_fenced(bot_id, status, phone, reason, fence)
                    .await
            }
            None => st.store.set_status(bot_id, status, phone, reason).await,
        }
    }
    .await;
    match &stored {
        Err(StoreError::Fenced) => {
            tracing::info!(
                bot = bot_id,
                "not stored ({status:?}): another node holds the bot's device now"
            );
        }
        Err(e) => tracing::error!("could not store the status of {bot_id} ({status:?}): {e}"),
        Ok(()) => {}
    }
    stored
}

/// Tells the user's socket a bot's status (`bot_status_update`).
pub fn announce_status(st: &Ctx, user_id: &str, bot_id: &str, status: BotStatus) {
    st.emit_to_user(user_id, &status_event(bot_id, status));
}

/// `qr_updated` for a pairing's current QR.
pub fn qr_event(bot_id: &str, qr: Pairing) -> ServerEvent {
    ServerEvent::WhatsApp(WhatsAppEvent::QrUpdated {
        bot_id: bot_id.to_owned(),
        qr,
    })
}

/// `bot_status_update` for a bot, stamped now.
pub fn status_event(bot_id: &str, status: BotStatus) -> ServerEvent {
    ServerEvent::BotStatus(BotStatusUpdate {
        bot_id: bot_id.to_owned(),
        status,
        at: Some(store::now_rfc3339()),
    })
}

/// A pairing that ends unlinked leaves the bot `created` if it never had a phone, else `disconnected`.
pub async fn previous_status(st: &Ctx, bot_id: &str) -> BotStatus {
    match st.store.get_bot_any(bot_id).await {
        Ok(Some((_, bot))) if bot.phone.is_some() => BotStatus::Disconnected,
        _ => BotStatus::Created,
    }
}

/// What a status change from a synchronous caller sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// This status.
    Is(BotStatus),
    /// Where the bot was before its pairing ([`previous_status`]).
    Back,
}

/// How a status write waits in the outbox: an ending is never dropped; any other is replaced
/// by a newer status that does at least as much.
fn kind(status: Option<BotStatus>, stores: bool, announces: bool) -> Kind {
    match status {
        Some(s) if s.is_ending() => Kind::Once,
        _ => Kind::Status { stores, announces },
    }
}

/// [`set_status`] for synchronous callers: stored and announced in the bot's order (under the
/// holder's `fence`, as [`set_status_under`]).
pub fn set_status_in_order(
    st: &Ctx,
    user_id: &str,
    bot_id: &str,
    next: Next,
    reason: Option<String>,
    fence: Option<i64>,
) {
    let (st2, user, bot) = (st.clone(), user_id.to_owned(), bot_id.to_owned());
    let known = match next {
        Next::Is(s) => Some(s),
        Next::Back => None,
    };
    st.outbox.put(bot_id, kind(known, true, true), async move {
        let status = match next {
            Next::Is(s) => s,
            Next::Back => previous_status(&st2, &bot).await,
        };
        // A failure is logged by store_status; the user is told the status all the same,
        // unless another node holds the bot now.
        let stored = store_status(&st2, &bot, status, None, reason.as_deref(), fence).await;
        if !matches!(stored, Err(StoreError::Fenced)) {
            st2.send(&user, &status_event(&bot, status)).await;
        }
    });
}

/// [`store_status`] for synchronous callers, in the bot's order.
pub fn store_status_in_order(
    st: &Ctx,
    bot_id: &str,
    status: BotStatus,
    phone: Option<String>,
    fence: Option<i64>,
) {
    let (st2, bot) = (st.clone(), bot_id.to_owned());
    st.outbox
        .put(bot_id, kind(Some(status), true, false), async move {
            let _ = store_status(&st2, &bot, status, phone.as_deref(), None, fence).await;
        });
}
