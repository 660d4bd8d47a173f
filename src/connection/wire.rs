//! Engine.IO v4 / Socket.IO v5 text frames, as PROTOCOL.md §2 lists them, and the typed
//! payloads of the events in §3.
//!
//! Pure: no web-sys, no I/O. Decoding never panics: every malformed, truncated, oversized or
//! unknown frame is an [`WireError`] the caller logs and drops (PROTOCOL.md §3: "a malformed
//! frame is logged and dropped; it does not kill the connection").

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Engine.IO's default `maxPayload` (1 MB): the ceiling until the server's open packet says otherwise.
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;

/// What the server says in its Engine.IO open packet (`0{...}`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    pub sid: String,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    #[serde(default = "default_max_payload")]
    pub max_payload: u64,
}

fn default_max_payload() -> u64 {
    DEFAULT_MAX_PAYLOAD as u64
}

/// One decoded frame from the server, on the default namespace `/`.
#[derive(Clone, Debug, PartialEq)]
pub enum Packet {
    /// `0{...}` Engine.IO open.
    Open(OpenInfo),
    /// `1` Engine.IO close.
    Close,
    /// `2` ping: the client answers [`PONG`].
    Ping,
    /// `3` pong (servers do not send it in v4, but it is harmless).
    Pong,
    /// `6` noop.
    Noop,
    /// `40{"sid"}` the namespace CONNECT was accepted.
    Connected,
    /// `41` the server disconnected the namespace.
    Disconnect,
    /// `44{"message"}` the namespace CONNECT was refused.
    ConnectError(String),
    /// `42[...]` / `42<id>[...]` an event, with an ack id when the server asks for one.
    Event {
        ack: Option<u64>,
        event: ServerEvent,
    },
    /// A frame for another namespace, or an ack (`43`): nothing for us to do.
    Ignored,
}

/// Why a frame could not be decoded. Never fatal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("empty frame")]
    Empty,
    #[error("frame of {len} bytes exceeds maxPayload {max}")]
    TooLarge { len: usize, max: usize },
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownEngineType(char),
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownSocketType(char),
    #[error("binary Socket.IO packets are not supported")]
    Binary,
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

fn malformed(what: &'static str, detail: impl ToString) -> WireError {
    WireError::Malformed {
        what,
        detail: detail.to_string(),
    }
}

/// The client's answer to a ping.
pub const PONG: &str = "3";
/// The client's namespace disconnect (sent before closing with 1000).
pub const DISCONNECT: &str = "41";

/// Socket.IO CONNECT with the auth payload (PROTOCOL.md §2): `40{"token","userId","botId"}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectAuth<'a> {
    pub token: &'a str,
    pub user_id: &'a str,
    pub bot_id: &'a str,
}

pub fn encode_connect(auth: &ConnectAuth<'_>) -> String {
    // Serializing three strings cannot fail.
    format!("40{}", serde_json::to_string(auth).unwrap_or_default())
}

/// `43<id>[]`: the empty ack a server asks for with `42<id>[...]`.
pub fn encode_ack(id: u64) -> String {
    format!("43{id}[]")
}

/// Decodes one text frame. `max_payload` is the server's announced limit.
pub fn decode(frame: &str, max_payload: usize) -> Result<Packet, WireError> {
    if frame.len() > max_payload {
        return Err(WireError::TooLarge {
            len: frame.len(),
            max: max_payload,
        });
    }
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(WireError::Empty)?;
    let rest = chars.as_str();
    match kind {
        '0' => serde_json::from_str(rest)
            .map(Packet::Open)
            .map_err(|e| malformed("open packet", e)),
        '1' => Ok(Packet::Close),
        '2' => Ok(Packet::Ping),
        '3' => Ok(Packet::Pong),
        '6' => Ok(Packet::Noop),
        '4' => decode_socket(rest),
        other => Err(WireError::UnknownEngineType(other)),
    }
}

fn decode_socket(frame: &str) -> Result<Packet, WireError> {
    let mut chars = frame.chars();
    let kind = chars.next().ok_or(malformed("socket packet", "no type"))?;
    let mut rest = chars.as_str();
    // An optional namespace: "/name," — anything but "/" is not ours.
    if rest.starts_with('/') {
        let (nsp, after) = rest
            .split_once(',')
            .ok_or(malformed("namespace", "no comma after namespace"))?;
        if nsp != "/" {
            return Ok(Packet::Ignored);
        }
        rest = after;
    }
    match kind {
        '0' => Ok(Packet::Connected),
        '1' => Ok(Packet::Disconnect),
        '2' => decode_event(rest),
        '3' => Ok(Packet::Ignored),
        '4' => {
            #[derive(Deserialize)]
            struct ConnectError {
                message: String,
            }
            serde_json::from_str::<ConnectError>(rest)
                .map(|e| Packet::ConnectError(e.message))
                .map_err(|e| malformed("connect error", e))
        }
        '5' | '6' => Err(WireError::Binary),
        other => Err(WireError::UnknownSocketType(other)),
    }
}

fn decode_event(rest: &str) -> Result<Packet, WireError> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = match digits {
        0 => None,
        _ => Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|e| malformed("ack id", e))?,
        ),
    };
    let args: Vec<Value> =
        serde_json::from_str(&rest[digits..]).map_err(|e| malformed("event", e))?;
    let mut args = args.into_iter();
    let name = match args.next() {
        Some(Value::String(name)) => name,
        _ => return Err(malformed("event", "the first element is not an event name")),
    };
    let payload = args.next().unwrap_or(Value::Null);
    Ok(Packet::Event {
        ack,
        event: ServerEvent::from_parts(&name, payload)?,
    })
}

/// The events of PROTOCOL.md §3. Unknown events and fields are kept out, never fatal.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    WhatsApp(WhatsAppEvent),
    BotStatus(BotStatusUpdate),
    ConnectionUpdate(ConnectionUpdate),
    MessageSync(MessageSync),
    /// An event this app does not know: ignored.
    Unknown(String),
}

impl ServerEvent {
    fn from_parts(name: &str, payload: Value) -> Result<Self, WireError> {
        fn typed<T: for<'de> Deserialize<'de>>(
            name: &'static str,
            v: Value,
        ) -> Result<T, WireError> {
            serde_json::from_value(v).map_err(|e| malformed(name, e))
        }
        Ok(match name {
            "whatsapp_connection_event" => {
                ServerEvent::WhatsApp(typed("whatsapp_connection_event", payload)?)
            }
            "bot_status_update" => ServerEvent::BotStatus(typed("bot_status_update", payload)?),
            "connection_update" => {
                ServerEvent::ConnectionUpdate(typed("connection_update", payload)?)
            }
            "message_sync" => ServerEvent::MessageSync(typed("message_sync", payload)?),
            other => ServerEvent::Unknown(other.to_owned()),
        })
    }
}

/// A QR code as the server hands it out (`qr_updated`, or `Pairing` over HTTP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QrCode {
    pub qr: String,
    pub attempt: u32,
    pub attempts: u32,
    pub expires_in_ms: u64,
}

impl QrCode {
    /// Whether the QR's text is a link a phone opens (the reference server's simulated
    /// `/link/<ref>`); WhatsApp's own QR (`2@…,…`) is not, and gets instructions instead.
    pub fn is_link(&self) -> bool {
        self.qr.starts_with("https://") || self.qr.starts_with("http://")
    }
}

/// A `whatsapp_connection_event` (PROTOCOL.md §3), by its `type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WhatsAppEvent {
    QrUpdated {
        bot_id: String,
        qr: QrCode,
    },
    QrScanned {
        bot_id: String,
    },
    WhatsappConnected {
        bot_id: String,
        phone: Option<String>,
    },
    QrExpired {
        bot_id: String,
    },
    ConnectionFailed {
        bot_id: String,
        code: u16,
        reason: Option<String>,
    },
    /// The phone asks the person to finish linking there (a passkey): botlink's extension.
    FinishOnPhone {
        bot_id: String,
    },
    /// The pairing code on screen no longer works (WhatsApp replaced or refused it): botlink's
    /// extension.
    PairingCodeExpired {
        bot_id: String,
    },
    /// A `type` this app does not know.
    Other,
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
                qr: QrCode {
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
            "pairing_code_expired" => WhatsAppEvent::PairingCodeExpired { bot_id },
            _ => WhatsAppEvent::ConnectionFailed {
                bot_id,
                code: raw.code.ok_or_else(|| need("code"))?,
                reason: raw.reason,
            },
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotStatusUpdate {
    pub bot_id: String,
    pub status: String,
    #[serde(default)]
    pub at: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionUpdate {
    pub bot_id: String,
    pub state: String,
    #[serde(default)]
    pub code: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSync {
    pub bot_id: String,
    pub messages: u64,
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn qr_of(text: &str) -> QrCode {
        QrCode {
            qr: text.into(),
            attempt: 1,
            attempts: 6,
            expires_in_ms: 60_000,
        }
    }

    #[test]
    fn a_simulated_qr_is_a_link_and_whatsapps_is_not() {
        assert!(qr_of("http://127.0.0.1:8080/link/abc").is_link());
        assert!(qr_of("https://bots.example.com/link/abc").is_link());
        assert!(!qr_of("2@Xk9sd0,QmFzZTY0,a2V5cw==,ZGV2aWNl").is_link());
        assert!(!qr_of("javascript:alert(1)").is_link());
    }

    const MAX: usize = DEFAULT_MAX_PAYLOAD;

    #[test]
    fn decodes_the_engine_open_packet() {
        let frame = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(
            decode(frame, MAX),
            Ok(Packet::Open(OpenInfo {
                sid: "abc".into(),
                ping_interval: 25000,
                ping_timeout: 20000,
                max_payload: 1_000_000
            }))
        );
    }

    #[test]
    fn decodes_every_control_frame() {
        assert_eq!(decode("1", MAX), Ok(Packet::Close));
        assert_eq!(decode("2", MAX), Ok(Packet::Ping));
        assert_eq!(decode("3", MAX), Ok(Packet::Pong));
        assert_eq!(decode("6", MAX), Ok(Packet::Noop));
        assert_eq!(decode(r#"40{"sid":"x"}"#, MAX), Ok(Packet::Connected));
        assert_eq!(decode("41", MAX), Ok(Packet::Disconnect));
        assert_eq!(
            decode(r#"44{"message":"token_expired"}"#, MAX),
            Ok(Packet::ConnectError("token_expired".into()))
        );
    }

    #[test]
    fn decodes_a_qr_update_and_its_ack_id() {
        let frame = r#"4212["whatsapp_connection_event",{"type":"qr_updated","botId":"b1","qr":"http://x/link/r","attempt":2,"attempts":6,"expiresInMs":20000,"extra":true}]"#;
        let expected = Packet::Event {
            ack: Some(12),
            event: ServerEvent::WhatsApp(WhatsAppEvent::QrUpdated {
                bot_id: "b1".into(),
                qr: QrCode {
                    qr: "http://x/link/r".into(),
                    attempt: 2,
                    attempts: 6,
                    expires_in_ms: 20000,
                },
            }),
        };
        assert_eq!(decode(frame, MAX), Ok(expected));
    }

    #[test]
    fn decodes_each_whatsapp_event_type() {
        let cases = [
            (
                r#"{"type":"qr_scanned","botId":"b"}"#,
                WhatsAppEvent::QrScanned { bot_id: "b".into() },
            ),
            (
                r#"{"type":"whatsapp_connected","botId":"b","phone":"+1"}"#,
                WhatsAppEvent::WhatsappConnected {
                    bot_id: "b".into(),
                    phone: Some("+1".into()),
                },
            ),
            (
                r#"{"type":"qr_expired","botId":"b"}"#,
                WhatsAppEvent::QrExpired { bot_id: "b".into() },
            ),
            (
                r#"{"type":"connection_failed","botId":"b","code":440,"reason":"conflict"}"#,
                WhatsAppEvent::ConnectionFailed {
                    bot_id: "b".into(),
                    code: 440,
                    reason: Some("conflict".into()),
                },
            ),
            (
                r#"{"type":"something_new","botId":"b"}"#,
                WhatsAppEvent::Other,
            ),
        ];
        for (payload, want) in cases {
            let frame = format!(r#"42["whatsapp_connection_event",{payload}]"#);
            assert_eq!(
                decode(&frame, MAX),
                Ok(Packet::Event {
                    ack: None,
                    event: ServerEvent::WhatsApp(want)
                }),
                "{frame}"
            );
        }
    }

    #[test]
    fn each_whatsapp_event_type_needs_its_own_fields() {
        let ev = |payload: &str| {
            decode(
                &format!(r#"42["whatsapp_connection_event",{payload}]"#),
                MAX,
            )
        };
        // Missing what the type needs: a malformed frame (dropped), not a guess.
        for payload in [
            r#"{"type":"qr_updated","botId":"b","qr":"q","attempt":1,"attempts":6}"#,
            r#"{"type":"connection_failed","botId":"b"}"#,
            r#"{"type":"qr_scanned"}"#,
            r#"{"type":"qr_expired","botId":7}"#,
            r#"{"botId":"b"}"#,
        ] {
            assert!(ev(payload).is_err(), "{payload}");
        }
        // A type this app does not know needs nothing; unknown fields are ignored.
        for payload in [
            r#"{"type":"pairing_code_ready"}"#,
            r#"{"type":"qr_scanned","botId":"b","extra":[1]}"#,
        ] {
            assert!(ev(payload).is_ok(), "{payload}");
        }
        assert_eq!(
            ev(r#"{"type":"whatsapp_connected","botId":"b","phone":null}"#).unwrap(),
            Packet::Event {
                ack: None,
                event: ServerEvent::WhatsApp(WhatsAppEvent::WhatsappConnected {
                    bot_id: "b".into(),
                    phone: None
                })
            }
        );
    }

    #[test]
    fn decodes_status_sync_and_connection_updates() {
        assert_eq!(
            decode(
                r#"42["bot_status_update",{"botId":"b","status":"connected","at":"t"}]"#,
                MAX
            ),
            Ok(Packet::Event {
                ack: None,
                event: ServerEvent::BotStatus(BotStatusUpdate {
                    bot_id: "b".into(),
                    status: "connected".into(),
                    at: Some(Value::String("t".into()))
                })
            })
        );
        assert_eq!(
            decode(r#"42["message_sync",{"botId":"b","messages":7}]"#, MAX),
            Ok(Packet::Event {
                ack: None,
                event: ServerEvent::MessageSync(MessageSync {
                    bot_id: "b".into(),
                    messages: 7
                })
            })
        );
        assert_eq!(
            decode(
                r#"42["connection_update",{"botId":"b","state":"close","code":428}]"#,
                MAX
            ),
            Ok(Packet::Event {
                ack: None,
                event: ServerEvent::ConnectionUpdate(ConnectionUpdate {
                    bot_id: "b".into(),
                    state: "close".into(),
                    code: Some(428)
                })
            })
        );
    }

    #[test]
    fn unknown_events_and_other_namespaces_are_ignored_not_errors() {
        assert_eq!(
            decode(r#"42["party",{"x":1}]"#, MAX),
            Ok(Packet::Event {
                ack: None,
                event: ServerEvent::Unknown("party".into())
            })
        );
        assert_eq!(decode(r#"42/admin,["x",{}]"#, MAX), Ok(Packet::Ignored));
        assert_eq!(decode(r#"40/,{"sid":"x"}"#, MAX), Ok(Packet::Connected));
        assert_eq!(decode("431[]", MAX), Ok(Packet::Ignored));
    }

    #[test]
    fn encodes_the_client_frames() {
        let auth = ConnectAuth {
            token: "t",
            user_id: "u",
            bot_id: "b",
        };
        assert_eq!(
            encode_connect(&auth),
            r#"40{"token":"t","userId":"u","botId":"b"}"#
        );
        assert_eq!(encode_ack(7), "437[]");
        assert_eq!(PONG, "3");
        assert_eq!(DISCONNECT, "41");
    }

    #[test]
    fn hostile_frames_are_errors_not_panics() {
        let hostile = [
            "",
            "0",
            "0{",
            "0{\"sid\":1}",
            "4",
            "44",
            "44{\"message\":5}",
            "42",
            "42[",
            "42{}",
            "42[]",
            "42[5,{}]",
            "4299999999999999999999999[\"x\"]",
            "42[\"whatsapp_connection_event\",{\"type\":\"qr_updated\"}]",
            "42[\"whatsapp_connection_event\",{\"type\":\"connection_failed\",\"botId\":\"b\",\"code\":\"x\"}]",
            "42[\"message_sync\",{\"botId\":\"b\",\"messages\":-1}]",
            "42/admin",
            "45-[\"x\",{\"_placeholder\":true,\"num\":0}]",
            "9",
            "4x",
            "é",
            "4é",
        ];
        for frame in hostile {
            assert!(decode(frame, MAX).is_err(), "{frame:?} should be an error");
        }
    }

    #[test]
    fn frames_above_max_payload_are_refused() {
        let big = format!("42[\"x\",\"{}\"]", "a".repeat(200));
        assert_eq!(
            decode(&big, 100),
            Err(WireError::TooLarge {
                len: big.len(),
                max: 100
            })
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_text_never_panics(s in ".{0,200}") {
            let _ = decode(&s, MAX);
        }

        #[test]
        fn decoding_arbitrary_socketio_prefixed_text_never_panics(s in "4[0-9/,\\[\\]{}\"a-z:]{0,80}") {
            let _ = decode(&s, MAX);
        }

        #[test]
        fn ack_ids_round_trip(id in 0u64..u64::MAX) {
            let frame = format!("42{id}[\"x\"]");
            proptest::prop_assert_eq!(
                decode(&frame, MAX),
                Ok(Packet::Event { ack: Some(id), event: ServerEvent::Unknown("x".into()) })
            );
            proptest::prop_assert_eq!(encode_ack(id), format!("43{id}[]"));
        }
    }
}
