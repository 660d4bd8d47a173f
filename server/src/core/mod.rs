//! What every part of the server shares, and none of it depends on a link, a socket or HTTP:
//! the context a link is given (`context.rs`), the counters (`stats.rs`), a bot's status and
//! the events told about it (`bot_status.rs`), the one ordered path of each bot's writes and
//! events (`outbox.rs`), and the lock helper (`sync.rs`).

pub mod bot_status;
pub mod context;
pub mod outbox;
pub mod stats;
pub mod sync;
