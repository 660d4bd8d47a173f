//! Everything that happens to the connection owner: the machine's inputs.

use super::Millis;
use protocol::{BotStatus, Pairing};

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

impl HttpFailure {
    /// The failure by name, as the diagnostics count it.
    pub fn name(&self) -> String {
        match self {
            HttpFailure::Unauthorized => "http 401".into(),
            HttpFailure::RateLimited { .. } => "http 429".into(),
            HttpFailure::AlreadyConnected => "http 409".into(),
            HttpFailure::Status { status, .. } => format!("http {status}"),
            HttpFailure::Network => "network error".into(),
        }
    }
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
