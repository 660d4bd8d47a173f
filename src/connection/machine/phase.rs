//! Where a display is: [`Phase`], whose variants carry exactly the data that phase needs, in
//! lifecycle order. Each phase's behaviour is the file of the same name.

use super::{Epoch, Failure, Millis, SocketId};
use protocol::Pairing;

/// Everything about one QR display: which bot, which QR, what was spent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Display {
    pub bot: String,
    pub qr: Option<Pairing>,
    pub budget: Budget,
}

impl Display {
    pub fn new(bot: String) -> Self {
        Display {
            bot,
            qr: None,
            budget: Budget::default(),
        }
    }

    /// The same bot started afresh by the user: no QR yet, the whole budget.
    pub fn fresh(self) -> Self {
        Display::new(self.bot)
    }
}

/// The budgets spent during one display; a new display (or "Try again") starts them afresh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Budget {
    pub network_retries: u32,
    pub token_retries: u32,
    pub rate_limit_retried: bool,
}

/// A socket being opened ([`Phase::Connecting`], `connect.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Connecting {
    pub display: Display,
    pub socket: SocketId,
    pub stage: Handshake,
    pub max_payload: usize,
    pub give_up_at: Millis,
}

/// Where a socket stands inside [`Phase::Connecting`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Handshake {
    /// Waiting for the WebSocket and the Engine.IO open packet.
    Transport,
    /// `40{auth}` sent, waiting for `40` or `44`; the server's pingInterval + pingTimeout.
    Namespace { ping_window: Millis },
}

/// A socket connected to the namespace ([`Phase::Open`], `open.rs`; `finishing.rs` once scanned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Live {
    pub display: Display,
    pub socket: SocketId,
    pub max_payload: usize,
    /// pingInterval + pingTimeout: no ping for this long means a dead link.
    pub ping_window: Millis,
    pub dead_at: Millis,
    /// When the failure budget is forgiven (10 s of stable open); `None` once it was.
    pub stable_at: Option<Millis>,
    /// When `qr_scanned` came, and whether the 60 s stall notice is due.
    pub scanned: Option<Scanned>,
}

/// The phone scanned: linking is finishing (`finishing.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Scanned {
    pub stall_at: Millis,
    pub stalled: bool,
}

/// What a [`Phase::Fetching`] request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// `POST .../qr` for a new display: the QR goes on screen, then the debounce.
    Display,
    /// `POST .../qr` before a retry: the QR is on screen already, the socket opens next.
    Resync,
    /// `GET /api/bots/{id}` after a pause: linked, still pairing (its QR, then the debounce), or over.
    Resume,
}

/// What follows the pairing lock once it is this tab's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AfterClaim {
    /// Ask for the QR (a new display, "Try again", "Pair here instead").
    Fetch,
    /// "Sign in again": a new session, then the QR.
    SignIn,
    /// Back from a pause: resync the bot, then its QR.
    Resume,
}

/// The phases, in lifecycle order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// No QR wanted.
    Idle,
    /// The pairing lock asked for (`claim.rs`); `then` says what follows once it is ours.
    Claiming {
        display: Display,
        epoch: Epoch,
        then: AfterClaim,
        give_up_at: Millis,
    },
    /// Another tab holds the pairing lock; "Pair here instead" takes it over (`claim.rs`).
    OtherTab { display: Display },
    /// An HTTP request about the bot in flight (`fetch.rs`): what for is `purpose`.
    Fetching {
        display: Display,
        epoch: Epoch,
        purpose: Purpose,
        give_up_at: Millis,
    },
    /// The QR is handed to the page; once it is shown, the socket opens at `open_at`
    /// (`None` until the page says it is on screen) (`debounce.rs`).
    Debouncing {
        display: Display,
        open_at: Option<Millis>,
    },
    /// A socket is being opened (`connect.rs`).
    Connecting(Connecting),
    /// Connected to the namespace; the QR is live (`open.rs`, and `finishing.rs` once scanned).
    Open(Live),
    /// The phone is linked (`finishing.rs`).
    Linked { bot: String, phone: Option<String> },
    /// Waiting to retry; then a resync fetch, then an open (`retry.rs`).
    Backoff { display: Display, retry_at: Millis },
    /// A token refresh or new session in flight before a retry (`retry.rs`).
    Refreshing {
        display: Display,
        epoch: Epoch,
        retry_delay: Millis,
        fresh_session: bool,
        give_up_at: Millis,
    },
    /// The display ended for good; `Retry` works from `retry_at` (the token cooldown) on
    /// (`retry.rs`).
    Failed {
        display: Display,
        failure: Failure,
        retry_at: Millis,
    },
    /// Hidden for `pause_after`: no socket, no lock, until the page is visible again (`pause.rs`).
    Paused { display: Display },
}

/// `Some(display)` of a phase, by value from a `Phase`, by reference from a `&Phase`: the one list
/// of the phases that carry a display.
macro_rules! display_in {
    ($phase:expr) => {
        match $phase {
            Phase::Idle | Phase::Linked { .. } => None,
            Phase::Claiming { display, .. }
            | Phase::OtherTab { display }
            | Phase::Fetching { display, .. }
            | Phase::Debouncing { display, .. }
            | Phase::Connecting(Connecting { display, .. })
            | Phase::Open(Live { display, .. })
            | Phase::Backoff { display, .. }
            | Phase::Refreshing { display, .. }
            | Phase::Failed { display, .. }
            | Phase::Paused { display } => Some(display),
        }
    };
}

impl Phase {
    /// The bot this phase is about.
    pub fn bot(&self) -> Option<&str> {
        match self {
            Phase::Linked { bot, .. } => Some(bot),
            _ => display_in!(self).map(|d| d.bot.as_str()),
        }
    }

    pub fn display(&self) -> Option<&Display> {
        display_in!(self)
    }

    /// The display, taken out of the phase.
    pub fn into_display(self) -> Option<Display> {
        display_in!(self)
    }

    /// The socket this phase uses, if any.
    pub fn socket(&self) -> Option<SocketId> {
        match self {
            Phase::Connecting(c) => Some(c.socket),
            Phase::Open(live) => Some(live.socket),
            _ => None,
        }
    }
}
