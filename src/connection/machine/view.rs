//! What the pages read: [`View`], a snapshot of the machine, cheap to compare, and its
//! [`UiState`] (the `data-state` of PROTOCOL.md §7).

use super::{AfterClaim, Failure, Machine, Millis, Phase, Purpose};
use protocol::Pairing;

/// The `data-state` values of PROTOCOL.md §7.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UiState {
    #[default]
    Idle,
    Debouncing,
    Connecting,
    WaitingForScan,
    Finishing,
    Retrying,
    Linked,
    Failed,
    /// Another tab of this browser is pairing; this one waits (botlink's extension of §7).
    OtherTab,
    /// The tab was hidden for a while; the socket is closed until it is visible again.
    Paused,
}

impl UiState {
    pub fn as_str(self) -> &'static str {
        match self {
            UiState::Idle => "idle",
            UiState::Debouncing => "debouncing",
            UiState::Connecting => "connecting",
            UiState::WaitingForScan => "waiting_for_scan",
            UiState::Finishing => "finishing",
            UiState::Retrying => "retrying",
            UiState::Linked => "linked",
            UiState::Failed => "failed",
            UiState::OtherTab => "other_tab",
            UiState::Paused => "paused",
        }
    }
}

/// What the pages read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub state: UiState,
    pub bot: Option<String>,
    pub qr: Option<Pairing>,
    pub failure: Option<Failure>,
    pub phone: Option<String>,
    /// `qr_scanned` came more than 60 s ago (or the phone asked for a passkey) and the link is
    /// not open yet.
    pub scan_stalled: bool,
    /// "Try again" is disabled until this time (the token cooldown).
    pub retry_at: Option<Millis>,
    /// An attempt is in flight: the pairing lock asked for, a request, or a socket opening.
    pub in_flight: bool,
}

impl Machine {
    /// What the pages show.
    pub fn view(&self) -> View {
        let mut view = View::default();
        let (state, in_flight) = match &self.phase {
            Phase::Idle => return view,
            Phase::Linked { bot, phone } => {
                view.state = UiState::Linked;
                view.bot = Some(bot.clone());
                view.phone = phone.clone();
                return view;
            }
            Phase::Claiming { then, .. } => match then {
                AfterClaim::Resume => (UiState::Retrying, true),
                AfterClaim::Fetch | AfterClaim::SignIn => (UiState::Connecting, true),
            },
            Phase::OtherTab { .. } => (UiState::OtherTab, false),
            Phase::Fetching { purpose, .. } => match purpose {
                Purpose::Display => (UiState::Connecting, true),
                Purpose::Resync | Purpose::Resume => (UiState::Retrying, true),
            },
            Phase::Debouncing { .. } => (UiState::Debouncing, false),
            Phase::Connecting(_) => (UiState::Connecting, true),
            Phase::Open(live) => {
                view.scan_stalled = live.scanned.is_some_and(|s| s.stalled);
                match live.scanned {
                    Some(_) => (UiState::Finishing, false),
                    None => (UiState::WaitingForScan, false),
                }
            }
            Phase::Backoff { .. } => (UiState::Retrying, false),
            Phase::Refreshing { .. } => (UiState::Retrying, true),
            Phase::Failed {
                failure, retry_at, ..
            } => {
                view.failure = Some(failure.clone());
                view.retry_at = Some(*retry_at);
                (UiState::Failed, false)
            }
            Phase::Paused { .. } => (UiState::Paused, false),
        };
        view.state = state;
        view.in_flight = in_flight;
        if let Some(display) = self.phase.display() {
            view.bot = Some(display.bot.clone());
            view.qr = display.qr.clone();
        }
        view
    }
}
