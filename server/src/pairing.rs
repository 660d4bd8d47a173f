//! The engine of the simulated WhatsApp link (`links::Simulated`): one pairing per bot, QR refs that rotate and expire as
//! WhatsApp's do (first 60 s, then 20 s, 6 in all), a "scan" through `/link/<ref>`, and the
//! restart (code 515) before `whatsapp_connected`.

use crate::{
    bot_status::{announce_status, previous_status, set_status, store_status},
    pairings::{CODE_ALPHABET, CODE_TTL, IssuedCode, Pairing, RefLookup},
    state::{Shared, lock},
    store::random_id,
};
use protocol::{
    BotStatus, Pairing as PairingView, ServerEvent, WhatsAppEvent, codes, http::PairingCode,
};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// `qr_updated` for a pairing's current QR.
pub fn qr_event(bot_id: &str, qr: PairingView) -> ServerEvent {
    ServerEvent::WhatsApp(WhatsAppEvent::QrUpdated {
        bot_id: bot_id.to_owned(),
        qr,
    })
}

/// A `whatsapp_connection_event` about `bot_id`, made by `make`.
fn whatsapp(bot_id: &str, make: impl FnOnce(String) -> WhatsAppEvent) -> ServerEvent {
    ServerEvent::WhatsApp(make(bot_id.to_owned()))
}

/// Starts the bot's pairing, or joins the one already running (never two for one bot).
pub fn start_or_join(st: &Shared, user_id: &str, bot_id: &str) -> PairingView {
    let mut running = lock(&st.pairings.running);
    if let Some(p) = running.get(bot_id) {
        return st.pairings.view_of(p);
    }
    let p = Pairing {
        user_id: user_id.to_owned(),
        qr_ref: random_id(16),
        attempt: 1,
        expires_in_ms: st.cfg.qr_first_ms,
        task: None,
        scanned: false,
        code: None,
    };
    let view = st.pairings.view_of(&p);
    running.insert(bot_id.to_owned(), p);
    let task = tokio::spawn(rotate(st.clone(), bot_id.to_owned()));
    if let Some(p) = running.get_mut(bot_id) {
        p.task = Some(task.abort_handle());
    }
    drop(running);
    st.stats.update(|c| c.pairings_started += 1);
    set_status(st, user_id, bot_id, BotStatus::Pairing, None, None);
    view
}

/// Rotates the QR when it expires; after the last one, `qr_expired`.
async fn rotate(st: Shared, bot_id: String) {
    let mut wait = match lock(&st.pairings.running).get(&bot_id) {
        Some(p) => Duration::from_millis(p.expires_in_ms),
        None => return,
    };
    loop {
        tokio::time::sleep(wait).await;
        let mut running = lock(&st.pairings.running);
        let Some(p) = running.get_mut(&bot_id) else {
            return;
        };
        if p.scanned {
            return;
        }
        if p.attempt >= st.pairings.qr.count {
            // A pairing code handed out for this pairing keeps it open until the code expires.
            let code_left = p.code.as_ref().and_then(|c| {
                c.expires_at
                    .checked_duration_since(Instant::now())
                    .filter(|d| !d.is_zero())
            });
            if let Some(left) = code_left {
                wait = left;
                continue;
            }
            let user = p.user_id.clone();
            let p = running.remove(&bot_id);
            drop(running);
            if let Some(p) = p {
                st.pairings.spend(p.qr_ref, "expired");
                if let Some(code) = p.code {
                    st.pairings.spend(code.code, "expired");
                }
            }
            st.emit_to_user(
                &user,
                &whatsapp(&bot_id, |bot_id| WhatsAppEvent::QrExpired { bot_id }),
            );
            let back = previous_status(&st, &bot_id);
            set_status(&st, &user, &bot_id, back, None, None);
            return;
        }
        let old = std::mem::replace(&mut p.qr_ref, random_id(16));
        p.attempt += 1;
        p.expires_in_ms = st.cfg.qr_next_ms;
        wait = Duration::from_millis(p.expires_in_ms);
        let view = st.pairings.view_of(p);
        let user = p.user_id.clone();
        drop(running);
        st.pairings.spend(old, "expired");
        st.emit_to_user(&user, &qr_event(&bot_id, view));
    }
}

/// The "scan": `qr_scanned`, then after the simulated restart `whatsapp_connected`.
/// Returns the bot's name, or why nothing was linked.
pub fn scan(st: &Shared, qr_ref: &str) -> Result<String, &'static str> {
    let bot_id = match st.pairings.lookup(qr_ref) {
        RefLookup::Live { bot_id } => bot_id,
        RefLookup::Spent(why) => return Err(why),
        RefLookup::Unknown => return Err("unknown"),
    };
    let running = lock(&st.pairings.running);
    if !running
        .get(&bot_id)
        .is_some_and(|p| p.qr_ref == qr_ref && !p.scanned)
    {
        return Err("used");
    }
    link(st, running, bot_id)
}

/// Hands out a pairing code for the bot's pairing, starting the pairing if none runs. A new code
/// replaces the previous one, as WhatsApp's do.
pub fn issue_code(st: &Shared, user_id: &str, bot_id: &str) -> PairingCode {
    start_or_join(st, user_id, bot_id);
    let code: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..8)
            .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
            .collect()
    };
    let replaced = lock(&st.pairings.running).get_mut(bot_id).and_then(|p| {
        p.code.replace(IssuedCode {
            code: code.clone(),
            expires_at: Instant::now() + CODE_TTL,
        })
    });
    if let Some(old) = replaced {
        st.pairings.spend(old.code, "expired");
    }
    PairingCode {
        code,
        expires_in_ms: CODE_TTL.as_millis() as u64,
    }
}

/// A code as a person typed it: any case, with or without the dash or spaces.
pub fn normalize_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The phone entered a pairing code: links like a scan. Returns the bot's name, or why not.
pub fn enter_code(st: &Shared, typed: &str) -> Result<String, &'static str> {
    let code = normalize_code(typed);
    if code.len() != 8 {
        return Err("unknown");
    }
    let running = lock(&st.pairings.running);
    let now = Instant::now();
    let found = running.iter().find_map(|(bot, p)| {
        let issued = p.code.as_ref().filter(|c| c.code == code)?;
        Some((bot.clone(), issued.expires_at <= now || p.scanned))
    });
    match found {
        None => match lock(&st.pairings.spent).get(&code) {
            Some(why) => Err(why),
            None => Err("unknown"),
        },
        Some((_, true)) => Err("expired"),
        Some((bot_id, false)) => link(st, running, bot_id),
    }
}

/// The phone accepted the link (a scanned QR or an entered code): `qr_scanned`, then after the
/// simulated restart `whatsapp_connected`. Takes the lock on the running pairings from the caller.
fn link(
    st: &Shared,
    mut running: std::sync::MutexGuard<'_, HashMap<String, Pairing>>,
    bot_id: String,
) -> Result<String, &'static str> {
    let Some(p) = running.get_mut(&bot_id).filter(|p| !p.scanned) else {
        return Err("used");
    };
    let qr_ref = p.qr_ref.clone();
    p.scanned = true;
    let code = p.code.take();
    if let Some(task) = p.task.take() {
        task.abort();
    }
    let user = p.user_id.clone();
    let restart = tokio::spawn(finish_link(st.clone(), user.clone(), bot_id.clone()));
    p.task = Some(restart.abort_handle());
    drop(running);
    st.pairings.spend(qr_ref, "used");
    if let Some(code) = code {
        st.pairings.spend(code.code, "used");
    }
    st.emit_to_user(
        &user,
        &whatsapp(&bot_id, |bot_id| WhatsAppEvent::QrScanned { bot_id }),
    );
    Ok(st
        .store
        .get_bot_any(&bot_id)
        .ok()
        .flatten()
        .map(|(_, b)| b.name)
        .unwrap_or_default())
}

async fn finish_link(st: Shared, user: String, bot_id: String) {
    tokio::time::sleep(Duration::from_millis(st.cfg.restart_ms)).await;
    if lock(&st.pairings.running).remove(&bot_id).is_none() {
        return;
    }
    let phone = format!("+1555{:07}", rand::random::<u32>() % 10_000_000);
    // Stored once, first (a client that reloads now sees it), then announced in the contract's
    // order: whatsapp_connected, then bot_status_update.
    store_status(&st, &bot_id, BotStatus::Connected, Some(&phone), None);
    st.emit_to_user(
        &user,
        &whatsapp(&bot_id, |bot_id| WhatsAppEvent::WhatsappConnected {
            bot_id,
            phone: Some(phone),
        }),
    );
    announce_status(&st, &user, &bot_id, BotStatus::Connected);
}

/// `POST /api/dev/bots/{id}/fail`: a `connection_failed` with `code`, and its consequence.
pub fn fail(st: &Shared, user_id: &str, bot_id: &str, code: u16) {
    let reason = match code {
        codes::LOGGED_OUT => "logged out on the phone",
        codes::FORBIDDEN => "forbidden",
        codes::CONNECTION_FAILURE => "connection failure",
        codes::TIMED_OUT => "timed out",
        codes::MULTIDEVICE_MISMATCH => "multi-device mismatch",
        codes::CLIENT_OUTDATED => "client outdated",
        codes::CONNECTION_CLOSED => "connection closed",
        codes::CONFLICT => "conflict: another session replaced this one",
        codes::BAD_SESSION => "bad session",
        codes::UNAVAILABLE => "unavailable",
        codes::RESTART_REQUIRED => "restart required",
        _ => "failure",
    };
    st.emit_to_user(
        user_id,
        &whatsapp(bot_id, |bot_id| WhatsAppEvent::ConnectionFailed {
            bot_id,
            code,
            reason: Some(reason.to_owned()),
        }),
    );
    let status = match code {
        codes::LOGGED_OUT => BotStatus::LoggedOut,
        codes::CONFLICT => BotStatus::Conflict,
        _ => BotStatus::Disconnected,
    };
    match codes::meaning(code) {
        // A stop ends the pairing; the bot says why.
        codes::Meaning::Stop => {
            st.pairings.end(bot_id);
            set_status(st, user_id, bot_id, status, None, Some(reason));
        }
        // Retryable codes and 515: the simulated backend restarts itself; the pairing goes on.
        codes::Meaning::Retry | codes::Meaning::KeepWaiting => {}
    }
}
