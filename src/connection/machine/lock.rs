//! THE lock: the pairing lock, one per browser (Web Locks across tabs, `tab_lock.rs` in the
//! driver). It is held exactly while a display runs — from the QR request until the display
//! settles (linked, failed, hidden or paused) — so no second attempt starts anywhere in this
//! browser while one is in flight (PROTOCOL.md §6), whatever clicks, re-renders or route changes
//! happen. There is no other lock; "an attempt in flight" (`View::in_flight`) is not one.
//!
//! - [`Phase::Claiming`] asks for it (`claim.rs`): no socket, no request yet.
//! - [`holds_lock`]: the phases that hold it — fetching, debouncing, connecting, open,
//!   backing off, refreshing. Only these can open a socket, and only from a deadline of
//!   [`Phase::Debouncing`] (`debounce.rs`), which holds no socket yet.
//! - Leaving them lets go of it (`Command::ReleaseTab`, in `Machine::handle`).

use super::Phase;

/// The phases of a running display: this tab holds the pairing lock in each.
pub(super) fn holds_lock(phase: &Phase) -> bool {
    matches!(
        phase,
        Phase::Fetching { .. }
            | Phase::Debouncing { .. }
            | Phase::Connecting(_)
            | Phase::Open(_)
            | Phase::Backoff { .. }
            | Phase::Refreshing { .. }
    )
}

/// Holding the lock, or asking for it: leaving these lets go of it.
pub(super) fn wants_lock(phase: &Phase) -> bool {
    holds_lock(phase) || matches!(phase, Phase::Claiming { .. })
}
