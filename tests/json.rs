//! The browser's JSON (`JSON.parse` / `JSON.stringify`, which the app decodes with) follows the
//! protocol crate's decoding rules exactly as serde_json does natively: the same check, hostile
//! frames included.
#![cfg(target_arch = "wasm32")]

use botlink::json::BrowserJson;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn the_browsers_json_follows_the_protocols_rules() {
    protocol::conformance::check(&BrowserJson);
}

/// serde-wasm-bindgen is patched (vendor/README.md) to name a wrong value by its kind instead of
/// printing it: a wrong type still says what came and what was expected. (The browser's `String`
/// of an `Error` starts with "Error: ".)
#[wasm_bindgen_test]
fn a_value_of_the_wrong_type_is_named_by_its_kind() {
    use protocol::json::Json;
    let float = BrowserJson.read::<String>("1.5").unwrap_err();
    assert_eq!(
        float,
        "Error: invalid type: a floating point number, expected a string"
    );
    let string = BrowserJson.read::<u64>("\"7\"").unwrap_err();
    assert_eq!(string, "Error: invalid type: a string, expected u64");
    let bot = BrowserJson
        .read::<protocol::http::Bot>(r#"{"id": 1}"#)
        .unwrap_err();
    assert!(bot.starts_with("Error: invalid type: "), "{bot}");
}
