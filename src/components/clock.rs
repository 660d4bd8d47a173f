//! A clock for countdowns: `Date.now()` in a signal, ticking once a second while the component
//! that asked for it lives (its interval is cleared on cleanup).

use leptos::prelude::*;
use std::time::Duration;

/// Wall-clock milliseconds (`Date.now()`), updated every second.
pub fn use_ticking_clock() -> ReadSignal<f64> {
    let (now, set_now) = signal(js_sys::Date::now());
    let tick = set_interval_with_handle(
        move || set_now.set(js_sys::Date::now()),
        Duration::from_millis(1000),
    )
    .ok();
    on_cleanup(move || {
        if let Some(t) = tick {
            t.clear();
        }
    });
    now
}
