//! What the machine asks of the driver: its outputs.

use super::{Epoch, Millis, SocketId, UiState};
use protocol::BotStatus;

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

impl Heard {
    /// The code by name, as the diagnostics count it.
    pub fn name(&self) -> String {
        match self {
            Heard::Refused(message) => format!("refused {message}"),
            Heard::ServerDisconnect => "server disconnect".into(),
            Heard::ConnectionFailed(code) => format!("connection_failed {code}"),
        }
    }
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
