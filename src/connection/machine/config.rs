//! The tunables of PROTOCOL.md §6, and the bounds on numbers that come from a server.

/// Milliseconds on a monotonic clock (the driver uses `performance.now()`).
pub type Millis = u64;

/// The longest ping window (`pingInterval + pingTimeout`) taken from a server: numbers from the
/// network are untrusted, and a larger one would leave a dead link undetected for hours.
pub const MAX_PING_WINDOW: Millis = 10 * 60_000;

/// The longest wait a server may ask for (`Retry-After`): after it, the one retry goes.
pub const MAX_SERVER_WAIT: Millis = 60 * 60_000;

/// The tunables of PROTOCOL.md §6. Every field's default is the contract's number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Wait after a QR appears before opening. Defaults to 500 ms.
    pub debounce: Millis,
    /// Least time between two socket opens. Defaults to 1 s.
    pub min_gap: Millis,
    /// Longest wait for the Engine.IO open and the namespace CONNECT answer. Defaults to 10 s.
    pub connect_timeout: Millis,
    /// Longest wait for an HTTP answer (QR, session): a black-holed request must not hold the
    /// lock forever. Defaults to 10 s.
    pub request_timeout: Millis,
    /// Network backoff: base, cap and number of retries. Defaults to 1 s, 8 s, 5.
    pub backoff_base: Millis,
    pub backoff_cap: Millis,
    pub max_network_retries: u32,
    /// An open socket counts as stable (its failures forgotten) after this. Defaults to 10 s.
    pub stable_after: Millis,
    /// Retries after `token_expired`, one refresh before each. Defaults to 1 s, 2 s, 4 s.
    pub token_retry_delays: [Millis; 3],
    /// "Try again" stays disabled this long after the token retries are spent. Defaults to 5 s.
    pub token_cooldown: Millis,
    /// Wait after `rate_limited` when the server gives no `Retry-After`. Defaults to 10 s.
    pub rate_limit_wait: Millis,
    /// After `qr_scanned`, say "finish on your phone" if not linked within this. Defaults to 60 s.
    pub scan_stall: Millis,
    /// A tab hidden this long closes its socket and pauses; visible again, it resyncs. Defaults
    /// to 30 s.
    pub pause_after: Millis,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debounce: 500,
            min_gap: 1_000,
            connect_timeout: 10_000,
            request_timeout: 10_000,
            backoff_base: 1_000,
            backoff_cap: 8_000,
            max_network_retries: 5,
            stable_after: 10_000,
            token_retry_delays: [1_000, 2_000, 4_000],
            token_cooldown: 5_000,
            rate_limit_wait: 10_000,
            scan_stall: 60_000,
            pause_after: 30_000,
        }
    }
}
