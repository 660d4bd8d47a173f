//! The diagnostics panel: what the connection owner did and why — the state machine's timeline,
//! counters (attempts, opens, closes, codes seen) and the time to scan. Opened from the footer,
//! or at once with `?debug=1`. It shows no token: the telemetry never holds one.

use crate::connection::{expect_connection, telemetry::Telemetry};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// Page-clock milliseconds as seconds since the page loaded (integer arithmetic: no float formatter).
fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// The footer's "Diagnostics" toggle and the panel it opens.
#[component]
pub fn Diagnostics() -> impl IntoView {
    let query = use_query_map();
    let is_open = RwSignal::new(query.with_untracked(|q| q.get("debug").as_deref() == Some("1")));
    view! {
        <button
            type="button"
            class="link-button"
            aria-expanded=move || is_open.get().to_string()
            aria-controls="diagnostics"
            on:click=move |_| is_open.update(|o| *o = !*o)
        >
            {move || if is_open.get() { "Hide diagnostics" } else { "Diagnostics" }.to_owned()}
        </button>
        <Show when=move || is_open.get()>
            <DiagnosticsPanel/>
        </Show>
    }
}

#[component]
fn DiagnosticsPanel() -> impl IntoView {
    let conn = expect_connection();
    let view = conn.view();
    let telemetry = conn.telemetry();
    let counter = move |read: fn(&Telemetry) -> String| move || telemetry.with(read);
    view! {
        <section id="diagnostics" class="card diagnostics" data-testid="diagnostics" aria-label="Connection diagnostics">
            <h2>"Connection diagnostics"</h2>
            <p class="muted">
                "State " <code data-testid="diagnostics-state">{move || view.with(|v| v.state.as_str().to_owned())}</code>
                {move || if view.with(|v| v.in_flight) { " · attempt in flight" } else { "" }.to_owned()}
                " · tabs coordinated by: "
                {conn.coordination()}
            </p>
            <dl class="counters">
                <div><dt>"Socket attempts"</dt><dd data-testid="diag-attempts">{counter(|t| t.attempts.to_string())}</dd></div>
                <div><dt>"Sockets opened"</dt><dd data-testid="diag-opens">{counter(|t| t.opens.to_string())}</dd></div>
                <div><dt>"Sockets closed"</dt><dd data-testid="diag-closes">{counter(|t| t.closes.to_string())}</dd></div>
                <div><dt>"Time to scan"</dt><dd data-testid="diag-time-to-scan">{counter(|t| t.time_to_scan.map(seconds).unwrap_or_else(|| "—".into()))}</dd></div>
            </dl>
            <h3 class="subhead">"Codes seen"</h3>
            <p data-testid="diag-codes">
                {move || telemetry.with(|t| if t.codes.is_empty() {
                    "none".to_owned()
                } else {
                    t.codes.iter().map(|(code, n)| format!("{code} ×{n}")).collect::<Vec<_>>().join(", ")
                })}
            </p>
            <h3 class="subhead">"Timeline (newest first)"</h3>
            <div class="table-scroll">
                <table class="timeline">
                    <thead><tr><th scope="col">"time"</th><th scope="col">"from → to"</th><th scope="col">"why"</th></tr></thead>
                    <tbody>
                        {move || telemetry.with(|t| t.timeline.iter().rev().map(|row| view! {
                            <tr>
                                <td>{seconds(row.at)}</td>
                                <td>{format!("{} → {}", row.from.as_str(), row.to.as_str())}</td>
                                <td>{row.why.clone()}</td>
                            </tr>
                        }).collect_view())}
                    </tbody>
                </table>
            </div>
        </section>
    }
}
