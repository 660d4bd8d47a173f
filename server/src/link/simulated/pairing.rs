//! The engine of the simulated WhatsApp link (`links::Simulated`): one pairing per bot, QR refs
//! that rotate and expire as WhatsApp's do (first 60 s, then 20 s, 6 in all), a "scan" through
//! `/link/<ref>`, and the restart (code 515) before `whatsapp_connected`.
//!
//! A pairing is a row of the store, leased to one node at a time ([`LEASE_TTL_MS`], by the
//! database's clock). Only the node holding the lease runs its timers and emits its events, and
//! each change it makes is a compare-and-swap on its fence: a node that lost the lease writes
//! nothing. A node renews its leases every [`TICK`] and adopts those whose node died, so a
//! pairing goes on within `LEASE_TTL_MS + TICK` of its node's death, numbering continued.

use crate::{
    core::bot_status::{announce_status, previous_status, qr_event, set_status, store_status},
    core::context::Ctx,
    link::simulated::pairings::{CODE_ALPHABET, CODE_TTL, RefLookup},
    store::{Lease, NewPairing, PairingRow, Presented, StoreError, random_id},
};
use protocol::{
    BotStatus, Pairing as PairingView, ServerEvent, WhatsAppEvent, codes, http::PairingCode,
};
use std::time::Duration;

/// A lease's length: a node that stops renewing loses its pairings this long after.
pub const LEASE_TTL_MS: i64 = 3_000;
/// How often a node renews its leases and looks for pairings to adopt.
pub const TICK: Duration = Duration::from_millis(1_000);
/// How long a driving task waits before trying again when the store did not answer.
const STORE_RETRY: Duration = Duration::from_millis(500);

/// A `whatsapp_connection_event` about `bot_id`, made by `make`.
fn whatsapp(bot_id: &str, make: impl FnOnce(String) -> WhatsAppEvent) -> ServerEvent {
    ServerEvent::WhatsApp(make(bot_id.to_owned()))
}

fn lease(st: &Ctx) -> Lease<'_> {
    Lease {
        node: &st.node,
        ttl_ms: LEASE_TTL_MS,
    }
}

fn ms(d: u64) -> i64 {
    i64::try_from(d).unwrap_or(i64::MAX)
}

/// Starts the bot's pairing, or joins the one already running, on whichever node (never two
/// for one bot: the store's primary key decides).
pub async fn start_or_join(
    st: &Ctx,
    user_id: &str,
    bot_id: &str,
) -> Result<PairingView, StoreError> {
    let qr_ref = random_id(16);
    let new = NewPairing {
        bot_id,
        user_id,
        qr_ref: &qr_ref,
        qr_ms: ms(st.cfg.qr_first_ms),
    };
    if let Some(row) = st.store.open_pairing(new, lease(st)).await? {
        st.stats.update(|c| c.pairings_started += 1);
        set_status(st, user_id, bot_id, BotStatus::Pairing, None, None).await?;
        let view = st.pairings.view_of(&row);
        drive(st, row);
        return Ok(view);
    }
    match st.store.pairing(bot_id).await? {
        Some(row) => Ok(st.pairings.view_of(&row)),
        // It ended between the two statements: start anew.
        None => Box::pin(start_or_join(st, user_id, bot_id)).await,
    }
}

/// The QR on screen for the bot now, if it is pairing.
pub async fn view(st: &Ctx, bot_id: &str) -> Option<PairingView> {
    match st.store.pairing(bot_id).await {
        Ok(row) => row.map(|r| st.pairings.view_of(&r)),
        Err(e) => {
            tracing::warn!(bot = bot_id, "could not read the pairing: {e}");
            None
        }
    }
}

/// Runs the pairing's timers on this node, which holds its lease with `row.fence`.
fn drive(st: &Ctx, row: PairingRow) {
    let (bot, fence) = (row.bot_id.clone(), row.fence);
    let task = tokio::spawn(run(st.clone(), row));
    st.pairings.driving(&bot, fence, task.abort_handle());
}

/// Rotates the QR when it expires; after the last one, `qr_expired`. After a scan, the restart.
async fn run(st: Ctx, mut row: PairingRow) {
    let (bot, fence) = (row.bot_id.clone(), row.fence);
    loop {
        if let Some(left) = row.link_left_ms {
            tokio::time::sleep(Duration::from_millis(left.max(0) as u64)).await;
            finish_link(&st, &row).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(row.qr_left_ms.max(0) as u64)).await;
        let next = if row.attempt >= st.pairings.qr.count {
            expire(&st, &row).await
        } else {
            rotate(&st, &row).await
        };
        match next {
            Ok(Some(next)) => row = next,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%bot, "pairing step failed, trying again: {e}");
                row.qr_left_ms = STORE_RETRY.as_millis() as i64;
            }
        }
    }
    st.pairings.ended(&bot, fence);
}

/// The next QR, if this node still holds the pairing.
async fn rotate(st: &Ctx, row: &PairingRow) -> Result<Option<PairingRow>, StoreError> {
    let next_ref = random_id(16);
    let Some(next) = st
        .store
        .rotate(&row.bot_id, row.fence, &next_ref, ms(st.cfg.qr_next_ms))
        .await?
    else {
        return Ok(None);
    };
    spend(st, &row.qr_ref, "expired").await;
    st.emit_to_user(
        &row.user_id,
        &qr_event(&row.bot_id, st.pairings.view_of(&next)),
    );
    Ok(Some(next))
}

/// After the last QR: `qr_expired` — unless a pairing code handed out keeps it open.
async fn expire(st: &Ctx, row: &PairingRow) -> Result<Option<PairingRow>, StoreError> {
    let Some(now) = st.store.pairing(&row.bot_id).await? else {
        return Ok(None);
    };
    if now.fence != row.fence || now.scanned() {
        return Ok(None);
    }
    if let Some(left) = now.code_left_ms.filter(|l| *l > 0) {
        return Ok(Some(PairingRow {
            qr_left_ms: left,
            ..now
        }));
    }
    let Some(closed) = st.store.close_pairing(&row.bot_id, Some(row.fence)).await? else {
        return Ok(None);
    };
    spend_shown(st, &closed, "expired").await;
    st.emit_to_user(
        &row.user_id,
        &whatsapp(&row.bot_id, |bot_id| WhatsAppEvent::QrExpired { bot_id }),
    );
    let back = previous_status(st, &row.bot_id).await;
    set_status(st, &row.user_id, &row.bot_id, back, None, None).await?;
    Ok(None)
}

/// Notes the pairing's QR ref and its pairing code, if any, as gone ("expired" or "used").
async fn spend_shown(st: &Ctx, row: &PairingRow, why: &str) {
    spend(st, &row.qr_ref, why).await;
    if let Some(code) = &row.code {
        spend(st, code, why).await;
    }
}

async fn spend(st: &Ctx, key: &str, why: &str) {
    if let Err(e) = st.store.spend(key, why).await {
        tracing::warn!("could not note {key} as {why}: {e}");
    }
}

/// The restart is over: the bot is linked, if this node still holds the pairing.
async fn finish_link(st: &Ctx, row: &PairingRow) {
    match st.store.close_pairing(&row.bot_id, Some(row.fence)).await {
        Ok(Some(_)) => {}
        Ok(None) => return,
        Err(e) => {
            // The lease runs out and the node that adopts the pairing finishes it.
            tracing::warn!(bot = %row.bot_id, "could not finish the link: {e}");
            return;
        }
    }
    let phone = format!("+1555{:07}", rand::random::<u32>() % 10_000_000);
    // Stored once, first (a client that reloads now sees it), then announced in the contract's
    // order: whatsapp_connected, then bot_status_update.
    let _ = store_status(st, &row.bot_id, BotStatus::Connected, Some(&phone), None).await;
    st.emit_to_user(
        &row.user_id,
        &whatsapp(&row.bot_id, |bot_id| WhatsAppEvent::WhatsappConnected {
            bot_id,
            phone: Some(phone),
        }),
    );
    announce_status(st, &row.user_id, &row.bot_id, BotStatus::Connected);
}

/// What a `/link/<ref>` shows: a live pairing's bot, or why the ref is gone.
pub async fn lookup(st: &Ctx, qr_ref: &str) -> Result<RefLookup, StoreError> {
    if let Some(row) = st.store.pairing_by_ref(qr_ref).await? {
        return Ok(RefLookup::Live { bot_id: row.bot_id });
    }
    Ok(match st.store.spent(qr_ref).await? {
        Some(why) => RefLookup::Spent(why),
        None => RefLookup::Unknown,
    })
}

/// Why a scan or a code linked nothing: "expired", "used", "unknown" or "unavailable".
pub type NotLinked = String;

/// The "scan": `qr_scanned`, then after the simulated restart `whatsapp_connected`.
/// Returns the bot's name, or why nothing was linked.
pub async fn scan(st: &Ctx, qr_ref: &str) -> Result<String, NotLinked> {
    link(st, Presented::Ref(qr_ref)).await
}

/// Hands out a pairing code for the bot's pairing, starting the pairing if none runs. A new code
/// replaces the previous one, as WhatsApp's do.
pub async fn issue_code(st: &Ctx, user_id: &str, bot_id: &str) -> Result<PairingCode, StoreError> {
    start_or_join(st, user_id, bot_id).await?;
    let code: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..8)
            .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
            .collect()
    };
    let ttl = CODE_TTL.as_millis() as i64;
    if let Some(Some(old)) = st.store.set_code(bot_id, &code, ttl).await? {
        spend(st, &old, "expired").await;
    }
    Ok(PairingCode {
        code,
        expires_in_ms: CODE_TTL.as_millis() as u64,
    })
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
pub async fn enter_code(st: &Ctx, typed: &str) -> Result<String, NotLinked> {
    let code = normalize_code(typed);
    if code.len() != 8 {
        return Err("unknown".into());
    }
    link(st, Presented::Code(&code)).await
}

/// The phone accepted the link (a scanned QR or an entered code): the lease passes to this node,
/// which says `qr_scanned` and, after the simulated restart, `whatsapp_connected`.
async fn link(st: &Ctx, presented: Presented<'_>) -> Result<String, NotLinked> {
    let unavailable = |e: StoreError| {
        tracing::warn!("a scan could not be completed: {e}");
        NotLinked::from("unavailable")
    };
    let restart = ms(st.cfg.restart_ms);
    let Some(before) = st
        .store
        .scan(presented, restart, lease(st))
        .await
        .map_err(unavailable)?
    else {
        let key = match presented {
            Presented::Ref(r) | Presented::Code(r) => r,
        };
        return Err(st
            .store
            .spent(key)
            .await
            .map_err(unavailable)?
            .unwrap_or_else(|| "unknown".into()));
    };
    spend_shown(st, &before, "used").await;
    st.emit_to_user(
        &before.user_id,
        &whatsapp(&before.bot_id, |bot_id| WhatsAppEvent::QrScanned { bot_id }),
    );
    match st.store.pairing(&before.bot_id).await {
        Ok(Some(now)) if now.owner == st.node => drive(st, now),
        // Ended or adopted meanwhile: whoever holds it finishes it.
        Ok(_) => {}
        Err(e) => tracing::warn!(bot = %before.bot_id, "scanned; its node will finish it: {e}"),
    }
    Ok(st
        .store
        .get_bot_any(&before.bot_id)
        .await
        .ok()
        .flatten()
        .map(|(_, b)| b.name)
        .unwrap_or_default())
}

/// Ends a bot's pairing, if one runs (delete, logout, a final failure), on whichever node.
pub async fn end(st: &Ctx, bot_id: &str) -> Result<(), StoreError> {
    if let Some(row) = st.store.close_pairing(bot_id, None).await? {
        st.pairings.stop(bot_id);
        spend_shown(st, &row, "expired").await;
    }
    Ok(())
}

/// Renews this node's leases and adopts the pairings of nodes that died, every [`TICK`], until
/// the server stops.
pub async fn keep_leases(st: Ctx) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _round = st.lease_round.lock().await;
        if st.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        match st.store.renew_leases(lease(&st)).await {
            Ok(held) => st.pairings.keep_only(&held),
            Err(e) => tracing::warn!("could not renew this node's leases: {e}"),
        }
        match st.store.adopt_expired(lease(&st)).await {
            Ok(adopted) => {
                for row in adopted {
                    tracing::info!(bot = %row.bot_id, attempt = row.attempt, from = %row.owner, "adopted a pairing");
                    st.stats.update(|c| c.pairings_adopted += 1);
                    drive(&st, row);
                }
            }
            Err(e) => tracing::warn!("could not look for pairings to adopt: {e}"),
        }
    }
}

/// At start: leases held in this node's name by a previous run go back to be adopted.
pub async fn give_back_at_start(st: &Ctx) {
    if let Err(e) = st.store.release_leases(&st.node).await {
        tracing::warn!("could not give back a previous run's leases (they run out instead): {e}");
    }
}

/// A drain (SIGTERM): this node stops driving its pairings and gives their leases back, so
/// other nodes adopt them at their next tick, not after the lease would have run out.
pub async fn give_back(st: &Ctx) {
    let _round = st.lease_round.lock().await;
    st.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    st.pairings.stop_all();
    if let Err(e) = st.store.release_leases(&st.node).await {
        tracing::warn!("could not give the leases back (they run out instead): {e}");
    }
}

/// `POST /api/dev/bots/{id}/fail`: a `connection_failed` with `code`, and its consequence.
pub async fn fail(st: &Ctx, user_id: &str, bot_id: &str, code: u16) -> Result<(), StoreError> {
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
            end(st, bot_id).await?;
            set_status(st, user_id, bot_id, status, None, Some(reason)).await?;
        }
        // Retryable codes and 515: the simulated backend restarts itself; the pairing goes on.
        codes::Meaning::Retry | codes::Meaning::KeepWaiting => {}
    }
    Ok(())
}
