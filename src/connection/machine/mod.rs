//! The connection owner's pure state machine: `(state, input, now) -> (state, commands)`.
//!
//! No web-sys, no timers, no I/O: time is an input (`now`, in milliseconds), timers and sockets
//! are [`Command`]s, and randomness (full jitter) comes from a seeded generator in the state.
//! So every rule of PROTOCOL.md §6 and every row of DESIGN.md's failure matrix is a native test.
//!
//! How to read it: [`Machine::handle`] routes each input. Stale ones (an answer to an older
//! request, an old socket's event, a timer with nothing due) stop there. Inputs that matter in
//! every phase go to `every_phase.rs`. The rest go to the current phase's own file, in lifecycle
//! order:
//!
//! | file | phase | answers |
//! |---|---|---|
//! | `claim.rs` | `Claiming`, `OtherTab` | where is the lock? (and `lock.rs`) |
//! | `fetch.rs` | `Fetching` | the QR request, the resync |
//! | `debounce.rs` | `Debouncing` | where is the 500 ms debounce? the 1 s between opens? |
//! | `connect.rs` | `Connecting` | the Engine.IO and namespace handshake |
//! | `open.rs` | `Open` | pings, the events of §3, a dead link |
//! | `finishing.rs` | `Open` once scanned, `Linked` | the wait after the scan |
//! | `retry.rs` | `Backoff`, `Refreshing`, `Failed` | budgets, backoff, token refresh, stop |
//! | `pause.rs` | `Paused` | a hidden tab |
//!
//! Around them: `policy.rs` (what happens on 440 — every failure's verdict, in one table),
//! `failure.rs` (a failure's `data-code`, words and action), `timers.rs` (every deadline by
//! name), `lock.rs` (the one lock), `phase.rs` (what each phase holds), `view.rs` (what the
//! pages read), `describe.rs` (the timeline's words).

mod claim;
mod command;
mod config;
mod connect;
mod debounce;
mod describe;
mod every_phase;
mod failure;
mod fetch;
mod finishing;
mod input;
mod lock;
mod open;
mod pause;
mod phase;
mod policy;
mod retry;
mod timers;
mod view;

pub use command::{Command, Heard, Notice};
pub use config::{Config, MAX_PING_WINDOW, MAX_SERVER_WAIT, Millis};
pub use failure::{Action, Failure};
pub use input::{Epoch, HttpFailure, Input, SocketId};
pub use view::{UiState, View};

use every_phase::EveryPhase;
use lock::wants_lock;
use phase::{AfterClaim, Connecting, Display, Live, Phase, Purpose};
use protocol::{BotStatus, Packet, Pairing, WireError, frames};
use timers::Timer;

/// The connection owner's state.
#[derive(Clone, Debug)]
pub struct Machine {
    config: Config,
    phase: Phase,
    /// When the last socket was opened, across displays: the 1 s rule holds over hide/show.
    last_open_at: Option<Millis>,
    next_epoch: u32,
    next_socket: u32,
    rng: u64,
    /// The deadline the driver's timer is armed for, so a change is a command.
    armed: Option<Millis>,
    /// Since when the page is hidden (a page fact, across displays).
    hidden_since: Option<Millis>,
}

/// An input that concerns the current phase. Answers and socket events of other requests and
/// sockets never become one.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    /// "Try again" / "Generate new QR" / "Sign in again".
    Retry,
    /// "Pair here instead".
    TakeOver,
    /// The page put this QR on screen.
    QrShown(String),
    /// The answer to this phase's request.
    Answer(Answer),
    /// A frame of this phase's socket, decoded once.
    Frame(Packet),
    /// This phase's socket closed with a code, or failed (`None`).
    SocketClosed(Option<u16>),
    /// A deadline of this phase passed.
    Timer(Timer),
    PageVisible,
    Online,
    Offline,
}

/// The answer to a phase's one request.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Qr(Pairing),
    Bot {
        status: BotStatus,
        pairing: Option<Pairing>,
    },
    SessionReady,
    Failed(HttpFailure),
    TabClaimed,
    TabBusy,
}

/// Where an input goes.
enum Route {
    /// It matters in every phase (`every_phase.rs`).
    EveryPhase(EveryPhase),
    /// To the current phase.
    Phase(Event),
    /// Nowhere: stale, or only a fact the machine has already noted.
    Nowhere,
}

impl Machine {
    /// A machine with the contract's defaults; `seed` feeds the backoff jitter.
    pub fn new(config: Config, seed: u64) -> Self {
        Machine {
            config,
            phase: Phase::Idle,
            last_open_at: None,
            next_epoch: 0,
            next_socket: 0,
            // xorshift must not start at zero.
            rng: seed | 1,
            armed: None,
            hidden_since: None,
        }
    }

    /// Feeds one input at time `now` and returns what the driver must do, in order.
    pub fn handle(&mut self, input: Input, now: Millis) -> Vec<Command> {
        let before = self.view().state;
        let wanted_lock = wants_lock(&self.phase);
        let mut out = Vec::new();
        if input == Input::TimerFired {
            // The driver's timer is spent once it fires: any deadline, even an equal one, re-arms.
            self.armed = None;
        }
        let frame = self.frame_of(&input);
        let why = match &frame {
            Some(frame) => describe::frame(frame),
            None => describe::input(&input),
        };
        let route = match frame {
            Some(Ok(packet)) => {
                if let Some(heard) = describe::heard_in(&packet) {
                    out.push(Command::Heard(heard));
                }
                Route::Phase(Event::Frame(packet))
            }
            Some(Err(e)) => {
                out.push(Command::Log(format!("dropped a frame: {e}")));
                Route::Nowhere
            }
            None => self.route(input, now),
        };
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        self.phase = match route {
            Route::EveryPhase(input) => self.every_phase(phase, input, now, &mut out),
            Route::Phase(Event::Timer(Timer::Pause)) => self.pause(phase, &mut out),
            Route::Phase(event) => self.step(phase, event, now, &mut out),
            Route::Nowhere => phase,
        };
        if wanted_lock && !wants_lock(&self.phase) {
            // The lock is held exactly while a display runs: whoever ends it lets go of the lock.
            out.push(Command::ReleaseTab);
        }
        let after = self.view().state;
        if before != after {
            out.push(Command::Transition {
                from: before,
                to: after,
                why,
            });
        }
        let deadline = self.deadline();
        if deadline != self.armed {
            self.armed = deadline;
            out.push(match deadline {
                Some(at) => Command::ArmTimer { at },
                None => Command::CancelTimer,
            });
        }
        out
    }

    /// Decodes `input` if it is a frame of the socket the phase is using, with that socket's
    /// `maxPayload`. Frames of other (old) sockets are not read at all.
    fn frame_of(&self, input: &Input) -> Option<Result<Packet, WireError>> {
        let Input::SocketMessage { socket, text } = input else {
            return None;
        };
        let max_payload = match &self.phase {
            Phase::Connecting(c) if c.socket == *socket => c.max_payload,
            Phase::Open(live) if live.socket == *socket => live.max_payload,
            _ => return None,
        };
        Some(decode(text, max_payload))
    }

    /// Where `input` goes (frames are decoded before, in `handle`).
    fn route(&mut self, input: Input, now: Millis) -> Route {
        let mine = |e: Epoch| self.pending() == Some(e);
        let current = |s: SocketId| self.phase.socket() == Some(s);
        let answer = |epoch: Epoch, answer: Answer| match mine(epoch) {
            true => Route::Phase(Event::Answer(answer)),
            false => Route::Nowhere,
        };
        match input {
            Input::ShowQr { bot } => Route::EveryPhase(EveryPhase::Show(bot)),
            Input::HideQr => Route::EveryPhase(EveryPhase::Hide),
            Input::TabLost { .. } => Route::EveryPhase(EveryPhase::TabLost),
            Input::Retry => Route::Phase(Event::Retry),
            Input::TakeOver => Route::Phase(Event::TakeOver),
            Input::QrShown { qr } => Route::Phase(Event::QrShown(qr)),
            Input::QrFetched { epoch, qr } => answer(epoch, Answer::Qr(qr)),
            Input::BotFetched {
                epoch,
                status,
                pairing,
            } => answer(epoch, Answer::Bot { status, pairing }),
            Input::SessionReady { epoch } => answer(epoch, Answer::SessionReady),
            Input::QrFetchFailed { epoch, failure }
            | Input::SessionFailed { epoch, failure }
            | Input::BotFetchFailed { epoch, failure } => answer(epoch, Answer::Failed(failure)),
            Input::TabClaimed { epoch } => answer(epoch, Answer::TabClaimed),
            Input::TabBusy { epoch } => answer(epoch, Answer::TabBusy),
            // The transport's open is no news: the Engine.IO open packet that follows is.
            Input::SocketOpened { .. } => Route::Nowhere,
            // A frame of an old socket (the current one's are decoded in `handle`).
            Input::SocketMessage { .. } => Route::Nowhere,
            Input::SocketError { socket } if current(socket) => {
                Route::Phase(Event::SocketClosed(None))
            }
            Input::SocketClosed { socket, code } if current(socket) => {
                Route::Phase(Event::SocketClosed(Some(code)))
            }
            Input::SocketError { .. } | Input::SocketClosed { .. } => Route::Nowhere,
            Input::TimerFired => match self.due(now) {
                Some(timer) => Route::Phase(Event::Timer(timer)),
                None => Route::Nowhere,
            },
            Input::PageHidden => {
                self.hidden_since.get_or_insert(now);
                Route::Nowhere
            }
            Input::PageVisible => {
                self.hidden_since = None;
                Route::Phase(Event::PageVisible)
            }
            Input::Online => Route::Phase(Event::Online),
            Input::Offline => Route::Phase(Event::Offline),
        }
    }

    /// The epoch of the request the phase waits for, if it waits for one.
    fn pending(&self) -> Option<Epoch> {
        match &self.phase {
            Phase::Claiming { epoch, .. }
            | Phase::Fetching { epoch, .. }
            | Phase::Refreshing { epoch, .. } => Some(*epoch),
            _ => None,
        }
    }

    /// The current phase's own handling of `event`, one file per phase.
    fn step(&mut self, phase: Phase, event: Event, now: Millis, out: &mut Vec<Command>) -> Phase {
        match phase {
            Phase::Idle => Phase::Idle,
            Phase::Claiming {
                display,
                epoch,
                then,
                give_up_at,
            } => self.on_claiming(display, epoch, then, give_up_at, event, now, out),
            Phase::OtherTab { display } => self.on_other_tab(display, event, now, out),
            Phase::Fetching {
                display,
                epoch,
                purpose,
                give_up_at,
            } => self.on_fetching(display, epoch, purpose, give_up_at, event, now, out),
            Phase::Debouncing { display, open_at } => {
                self.on_debouncing(display, open_at, event, now, out)
            }
            Phase::Connecting(c) => self.on_connecting(c, event, now, out),
            Phase::Open(live) => self.on_open(live, event, now, out),
            Phase::Linked { bot, phone } => Phase::Linked { bot, phone },
            Phase::Backoff { display, retry_at } => {
                self.on_backoff(display, retry_at, event, now, out)
            }
            Phase::Refreshing {
                display,
                epoch,
                retry_delay,
                fresh_session,
                give_up_at,
            } => self.on_refreshing(
                display,
                epoch,
                retry_delay,
                fresh_session,
                give_up_at,
                event,
                now,
                out,
            ),
            Phase::Failed {
                display,
                failure,
                retry_at,
            } => self.on_failed(display, failure, retry_at, event, now, out),
            Phase::Paused { display } => self.on_paused(display, event, now, out),
        }
    }

    fn epoch(&mut self) -> Epoch {
        self.next_epoch += 1;
        Epoch(self.next_epoch)
    }

    fn random_below(&mut self, bound: Millis) -> Millis {
        // xorshift64: tiny, deterministic for a seed, good enough for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if bound == 0 {
            0
        } else {
            self.rng % (bound + 1)
        }
    }

    /// The earliest a socket may open: `at` or later, and at least `min_gap` after the last open.
    fn not_before(&self, at: Millis) -> Millis {
        match self.last_open_at {
            Some(last) => at.max(last.saturating_add(self.config.min_gap)),
            None => at,
        }
    }

    /// Closes whatever socket the phase holds (namespace disconnect first when connected).
    fn close_current(&self, phase: &Phase, out: &mut Vec<Command>) {
        match phase {
            Phase::Open(live) => hang_up(live.socket, out),
            Phase::Connecting(c) => close(c.socket, out),
            _ => {}
        }
    }
}

/// Decodes a frame: through the browser's own JSON parser in the app, through serde_json in the
/// native tests and the fuzzers — the same rules either way (`protocol::conformance`).
#[cfg(target_arch = "wasm32")]
fn decode(text: &str, max_payload: usize) -> Result<Packet, WireError> {
    frames::decode_with(&crate::json::BrowserJson, text, max_payload)
}

#[cfg(not(target_arch = "wasm32"))]
fn decode(text: &str, max_payload: usize) -> Result<Packet, WireError> {
    frames::decode(text, max_payload)
}

/// Closes a socket with 1000, without a word: the transport is not (or no longer) worth one.
fn close(socket: SocketId, out: &mut Vec<Command>) {
    out.push(Command::Close {
        socket,
        code: protocol::codes::CLOSE_NORMAL,
    });
}

/// Leaves the namespace (`41`) and closes the socket with 1000: the polite end of a link.
fn hang_up(socket: SocketId, out: &mut Vec<Command>) {
    out.push(Command::Send {
        socket,
        text: frames::DISCONNECT.into(),
    });
    close(socket, out);
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
