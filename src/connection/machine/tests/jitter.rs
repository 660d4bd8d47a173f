//! The backoff's randomness (`retry.rs`, `Machine::random_below`): xorshift64, deterministic for
//! a seed, uniform in `[0, bound]`, and a window that doubles with each retry.

use super::*;

/// xorshift64 as Marsaglia wrote it (13, 7, 17): the reference the machine's generator follows.
fn reference(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn the_jitter_is_xorshift64_for_its_seed_and_stays_within_its_bound() {
    for seed in [1u64, 42, 0xDEAD_BEEF] {
        let mut m = Machine::new(Config::default(), seed);
        let mut state = seed | 1;
        for bound in [0, 1, 999, 1_000, 8_000, u64::MAX - 1] {
            let want = match bound {
                0 => {
                    reference(&mut state);
                    0
                }
                b => reference(&mut state) % (b + 1),
            };
            assert_eq!(m.random_below(bound), want, "seed {seed}, bound {bound}");
        }
    }
}

#[test]
fn the_backoff_window_doubles_with_each_retry() {
    // The third retry's window is 4 s: across seeds, some waits go past 2 s, and none past 4 s
    // (plus the time the attempt itself took).
    let mut longest = 0;
    for seed in 0..40 {
        let mut r = Rig::new();
        r.m = Machine::new(Config::default(), seed);
        r.show();
        r.answer_qr();
        r.wait(500);
        // Every socket fails at once; every resync is answered at once (within the 10 ms steps).
        let mut failed_at = Vec::new();
        for _ in 0..5_000 {
            if r.opens().len() >= 4 {
                break;
            }
            if r.state() == UiState::Connecting {
                failed_at.push(r.now);
                r.close_socket(1006);
            }
            if r.state() == UiState::Retrying && r.m.view().in_flight {
                r.answer_qr();
            }
            r.wait(10);
        }
        let opens = r.opens();
        if opens.len() > 3 {
            longest = longest.max(opens[3] - failed_at[2]);
            assert!(opens[3] - failed_at[2] <= 4_000, "seed {seed}: {opens:?}");
        }
    }
    assert!(
        longest > 2_000,
        "the window grew past 2 s: longest {longest}"
    );
}
