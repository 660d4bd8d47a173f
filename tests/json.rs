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
