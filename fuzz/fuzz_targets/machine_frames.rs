//! The whole state machine, connected, fed arbitrary frames and timer ticks: never a panic, and
//! never an Open while a socket is live.
#![no_main]

use botlink::connection::machine::{Command, Config, Input, Machine};
use protocol::Pairing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut m = Machine::new(Config::default(), 7);
    let mut now = 0;
    let out = m.handle(Input::ShowQr { bot: "b".into() }, now);
    // The tab's pairing lock is asked for first; a browser with one tab grants it.
    let claim = out.iter().find_map(|c| match c {
        Command::ClaimTab { epoch, .. } => Some(*epoch),
        _ => None,
    });
    let claim = claim.expect("a display asks for the tab lock first");
    let mut out = m.handle(Input::TabClaimed { epoch: claim }, now);
    let epoch = out.iter().find_map(|c| match c {
        Command::FetchQr { epoch, .. } => Some(*epoch),
        _ => None,
    });
    let epoch = epoch.expect("then the QR is asked for");
    let qr = Pairing { qr: "q".into(), attempt: 1, attempts: 6, expires_in_ms: 60_000 };
    m.handle(Input::QrFetched { epoch, qr }, now);
    m.handle(Input::QrShown { qr: "q".into() }, now);
    now += 500;
    out = m.handle(Input::TimerFired, now);
    let Some(socket) = out.iter().find_map(|c| match c {
        Command::Open { socket } => Some(*socket),
        _ => None,
    }) else {
        panic!("the socket opens 500 ms after the QR is on screen");
    };
    let mut live = true;
    for chunk in data.split(|b| *b == 0xff) {
        now += 37;
        let input = match chunk.first() {
            Some(0xfe) => Input::TimerFired,
            _ => Input::SocketMessage { socket, text: String::from_utf8_lossy(chunk).into_owned() },
        };
        for c in m.handle(input, now) {
            match c {
                Command::Open { .. } => {
                    assert!(!live, "an Open while a socket is live");
                    live = true;
                }
                Command::Close { .. } => live = false,
                _ => {}
            }
        }
    }
});
