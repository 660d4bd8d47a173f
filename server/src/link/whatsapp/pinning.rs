//! Cluster mode with the real link: a bot's client runs on the node that holds its device, and
//! only there. The device itself is in PostgreSQL (`store/device`), so any node can run it; the
//! holder says it is alive by renewing its holds (`store::DeviceHold`) every [`TICK`]:
//!
//! - a holder that cannot renew stops its clients (aborted, all at once) by its holds' safe
//!   time, and starts them again once it holds them again;
//! - when a holder is gone (killed, frozen, or drained), one live node adopts each of its linked
//!   devices [`ADOPT_MARGIN`] after its hold ran out, with a new fence, and resumes it;
//! - a pairing in progress (no phone linked yet) starts again on the node that finds its hold
//!   lapsed: its QR was its connection's, so the waiting app is sent a new one;
//! - the other nodes forward the requests about a held bot to its holder (`forward.rs`), and
//!   replay the QR it shows from the hold.
//!
//! The budget (docs/protocol.md, "Failover"): TTL 2 s; renewed every 0.5 s; a holder that could
//! not renew aborts its clients 0.5 s before the hold can run out; a lapsed hold is adopted 0.5 s
//! after it ran out; so a node killed just after a renewal is replaced ≤ 3 s later, plus the
//! login.

use super::{
    Slots,
    session::{Phase, Purpose},
};
use crate::{core::bot_status::set_status_under, core::context::Ctx, store::Lease};
use protocol::BotStatus;
use std::{
    collections::BTreeSet,
    sync::Mutex,
    time::{Duration, Instant},
};
use tokio::sync::watch;

/// How long a hold lasts unrenewed, by the database's clock.
pub const HOLD_TTL: Duration = Duration::from_millis(2_000);
/// How often the holds are renewed (and lapsed ones looked for).
pub const TICK: Duration = Duration::from_millis(500);
/// A holder that could not renew stops its clients this long before its hold could run out:
/// time for the clients to be aborted, and for clocks that run a little apart.
pub const STOP_MARGIN: Duration = Duration::from_millis(500);
/// A lapsed hold of a linked device is adopted this long after it ran out: its holder, if it
/// lives but could not renew, has aborted its clients by then.
pub const ADOPT_MARGIN: Duration = Duration::from_millis(500);
/// How long a paused client may take to close before it is aborted.
pub const ABORT_WITHIN: Duration = Duration::from_millis(300);

pub fn lease(st: &Ctx) -> Lease<'_> {
    Lease {
        node: &st.node,
        ttl_ms: HOLD_TTL.as_millis() as i64,
    }
}

/// Until when this node surely holds what it holds, by its own monotonic clock: the transport
/// gate lets no client connect after it (`connector::HoldGate`).
#[derive(Debug, Default)]
pub struct HoldClock {
    safe_until: Mutex<Option<Instant>>,
}

impl HoldClock {
    /// A renewal (or a take) sent at `sent` answered: the holds last at least until then + TTL.
    pub fn renewed(&self, sent: Instant) {
        let until = sent + HOLD_TTL - STOP_MARGIN;
        let mut safe = crate::core::sync::lock(&self.safe_until);
        *safe = Some(safe.map_or(until, |s| s.max(until)));
    }

    pub fn safe(&self, now: Instant) -> bool {
        crate::core::sync::lock(&self.safe_until).is_some_and(|until| now < until)
    }
}

/// The rule of hold keeping, apart from the clock and the database: which clients a round
/// stops, and which it starts again.
#[derive(Debug, Default)]
pub struct Keeper {
    /// When the last renewal that succeeded was sent: the holds last at least until then + TTL.
    renewed_at: Option<Instant>,
    /// Bots whose clients were stopped because the holds could not be renewed.
    paused: BTreeSet<String>,
    /// The last renewal failed: the clients stop at the safe time, not a round later.
    failing: bool,
}

/// What a round orders.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Orders {
    /// Bots whose client stops now.
    pub stop: Vec<String>,
    /// The stop is a pause: the holds could not be renewed; the clients come back with them.
    pub pause: bool,
    /// Bots whose client starts again (their hold is renewed after a pause).
    pub resume: Vec<String>,
}

impl Keeper {
    /// The renewal sent at `sent` answered: this node holds `held`. A running client whose bot
    /// is not among them stops (its hold is gone); paused ones held again resume.
    pub fn renewed(&mut self, sent: Instant, held: &[String], running: &[String]) -> Orders {
        self.renewed_at = Some(sent);
        self.failing = false;
        let held: BTreeSet<&str> = held.iter().map(String::as_str).collect();
        let paused = std::mem::take(&mut self.paused);
        Orders {
            stop: running
                .iter()
                .filter(|b| !held.contains(b.as_str()))
                .cloned()
                .collect(),
            pause: false,
            resume: paused
                .into_iter()
                .filter(|b| held.contains(b.as_str()))
                .collect(),
        }
    }

    /// When the clients must stop if no renewal succeeds before (none yet: at once).
    pub fn safe_until(&self) -> Option<Instant> {
        self.renewed_at.map(|t| t + HOLD_TTL - STOP_MARGIN)
    }

    /// Whether the last renewal failed.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// While renewals fail: the moment a round is due whatever the tick (the safe time).
    pub fn stop_deadline(&self) -> Option<Instant> {
        self.safe_until().filter(|_| self.failing)
    }

    /// How long a renewal sent at `sent` may take: while clients run, no later than their safe
    /// time (a database that hangs must not keep them running past their hold); with none
    /// running (paused), a whole tick — a renewal must be able to succeed again.
    pub fn renewal_within(&self, sent: Instant, clients_run: bool) -> Duration {
        match self.safe_until() {
            Some(until) if clients_run => until.saturating_duration_since(sent).min(TICK),
            _ => TICK,
        }
    }

    /// The renewal failed at `now`: the clients run on while the holds surely last, and stop
    /// (paused) once they might not.
    pub fn failed(&mut self, now: Instant, running: &[String]) -> Orders {
        self.failing = true;
        let safe_until = self.safe_until();
        if safe_until.is_some_and(|until| now < until) || running.is_empty() {
            return Orders::default();
        }
        self.paused.extend(running.iter().cloned());
        Orders {
            stop: running.to_vec(),
            pause: true,
            resume: Vec::new(),
        }
    }
}

/// Renews this node's holds every [`TICK`] and carries out what each round orders; adopts the
/// linked devices whose holder is gone; tells the bots whose pairing's node is gone. Ends when
/// `stop` is cancelled — by the shutdown, after every client has closed — finishing the round
/// it is in; the holds are given back after that.
pub(super) async fn keep_holds(
    st: Ctx,
    slots: std::sync::Arc<Slots>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut keeper = Keeper::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // While renewals fail, the clients stop at the holds' safe time, not a tick later.
        let deadline = keeper.stop_deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
            () = sleep_until(deadline) => {}
        }
        let (orders, seen) = {
            // Before the renewal is sent: a client started after it took its hold itself.
            let seen = slots.running_clients();
            let running: Vec<String> = seen.iter().map(|(bot, _)| bot.clone()).collect();
            let sent = Instant::now();
            // Bounded (by the safe time too): a database that hangs must not keep the clients
            // running past their hold.
            let within = keeper.renewal_within(sent, !running.is_empty());
            let orders = match tokio::time::timeout(within, st.store.renew_holds(lease(&st))).await
            {
                Ok(Ok(held)) => {
                    slots.clock.renewed(sent);
                    keeper.renewed(sent, &held, &running)
                }
                Ok(Err(e)) => {
                    tracing::warn!("could not renew this node's device holds: {e}");
                    keeper.failed(Instant::now(), &running)
                }
                Err(_) => {
                    tracing::warn!("renewing this node's device holds took over {within:?}");
                    keeper.failed(Instant::now(), &running)
                }
            };
            (orders, seen)
        };
        stop_ordered(&st, &slots, &orders, &seen).await;
        for bot in orders.resume {
            slots.resume_one(&st, &bot).await;
        }
        if !keeper.failing() {
            adopt(&st, &slots).await;
            carry_pairings(&st, &slots).await;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Adopts the linked devices whose holder is gone, and resumes each (from the database).
pub(super) async fn adopt(st: &Ctx, slots: &std::sync::Arc<Slots>) {
    let url = st.cfg.node_url();
    let margin = ADOPT_MARGIN.as_millis() as i64;
    let adopted = match st.store.adopt_holds(lease(st), &url, margin).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("could not look for devices to adopt: {e}");
            return;
        }
    };
    for hold in adopted {
        tracing::warn!(bot = %hold.bot_id, from = %hold.node, "adopting the bot's device: its node stopped");
        st.stats.update(|c| c.devices_adopted += 1);
        let (st, slots) = (st.clone(), slots.clone());
        tokio::spawn(async move { slots.resume_one(&st, &hold.bot_id).await });
    }
}

/// Stops the clients a round ordered stopped, each only in the generation the round saw running:
/// a client started for the bot since then took its hold itself and is not this round's to stop.
/// A pause aborts them all at once: each must be gone before its hold can run out.
pub(super) async fn stop_ordered(st: &Ctx, slots: &Slots, orders: &Orders, seen: &[(String, u64)]) {
    let within = if orders.pause {
        ABORT_WITHIN
    } else {
        super::session::STOP_TIMEOUT
    };
    futures_util::future::join_all(orders.stop.iter().map(|bot| async move {
        let Some(&(_, generation)) = seen.iter().find(|(b, _)| b == bot) else {
            return;
        };
        let user = slots.user_of(bot);
        let fence = slots.fence_of(bot);
        if !slots.stop_within(bot, Some(generation), false, within).await {
            return;
        }
        if orders.pause {
            tracing::warn!(bot = %bot, "paused the bot's WhatsApp client: its hold could not be renewed");
            // The socket hears it now (over Redis); the database, if it answers, and only while
            // the device is still this node's.
            if let Some(user) = user {
                let (status, why) = (BotStatus::Disconnected, Some(PAUSED_REASON));
                let _ = set_status_under(st, &user, bot, status, None, why, fence).await;
            }
        } else {
            tracing::warn!(bot = %bot, "stopped the bot's WhatsApp client: this node no longer holds its device");
        }
    }))
    .await;
}

/// Why a bot whose pairing's node is gone shows `disconnected`.
pub fn lapsed_reason(node: &str) -> String {
    format!("The server node running this bot's pairing ({node}) stopped; start again.")
}

/// Why a paused bot shows `disconnected`.
pub const PAUSED_REASON: &str = "This bot's server node lost touch with the database; its \
     WhatsApp session resumes when the database is back.";

/// The pairings whose node stopped (killed, frozen or drained) since the last look, each taken
/// by one node: one still on screen (the bot's status is `pairing`) starts again here, so the
/// waiting app gets a new QR (`qr_updated`; the old one was its connection's, and it is gone);
/// a pairing that cannot start again says why. A bot no pairing ran for is left as it is.
pub(super) async fn carry_pairings(st: &Ctx, slots: &std::sync::Arc<Slots>) {
    let lapsed = match st.store.lapsed_holds().await {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!("could not look for lapsed device holds: {e}");
            return;
        }
    };
    for hold in lapsed {
        let pairing = matches!(
            st.store.get_bot_any(&hold.bot_id).await,
            Ok(Some((_, bot))) if bot.status == BotStatus::Pairing
        );
        if !pairing {
            continue;
        }
        tracing::warn!(bot = %hold.bot_id, node = %hold.node, "the node running the bot's pairing stopped: pairing again here");
        let (st, slots) = (st.clone(), slots.clone());
        tokio::spawn(async move {
            let started = slots
                .ensure(&st, &hold.user_id, &hold.bot_id, Purpose::Pair, true)
                .await;
            if let Err(e) = started {
                tracing::warn!(bot = %hold.bot_id, "could not pair again: {e}");
                let reason = lapsed_reason(&hold.node);
                let _ = set_status_under(
                    &st,
                    &hold.user_id,
                    &hold.bot_id,
                    BotStatus::Disconnected,
                    None,
                    Some(&reason),
                    None,
                )
                .await;
            }
        });
    }
}

/// Writes what a session shows into its hold, as it changes, for the other nodes' replays:
/// the QR on offer, and that a phone linked the device. Ends with the session.
pub async fn show_phases(
    st: std::sync::Weak<crate::core::context::Context>,
    bot_id: String,
    mut phase: watch::Receiver<Phase>,
) {
    loop {
        let (view, registered, over) = match &*phase.borrow_and_update() {
            Phase::Qr(v) | Phase::Scanned(v) => (
                serde_json::to_string(v)
                    .ok()
                    .map(|json| (json, i64::try_from(v.expires_in_ms).unwrap_or(i64::MAX))),
                false,
                false,
            ),
            Phase::Open => (None, true, false),
            Phase::Starting => (None, false, false),
            Phase::Ended(_) => (None, false, true),
        };
        let Some(st) = st.upgrade() else { return };
        if let Err(e) = st
            .store
            .show_on_hold(
                &bot_id,
                &st.node,
                view.as_ref().map(|(json, ms)| (json.as_str(), *ms)),
                registered,
            )
            .await
        {
            tracing::warn!(bot = %bot_id, "could not record the session's QR in its hold: {e}");
        }
        drop(st);
        if over || phase.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bots(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_client_whose_hold_is_gone_stops() {
        let t0 = Instant::now();
        let mut k = Keeper::default();
        let orders = k.renewed(t0, &bots(&["a"]), &bots(&["a", "b"]));
        assert_eq!(orders.stop, bots(&["b"]));
        assert!(!orders.pause && orders.resume.is_empty());
    }

    #[test]
    fn unrenewed_holds_stop_the_clients_before_they_can_run_out_and_resume_after() {
        let t0 = Instant::now();
        let mut k = Keeper::default();
        k.renewed(t0, &bots(&["a"]), &bots(&["a"]));
        let safe = HOLD_TTL - STOP_MARGIN;
        // Failures while the hold surely lasts: nothing stops.
        assert_eq!(k.failed(t0 + TICK, &bots(&["a"])), Orders::default());
        assert_eq!(
            k.failed(t0 + safe - Duration::from_millis(1), &bots(&["a"])),
            Orders::default()
        );
        assert_eq!(
            k.stop_deadline(),
            Some(t0 + safe),
            "due at the safe time while failing"
        );
        // From then on the hold might run out: the client stops, paused.
        let orders = k.failed(t0 + safe, &bots(&["a"]));
        assert_eq!((orders.stop, orders.pause), (bots(&["a"]), true));
        assert_eq!(
            k.failed(t0 + HOLD_TTL * 5, &[]),
            Orders::default(),
            "nothing runs any more"
        );
        // The database is back and the hold is still this node's: the client resumes.
        let orders = k.renewed(t0 + HOLD_TTL * 6, &bots(&["a"]), &[]);
        assert_eq!(orders.resume, bots(&["a"]));
        assert_eq!(k.stop_deadline(), None, "renewed: rounds by the tick again");
        let again = k.renewed(t0 + HOLD_TTL * 7, &bots(&["a"]), &bots(&["a"]));
        assert!(again.resume.is_empty(), "resumed once");
    }

    #[test]
    fn a_renewal_is_bounded_by_the_safe_time_only_while_clients_run() {
        let t0 = Instant::now();
        let mut k = Keeper::default();
        assert_eq!(k.renewal_within(t0, true), TICK, "nothing renewed yet");
        k.renewed(t0, &bots(&["a"]), &bots(&["a"]));
        let safe = HOLD_TTL - STOP_MARGIN;
        assert_eq!(k.renewal_within(t0, true), TICK);
        assert_eq!(
            k.renewal_within(t0 + safe - Duration::from_millis(100), true),
            Duration::from_millis(100)
        );
        assert_eq!(k.renewal_within(t0 + safe * 3, true), Duration::ZERO);
        // Paused long past the safe time (the database was down): the renewal that brings the
        // clients back gets its whole tick (a bound of zero would fail it forever).
        k.failed(t0 + safe, &bots(&["a"]));
        assert_eq!(k.renewal_within(t0 + safe * 3, false), TICK);
    }

    #[test]
    fn a_paused_bot_whose_hold_went_elsewhere_is_not_resumed() {
        let t0 = Instant::now();
        let mut k = Keeper::default();
        k.renewed(t0, &bots(&["a", "b"]), &bots(&["a", "b"]));
        k.failed(t0 + HOLD_TTL, &bots(&["a", "b"]));
        let orders = k.renewed(t0 + HOLD_TTL * 3, &bots(&["b"]), &[]);
        assert_eq!(orders.resume, bots(&["b"]));
    }

    #[test]
    fn a_node_that_never_renewed_stops_at_the_first_failure() {
        let mut k = Keeper::default();
        let orders = k.failed(Instant::now(), &bots(&["a"]));
        assert_eq!((orders.stop, orders.pause), (bots(&["a"]), true));
    }
}
