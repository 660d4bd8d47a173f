//! What only a cluster needs: the Redis connection and the counters' publisher (`redis.rs`);
//! rate limits and each user's newest socket across the nodes (`coordination.rs`, `limits.rs`);
//! passing a request about a bot to the node that holds its device (`forward.rs`). Alone, a
//! server uses the in-memory side of `coordination.rs` and nothing else here.
//!
//! How a cluster runs, its rules across nodes and its suite: docs/cluster.md.

pub mod coordination;
pub mod forward;
pub mod limits;
pub mod redis;
