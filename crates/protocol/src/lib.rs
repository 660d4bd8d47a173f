//! The bot backend contract of docs/protocol.md, written once.
//!
//! The app decodes with it, the server encodes with it, the tests speak it: a change to the
//! contract is a compile error on every side. No I/O, no platform code.
//!
//! - [`http`]: the JSON bodies of §1 (`Session`, `Bot`, `Pairing`, errors) and botlink's extensions.
//! - [`status`]: the bot statuses of §1 and the connection states of §3, as enums.
//! - [`events`]: the server's events of §3.
//! - [`frames`]: Engine.IO v4 / Socket.IO v5 text frames (§2), read and written through [`json`].
//! - [`conformance`]: the decoding rules as one check any [`json::Json`] must pass.
//! - [`codes`]: every code the contract carries (§2, §4) and what it means: retry, stop, wait.
//!
//! Values that come from a backend keep an `Unknown` variant: the contract says unknown values
//! from other backends are ignored, never fatal.

pub mod codes;
pub mod conformance;
pub mod events;
pub mod frames;
pub mod http;
pub mod json;
pub mod status;

pub use events::{ServerEvent, WhatsAppEvent};
pub use frames::{Packet, WireError};
pub use http::{Bot, Pairing, Session};
pub use status::BotStatus;
