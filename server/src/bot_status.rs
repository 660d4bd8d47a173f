//! A bot's status (§1): stored, then told to its user's socket (`bot_status_update`). Both links
//! use these; the status's word is the protocol crate's.

use crate::{state::Shared, store};
use protocol::{BotStatus, ServerEvent, events::BotStatusUpdate};

/// Stores a status and tells the user's socket. `reason` says why, in words (`statusReason`).
pub fn set_status(
    st: &Shared,
    user_id: &str,
    bot_id: &str,
    status: BotStatus,
    phone: Option<&str>,
    reason: Option<&str>,
) {
    store_status(st, bot_id, status, phone, reason);
    announce_status(st, user_id, bot_id, status);
}

/// Stores a status; the phone stays unless a new one comes or the bot logged out.
pub fn store_status(
    st: &Shared,
    bot_id: &str,
    status: BotStatus,
    phone: Option<&str>,
    reason: Option<&str>,
) {
    let keep_phone = match (status, phone) {
        (_, Some(p)) => Some(p.to_owned()),
        (BotStatus::LoggedOut, None) => None,
        _ => st
            .store
            .get_bot_any(bot_id)
            .ok()
            .flatten()
            .and_then(|(_, b)| b.phone),
    };
    if let Err(e) = st
        .store
        .set_status(bot_id, status, keep_phone.as_deref(), reason)
    {
        tracing::error!("could not store the status of {bot_id}: {e}");
    }
}

/// Tells the user's socket a bot's status (`bot_status_update`).
pub fn announce_status(st: &Shared, user_id: &str, bot_id: &str, status: BotStatus) {
    st.emit_to_user(user_id, &status_event(bot_id, status));
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
pub fn previous_status(st: &Shared, bot_id: &str) -> BotStatus {
    match st.store.get_bot_any(bot_id) {
        Ok(Some((_, bot))) if bot.phone.is_some() => BotStatus::Disconnected,
        _ => BotStatus::Created,
    }
}
