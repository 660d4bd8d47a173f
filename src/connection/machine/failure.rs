//! Why a display ended for good, and the one table from a failure to what the page shows: its
//! `data-code` (PROTOCOL.md §7), its words, and its one action. The QR panel and the diagnostics
//! read it; nothing else turns a failure into words.

use protocol::codes;

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

/// The one action a failure offers (`data-testid="retry"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A new session, then the pairing again.
    SignIn,
    /// A new pairing: the old QR is gone for good.
    NewQr,
    /// The same pairing again.
    TryAgain,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::SignIn => "Sign in again",
            Action::NewQr => "Generate new QR",
            Action::TryAgain => "Try again",
        }
    }
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

    /// What the page says, for a person.
    pub fn words(&self) -> String {
        match self {
            Failure::QrExpired => "QR expired — nobody scanned it in time. Get a new one.".into(),
            Failure::Unauthorized => "Your session ended.".into(),
            Failure::TokenExpired => "The server kept refusing the session as expired.".into(),
            Failure::RateLimited => "Too many attempts. Wait a moment, then try again.".into(),
            Failure::ServerDisconnect => {
                "The server closed this connection (another window may have taken over).".into()
            }
            Failure::Network => "The server cannot be reached.".into(),
            Failure::Code(codes::LOGGED_OUT) => {
                "The phone logged this device out. Get a fresh QR to link it again.".into()
            }
            Failure::Code(codes::FORBIDDEN) => {
                "WhatsApp refused this account (forbidden or banned).".into()
            }
            Failure::Code(codes::MULTIDEVICE_MISMATCH) => {
                "Multi-device mismatch: update WhatsApp on the phone, then try again.".into()
            }
            Failure::Code(codes::CONFLICT) => {
                "Another session replaced this one. Close WhatsApp Web elsewhere, then try again."
                    .into()
            }
            Failure::Code(codes::CLIENT_OUTDATED) => {
                "WhatsApp refused the server as outdated: botlink-server needs an update.".into()
            }
            Failure::Code(code) => format!("WhatsApp's connection failed (code {code})."),
            Failure::Http { message, .. } => message.clone(),
        }
    }

    /// The one way on from here.
    pub fn action(&self) -> Action {
        match self {
            Failure::Unauthorized => Action::SignIn,
            Failure::QrExpired | Failure::Code(codes::LOGGED_OUT) => Action::NewQr,
            _ => Action::TryAgain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one table: every failure's `data-code` (PROTOCOL.md §7), its words and its action.
    #[test]
    fn every_failure_has_its_code_words_and_action() {
        let rows = [
            (
                Failure::QrExpired,
                "qr_expired",
                "QR expired",
                Action::NewQr,
            ),
            (
                Failure::Unauthorized,
                "unauthorized",
                "session ended",
                Action::SignIn,
            ),
            (
                Failure::TokenExpired,
                "token_expired",
                "as expired",
                Action::TryAgain,
            ),
            (
                Failure::RateLimited,
                "rate_limited",
                "Too many",
                Action::TryAgain,
            ),
            (
                Failure::ServerDisconnect,
                "server_disconnect",
                "closed this connection",
                Action::TryAgain,
            ),
            (
                Failure::Network,
                "network",
                "cannot be reached",
                Action::TryAgain,
            ),
            (
                Failure::Code(401),
                "401",
                "logged this device out",
                Action::NewQr,
            ),
            (
                Failure::Code(403),
                "403",
                "refused this account",
                Action::TryAgain,
            ),
            (Failure::Code(411), "411", "Multi-device", Action::TryAgain),
            (Failure::Code(426), "426", "outdated", Action::TryAgain),
            (
                Failure::Code(440),
                "440",
                "Close WhatsApp Web",
                Action::TryAgain,
            ),
            (Failure::Code(428), "428", "code 428", Action::TryAgain),
            (
                Failure::Http {
                    status: 404,
                    message: "No such bot.".into(),
                },
                "404",
                "No such bot.",
                Action::TryAgain,
            ),
        ];
        for (failure, code, words, action) in rows {
            assert_eq!(failure.code(), code);
            assert!(
                failure.words().contains(words),
                "{failure:?}: {}",
                failure.words()
            );
            assert_eq!(failure.action(), action, "{failure:?}");
        }
        assert_eq!(Action::SignIn.label(), "Sign in again");
        assert_eq!(Action::NewQr.label(), "Generate new QR");
        assert_eq!(Action::TryAgain.label(), "Try again");
    }
}
