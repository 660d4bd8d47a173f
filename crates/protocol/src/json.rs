//! The seam every JSON text of the contract goes through.
//!
//! The decoding rules (which fields an event needs, what is unknown and ignored) live in the
//! `Deserialize` impls of this crate; a [`Json`] only turns text into them and back. The native
//! build, the server, proptest and fuzzing use [`SerdeJson`]; the app's wasm build uses the
//! browser's own `JSON.parse` / `JSON.stringify` (serde_json's parser then never ships), and
//! [`crate::conformance`] holds both to the same rules.

use serde::{Serialize, de::DeserializeOwned};

/// Turns JSON text into a value of the contract, and a value into JSON text.
pub trait Json {
    /// Reads `text` as a `T`; the error is a readable reason (it goes into a log line).
    fn read<T: DeserializeOwned>(&self, text: &str) -> Result<T, String>;

    /// Writes `value` as JSON text. The contract's values (strings, numbers, plain structs)
    /// always serialize; should one not, the text is empty and the other side refuses it.
    fn write<T: Serialize>(&self, value: &T) -> String;
}

/// `serde_json`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SerdeJson;

impl Json for SerdeJson {
    fn read<T: DeserializeOwned>(&self, text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    fn write<T: Serialize>(&self, value: &T) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }
}
