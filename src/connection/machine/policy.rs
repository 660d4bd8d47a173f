//! The one failure policy (PROTOCOL.md §4, §6): every trouble a display can meet — a refused
//! CONNECT, a `connection_failed` code, `qr_expired`, the server's `41`, a closed or failed socket,
//! a deadline, going offline, an HTTP failure — and what follows it: a retry with its cause, a stop
//! with the failure the page shows, or waiting on. "What happens on 440?" is a row here.
//!
//! The budgets and delays of a retry are `retry.rs`'s; the words a failure shows, `failure.rs`'s.

use super::{Failure, HttpFailure, Millis};
use protocol::codes::{self, Meaning, Refusal};

/// Something went wrong (or ended) during a display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Trouble {
    /// `44{message}`: the namespace CONNECT was refused.
    Refused(Refusal),
    /// `connection_failed` for this display's bot, with its code.
    ConnectionFailed(u16),
    /// Every QR of the pairing expired unscanned.
    QrExpired,
    /// `41`: the server ended our namespace (another session replaced us) — in every phase.
    ServerDisconnect,
    /// Engine.IO `1`: the server closed the transport.
    TransportClosed,
    /// The WebSocket closed with this code, or failed (`None`).
    SocketClosed(Option<u16>),
    /// The browser went offline: the socket cannot live.
    Offline,
    /// No answer in time: an HTTP request, the handshake, or pings (a dead link).
    NoAnswer,
    /// An HTTP request of the display failed.
    Http(HttpFailure),
}

/// Why an attempt will be retried; decides its budget and its delay (`retry.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RetryCause {
    /// The network, or a retryable code: jittered backoff, five at most.
    Network,
    Code(u16),
    /// A token refresh before each retry, three at most.
    TokenExpired,
    /// One wait (the server's `Retry-After` if it gave one), then one more try.
    RateLimited {
        wait: Option<Millis>,
    },
}

/// What follows a trouble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Retry(RetryCause),
    Stop(Failure),
    /// Nothing is wrong yet: the backend restarts the session itself (515).
    KeepWaiting,
    /// Not a failure at all: the bot is linked already (a `409` on `POST .../qr`).
    Linked,
}

/// The policy.
pub(super) fn verdict(trouble: Trouble) -> Verdict {
    match trouble {
        Trouble::Refused(Refusal::TokenExpired) => Verdict::Retry(RetryCause::TokenExpired),
        Trouble::Refused(Refusal::RateLimited) => {
            Verdict::Retry(RetryCause::RateLimited { wait: None })
        }
        // `unauthorized`, and any message another backend invented: the session is gone.
        Trouble::Refused(Refusal::Unauthorized | Refusal::Unknown) => {
            Verdict::Stop(Failure::Unauthorized)
        }
        Trouble::ConnectionFailed(code) => match codes::meaning(code) {
            Meaning::Retry => Verdict::Retry(RetryCause::Code(code)),
            Meaning::KeepWaiting => Verdict::KeepWaiting,
            // 401, 403, 411, 426, 440 and anything unknown: final, never a loop.
            Meaning::Stop => Verdict::Stop(Failure::Code(code)),
        },
        Trouble::QrExpired => Verdict::Stop(Failure::QrExpired),
        Trouble::ServerDisconnect => Verdict::Stop(Failure::ServerDisconnect),
        // Close 1008: auth refused at the WebSocket level (plain backends): refresh and retry.
        Trouble::SocketClosed(Some(codes::CLOSE_POLICY)) => {
            Verdict::Retry(RetryCause::TokenExpired)
        }
        // Any other close, 1006 during the handshake included (an HTTP 401 at the upgrade looks
        // like this to a browser), is the network, not an auth refusal.
        Trouble::SocketClosed(_)
        | Trouble::TransportClosed
        | Trouble::Offline
        | Trouble::NoAnswer => Verdict::Retry(RetryCause::Network),
        Trouble::Http(failure) => match failure {
            HttpFailure::Unauthorized => Verdict::Stop(Failure::Unauthorized),
            HttpFailure::AlreadyConnected => Verdict::Linked,
            HttpFailure::RateLimited { retry_after } => {
                Verdict::Retry(RetryCause::RateLimited { wait: retry_after })
            }
            HttpFailure::Network => Verdict::Retry(RetryCause::Network),
            HttpFailure::Status { status, .. } if status >= 500 => {
                Verdict::Retry(RetryCause::Network)
            }
            HttpFailure::Status { status, message } => {
                Verdict::Stop(Failure::Http { status, message })
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the policy, as PROTOCOL.md §4 and §6 write it.
    #[test]
    fn every_trouble_has_its_verdict() {
        use RetryCause::*;
        use Verdict::*;
        let rows = [
            (Trouble::Refused(Refusal::TokenExpired), Retry(TokenExpired)),
            (
                Trouble::Refused(Refusal::RateLimited),
                Retry(RateLimited { wait: None }),
            ),
            (
                Trouble::Refused(Refusal::Unauthorized),
                Stop(Failure::Unauthorized),
            ),
            (
                Trouble::Refused(Refusal::Unknown),
                Stop(Failure::Unauthorized),
            ),
            (Trouble::ConnectionFailed(401), Stop(Failure::Code(401))),
            (Trouble::ConnectionFailed(403), Stop(Failure::Code(403))),
            (Trouble::ConnectionFailed(405), Retry(Code(405))),
            (Trouble::ConnectionFailed(408), Retry(Code(408))),
            (Trouble::ConnectionFailed(411), Stop(Failure::Code(411))),
            (Trouble::ConnectionFailed(426), Stop(Failure::Code(426))),
            (Trouble::ConnectionFailed(428), Retry(Code(428))),
            (Trouble::ConnectionFailed(440), Stop(Failure::Code(440))),
            (Trouble::ConnectionFailed(500), Retry(Code(500))),
            (Trouble::ConnectionFailed(503), Retry(Code(503))),
            (Trouble::ConnectionFailed(515), KeepWaiting),
            (Trouble::ConnectionFailed(999), Stop(Failure::Code(999))),
            (Trouble::QrExpired, Stop(Failure::QrExpired)),
            (Trouble::ServerDisconnect, Stop(Failure::ServerDisconnect)),
            (Trouble::TransportClosed, Retry(Network)),
            (Trouble::SocketClosed(Some(1008)), Retry(TokenExpired)),
            (Trouble::SocketClosed(Some(1006)), Retry(Network)),
            (Trouble::SocketClosed(Some(1000)), Retry(Network)),
            (Trouble::SocketClosed(None), Retry(Network)),
            (Trouble::Offline, Retry(Network)),
            (Trouble::NoAnswer, Retry(Network)),
            (
                Trouble::Http(HttpFailure::Unauthorized),
                Stop(Failure::Unauthorized),
            ),
            (Trouble::Http(HttpFailure::AlreadyConnected), Linked),
            (
                Trouble::Http(HttpFailure::RateLimited {
                    retry_after: Some(3_000),
                }),
                Retry(RateLimited { wait: Some(3_000) }),
            ),
            (Trouble::Http(HttpFailure::Network), Retry(Network)),
            (
                Trouble::Http(HttpFailure::Status {
                    status: 502,
                    message: "bad gateway".into(),
                }),
                Retry(Network),
            ),
            (
                Trouble::Http(HttpFailure::Status {
                    status: 500,
                    message: "oops".into(),
                }),
                Retry(Network),
            ),
            (
                Trouble::Http(HttpFailure::Status {
                    status: 499,
                    message: "closed".into(),
                }),
                Stop(Failure::Http {
                    status: 499,
                    message: "closed".into(),
                }),
            ),
            (
                Trouble::Http(HttpFailure::Status {
                    status: 404,
                    message: "gone".into(),
                }),
                Stop(Failure::Http {
                    status: 404,
                    message: "gone".into(),
                }),
            ),
        ];
        for (trouble, want) in rows {
            assert_eq!(verdict(trouble.clone()), want, "{trouble:?}");
        }
    }
}
