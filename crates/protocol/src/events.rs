//! The server's events of §3 (and botlink's extensions): written by the server, read by the app.
//!
//! Unknown events, unknown `type`s and unknown fields are ignored, never fatal.

use crate::http::Pairing;
use crate::status::{BotStatus, ConnectionState};
use serde::{Deserialize, Serialize};

/// The names of the events of §3.
pub const WHATSAPP_CONNECTION_EVENT: &str = "whatsapp_connection_event";
pub const BOT_STATUS_UPDATE: &str = "bot_status_update";
pub const CONNECTION_UPDATE: &str = "connection_update";
pub const MESSAGE_SYNC: &str = "message_sync";

/// One event: its name is [`ServerEvent::name`], its payload the value serialized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ServerEvent {
    WhatsApp(WhatsAppEvent),
    BotStatus(BotStatusUpdate),
    ConnectionUpdate(ConnectionUpdate),
    MessageSync(MessageSync),
    /// An event this app does not know (its name): ignored.
    Unknown(String),
}

impl ServerEvent {
    /// The event's name on the wire.
    pub fn name(&self) -> &str {
        match self {
            ServerEvent::WhatsApp(_) => WHATSAPP_CONNECTION_EVENT,
            ServerEvent::BotStatus(_) => BOT_STATUS_UPDATE,
            ServerEvent::ConnectionUpdate(_) => CONNECTION_UPDATE,
            ServerEvent::MessageSync(_) => MESSAGE_SYNC,
            ServerEvent::Unknown(name) => name,
        }
    }

    /// The bot the event is about (`None` for an unknown event).
    pub fn bot_id(&self) -> Option<&str> {
        match self {
            ServerEvent::WhatsApp(e) => e.bot_id(),
            ServerEvent::BotStatus(u) => Some(&u.bot_id),
            ServerEvent::ConnectionUpdate(u) => Some(&u.bot_id),
            ServerEvent::MessageSync(s) => Some(&s.bot_id),
            ServerEvent::Unknown(_) => None,
        }
    }
}

/// A `whatsapp_connection_event` (§3), by its `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum WhatsAppEvent {
    QrUpdated {
        bot_id: String,
        #[serde(flatten)]
        qr: Pairing,
    },
    /// The phone scanned; linking is finishing.
    QrScanned { bot_id: String },
    /// The session is really open (after the 515 restart).
    WhatsappConnected {
        bot_id: String,
        phone: Option<String>,
    },
    /// Every QR of the pairing expired unscanned.
    QrExpired { bot_id: String },
    ConnectionFailed {
        bot_id: String,
        code: u16,
        reason: Option<String>,
    },
    /// The phone asks the person to finish linking there (a passkey): botlink's extension.
    FinishOnPhone { bot_id: String },
    /// The pairing code on screen no longer works (WhatsApp replaced or refused it): botlink's
    /// extension.
    PairingCodeExpired {
        bot_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A `type` this app does not know: ignored (never sent).
    #[serde(skip)]
    Other,
}

impl WhatsAppEvent {
    pub fn bot_id(&self) -> Option<&str> {
        match self {
            WhatsAppEvent::QrUpdated { bot_id, .. }
            | WhatsAppEvent::QrScanned { bot_id }
            | WhatsAppEvent::WhatsappConnected { bot_id, .. }
            | WhatsAppEvent::QrExpired { bot_id }
            | WhatsAppEvent::ConnectionFailed { bot_id, .. }
            | WhatsAppEvent::FinishOnPhone { bot_id }
            | WhatsAppEvent::PairingCodeExpired { bot_id, .. } => Some(bot_id),
            WhatsAppEvent::Other => None,
        }
    }
}

/// Every field a `whatsapp_connection_event` may carry; which ones a `type` needs is checked by
/// hand. (serde's derive for an internally tagged enum with a flattened struct buffers the
/// payload generically: it cost 17 KB of wasm, the biggest single function of the app.)
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWhatsAppEvent {
    #[serde(rename = "type")]
    kind: String,
    bot_id: Option<String>,
    qr: Option<String>,
    attempt: Option<u32>,
    attempts: Option<u32>,
    expires_in_ms: Option<u64>,
    phone: Option<String>,
    code: Option<u16>,
    reason: Option<String>,
}

impl<'de> Deserialize<'de> for WhatsAppEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = RawWhatsAppEvent::deserialize(d)?;
        let need = |field: &'static str| Error::missing_field(field);
        if !matches!(
            raw.kind.as_str(),
            "qr_updated"
                | "qr_scanned"
                | "whatsapp_connected"
                | "qr_expired"
                | "connection_failed"
                | "finish_on_phone"
                | "pairing_code_expired"
        ) {
            return Ok(WhatsAppEvent::Other);
        }
        let bot_id = raw.bot_id.ok_or_else(|| need("botId"))?;
        Ok(match raw.kind.as_str() {
            "qr_updated" => WhatsAppEvent::QrUpdated {
                bot_id,
                qr: Pairing {
                    qr: raw.qr.ok_or_else(|| need("qr"))?,
                    attempt: raw.attempt.ok_or_else(|| need("attempt"))?,
                    attempts: raw.attempts.ok_or_else(|| need("attempts"))?,
                    expires_in_ms: raw.expires_in_ms.ok_or_else(|| need("expiresInMs"))?,
                },
            },
            "qr_scanned" => WhatsAppEvent::QrScanned { bot_id },
            "whatsapp_connected" => WhatsAppEvent::WhatsappConnected {
                bot_id,
                phone: raw.phone,
            },
            "qr_expired" => WhatsAppEvent::QrExpired { bot_id },
            "finish_on_phone" => WhatsAppEvent::FinishOnPhone { bot_id },
            "pairing_code_expired" => WhatsAppEvent::PairingCodeExpired {
                bot_id,
                reason: raw.reason,
            },
            _ => WhatsAppEvent::ConnectionFailed {
                bot_id,
                code: raw.code.ok_or_else(|| need("code"))?,
                reason: raw.reason,
            },
        })
    }
}

/// `bot_status_update`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotStatusUpdate {
    pub bot_id: String,
    pub status: BotStatus,
    /// When (RFC 3339). Written, not read: backends disagree on its form and the app needs none.
    #[serde(default, skip_deserializing)]
    pub at: Option<String>,
}

/// `connection_update`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionUpdate {
    pub bot_id: String,
    pub state: ConnectionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// `message_sync`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSync {
    pub bot_id: String,
    pub messages: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairing() -> Pairing {
        Pairing {
            qr: "q".into(),
            attempt: 2,
            attempts: 6,
            expires_in_ms: 20_000,
        }
    }

    /// What the server writes is what the app reads back, for every event it sends.
    #[test]
    fn every_event_the_server_writes_reads_back_the_same() {
        let b = || "b".to_string();
        let events = [
            WhatsAppEvent::QrUpdated {
                bot_id: b(),
                qr: pairing(),
            },
            WhatsAppEvent::QrScanned { bot_id: b() },
            WhatsAppEvent::WhatsappConnected {
                bot_id: b(),
                phone: Some("+1".into()),
            },
            WhatsAppEvent::QrExpired { bot_id: b() },
            WhatsAppEvent::ConnectionFailed {
                bot_id: b(),
                code: 440,
                reason: Some("conflict".into()),
            },
            WhatsAppEvent::FinishOnPhone { bot_id: b() },
            WhatsAppEvent::PairingCodeExpired {
                bot_id: b(),
                reason: Some("refused".into()),
            },
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(
                serde_json::from_value::<WhatsAppEvent>(json).unwrap(),
                event
            );
        }
    }

    #[test]
    fn events_are_written_in_the_contracts_words() {
        let qr = ServerEvent::WhatsApp(WhatsAppEvent::QrUpdated {
            bot_id: "b".into(),
            qr: pairing(),
        });
        assert_eq!(qr.name(), "whatsapp_connection_event");
        assert_eq!(
            serde_json::to_value(&qr).unwrap(),
            json!({"type": "qr_updated", "botId": "b", "qr": "q", "attempt": 2, "attempts": 6,
                   "expiresInMs": 20000})
        );
        let failed = WhatsAppEvent::ConnectionFailed {
            bot_id: "b".into(),
            code: 401,
            reason: None,
        };
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"type": "connection_failed", "botId": "b", "code": 401, "reason": null})
        );
        let status = ServerEvent::BotStatus(BotStatusUpdate {
            bot_id: "b".into(),
            status: BotStatus::Connected,
            at: Some("t".into()),
        });
        assert_eq!(status.name(), "bot_status_update");
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"botId": "b", "status": "connected", "at": "t"})
        );
        let update = ServerEvent::ConnectionUpdate(ConnectionUpdate {
            bot_id: "b".into(),
            state: ConnectionState::Close,
            code: None,
        });
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({"botId": "b", "state": "close"})
        );
    }
}
