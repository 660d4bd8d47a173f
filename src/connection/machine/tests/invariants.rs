//! Invariants over random sequences of inputs (proptest).

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Wait(Millis),
    Show(u8),
    Hide,
    Retry,
    AnswerQr,
    FailQr,
    AnswerSession,
    FailSession,
    Accept,
    Frame(&'static str),
    Close(u16),
    Error,
    Timer,
    TabBusy,
    TabLost,
    TakeOver,
    PageHidden,
    PageVisible,
    Online,
    Offline,
    AnswerBot(&'static str),
}

const FRAMES: [&str; 10] = [
    "2",
    "41",
    r#"44{"message":"token_expired"}"#,
    r#"44{"message":"rate_limited"}"#,
    r#"44{"message":"unauthorized"}"#,
    r#"42["whatsapp_connection_event",{"type":"qr_scanned","botId":"b0"}]"#,
    r#"42["whatsapp_connection_event",{"type":"whatsapp_connected","botId":"b0"}]"#,
    r#"42["whatsapp_connection_event",{"type":"qr_expired","botId":"b0"}]"#,
    r#"42["whatsapp_connection_event",{"type":"connection_failed","botId":"b0","code":408}]"#,
    r#"42["whatsapp_connection_event",{"type":"connection_failed","botId":"b0","code":440}]"#,
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u64..15_000).prop_map(Step::Wait),
        (0u8..2).prop_map(Step::Show),
        Just(Step::Hide),
        Just(Step::Retry),
        Just(Step::AnswerQr),
        Just(Step::FailQr),
        Just(Step::AnswerSession),
        Just(Step::FailSession),
        Just(Step::Accept),
        (0usize..FRAMES.len()).prop_map(|i| Step::Frame(FRAMES[i])),
        prop_oneof![Just(1000u16), Just(1006), Just(1008)].prop_map(Step::Close),
        Just(Step::Error),
        Just(Step::Timer),
        Just(Step::TabBusy),
        Just(Step::TabLost),
        Just(Step::TakeOver),
        Just(Step::PageHidden),
        Just(Step::PageVisible),
        Just(Step::Online),
        Just(Step::Offline),
        prop_oneof![Just("pairing"), Just("connected"), Just("created")].prop_map(Step::AnswerBot),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn never_two_sockets_never_two_opens_within_1s_never_an_open_after_an_end(
        seed in any::<u64>(),
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut r = Rig::new();
        r.m = Machine::new(Config::default(), seed);
        let mut live: Vec<SocketId> = Vec::new();
        let mut last_open: Option<Millis> = None;
        // Set by success or a final failure; cleared by a new user intent.
        let mut ended = false;
        for s in steps {
            let before = r.state();
            let n = r.log.len();
            let _ = match s {
                Step::Wait(ms) => { r.wait(ms); vec![] }
                Step::Show(b) => r.send(Input::ShowQr { bot: format!("b{b}") }),
                Step::Hide => r.send(Input::HideQr),
                Step::Retry => r.send(Input::Retry),
                Step::AnswerQr => match r.last_fetch() { Some(epoch) => { r.send(Input::QrFetched { epoch, qr: qr(1) }); r.send(Input::QrShown { qr: qr(1).qr }) } None => vec![] },
                Step::FailQr => match r.last_fetch() { Some(epoch) => r.send(Input::QrFetchFailed { epoch, failure: HttpFailure::Network }), None => vec![] },
                Step::AnswerSession => match r.last_session_request() { Some(epoch) => r.send(Input::SessionReady { epoch }), None => vec![] },
                Step::FailSession => match r.last_session_request() { Some(epoch) => r.send(Input::SessionFailed { epoch, failure: HttpFailure::Unauthorized }), None => vec![] },
                Step::Accept => match live.last().copied() {
                    Some(socket) => {
                        let mut out = r.send(Input::SocketMessage { socket, text: OPEN.into() });
                        out.extend(r.send(Input::SocketMessage { socket, text: CONNECTED.into() }));
                        out
                    }
                    None => vec![],
                },
                Step::Frame(f) => match live.last().copied() { Some(socket) => r.send(Input::SocketMessage { socket, text: f.into() }), None => vec![] },
                Step::Close(code) => match live.last().copied() { Some(socket) => r.send(Input::SocketClosed { socket, code }), None => vec![] },
                Step::Error => match live.last().copied() { Some(socket) => r.send(Input::SocketError { socket }), None => vec![] },
                Step::Timer => r.send(Input::TimerFired),
                Step::TabBusy => match r.last_claim() { Some((epoch, _)) => r.send(Input::TabBusy { epoch }), None => vec![] },
                Step::TabLost => match r.last_claim() { Some((epoch, _)) => r.send(Input::TabLost { epoch }), None => vec![] },
                Step::TakeOver => r.send(Input::TakeOver),
                Step::PageHidden => r.send(Input::PageHidden),
                Step::PageVisible => r.send(Input::PageVisible),
                Step::Online => r.send(Input::Online),
                Step::Offline => r.send(Input::Offline),
                // As a page does: a pairing's QR goes on screen once the machine hands it over.
                Step::AnswerBot(status) => match r.last_bot_fetch() {
                    Some(epoch) => {
                        let mut out = r.send(Input::BotFetched { epoch, status: BotStatus::parse(status), pairing: (status == "pairing").then(|| qr(2)) });
                        out.extend(r.send(Input::QrShown { qr: qr(2).qr }));
                        out
                    }
                    None => vec![],
                },
            };
            // A person's intents, and the page or network coming back, may start a display again.
            let intent = matches!(s, Step::Show(_) | Step::Retry | Step::TakeOver | Step::Online | Step::PageVisible);
            if intent && r.state() != before {
                ended = false;
            }
            for (at, c) in r.log[n..].iter().cloned() {
                match &c {
                    Command::Open { socket } => {
                        prop_assert!(live.is_empty(), "two sockets: {live:?} + {socket:?}");
                        prop_assert!(!ended, "an Open after an end without a new intent");
                        if let Some(t) = last_open {
                            prop_assert!(at >= t + 1_000, "opens at {t} and {at}");
                        }
                        last_open = Some(at);
                        live.push(*socket);
                    }
                    Command::Close { socket, .. } => live.retain(|s| s != socket),
                    _ => {}
                }
            }
            if matches!(r.state(), UiState::Linked | UiState::Failed) {
                ended = true;
                prop_assert!(live.is_empty(), "a socket left open after the end");
            }
            if matches!(r.state(), UiState::Idle | UiState::OtherTab | UiState::Paused) {
                prop_assert!(live.is_empty(), "a socket left open while {:?}", r.state());
            }
        }
        // Five minutes of silence from the outside world: the machine has settled. It never
        // hangs in a locked phase and never loops.
        r.wait(300_000);
        prop_assert!(
            matches!(r.state(), UiState::Idle | UiState::Linked | UiState::Failed | UiState::OtherTab | UiState::Paused),
            "still {:?} after 5 minutes of silence", r.state()
        );
    }
}
