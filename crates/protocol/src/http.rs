//! The JSON bodies of §1, and botlink's extensions of them (docs/protocol.md).

use crate::status::BotStatus;
use serde::{Deserialize, Serialize};

/// `Session` = `{"token", "userId", "expiresAt"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub token: String,
    pub user_id: String,
    pub expires_at: String,
}

/// `Bot`: one bot of the caller's. Fields another backend leaves out take their defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bot {
    pub id: String,
    pub name: String,
    pub status: BotStatus,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub pairing: Option<Pairing>,
    /// Why the bot is in its status, in words (botlink's extension; other backends leave it out).
    #[serde(default)]
    pub status_reason: Option<String>,
}

/// `Pairing` = `{"qr", "attempt", "attempts", "expiresInMs"}`: the current QR of a running
/// pairing, number `attempt` of `attempts` (the answer of `POST .../qr`, `Bot.pairing`, and the
/// body of `qr_updated`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pairing {
    pub qr: String,
    pub attempt: u32,
    pub attempts: u32,
    pub expires_in_ms: u64,
}

/// `{"error": "human readable"}`: every 4xx/5xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// The `error` of a `401` whose token only expired: refresh and repeat (any other 401 is final).
pub const TOKEN_EXPIRED: &str = "token_expired";

/// `POST /api/auth/session`'s optional body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSession {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `POST /api/bots`'s body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBot {
    pub name: String,
}

/// `POST /api/bots/{id}/pairing-code`'s body (botlink's extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingCodeRequest {
    pub phone: String,
}

/// `POST /api/bots/{id}/pairing-code`'s answer: eight characters, shown as `XXXX-XXXX`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingCode {
    pub code: String,
    pub expires_in_ms: u64,
}

/// `GET /api/health` (a reference-server extra, §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// Whether the server checks WhatsApp's certificate chain: `on`, or (a test build for the
    /// WhatsApp double) `off`. Absent from backends that do not say.
    #[serde(
        rename = "whatsappCertificateCheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub whatsapp_certificate_check: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bot_from_a_backend_without_botlinks_extensions_reads() {
        let bot: Bot =
            serde_json::from_str(r#"{"id":"b","name":"n","status":"pairing","extra":1}"#).unwrap();
        assert_eq!(bot.status, BotStatus::Pairing);
        assert_eq!(
            (bot.messages, bot.pairing, bot.status_reason),
            (0, None, None)
        );
    }

    #[test]
    fn a_bot_is_written_in_the_contracts_words() {
        let bot = Bot {
            id: "b".into(),
            name: "n".into(),
            status: BotStatus::LoggedOut,
            phone: None,
            created_at: "t".into(),
            messages: 3,
            pairing: Some(Pairing {
                qr: "q".into(),
                attempt: 1,
                attempts: 6,
                expires_in_ms: 60_000,
            }),
            status_reason: Some("why".into()),
        };
        let json = serde_json::to_value(&bot).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "b", "name": "n", "status": "logged_out", "phone": null,
                "createdAt": "t", "messages": 3, "statusReason": "why",
                "pairing": {"qr": "q", "attempt": 1, "attempts": 6, "expiresInMs": 60000}})
        );
        assert_eq!(serde_json::from_value::<Bot>(json).unwrap(), bot);
    }
}
