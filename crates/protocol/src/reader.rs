//! The seam every JSON text of the contract is read through.
//!
//! The decoding rules (which fields an event needs, what is unknown and ignored) live in the
//! `Deserialize` impls of this crate; a [`Reader`] only turns text into them. The native build,
//! the server, proptest and fuzzing read with [`SerdeJson`]; the wasm build may read through the
//! browser's own `JSON.parse` instead, and still runs the same rules.

use serde::de::DeserializeOwned;

/// Turns one JSON text into a value of the contract.
pub trait Reader {
    /// Reads `text` as a `T`; the error is a readable reason (it goes into a log line).
    fn read<T: DeserializeOwned>(&self, text: &str) -> Result<T, String>;
}

/// `serde_json`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SerdeJson;

impl Reader for SerdeJson {
    fn read<T: DeserializeOwned>(&self, text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}
