//! The HTTP API of PROTOCOL.md §1 (`api.rs`), its errors in the contract's shape (`error.rs`),
//! the dev endpoints of §8 (`dev.rs`) and the content security policy of the app it serves
//! (`csp.rs`). A new endpoint goes in `api.rs` (or `dev.rs`, when only tests need it).
//!
//! The contract these answer, and botlink's extensions to it: docs/protocol.md.

pub mod api;
pub mod csp;
pub mod dev;
pub mod error;
