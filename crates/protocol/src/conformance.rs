//! The decoding rules as one check any [`Json`] must pass: the native tests run it with
//! `serde_json`, the app's browser tests with `JSON.parse`. A reader that accepts what the rules
//! refuse (or refuses what they accept) panics here with the frame that tells them apart.

use crate::events::{BotStatusUpdate, ConnectionUpdate, MessageSync, ServerEvent, WhatsAppEvent};
use crate::frames::{ConnectAuth, OpenInfo, Packet, decode_with, encode_connect_with};
use crate::http::{Bot, Pairing};
use crate::json::Json;
use crate::status::{BotStatus, ConnectionState};

/// Frames a hostile or broken server could send: each is an error, never a panic, never a guess.
pub const HOSTILE: &[&str] = &[
    "",
    "0",
    "0{",
    "0{\"sid\":1}",
    "0{\"sid\":\"s\",\"pingInterval\":-1,\"pingTimeout\":1}",
    "0{\"sid\":\"s\",\"pingInterval\":1.5,\"pingTimeout\":1}",
    "0{\"sid\":\"s\",\"pingInterval\":1e400,\"pingTimeout\":1}",
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
    "42[\"whatsapp_connection_event\",{\"type\":\"connection_failed\",\"botId\":\"b\",\"code\":70000}]",
    "42[\"whatsapp_connection_event\"]",
    "42[\"whatsapp_connection_event\",null]",
    "42[\"message_sync\",{\"botId\":\"b\",\"messages\":-1}]",
    "42[\"bot_status_update\",{\"status\":\"connected\"}]",
    "42/admin",
    "45-[\"x\",{\"_placeholder\":true,\"num\":0}]",
    "9",
    "4x",
    "é",
    "4é",
];

/// Runs every rule through `json`; panics on the first frame it reads differently.
pub fn check(json: &impl Json) {
    const MAX: usize = crate::frames::DEFAULT_MAX_PAYLOAD;
    let decode = |frame: &str| decode_with(json, frame, MAX);
    for frame in HOSTILE {
        assert!(
            decode(frame).is_err(),
            "{frame:?} should be an error, read as {:?}",
            decode(frame)
        );
    }
    let event = |frame: &str| match decode(frame) {
        Ok(Packet::Event { event, .. }) => event,
        other => panic!("{frame:?} should be an event, read as {other:?}"),
    };
    assert_eq!(
        decode(r#"0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#),
        Ok(Packet::Open(OpenInfo {
            sid: "s".into(),
            ping_interval: 25_000,
            ping_timeout: 20_000,
            max_payload: MAX as u64,
        }))
    );
    assert_eq!(
        decode(r#"44{"message":"rate_limited","data":1}"#),
        Ok(Packet::ConnectError("rate_limited".into()))
    );
    assert_eq!(
        decode(
            r#"4212["whatsapp_connection_event",{"type":"qr_updated","botId":"b","qr":"q","attempt":2,"attempts":6,"expiresInMs":20000,"extra":[1,{"x":null}]},"more"]"#
        ),
        Ok(Packet::Event {
            ack: Some(12),
            event: ServerEvent::WhatsApp(WhatsAppEvent::QrUpdated {
                bot_id: "b".into(),
                qr: Pairing {
                    qr: "q".into(),
                    attempt: 2,
                    attempts: 6,
                    expires_in_ms: 20_000,
                },
            }),
        })
    );
    assert_eq!(
        event(
            r#"42["whatsapp_connection_event",{"type":"whatsapp_connected","botId":"b","phone":null}]"#
        ),
        ServerEvent::WhatsApp(WhatsAppEvent::WhatsappConnected {
            bot_id: "b".into(),
            phone: None
        })
    );
    assert_eq!(
        event(
            r#"42["whatsapp_connection_event",{"type":"connection_failed","botId":"b","code":440,"reason":"conflict"}]"#
        ),
        ServerEvent::WhatsApp(WhatsAppEvent::ConnectionFailed {
            bot_id: "b".into(),
            code: 440,
            reason: Some("conflict".into())
        })
    );
    assert_eq!(
        event(r#"42["whatsapp_connection_event",{"type":"pairing_code_ready","anything":1}]"#),
        ServerEvent::WhatsApp(WhatsAppEvent::Other)
    );
    assert_eq!(
        event(r#"42["bot_status_update",{"botId":"b","status":"sleeping","at":12}]"#),
        ServerEvent::BotStatus(BotStatusUpdate {
            bot_id: "b".into(),
            status: BotStatus::Unknown,
            at: None
        })
    );
    assert_eq!(
        event(r#"42["connection_update",{"botId":"b","state":"close","code":428}]"#),
        ServerEvent::ConnectionUpdate(ConnectionUpdate {
            bot_id: "b".into(),
            state: ConnectionState::Close,
            code: Some(428)
        })
    );
    assert_eq!(
        event(r#"42["message_sync",{"botId":"b","messages":9007199254740991}]"#),
        ServerEvent::MessageSync(MessageSync {
            bot_id: "b".into(),
            messages: 9_007_199_254_740_991
        })
    );
    assert_eq!(
        event(r#"42["party"]"#),
        ServerEvent::Unknown("party".into())
    );

    // HTTP bodies: a bot from a backend without botlink's extensions.
    let bot: Bot = json
        .read(r#"{"id":"b","name":"n","status":"conflict","unknown":{}}"#)
        .expect("a Bot");
    assert_eq!(
        (bot.status, bot.messages, bot.pairing),
        (BotStatus::Conflict, 0, None)
    );
    assert!(
        json.read::<Bot>(r#"{"id":"b","name":"n"}"#).is_err(),
        "a Bot has a status"
    );

    // What the app writes: the CONNECT frame, read back.
    let auth = ConnectAuth {
        token: "t\"ok\\".into(),
        user_id: "u".into(),
        bot_id: Some("b".into()),
    };
    let frame = encode_connect_with(json, &auth);
    let back: ConnectAuth = json
        .read(frame.strip_prefix("40").expect("a CONNECT"))
        .expect("its payload");
    assert_eq!(back, auth);
}

#[cfg(test)]
mod tests {
    #[test]
    fn serde_json_follows_the_rules() {
        super::check(&crate::json::SerdeJson);
    }
}
