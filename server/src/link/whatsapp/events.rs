//! THE table from whatsapp-rust's events to the contract (docs/protocol.md §3–§4): what each
//! event means for a bot. Pure: no client, no socket, no store — table-tested with events built
//! by the library's own builders. The README carries the same table.
//!
//! | whatsapp-rust event | contract | bot status | the client |
//! |---|---|---|---|
//! | `PairingQrCode` | `qr_updated` (WhatsApp's QR string, unchanged) | `pairing` | runs |
//! | `PairingQrCodesExhausted` (the client disconnected) | `qr_expired` | as before pairing | stopped |
//! | `PairingQrCodesExhausted` (a pairing code is still on offer) | nothing: the code stays valid | `pairing` | runs |
//! | `PairSuccess` | `qr_scanned` | `pairing` | runs (WhatsApp restarts the stream: 515) |
//! | `Connected` | `whatsapp_connected` with the phone in +E.164 | `connected` | runs |
//! | `Disconnected`, `StreamError`, `ConnectFailure` 500/503 | `connection_update` `close` | unchanged | reconnects, within our budget |
//! | `LoggedOut` (logged out, device removed, unknown) | `connection_failed` 401 | `logged_out` | stopped, device forgotten |
//! | `LoggedOut` (account locked) | `connection_failed` 403 | `logged_out` | stopped, device forgotten |
//! | `StreamReplaced` | `connection_failed` 440 | `conflict` | stopped, never reconnected |
//! | `TemporaryBan` | `connection_failed` 403 (with the ban's reason and length) | `disconnected` | stopped |
//! | `QrScannedWithoutMultidevice` | `connection_failed` 411 | `disconnected` | stopped |
//! | `ClientOutdated` | `connection_failed` 426 (terminal; botlink's extension) | `disconnected` | stopped |
//! | `ConnectFailure` (any other reason) | `connection_failed` 403 with the reason | `disconnected` | stopped |
//! | `PairError` | `connection_failed` 500 | `disconnected` | stopped, device forgotten |
//! | `PairPasskeyRequest`, `PairPasskeyConfirmation` | `finish_on_phone` (extension): the "finish linking on your phone" note | `pairing` | runs |
//! | `PairPasskeyError` | `connection_failed` 500 | `disconnected` | stopped, device forgotten |
//! | `PairingCodeRefresh`, `PairingCodeError` | `pairing_code_expired` (extension) | unchanged | runs |
//! | `Messages` (protocol messages such as the phone's key share not counted) | `message_sync` with the bot's count | unchanged | runs |
//! | every other event | nothing | unchanged | runs |

use crate::core::bot_status::Next;
use protocol::{BotStatus, codes};
use whatsapp_rust::types::events::{ConnectFailureReason, Event};

/// The contract's answer to one library event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A QR to show: `qr_updated`.
    Qr { code: String, expires_in_ms: u64 },
    /// Every QR of this connection expired unscanned: `qr_expired`.
    QrExpired,
    /// The phone scanned; WhatsApp restarts the stream (515) before the session opens.
    Scanned,
    /// The session is really open (after that restart).
    Connected,
    /// The connection dropped; whatsapp-rust reconnects, within the budget we own.
    Dropped { reason: String },
    /// The session ended for good.
    Ended(Ending),
    /// The phone asks the person to finish there (a passkey): the app's "finish linking" note.
    FinishOnPhone,
    /// The phone-number code shown is dead: the app must not show it any longer.
    PairingCodeDead { reason: String },
    /// Messages the bot received.
    Messages(usize),
    /// Nothing the contract carries.
    Ignored,
}

/// A session's end: the `connection_failed` it sends, and what becomes of the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The code of `connection_failed` (docs/protocol.md §4).
    pub code: u16,
    /// In words, for the app and the dashboard (`statusReason`).
    pub reason: String,
    /// The bot's status afterwards (or back to where it was before the pairing).
    pub status: Next,
    /// The device is no longer registered with WhatsApp: its store is wiped, and the next
    /// pairing starts with a new QR.
    pub forget_device: bool,
}

/// WhatsApp hands out six QR refs per connection (60 s for the first, 20 s for each of the
/// others); whatsapp-rust does not expose the count, so this is the documented constant.
pub const QR_REFS_PER_CONNECTION: u32 = 6;

/// The code botlink adds to docs/protocol.md §4 for `ClientOutdated`: terminal (405, the code
/// Baileys uses for a connection failure, is a retry code there and must not be reused).
pub use protocol::codes::CLIENT_OUTDATED;

fn ended(code: u16, reason: impl Into<String>, status: BotStatus, forget: bool) -> Outcome {
    let status = Next::Is(status);
    Outcome::Ended(Ending {
        code,
        reason: reason.into(),
        status,
        forget_device: forget,
    })
}

/// Saturating milliseconds: a duration from the network never overflows.
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The one mapping. Every arm is a row of the table above.
pub fn outcome(event: &Event) -> Outcome {
    match event {
        Event::PairingQrCode(qr) => Outcome::Qr {
            code: qr.code.clone(),
            expires_in_ms: millis(qr.timeout),
        },
        // The QRs are over but a pairing code is still on offer (the client stays connected for
        // it): the pairing goes on, the code is not killed with the QRs.
        Event::PairingQrCodesExhausted(e) if !e.disconnected => Outcome::Ignored,
        Event::PairingQrCodesExhausted(_) => Outcome::QrExpired,
        Event::PairSuccess(_) => Outcome::Scanned,
        Event::Connected(_) => Outcome::Connected,
        Event::Disconnected(d) => Outcome::Dropped {
            reason: d.reason.to_string(),
        },
        Event::StreamError(e) => Outcome::Dropped {
            reason: format!("stream error {}", e.code),
        },
        Event::LoggedOut(out) => match out.reason {
            ConnectFailureReason::AccountLocked => ended(
                codes::FORBIDDEN,
                "WhatsApp locked this account; open WhatsApp on the phone to see why",
                BotStatus::LoggedOut,
                true,
            ),
            _ => ended(
                codes::LOGGED_OUT,
                "logged out on the phone (the device was removed from Linked devices)",
                BotStatus::LoggedOut,
                true,
            ),
        },
        Event::StreamReplaced(_) => ended(
            codes::CONFLICT,
            "another session replaced this one: close WhatsApp Web or the other server using this bot",
            BotStatus::Conflict,
            false,
        ),
        Event::TemporaryBan(ban) => ended(
            codes::FORBIDDEN,
            format!(
                "temporarily banned by WhatsApp for {} min ({})",
                (ban.expire.num_seconds().max(0) as u64).div_ceil(60),
                ban.code
            ),
            BotStatus::Disconnected,
            false,
        ),
        Event::QrScannedWithoutMultidevice(_) => ended(
            codes::MULTIDEVICE_MISMATCH,
            "the phone scanned without multi-device: update WhatsApp on the phone, then try again",
            BotStatus::Disconnected,
            true,
        ),
        Event::ClientOutdated(_) => ended(
            CLIENT_OUTDATED,
            "WhatsApp refused this client as outdated: update botlink-server",
            BotStatus::Disconnected,
            false,
        ),
        Event::ConnectFailure(f) if f.reason.should_reconnect() => Outcome::Dropped {
            reason: format!("WhatsApp is unavailable ({:?})", f.reason),
        },
        Event::ConnectFailure(f) => ended(
            codes::FORBIDDEN,
            match &f.message {
                Some(m) => format!("WhatsApp refused the connection ({:?}: {m})", f.reason),
                None => format!("WhatsApp refused the connection ({:?})", f.reason),
            },
            BotStatus::Disconnected,
            false,
        ),
        Event::PairError(e) => ended(
            codes::BAD_SESSION,
            format!("linking failed: {}", e.error),
            BotStatus::Disconnected,
            true,
        ),
        Event::PairPasskeyRequest(_) | Event::PairPasskeyConfirmation(_) => Outcome::FinishOnPhone,
        Event::PairPasskeyError(e) => ended(
            codes::BAD_SESSION,
            format!("the passkey step failed: {}", e.error),
            BotStatus::Disconnected,
            true,
        ),
        Event::PairingCodeRefresh(_) => Outcome::PairingCodeDead {
            reason: "WhatsApp replaced the pairing code: ask for a new one".into(),
        },
        Event::PairingCodeError(e) => Outcome::PairingCodeDead {
            reason: match &e.rejection {
                Some(r) => format!("WhatsApp refused the pairing code ({r:?})"),
                None => "the pairing code could not be made".into(),
            },
        },
        // Protocol messages (the phone's app-state key share, revokes, history-sync notices)
        // are WhatsApp's housekeeping, not messages a person sent: the bot's count skips them.
        Event::Messages(batch) => match batch
            .iter()
            .filter(|m| !m.message.protocol_message.is_set())
            .count()
        {
            0 => Outcome::Ignored,
            n => Outcome::Messages(n),
        },
        _ => Outcome::Ignored,
    }
}

/// `+<digits>` from a phone JID's user part (`15551234567` → `+15551234567`); `None` when the
/// user part is not a phone number (a LID, say).
pub fn e164(jid_user: &str) -> Option<String> {
    ((7..=15).contains(&jid_user.len()) && jid_user.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("+{jid_user}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use whatsapp_rust::types::events as ev;
    use whatsapp_rust::{Jid, wacore::net::DisconnectReason};

    fn jid() -> Jid {
        "15551234567@s.whatsapp.net".parse().expect("a phone jid")
    }

    fn ending(o: Outcome) -> Ending {
        match o {
            Outcome::Ended(e) => e,
            other => panic!("expected an ending, got {other:?}"),
        }
    }

    #[test]
    fn every_row_of_the_table() {
        let qr = Event::PairingQrCode(
            ev::PairingQrCode::builder()
                .code("2@abc,def,ghi".into())
                .timeout(Duration::from_secs(60))
                .build(),
        );
        assert_eq!(
            outcome(&qr),
            Outcome::Qr {
                code: "2@abc,def,ghi".into(),
                expires_in_ms: 60_000
            }
        );
        let exhausted = Event::PairingQrCodesExhausted(
            ev::PairingQrCodesExhausted::builder()
                .disconnected(true)
                .build(),
        );
        assert_eq!(outcome(&exhausted), Outcome::QrExpired);
        let code_still_open = Event::PairingQrCodesExhausted(
            ev::PairingQrCodesExhausted::builder()
                .disconnected(false)
                .build(),
        );
        assert_eq!(outcome(&code_still_open), Outcome::Ignored);
        let scanned = Event::PairSuccess(
            ev::PairSuccess::builder()
                .id(jid())
                .lid(jid())
                .business_name(String::new())
                .platform("android".into())
                .build(),
        );
        assert_eq!(outcome(&scanned), Outcome::Scanned);
        assert_eq!(
            outcome(&Event::Connected(ev::Connected::builder().build())),
            Outcome::Connected
        );
        let dropped = Event::Disconnected(
            ev::Disconnected::builder()
                .reason(DisconnectReason::StreamEnded)
                .build(),
        );
        assert!(matches!(outcome(&dropped), Outcome::Dropped { .. }));
        let stream_error =
            Event::StreamError(ev::StreamError::builder().code("999".into()).build());
        assert!(
            matches!(outcome(&stream_error), Outcome::Dropped { reason } if reason.contains("999"))
        );

        for (reason, code) in [
            (ConnectFailureReason::LoggedOut, 401),
            (ConnectFailureReason::UnknownLogout, 401),
            (ConnectFailureReason::AccountLocked, 403),
        ] {
            let out = Event::LoggedOut(
                ev::LoggedOut::builder()
                    .on_connect(true)
                    .reason(reason)
                    .build(),
            );
            let e = ending(outcome(&out));
            assert_eq!(
                (e.code, e.status, e.forget_device),
                (code, Next::Is(BotStatus::LoggedOut), true)
            );
        }

        let e = ending(outcome(&Event::StreamReplaced(
            ev::StreamReplaced::builder().build(),
        )));
        assert_eq!(
            (e.code, e.status, e.forget_device),
            (440, Next::Is(BotStatus::Conflict), false)
        );

        let ban = Event::TemporaryBan(
            ev::TemporaryBan::builder()
                .code(ev::TempBanReason::BlockedByUsers)
                .expire(whatsapp_rust::chrono::Duration::seconds(3600))
                .build(),
        );
        let e = ending(outcome(&ban));
        assert_eq!((e.code, e.status), (403, Next::Is(BotStatus::Disconnected)));
        assert!(e.reason.contains("60 min"), "{}", e.reason);

        let e = ending(outcome(&Event::QrScannedWithoutMultidevice(
            ev::QrScannedWithoutMultidevice::builder().build(),
        )));
        assert_eq!((e.code, e.status), (411, Next::Is(BotStatus::Disconnected)));

        let e = ending(outcome(&Event::ClientOutdated(
            ev::ClientOutdated::builder().build(),
        )));
        assert_eq!(
            (e.code, e.status),
            (CLIENT_OUTDATED, Next::Is(BotStatus::Disconnected))
        );
        assert_ne!(e.code, 405, "405 is a retry code in §4");

        for reason in [
            ConnectFailureReason::ServiceUnavailable,
            ConnectFailureReason::InternalServerError,
        ] {
            let f = Event::ConnectFailure(ev::ConnectFailure::builder().reason(reason).build());
            assert!(matches!(outcome(&f), Outcome::Dropped { .. }), "{reason:?}");
        }
        let refused = Event::ConnectFailure(
            ev::ConnectFailure::builder()
                .reason(ConnectFailureReason::BadUserAgent)
                .message("no".into())
                .build(),
        );
        let e = ending(outcome(&refused));
        assert_eq!(
            (e.code, e.status, e.forget_device),
            (403, Next::Is(BotStatus::Disconnected), false)
        );
        assert!(e.reason.contains("BadUserAgent"), "{}", e.reason);

        let pair_error = Event::PairError(
            ev::PairError::builder()
                .id(jid())
                .lid(jid())
                .business_name(String::new())
                .platform(String::new())
                .error("bad signature".into())
                .build(),
        );
        let e = ending(outcome(&pair_error));
        assert_eq!((e.code, e.forget_device), (500, true));

        let passkey = Event::PairPasskeyConfirmation(
            ev::PairPasskeyConfirmation::builder()
                .code("ABCD-EFGH".into())
                .skip_handoff_ux(false)
                .build(),
        );
        assert_eq!(outcome(&passkey), Outcome::FinishOnPhone);
        let passkey_request = Event::PairPasskeyRequest(
            ev::PairPasskeyRequest::builder()
                .request_options_json("{}".into())
                .build(),
        );
        assert_eq!(outcome(&passkey_request), Outcome::FinishOnPhone);
        let passkey_error = Event::PairPasskeyError(
            ev::PairPasskeyError::builder()
                .error("cancelled".into())
                .continuation(true)
                .build(),
        );
        assert_eq!(ending(outcome(&passkey_error)).code, 500);

        let refresh =
            Event::PairingCodeRefresh(ev::PairingCodeRefresh::builder().force_manual(true).build());
        assert!(matches!(outcome(&refresh), Outcome::PairingCodeDead { .. }));
        let code_error = Event::PairingCodeError(
            ev::PairingCodeError::builder()
                .error("timeout".into())
                .build(),
        );
        assert!(matches!(
            outcome(&code_error),
            Outcome::PairingCodeDead { .. }
        ));

        let ignored =
            Event::OfflineSyncCompleted(ev::OfflineSyncCompleted::builder().count(3).build());
        assert_eq!(outcome(&ignored), Outcome::Ignored);
    }

    #[test]
    fn the_phone_number_is_e164_from_the_jid() {
        assert_eq!(e164("15551234567").as_deref(), Some("+15551234567"));
        assert_eq!(e164(&jid().user).as_deref(), Some("+15551234567"));
        assert_eq!(e164("12345"), None, "too short for a phone number");
        assert_eq!(
            e164("1234567890123456"),
            None,
            "E.164 has at most 15 digits"
        );
        assert_eq!(e164("abc1234567"), None);
    }

    #[test]
    fn a_hostile_qr_lifetime_saturates() {
        let qr = Event::PairingQrCode(
            ev::PairingQrCode::builder()
                .code("x".into())
                .timeout(Duration::MAX)
                .build(),
        );
        assert!(matches!(
            outcome(&qr),
            Outcome::Qr {
                expires_in_ms: u64::MAX,
                ..
            }
        ));
    }
}
