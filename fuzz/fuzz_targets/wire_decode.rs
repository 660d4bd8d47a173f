//! Any text a server could send: decoding returns a value or an error, never panics, and a
//! frame over the limit is always refused.
#![no_main]

use protocol::frames::{self as wire, WireError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = wire::decode(text, wire::DEFAULT_MAX_PAYLOAD);
    let small = 64;
    match wire::decode(text, small) {
        Err(WireError::TooLarge { .. }) => assert!(text.len() > small),
        _ => assert!(text.len() <= small),
    }
});
