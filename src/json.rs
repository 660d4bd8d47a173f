//! JSON through the browser's own parser: `JSON.parse` / `JSON.stringify`, with serde's
//! `Deserialize` / `Serialize` impls of the protocol crate driven by serde-wasm-bindgen. The
//! decoding rules stay the protocol crate's (its `conformance` check runs here too, in the
//! browser tests); only serde_json's parser and formatter are left out of the app.

use protocol::json::Json;
use serde::{Serialize, de::DeserializeOwned};

/// The browser's JSON.
#[derive(Clone, Copy, Debug, Default)]
pub struct BrowserJson;

impl Json for BrowserJson {
    fn read<T: DeserializeOwned>(&self, text: &str) -> Result<T, String> {
        let value = js_sys::JSON::parse(text).map_err(|_| "not JSON".to_owned())?;
        serde_wasm_bindgen::from_value(value).map_err(|e| e.to_string())
    }

    fn write<T: Serialize>(&self, value: &T) -> String {
        value
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .ok()
            .and_then(|v| js_sys::JSON::stringify(&v).ok())
            .and_then(|s| s.as_string())
            .unwrap_or_default()
    }
}
