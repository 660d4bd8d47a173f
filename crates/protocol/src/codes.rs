//! Every code the contract carries, and what it means: the one table both sides read.
//!
//! - `connection_failed` codes (§4, Baileys' `DisconnectReason`, and botlink's `426`): [`meaning`].
//! - CONNECT_ERROR messages (`44{"message"}`, §2): [`Refusal`].
//! - WebSocket close codes (§2): [`CLOSE_NORMAL`], [`CLOSE_POLICY`].

/// 401: logged out on the phone.
pub const LOGGED_OUT: u16 = 401;
/// 403: forbidden or banned.
pub const FORBIDDEN: u16 = 403;
/// 405: connection failure.
pub const CONNECTION_FAILURE: u16 = 405;
/// 408: timed out (the connection was lost; QR expiry is the separate `qr_expired`).
pub const TIMED_OUT: u16 = 408;
/// 411: multi-device mismatch.
pub const MULTIDEVICE_MISMATCH: u16 = 411;
/// 426: WhatsApp refuses this client's version (botlink's extension; terminal).
pub const CLIENT_OUTDATED: u16 = 426;
/// 428: connection closed.
pub const CONNECTION_CLOSED: u16 = 428;
/// 440: another session replaced this one.
pub const CONFLICT: u16 = 440;
/// 500: bad session.
pub const BAD_SESSION: u16 = 500;
/// 503: unavailable.
pub const UNAVAILABLE: u16 = 503;
/// 515: restart required (the backend restarts the session itself).
pub const RESTART_REQUIRED: u16 = 515;

/// What a `connection_failed` code asks of the app (§4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// Retry, bounded, with backoff.
    Retry,
    /// The backend restarts the session itself: keep waiting.
    KeepWaiting,
    /// Stop at once and show why; never retried by itself.
    Stop,
}

/// The codes §4 says to retry.
pub const RETRY: [u16; 5] = [
    CONNECTION_FAILURE,
    TIMED_OUT,
    CONNECTION_CLOSED,
    BAD_SESSION,
    UNAVAILABLE,
];

/// What `code` asks of the app. A code nobody wrote down stops: never a loop on the unknown.
pub fn meaning(code: u16) -> Meaning {
    match code {
        RESTART_REQUIRED => Meaning::KeepWaiting,
        c if RETRY.contains(&c) => Meaning::Retry,
        // 401, 403, 411, 426, 440 and anything unknown.
        _ => Meaning::Stop,
    }
}

/// A refused CONNECT's message (`44{"message"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The session is gone: no retry.
    Unauthorized,
    /// Refresh the token, then retry.
    TokenExpired,
    /// Wait, then retry once.
    RateLimited,
    /// A message another backend invented: as final as `unauthorized`.
    Unknown,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthorized => "unauthorized",
            Refusal::TokenExpired => "token_expired",
            Refusal::RateLimited => "rate_limited",
            Refusal::Unknown => "unknown",
        }
    }

    pub fn parse(message: &str) -> Refusal {
        [
            Refusal::Unauthorized,
            Refusal::TokenExpired,
            Refusal::RateLimited,
        ]
        .into_iter()
        .find(|r| r.as_str() == message)
        .unwrap_or(Refusal::Unknown)
    }
}

/// A close that ends a socket normally (the app's own closes).
pub const CLOSE_NORMAL: u16 = 1000;
/// A close with no close frame: the network, or an HTTP refusal at the upgrade.
pub const CLOSE_ABNORMAL: u16 = 1006;
/// Auth refused at the WebSocket level (plain backends): refresh and retry, like `token_expired`.
pub const CLOSE_POLICY: u16 = 1008;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_of_section_4() {
        for code in [
            LOGGED_OUT,
            FORBIDDEN,
            MULTIDEVICE_MISMATCH,
            CLIENT_OUTDATED,
            CONFLICT,
        ] {
            assert_eq!(meaning(code), Meaning::Stop, "{code}");
        }
        for code in [405, 408, 428, 500, 503] {
            assert_eq!(meaning(code), Meaning::Retry, "{code}");
        }
        assert_eq!(meaning(515), Meaning::KeepWaiting);
        assert_eq!(meaning(0), Meaning::Stop, "the unknown stops");
        assert_eq!(meaning(u16::MAX), Meaning::Stop);
    }

    #[test]
    fn refusals_round_trip_and_the_unknown_is_final() {
        for r in [
            Refusal::Unauthorized,
            Refusal::TokenExpired,
            Refusal::RateLimited,
        ] {
            assert_eq!(Refusal::parse(r.as_str()), r);
        }
        assert_eq!(Refusal::parse("banned"), Refusal::Unknown);
        assert_eq!(Refusal::parse("unknown"), Refusal::Unknown);
    }
}
