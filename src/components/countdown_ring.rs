//! A ring around the QR that drains as the code's lifetime runs out: the time left, at a glance.
//! Decoration only (`aria-hidden`): the words "expires in n s" beside it say the same.

use leptos::prelude::*;

/// `x` with two decimals, by integer arithmetic: `format!("{:.2}")` would pull the float formatter
/// (5 KB of wasm) into the app for this one attribute.
fn hundredths(x: f64) -> String {
    let h = (x * 100.0).round().max(0.0) as u64;
    format!("{}.{:02}", h / 100, h % 100)
}

/// Draws `children` inside a square ring that is full at `fraction` 1 and empty at 0; it turns to
/// the warning colour in the last `warn_below` of the lifetime.
#[component]
pub fn CountdownRing(
    /// The share of the lifetime left, from 1 down to 0.
    fraction: Memo<f64>,
    /// Below this share the ring warns. Defaults to 0.2.
    #[prop(default = 0.2)]
    warn_below: f64,
    children: Children,
) -> impl IntoView {
    let left = move || fraction.get().clamp(0.0, 1.0);
    view! {
        // One class string (not `class:countdown-low`): the app's only class toggle would cost
        // its own rendering code.
        <div class=move || {
            if left() < warn_below { "countdown-ring countdown-low" } else { "countdown-ring" }.to_owned()
        }>
            <svg class="ring" viewBox="0 0 100 100" aria-hidden="true" focusable="false">
                <rect class="ring-track" x="2" y="2" width="96" height="96" rx="7" pathLength="100"></rect>
                <rect
                    class="ring-left"
                    x="2" y="2" width="96" height="96" rx="7"
                    pathLength="100"
                    stroke-dasharray="100"
                    stroke-dashoffset=move || hundredths(100.0 * (1.0 - left()))
                ></rect>
            </svg>
            <div class="ring-content">{children()}</div>
        </div>
    }
}
