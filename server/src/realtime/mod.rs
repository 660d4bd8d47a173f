//! The Socket.IO channel of PROTOCOL.md §2–§5: the handshake, one live socket per user and the
//! replay on connect (`socket.rs`); the adapter that spans the nodes over Redis (`adapter.rs`);
//! the request parts a socket keeps (`owned_parts.rs`).
//!
//! The contract (docs/protocol.md §2–§5); what a socket costs, and why: docs/performance.md.

pub mod adapter;
pub mod owned_parts;
pub mod socket;
