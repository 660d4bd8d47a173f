//! Engine.IO v4 / Socket.IO v5 text frames (§2): what the client decodes and what it sends.
//!
//! Decoding never panics: every malformed, truncated, oversized or unknown frame is a
//! [`WireError`] the caller logs and drops (§3: "a malformed frame is logged and dropped; it does
//! not kill the connection"). Every JSON text goes through a [`Json`].

use crate::events::{
    BOT_STATUS_UPDATE, CONNECTION_UPDATE, MESSAGE_SYNC, ServerEvent, WHATSAPP_CONNECTION_EVENT,
};
use crate::json::{Json, SerdeJson};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt;

/// Engine.IO's default `maxPayload` (1 MB): the ceiling until the server's open packet says otherwise.
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;

/// What the server says in its Engine.IO open packet (`0{...}`). Its numbers are untrusted:
/// whoever uses them bounds them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
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

/// Socket.IO CONNECT's auth payload (§2): `40{"token","userId","botId"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectAuth {
    pub token: String,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub bot_id: Option<String>,
}

/// The CONNECT frame with its auth payload, written with `serde_json`.
pub fn encode_connect(auth: &ConnectAuth) -> String {
    encode_connect_with(&SerdeJson, auth)
}

/// The CONNECT frame with its auth payload, written with `json`.
pub fn encode_connect_with(json: &impl Json, auth: &ConnectAuth) -> String {
    format!("40{}", json.write(auth))
}

/// `43<id>[]`: the empty ack a server asks for with `42<id>[...]`.
pub fn encode_ack(id: u64) -> String {
    format!("43{id}[]")
}

/// Decodes one text frame with `serde_json`. `max_payload` is the server's announced limit.
pub fn decode(frame: &str, max_payload: usize) -> Result<Packet, WireError> {
    decode_with(&SerdeJson, frame, max_payload)
}

/// Decodes one text frame, reading its JSON with `json`.
pub fn decode_with(json: &impl Json, frame: &str, max_payload: usize) -> Result<Packet, WireError> {
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
        '0' => read(json, "open packet", rest).map(Packet::Open),
        '1' => Ok(Packet::Close),
        '2' => Ok(Packet::Ping),
        '3' => Ok(Packet::Pong),
        '6' => Ok(Packet::Noop),
        '4' => decode_socket(json, rest),
        other => Err(WireError::UnknownEngineType(other)),
    }
}

fn read<T: DeserializeOwned>(
    json: &impl Json,
    what: &'static str,
    text: &str,
) -> Result<T, WireError> {
    json.read(text).map_err(|e| malformed(what, e))
}

fn decode_socket(json: &impl Json, frame: &str) -> Result<Packet, WireError> {
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
        '2' => decode_event(json, rest),
        '3' => Ok(Packet::Ignored),
        '4' => {
            #[derive(serde::Deserialize)]
            struct ConnectError {
                message: String,
            }
            read::<ConnectError>(json, "connect error", rest)
                .map(|e| Packet::ConnectError(e.message))
        }
        '5' | '6' => Err(WireError::Binary),
        other => Err(WireError::UnknownSocketType(other)),
    }
}

fn decode_event(json: &impl Json, rest: &str) -> Result<Packet, WireError> {
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = match digits {
        0 => None,
        _ => Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|e| malformed("ack id", e))?,
        ),
    };
    let EventArgs(event) = read(json, "event", &rest[digits..])?;
    Ok(Packet::Event { ack, event })
}

/// An event's arguments, `["name", payload, ...]`, read in one pass: the name picks the payload's
/// type, so no generic JSON value is ever built (and any [`Json`] can drive it).
struct EventArgs(ServerEvent);

impl<'de> Deserialize<'de> for EventArgs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(EventArgsVisitor)
    }
}

struct EventArgsVisitor;

impl<'de> Visitor<'de> for EventArgsVisitor {
    type Value = EventArgs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array whose first element is an event name")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventArgs, A::Error> {
        let name: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("the first element is not an event name"))?;
        // A known event needs its payload; an unknown one may have any, or none.
        fn payload<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
            seq: &mut A,
        ) -> Result<T, A::Error> {
            seq.next_element()?
                .ok_or_else(|| de::Error::custom("the event has no payload"))
        }
        let event = match name.as_str() {
            WHATSAPP_CONNECTION_EVENT => ServerEvent::WhatsApp(payload(&mut seq)?),
            BOT_STATUS_UPDATE => ServerEvent::BotStatus(payload(&mut seq)?),
            CONNECTION_UPDATE => ServerEvent::ConnectionUpdate(payload(&mut seq)?),
            MESSAGE_SYNC => ServerEvent::MessageSync(payload(&mut seq)?),
            _ => ServerEvent::Unknown(name),
        };
        // Further arguments are not part of the contract: read past them.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EventArgs(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{BotStatusUpdate, ConnectionUpdate, MessageSync, WhatsAppEvent};
    use crate::http::Pairing;
    use crate::status::{BotStatus, ConnectionState};

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
                qr: Pairing {
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
                    status: BotStatus::Connected,
                    at: None
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
                    state: ConnectionState::Close,
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
            token: "t".into(),
            user_id: "u".into(),
            bot_id: Some("b".into()),
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
        for frame in crate::conformance::HOSTILE {
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
