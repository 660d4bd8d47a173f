//! The connection owner's pure state machine: `(state, input, now) -> (state, commands)`.
//!
//! No web-sys, no timers, no I/O: time is an input (`now`, in milliseconds), timers and sockets
//! are [`Command`]s, and randomness (full jitter) comes from a seeded generator in the state.
//! So every rule of PROTOCOL.md §6 and every row of DESIGN.md's failure matrix is a native test.
//!
//! Shape: a [`Phase`] enum whose variants carry exactly the data that phase needs. The lock is
//! not a flag: it is held exactly while the phase is [`Phase::Fetching`], [`Phase::Connecting`]
//! or [`Phase::Refreshing`], and an `Open` command can only be issued from a deadline that
//! expires in [`Phase::Debouncing`] or [`Phase::Backoff`], which hold no socket and no lock.
//! Every asynchronous answer (a QR fetch, a token refresh) and every socket event carries the
//! epoch or socket id it belongs to; stale ones are dropped.
//!
//! Files: this one holds the types and the routing of inputs (`handle`, `step`);
//! `machine/frames.rs` decodes and handles the current socket's frames, once each;
//! `machine/failures.rs` decides retry or stop for every failure (PROTOCOL.md §4 and §6).

use protocol::{BotStatus, Pairing};

mod failures;
mod frames;

/// Milliseconds on a monotonic clock (the driver uses `performance.now()`).
pub type Millis = u64;

/// The longest ping window (`pingInterval + pingTimeout`) taken from a server: numbers from the
/// network are untrusted, and a larger one would leave a dead link undetected for hours.
pub const MAX_PING_WINDOW: Millis = 10 * 60_000;

/// The longest wait a server may ask for (`Retry-After`): after it, the one retry goes.
pub const MAX_SERVER_WAIT: Millis = 60 * 60_000;

/// The tunables of PROTOCOL.md §6. Every field's default is the contract's number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Wait after a QR appears before opening. Defaults to 500 ms.
    pub debounce: Millis,
    /// Least time between two socket opens. Defaults to 1 s.
    pub min_gap: Millis,
    /// Longest wait for the Engine.IO open and the namespace CONNECT answer. Defaults to 10 s.
    pub connect_timeout: Millis,
    /// Longest wait for an HTTP answer (QR, session): a black-holed request must not hold the
    /// lock forever. Defaults to 10 s.
    pub request_timeout: Millis,
    /// Network backoff: base, cap and number of retries. Defaults to 1 s, 8 s, 5.
    pub backoff_base: Millis,
    pub backoff_cap: Millis,
    pub max_network_retries: u32,
    /// An open socket counts as stable (its failures forgotten) after this. Defaults to 10 s.
    pub stable_after: Millis,
    /// Retries after `token_expired`, one refresh before each. Defaults to 1 s, 2 s, 4 s.
    pub token_retry_delays: [Millis; 3],
    /// "Try again" stays disabled this long after the token retries are spent. Defaults to 5 s.
    pub token_cooldown: Millis,
    /// Wait after `rate_limited` when the server gives no `Retry-After`. Defaults to 10 s.
    pub rate_limit_wait: Millis,
    /// After `qr_scanned`, say "finish on your phone" if not linked within this. Defaults to 60 s.
    pub scan_stall: Millis,
    /// A tab hidden this long closes its socket and pauses; visible again, it resyncs. Defaults
    /// to 30 s.
    pub pause_after: Millis,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debounce: 500,
            min_gap: 1_000,
            connect_timeout: 10_000,
            request_timeout: 10_000,
            backoff_base: 1_000,
            backoff_cap: 8_000,
            max_network_retries: 5,
            stable_after: 10_000,
            token_retry_delays: [1_000, 2_000, 4_000],
            token_cooldown: 5_000,
            rate_limit_wait: 10_000,
            scan_stall: 60_000,
            pause_after: 30_000,
        }
    }
}

/// Tags one asynchronous request; an answer with another epoch is stale (failure matrix row 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Epoch(pub u32);

/// Names one WebSocket; events of an older socket are stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SocketId(pub u32);

/// Why an HTTP call failed, as far as the machine cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpFailure {
    /// 401: the session is gone.
    Unauthorized,
    /// 429, with the server's `Retry-After` in milliseconds if it gave one.
    RateLimited { retry_after: Option<Millis> },
    /// 409 on `POST .../qr`: the bot is already connected.
    AlreadyConnected,
    /// Any other answer: the status and the server's message.
    Status { status: u16, message: String },
    /// No answer at all.
    Network,
}

/// Everything that happens to the connection owner.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// The user wants bot `bot`'s QR on screen ("Generate QR", "Reconnect", a reload on its page).
    ShowQr {
        bot: String,
    },
    /// The QR is no longer wanted: hidden, route left, component unmounted.
    HideQr,
    /// "Try again" / "Generate new QR" / "Sign in again".
    Retry,
    /// The page has put the QR `qr` on screen: the debounce counts from here, not from its
    /// arrival (rendering takes a moment), and a QR nobody shows opens no socket.
    QrShown {
        qr: String,
    },
    /// `POST /api/bots/{id}/qr` answered.
    QrFetched {
        epoch: Epoch,
        qr: Pairing,
    },
    QrFetchFailed {
        epoch: Epoch,
        failure: HttpFailure,
    },
    /// A token refresh or a new session finished.
    SessionReady {
        epoch: Epoch,
    },
    SessionFailed {
        epoch: Epoch,
        failure: HttpFailure,
    },
    /// The WebSocket fired `open`.
    SocketOpened {
        socket: SocketId,
    },
    /// A text frame arrived.
    SocketMessage {
        socket: SocketId,
        text: String,
    },
    /// The WebSocket fired `error` (a `close` usually follows; only one of them counts).
    SocketError {
        socket: SocketId,
    },
    /// The WebSocket fired `close`.
    SocketClosed {
        socket: SocketId,
        code: u16,
    },
    /// The one timer fired (possibly late: hidden tabs throttle timers).
    TimerFired,
    /// `GET /api/bots/{id}` answered (the resync after a pause): the bot's status and pairing.
    BotFetched {
        epoch: Epoch,
        status: BotStatus,
        pairing: Option<Pairing>,
    },
    BotFetchFailed {
        epoch: Epoch,
        failure: HttpFailure,
    },
    /// This tab now holds the cross-tab pairing lock asked for with `epoch`.
    TabClaimed {
        epoch: Epoch,
    },
    /// Another tab holds the pairing lock: this one must not open a socket.
    TabBusy {
        epoch: Epoch,
    },
    /// Another tab took the pairing lock over from this one.
    TabLost {
        epoch: Epoch,
    },
    /// "Pair here instead": take the lock from the other tab.
    TakeOver,
    /// The page became hidden / visible (`visibilitychange`).
    PageHidden,
    PageVisible,
    /// The browser's `online` / `offline` events.
    Online,
    Offline,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// (Re)arm the one timer to fire at `at`; replaces any armed timer.
    ArmTimer {
        at: Millis,
    },
    CancelTimer,
    /// `POST /api/bots/{bot}/qr`; answer with `QrFetched` / `QrFetchFailed`.
    FetchQr {
        bot: String,
        epoch: Epoch,
    },
    /// `POST /api/auth/refresh`; answer with `SessionReady` / `SessionFailed`.
    RefreshSession {
        epoch: Epoch,
    },
    /// `POST /api/auth/session` (a new sign-in); answer the same way.
    NewSession {
        epoch: Epoch,
    },
    /// Open the WebSocket `socket`.
    Open {
        socket: SocketId,
    },
    /// Send `40{token,userId,botId}` with the current session's credentials.
    SendConnect {
        socket: SocketId,
        bot: String,
    },
    /// Send a text frame (pong, ack, namespace disconnect).
    Send {
        socket: SocketId,
        text: String,
    },
    /// Close the socket with `code` and forget it: no event of it comes back.
    Close {
        socket: SocketId,
        code: u16,
    },
    /// `GET /api/bots/{bot}` (the resync after a pause); answer with `BotFetched` / `BotFetchFailed`.
    FetchBot {
        bot: String,
        epoch: Epoch,
    },
    /// Ask for the cross-tab pairing lock (taking it from another tab with `steal`); answer with
    /// `TabClaimed`, `TabBusy`, and later perhaps `TabLost`.
    ClaimTab {
        epoch: Epoch,
        steal: bool,
    },
    /// Let go of the pairing lock (or of the claim still pending): another tab may pair now.
    ReleaseTab,
    /// Something the pages want to know (bot list updates).
    Notify(Notice),
    /// The state the pages show changed, and why (the console and the diagnostics timeline).
    Transition {
        from: UiState,
        to: UiState,
        why: String,
    },
    /// A readable line for the console: a dropped frame, a timeout.
    Log(String),
    /// A code a frame of the current socket carried (the diagnostics count them). The machine
    /// decodes each frame once; this is what the telemetry reads instead of decoding it again.
    Heard(Heard),
}

/// The codes a frame can carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// A refused CONNECT (`44`) and its message.
    Refused(String),
    /// The server left our namespace (`41`).
    ServerDisconnect,
    /// A `connection_failed` event and its code (any bot's).
    ConnectionFailed(u16),
}

/// Live facts for the pages; the list refreshes over HTTP when a pairing ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    BotStatus {
        bot: String,
        status: BotStatus,
    },
    Messages {
        bot: String,
        messages: u64,
    },
    /// The display ended (linked, failed or hidden): refresh the bot list.
    PairingEnded {
        bot: String,
    },
    /// The pairing code shown for this bot no longer works: stop showing it.
    PairingCodeExpired {
        bot: String,
    },
}

/// Why a display ended for good; the page shows it and waits for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A code from `connection_failed` (PROTOCOL.md §4), or a retryable one whose retries ran out.
    Code(u16),
    QrExpired,
    Unauthorized,
    TokenExpired,
    RateLimited,
    ServerDisconnect,
    Network,
    /// An HTTP answer the app cannot act on (404 for a deleted bot, a 5xx...).
    Http {
        status: u16,
        message: String,
    },
}

impl Failure {
    /// The `data-code` of PROTOCOL.md §7.
    pub fn code(&self) -> String {
        match self {
            Failure::Code(c) | Failure::Http { status: c, .. } => c.to_string(),
            Failure::QrExpired => "qr_expired".into(),
            Failure::Unauthorized => "unauthorized".into(),
            Failure::TokenExpired => "token_expired".into(),
            Failure::RateLimited => "rate_limited".into(),
            Failure::ServerDisconnect => "server_disconnect".into(),
            Failure::Network => "network".into(),
        }
    }
}

/// The `data-state` values of PROTOCOL.md §7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UiState {
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

/// Why the current attempt will be retried; decides its budget and its delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetryCause {
    Network,
    Code(u16),
    TokenExpired,
    RateLimited,
}

/// The budgets spent during one display; a new display (or "Try again") starts them afresh.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Budget {
    network_retries: u32,
    token_retries: u32,
    rate_limit_retried: bool,
}

/// Where a socket stands inside [`Phase::Connecting`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    /// Waiting for the WebSocket and the Engine.IO open packet.
    Transport,
    /// `40{auth}` sent, waiting for `40` or `44`; the server's pingInterval + pingTimeout.
    Namespace { ping_window: Millis },
}

/// The linked-socket facts of [`Phase::Open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Liveness {
    /// pingInterval + pingTimeout: no ping for this long means a dead link.
    ping_window: Millis,
    dead_at: Millis,
    /// When the failure budget is forgiven (10 s of stable open); `None` once it was.
    stable_at: Option<Millis>,
}

/// Everything about one QR display. Which bot, which QR, what was spent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Display {
    bot: String,
    qr: Option<Pairing>,
    budget: Budget,
}

/// A socket being opened: [`Phase::Connecting`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Connecting {
    display: Display,
    socket: SocketId,
    stage: Handshake,
    max_payload: usize,
    give_up_at: Millis,
}

/// A socket connected to the namespace: [`Phase::Open`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Live {
    display: Display,
    socket: SocketId,
    max_payload: usize,
    liveness: Liveness,
    /// When `qr_scanned` came, and whether the 60 s stall notice is due.
    scanned: Option<Scanned>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// No QR wanted.
    Idle,
    /// The cross-tab pairing lock asked for; `then` says what follows once it is ours.
    Claiming {
        display: Display,
        epoch: Epoch,
        then: AfterClaim,
        give_up_at: Millis,
    },
    /// An HTTP request about the bot in flight (lock held): what for is `purpose`.
    Fetching {
        display: Display,
        epoch: Epoch,
        purpose: Purpose,
        give_up_at: Millis,
    },
    /// The QR is handed to the page; once it is shown, the socket opens at `open_at`
    /// (`None` until the page says it is on screen).
    Debouncing {
        display: Display,
        open_at: Option<Millis>,
    },
    /// A socket is being opened (lock held).
    Connecting(Connecting),
    /// A token refresh or new session in flight before a retry (lock held).
    Refreshing {
        display: Display,
        epoch: Epoch,
        retry_delay: Millis,
        fresh_session: bool,
        give_up_at: Millis,
    },
    /// Connected to the namespace; the QR is live.
    Open(Live),
    /// Waiting to retry; then a resync fetch, then an open.
    Backoff {
        display: Display,
        retry_at: Millis,
        cause: RetryCause,
    },
    /// Another tab holds the pairing lock; "Pair here instead" takes it over.
    OtherTab { display: Display },
    /// Hidden for `pause_after`: no socket, no lock, until the page is visible again.
    Paused { display: Display },
    /// The phone is linked.
    Linked { bot: String, phone: Option<String> },
    /// The display ended for good; `Retry` works from `retry_at` (the token cooldown) on.
    Failed {
        display: Display,
        failure: Failure,
        retry_at: Millis,
    },
}

/// What a [`Phase::Fetching`] request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// `POST .../qr` for a new display: the QR goes on screen, then the debounce.
    Display,
    /// `POST .../qr` before a retry: the QR is on screen already, the socket opens next.
    Resync,
    /// `GET /api/bots/{id}` after a pause: linked, still pairing (its QR, then the debounce), or over.
    Resume,
}

/// What follows the cross-tab lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterClaim {
    /// Ask for the QR (a new display, "Try again", "Pair here instead").
    Fetch,
    /// "Sign in again": a new session, then the QR.
    SignIn,
    /// Back from a pause: resync the bot, then its QR.
    Resume,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scanned {
    stall_at: Millis,
    stalled: bool,
}

/// What the pages read: a snapshot of the machine, cheap to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub state: UiState,
    pub bot: Option<String>,
    pub qr: Option<Pairing>,
    pub failure: Option<Failure>,
    pub phone: Option<String>,
    /// `qr_scanned` came more than 60 s ago and the link is not open yet.
    pub scan_stalled: bool,
    /// "Try again" is disabled until this time (the token cooldown).
    pub retry_at: Option<Millis>,
    /// A QR request or socket attempt is in flight.
    pub is_locked: bool,
}

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
        let wanted_tab = wants_tab(&self.phase);
        let mut out = Vec::new();
        let frame = self.frame_of(&input);
        let why = match &frame {
            Some(frame) => frames::describe_frame(frame),
            None => describe(&input),
        };
        if input == Input::TimerFired {
            // The driver's timer is spent once it fires: any deadline, even an equal one, re-arms.
            self.armed = None;
        }
        match input {
            Input::PageHidden => {
                self.hidden_since.get_or_insert(now);
            }
            Input::PageVisible => self.hidden_since = None,
            _ => {}
        }
        if input == Input::TimerFired && self.pause_due(now) {
            let phase = std::mem::replace(&mut self.phase, Phase::Idle);
            self.phase = self.pause(phase, &mut out);
        } else if let Some(frame) = frame {
            self.on_frame(frame, now, &mut out);
        } else {
            self.step(input, now, &mut out);
        }
        if wanted_tab && !wants_tab(&self.phase) {
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

    /// What the pages show.
    pub fn view(&self) -> View {
        let mut view = View {
            state: UiState::Idle,
            bot: None,
            qr: None,
            failure: None,
            phone: None,
            scan_stalled: false,
            retry_at: None,
            is_locked: false,
        };
        let display = match &self.phase {
            Phase::Idle => return view,
            Phase::Linked { bot, phone } => {
                view.state = UiState::Linked;
                view.bot = Some(bot.clone());
                view.phone = phone.clone();
                return view;
            }
            Phase::Claiming { display, then, .. } => {
                view.state = match then {
                    AfterClaim::Resume => UiState::Retrying,
                    AfterClaim::Fetch | AfterClaim::SignIn => UiState::Connecting,
                };
                view.is_locked = true;
                display
            }
            Phase::Fetching {
                display, purpose, ..
            } => {
                view.state = match purpose {
                    Purpose::Display => UiState::Connecting,
                    Purpose::Resync | Purpose::Resume => UiState::Retrying,
                };
                view.is_locked = true;
                display
            }
            Phase::OtherTab { display } => {
                view.state = UiState::OtherTab;
                display
            }
            Phase::Paused { display } => {
                view.state = UiState::Paused;
                display
            }
            Phase::Debouncing { display, .. } => {
                view.state = UiState::Debouncing;
                display
            }
            Phase::Connecting(c) => {
                view.state = UiState::Connecting;
                view.is_locked = true;
                &c.display
            }
            Phase::Refreshing { display, .. } => {
                view.state = UiState::Retrying;
                view.is_locked = true;
                display
            }
            Phase::Open(live) => {
                view.state = if live.scanned.is_some() {
                    UiState::Finishing
                } else {
                    UiState::WaitingForScan
                };
                view.scan_stalled = live.scanned.is_some_and(|s| s.stalled);
                &live.display
            }
            Phase::Backoff { display, .. } => {
                view.state = UiState::Retrying;
                display
            }
            Phase::Failed {
                display,
                failure,
                retry_at,
            } => {
                view.state = UiState::Failed;
                view.failure = Some(failure.clone());
                view.retry_at = Some(*retry_at);
                display
            }
        };
        view.bot = Some(display.bot.clone());
        view.qr = display.qr.clone();
        view
    }

    /// The earliest time the machine wants to be woken at.
    fn deadline(&self) -> Option<Millis> {
        let pause = self
            .hidden_since
            .filter(|_| holds_tab(&self.phase))
            .map(|since| since + self.config.pause_after);
        let own = self.phase_deadline();
        match (pause, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hidden for `pause_after` while a display runs.
    fn pause_due(&self, now: Millis) -> bool {
        holds_tab(&self.phase)
            && self
                .hidden_since
                .is_some_and(|since| now >= since + self.config.pause_after)
    }

    /// Closes whatever the display holds and waits, without a lock, for the page to be visible.
    fn pause(&mut self, phase: Phase, out: &mut Vec<Command>) -> Phase {
        out.push(Command::Log(format!(
            "hidden for {} ms: the socket closes until the page is visible",
            self.config.pause_after
        )));
        self.close_current(&phase, out);
        match display_of(phase) {
            Some(display) => Phase::Paused {
                display: Display {
                    qr: None,
                    ..display
                },
            },
            None => Phase::Idle,
        }
    }

    fn phase_deadline(&self) -> Option<Millis> {
        match &self.phase {
            Phase::Idle | Phase::Linked { .. } | Phase::OtherTab { .. } | Phase::Paused { .. } => {
                None
            }
            Phase::Fetching { give_up_at, .. }
            | Phase::Refreshing { give_up_at, .. }
            | Phase::Claiming { give_up_at, .. } => Some(*give_up_at),
            Phase::Debouncing { open_at, .. } => *open_at,
            Phase::Connecting(c) => Some(c.give_up_at),
            Phase::Backoff { retry_at, .. } => Some(*retry_at),
            // The cooldown needs no timer of the machine's: the page redraws the button.
            Phase::Failed { .. } => None,
            Phase::Open(Live {
                liveness, scanned, ..
            }) => {
                let stall = scanned.filter(|s| !s.stalled).map(|s| s.stall_at);
                [Some(liveness.dead_at), liveness.stable_at, stall]
                    .into_iter()
                    .flatten()
                    .min()
            }
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

    /// The earliest a socket may open: `now` or later, and at least `min_gap` after the last open.
    fn not_before(&self, at: Millis) -> Millis {
        match self.last_open_at {
            Some(last) => at.max(last + self.config.min_gap),
            None => at,
        }
    }

    fn step(&mut self, input: Input, now: Millis, out: &mut Vec<Command>) {
        let phase = std::mem::replace(&mut self.phase, Phase::Idle);
        self.phase = match (phase, input) {
            // ---- user intents -------------------------------------------------------------
            (phase, Input::ShowQr { bot }) => self.show(phase, bot, now, out),
            (phase, Input::HideQr) => {
                self.end_display(&phase, out);
                Phase::Idle
            }
            (
                Phase::Failed {
                    display,
                    failure,
                    retry_at,
                },
                Input::Retry,
            ) => {
                if now < retry_at {
                    Phase::Failed {
                        display,
                        failure,
                        retry_at,
                    }
                } else {
                    // "Sign in again" gets a new session first; the others ask for a QR again.
                    let then = if failure == Failure::Unauthorized {
                        AfterClaim::SignIn
                    } else {
                        AfterClaim::Fetch
                    };
                    self.claim(fresh(display), then, false, now, out)
                }
            }
            (phase, Input::Retry) => phase,
            // "Pair here instead": take the lock from the other tab.
            (Phase::OtherTab { display }, Input::TakeOver) => {
                self.claim(fresh(display), AfterClaim::Fetch, true, now, out)
            }

            // ---- the cross-tab lock ---------------------------------------------------------
            (
                Phase::Claiming {
                    display,
                    epoch,
                    then,
                    ..
                },
                Input::TabClaimed { epoch: e },
            ) if e == epoch => self.after_claim(display, then, now, out),
            (Phase::Claiming { display, epoch, .. }, Input::TabBusy { epoch: e }) if e == epoch => {
                Phase::OtherTab { display }
            }
            // No answer about the lock is taken for "busy": waiting is safe, a second socket is not.
            (Phase::Claiming { display, .. }, Input::TimerFired) => {
                out.push(Command::Log("the tab lock did not answer".into()));
                Phase::OtherTab { display }
            }
            (phase, Input::TabLost { .. }) if holds_tab(&phase) => {
                out.push(Command::Log("another tab took the pairing over".into()));
                self.close_current(&phase, out);
                match display_of(phase) {
                    Some(display) => Phase::OtherTab { display },
                    None => Phase::Idle,
                }
            }

            // ---- the page and the network -----------------------------------------------------
            (Phase::Paused { display }, Input::PageVisible) => {
                self.claim(display, AfterClaim::Resume, false, now, out)
            }
            // Back online: the pending retry goes now (the 1 s rule still holds at the open).
            (Phase::Backoff { display, .. }, Input::Online) => {
                self.fetch(display, Purpose::Resync, now, out)
            }
            (
                Phase::Failed {
                    display,
                    failure: Failure::Network,
                    ..
                },
                Input::Online,
            ) => self.claim(fresh(display), AfterClaim::Fetch, false, now, out),
            // Offline: the socket cannot live; say so now rather than after the ping window.
            (
                Phase::Connecting(Connecting {
                    display, socket, ..
                })
                | Phase::Open(Live {
                    display, socket, ..
                }),
                Input::Offline,
            ) => {
                out.push(Command::Close { socket, code: 1000 });
                self.retry(display, RetryCause::Network, now, out)
            }

            // ---- the QR request ------------------------------------------------------------
            (
                Phase::Fetching {
                    display,
                    epoch,
                    purpose,
                    ..
                },
                Input::QrFetched { epoch: e, qr },
            ) if e == epoch => {
                let display = Display {
                    qr: Some(qr),
                    ..display
                };
                if purpose == Purpose::Resync {
                    // A retry: the QR is on screen already.
                    self.open(display, now, out)
                } else {
                    Phase::Debouncing {
                        display,
                        open_at: None,
                    }
                }
            }
            (
                Phase::Fetching {
                    display,
                    epoch,
                    purpose: Purpose::Resume,
                    ..
                },
                Input::BotFetched {
                    epoch: e,
                    status,
                    pairing,
                },
            ) if e == epoch => self.resumed(display, status, pairing, out),
            (
                Phase::Fetching { display, epoch, .. },
                Input::BotFetchFailed { epoch: e, failure },
            ) if e == epoch => self.http_failed(display, failure, now, out),
            (
                Phase::Fetching { display, epoch, .. },
                Input::QrFetchFailed { epoch: e, failure },
            ) if e == epoch => self.http_failed(display, failure, now, out),

            // ---- sessions --------------------------------------------------------------------
            (
                Phase::Refreshing {
                    display,
                    epoch,
                    retry_delay,
                    fresh_session,
                    ..
                },
                Input::SessionReady { epoch: e },
            ) if e == epoch => {
                if fresh_session {
                    self.fetch(display, Purpose::Display, now, out)
                } else {
                    let retry_at = self.not_before(now + retry_delay);
                    Phase::Backoff {
                        display,
                        retry_at,
                        cause: RetryCause::TokenExpired,
                    }
                }
            }
            (
                Phase::Refreshing { display, epoch, .. },
                Input::SessionFailed { epoch: e, failure },
            ) if e == epoch => self.http_failed(display, failure, now, out),

            // ---- timers ----------------------------------------------------------------------
            // An HTTP request that never answers (a black-holed link) is a network failure.
            (
                Phase::Fetching {
                    display,
                    give_up_at,
                    ..
                }
                | Phase::Refreshing {
                    display,
                    give_up_at,
                    ..
                },
                Input::TimerFired,
            ) if now >= give_up_at => {
                out.push(Command::Log("the request timed out".into()));
                self.http_failed(display, HttpFailure::Network, now, out)
            }
            (
                Phase::Debouncing {
                    display,
                    open_at: None,
                },
                Input::QrShown { qr },
            ) if display.qr.as_ref().is_some_and(|q| q.qr == qr) => {
                let open_at = Some(self.not_before(now + self.config.debounce));
                Phase::Debouncing { display, open_at }
            }
            (
                Phase::Debouncing {
                    display,
                    open_at: Some(open_at),
                },
                Input::TimerFired,
            ) => {
                if now >= open_at {
                    self.open(display, now, out)
                } else {
                    Phase::Debouncing {
                        display,
                        open_at: Some(open_at),
                    }
                }
            }
            (
                Phase::Backoff {
                    display,
                    retry_at,
                    cause,
                },
                Input::TimerFired,
            ) => {
                if now >= retry_at {
                    // Resync over HTTP before trusting a new socket: the pairing may have moved on.
                    self.fetch(display, Purpose::Resync, now, out)
                } else {
                    Phase::Backoff {
                        display,
                        retry_at,
                        cause,
                    }
                }
            }
            (Phase::Connecting(c), Input::TimerFired) if now >= c.give_up_at => {
                out.push(Command::Close {
                    socket: c.socket,
                    code: 1000,
                });
                self.retry(c.display, RetryCause::Network, now, out)
            }
            (Phase::Open(live), Input::TimerFired) if now >= live.liveness.dead_at => {
                out.push(Command::Log(format!(
                    "no ping for {} ms: the link is dead",
                    live.liveness.ping_window
                )));
                out.push(Command::Close {
                    socket: live.socket,
                    code: 1000,
                });
                self.retry(live.display, RetryCause::Network, now, out)
            }
            (Phase::Open(mut live), Input::TimerFired) => {
                if live.liveness.stable_at.is_some_and(|at| now >= at) {
                    live.liveness.stable_at = None;
                    live.display.budget.network_retries = 0;
                }
                if let Some(s) = live.scanned.as_mut().filter(|s| now >= s.stall_at) {
                    s.stalled = true;
                }
                Phase::Open(live)
            }

            // ---- the socket ------------------------------------------------------------------
            // Frames of the current socket are decoded and handled in `frames`, before `step`.
            (phase, Input::SocketOpened { .. }) => phase,
            // Close 1008: auth refused at the WebSocket level (plain backends): refresh and retry.
            (
                Phase::Connecting(Connecting {
                    display, socket, ..
                })
                | Phase::Open(Live {
                    display, socket, ..
                }),
                Input::SocketClosed {
                    socket: s,
                    code: 1008,
                },
            ) if s == socket => {
                out.push(Command::Close { socket, code: 1000 });
                self.retry(display, RetryCause::TokenExpired, now, out)
            }
            (
                Phase::Connecting(Connecting {
                    display, socket, ..
                })
                | Phase::Open(Live {
                    display, socket, ..
                }),
                Input::SocketError { socket: s } | Input::SocketClosed { socket: s, .. },
            ) if s == socket => {
                // Any other close, 1006 during the handshake included (an HTTP 401 at upgrade looks
                // like this to a browser), is a network error, not an auth refusal.
                out.push(Command::Close { socket, code: 1000 });
                self.retry(display, RetryCause::Network, now, out)
            }

            // Anything else is stale or irrelevant here: a late answer, an old socket's event,
            // a timer that fired after its deadline moved.
            (phase, _) => phase,
        };
    }

    /// `ShowQr`: single-flight. A display of the same bot, running or ended, absorbs it (a failed
    /// one restarts through `Retry`); another bot's display is closed and replaced.
    fn show(&mut self, phase: Phase, bot: String, now: Millis, out: &mut Vec<Command>) -> Phase {
        if phase_bot(&phase).as_deref() == Some(bot.as_str()) {
            return phase;
        }
        self.end_display(&phase, out);
        let display = Display {
            bot,
            qr: None,
            budget: Budget::default(),
        };
        if holds_tab(&phase) {
            // Another bot's display in this tab: the lock is ours already.
            return self.fetch(display, Purpose::Display, now, out);
        }
        self.claim(display, AfterClaim::Fetch, false, now, out)
    }

    /// Asks for the cross-tab lock; `then` follows once it is this tab's.
    fn claim(
        &mut self,
        display: Display,
        then: AfterClaim,
        steal: bool,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let epoch = self.epoch();
        out.push(Command::ClaimTab { epoch, steal });
        Phase::Claiming {
            display,
            epoch,
            then,
            give_up_at: now + self.config.request_timeout,
        }
    }

    fn after_claim(
        &mut self,
        display: Display,
        then: AfterClaim,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        match then {
            AfterClaim::Fetch => self.fetch(display, Purpose::Display, now, out),
            AfterClaim::Resume => self.fetch(display, Purpose::Resume, now, out),
            AfterClaim::SignIn => {
                let epoch = self.epoch();
                out.push(Command::NewSession { epoch });
                Phase::Refreshing {
                    display,
                    epoch,
                    retry_delay: 0,
                    fresh_session: true,
                    give_up_at: now + self.config.request_timeout,
                }
            }
        }
    }

    /// The bot as the server sees it after a pause: linked, still pairing, or over.
    fn resumed(
        &mut self,
        display: Display,
        status: BotStatus,
        pairing: Option<Pairing>,
        out: &mut Vec<Command>,
    ) -> Phase {
        out.push(Command::Notify(Notice::BotStatus {
            bot: display.bot.clone(),
            status,
        }));
        if status == BotStatus::Connected {
            out.push(Command::Notify(Notice::PairingEnded {
                bot: display.bot.clone(),
            }));
            return Phase::Linked {
                bot: display.bot,
                phone: None,
            };
        }
        match pairing.filter(|p| !p.qr.is_empty()) {
            // Still pairing: its current QR goes on screen, and the debounce counts from there.
            Some(qr) => Phase::Debouncing {
                display: Display {
                    qr: Some(qr),
                    ..display
                },
                open_at: None,
            },
            // The pairing ended while the page was away (its codes expired).
            None => {
                out.push(Command::Notify(Notice::PairingEnded {
                    bot: display.bot.clone(),
                }));
                Phase::Failed {
                    display,
                    failure: Failure::QrExpired,
                    retry_at: 0,
                }
            }
        }
    }

    /// Ends a running display: closes its socket and tells the pages the pairing is over.
    fn end_display(&self, phase: &Phase, out: &mut Vec<Command>) {
        self.close_current(phase, out);
        if let Some(bot) = phase_bot(phase).filter(|_| wants_tab(phase)) {
            out.push(Command::Notify(Notice::PairingEnded { bot }));
        }
    }

    fn fetch(
        &mut self,
        display: Display,
        purpose: Purpose,
        now: Millis,
        out: &mut Vec<Command>,
    ) -> Phase {
        let epoch = self.epoch();
        let bot = display.bot.clone();
        out.push(match purpose {
            Purpose::Resume => Command::FetchBot { bot, epoch },
            Purpose::Display | Purpose::Resync => Command::FetchQr { bot, epoch },
        });
        Phase::Fetching {
            display,
            epoch,
            purpose,
            give_up_at: now + self.config.request_timeout,
        }
    }

    fn open(&mut self, display: Display, now: Millis, out: &mut Vec<Command>) -> Phase {
        let at = self.not_before(now);
        if at > now {
            // The 1 s rule: wait, and come back through the timer.
            return Phase::Debouncing {
                display,
                open_at: Some(at),
            };
        }
        self.next_socket += 1;
        let socket = SocketId(self.next_socket);
        self.last_open_at = Some(now);
        out.push(Command::Open { socket });
        Phase::Connecting(Connecting {
            display,
            socket,
            stage: Handshake::Transport,
            max_payload: protocol::frames::DEFAULT_MAX_PAYLOAD,
            give_up_at: now + self.config.connect_timeout,
        })
    }

    /// Closes whatever socket the phase holds (namespace disconnect first when connected).
    fn close_current(&self, phase: &Phase, out: &mut Vec<Command>) {
        match phase {
            Phase::Open(live) => hang_up(live.socket, out),
            Phase::Connecting(c) => out.push(Command::Close {
                socket: c.socket,
                code: 1000,
            }),
            _ => {}
        }
    }
}

/// Leaves the namespace (`41`) and closes the socket with 1000: the polite end of a link.
fn hang_up(socket: SocketId, out: &mut Vec<Command>) {
    out.push(Command::Send {
        socket,
        text: protocol::frames::DISCONNECT.into(),
    });
    out.push(Command::Close { socket, code: 1000 });
}

/// `Some(display)` of a phase, by value from a `Phase`, by reference from a `&Phase`: the one list
/// of the phases that carry a display.
macro_rules! display_in {
    ($phase:expr) => {
        match $phase {
            Phase::Idle | Phase::Linked { .. } => None,
            Phase::Claiming { display, .. }
            | Phase::Fetching { display, .. }
            | Phase::Debouncing { display, .. }
            | Phase::Connecting(Connecting { display, .. })
            | Phase::Refreshing { display, .. }
            | Phase::Open(Live { display, .. })
            | Phase::Backoff { display, .. }
            | Phase::OtherTab { display }
            | Phase::Paused { display }
            | Phase::Failed { display, .. } => Some(display),
        }
    };
}

fn phase_bot(phase: &Phase) -> Option<String> {
    match phase {
        Phase::Linked { bot, .. } => Some(bot.clone()),
        _ => display_in!(phase).map(|d| d.bot.clone()),
    }
}

/// The display a phase carries, taken out of it.
fn display_of(phase: Phase) -> Option<Display> {
    display_in!(phase)
}

/// The phases of a running display: this tab holds the cross-tab pairing lock in each.
fn holds_tab(phase: &Phase) -> bool {
    matches!(
        phase,
        Phase::Fetching { .. }
            | Phase::Debouncing { .. }
            | Phase::Connecting(_)
            | Phase::Refreshing { .. }
            | Phase::Open(_)
            | Phase::Backoff { .. }
    )
}

/// Holding the lock, or waiting for it: leaving these lets go of it.
fn wants_tab(phase: &Phase) -> bool {
    holds_tab(phase) || matches!(phase, Phase::Claiming { .. })
}

/// A display started afresh by the user: no QR yet, the whole budget.
fn fresh(display: Display) -> Display {
    Display {
        qr: None,
        budget: Budget::default(),
        ..display
    }
}

/// A short reason for the transition log. Never includes a token: inputs carry none.
fn describe(input: &Input) -> String {
    match input {
        Input::ShowQr { bot } => format!("show QR for {bot}"),
        Input::HideQr => "QR hidden".into(),
        Input::Retry => "user retry".into(),
        Input::QrShown { .. } => "QR on screen".into(),
        Input::QrFetched { .. } => "QR received".into(),
        Input::QrFetchFailed { failure, .. } => format!("QR request failed: {failure:?}"),
        Input::SessionReady { .. } => "session ready".into(),
        Input::SessionFailed { failure, .. } => format!("session request failed: {failure:?}"),
        Input::SocketOpened { .. } => "socket open".into(),
        Input::SocketMessage { .. } => "a frame of an old socket".into(),
        Input::SocketError { .. } => "socket error".into(),
        Input::SocketClosed { code, .. } => format!("socket closed {code}"),
        Input::TimerFired => "timer".into(),
        Input::BotFetched { status, .. } => format!("bot is {status}"),
        Input::BotFetchFailed { failure, .. } => format!("bot request failed: {failure:?}"),
        Input::TabClaimed { .. } => "this tab pairs".into(),
        Input::TabBusy { .. } => "another tab is pairing".into(),
        Input::TabLost { .. } => "another tab took over".into(),
        Input::TakeOver => "take over".into(),
        Input::PageHidden => "page hidden".into(),
        Input::PageVisible => "page visible".into(),
        Input::Online => "online".into(),
        Input::Offline => "offline".into(),
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "machine_tests.rs"]
mod tests;
