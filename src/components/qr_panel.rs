//! The QR step of one bot: asks the connection owner for the QR and shows what it says:
//! progress, the QR in its countdown ring with its link, the pairing-code option, success, or the
//! failure and the next action. Each part reads only the signal it shows, so a state change does
//! not rebuild the QR or take the keyboard focus away from a button.

use super::{CountdownRing, PairingCodeOffer, QrCode, use_ticking_clock};
use crate::connection::{
    expect_connection,
    machine::{UiState, View},
};
use leptos::prelude::*;

/// What a person reads for each state.
fn state_text(view: &View) -> &'static str {
    match view.state {
        UiState::Idle => "Ready when you are.",
        UiState::Debouncing => "QR code ready — connecting in a moment…",
        UiState::Connecting if view.qr.is_none() => "Getting a QR code…",
        UiState::Connecting => "Connecting…",
        UiState::WaitingForScan => "Waiting for you to scan the code.",
        UiState::Finishing if view.scan_stalled => "Still finishing on the phone.",
        UiState::Finishing => "Scanned! Finishing the link on the phone…",
        UiState::Retrying => "The connection dropped — trying again…",
        UiState::Linked => "Linked.",
        UiState::Failed => "Linking stopped.",
        UiState::OtherTab => "Pairing in another tab of this browser.",
        UiState::Paused => "Paused while this tab is in the background.",
    }
}

/// Whether the QR belongs on screen in `state`.
fn shows_qr(state: UiState) -> bool {
    !matches!(
        state,
        UiState::Idle | UiState::Linked | UiState::Failed | UiState::OtherTab | UiState::Paused
    )
}

/// `read` of the connection owner's `view`, while it is about this panel's bot (`is_mine`).
fn mine<T>(
    is_mine: Memo<bool>,
    view: ReadSignal<View>,
    read: impl FnOnce(&View) -> T,
) -> Option<T> {
    is_mine.get().then(|| view.with(read))
}

/// The QR step of `bot_id`. With `auto`, the QR is asked for on mount (a reload of a running
/// pairing); otherwise "Generate QR" asks for it. Unmounting hides it.
#[component]
pub fn QrPanel(
    #[prop(into)] bot_id: String,
    /// Ask for the QR as soon as the panel mounts.
    #[prop(optional)]
    auto: bool,
    /// The bot is already linked: say so instead of offering a QR.
    #[prop(optional)]
    already_linked: bool,
    /// Render the "Generate QR" button (the dashboard has its own "Reconnect").
    #[prop(default = true)]
    show_generate: bool,
) -> impl IntoView {
    let conn = expect_connection();
    let view = conn.view();
    let bot = StoredValue::new(bot_id);
    let is_mine = Memo::new(move |_| {
        bot.with_value(|b| conn.wanted().with(|w| w.as_deref() == Some(b.as_str())))
    });
    let state = Memo::new(move |_| mine(is_mine, view, |v| v.state));
    let running = move || {
        state
            .get()
            .is_some_and(|s| !matches!(s, UiState::Failed | UiState::Linked | UiState::Idle))
    };
    let has_ended = move || matches!(state.get(), Some(UiState::Failed | UiState::Linked));
    // The QR on screen, if any: a new code replaces the old one in place.
    let qr = Memo::new(move |_| {
        mine(is_mine, view, |v| {
            v.qr.clone().filter(|_| shows_qr(v.state))
        })
        .flatten()
    });
    let has_qr = Memo::new(move |_| qr.with(Option::is_some));
    let qr_data =
        Memo::new(move |_| qr.with(|q| q.as_ref().map(|q| q.qr.clone()).unwrap_or_default()));
    let failure = Memo::new(move |_| {
        mine(is_mine, view, |v| {
            v.failure.clone().map(|f| (f, v.retry_at))
        })
        .flatten()
    });
    // Linked: what the success says.
    let linked = Memo::new(move |_| {
        mine(is_mine, view, |v| {
            (v.state == UiState::Linked).then(|| match &v.phone {
                Some(p) => format!("The bot now answers on {p}."),
                None => "The bot is connected.".into(),
            })
        })
        .flatten()
    });
    let is_stalled = Memo::new(move |_| mine(is_mine, view, |v| v.scan_stalled) == Some(true));

    if auto {
        bot.with_value(|b| conn.show_qr(b));
    }
    on_cleanup(move || bot.with_value(|b| conn.hide_qr(b)));

    // A clock for the countdown, ticking only while this panel lives.
    let now = use_ticking_clock();
    // When the current QR arrived, keyed by its string: each new code restarts the countdown.
    let qr_since = Memo::new(move |_| {
        qr.with(|q| q.as_ref().map(|q| (q.qr.clone(), q.expires_in_ms)))
            .map(|(qr, ttl)| (qr, js_sys::Date::now(), ttl))
    });
    // Milliseconds left on the code on screen, and its lifetime.
    let left_ms = move || {
        qr_since.get().map(|(_, since, ttl)| {
            // The tick may predate the QR's arrival: never more than the code's lifetime.
            (
                (since + ttl as f64 - now.get()).min(ttl as f64).max(0.0),
                ttl as f64,
            )
        })
    };
    let seconds_left = move || left_ms().map(|(left, _)| (left / 1000.0).ceil() as u64);
    let fraction = Memo::new(move |_| {
        left_ms().map_or(0.0, |(left, ttl)| if ttl > 0.0 { left / ttl } else { 0.0 })
    });

    let generate = move |_| bot.with_value(|b| conn.show_qr(b));
    let cancel = move |_| bot.with_value(|b| conn.hide_qr(b));
    let retry = move |_| conn.retry();
    let take_over = move |_| conn.take_over();

    view! {
        <div class="qr-panel">
            <Show when=move || already_linked && !is_mine.get()>
                <p class="success-note">"This bot is already linked."</p>
            </Show>
            // Not once the display has ended (failed or linked): the failure's own action, or the
            // success, is what is on offer then — a second button here would do nothing.
            <Show when=move || show_generate && !already_linked && !has_ended()>
                <button
                    type="button"
                    class="primary"
                    data-testid="generate-qr"
                    disabled=running
                    on:click=generate
                >
                    // Says what is on screen: in `other_tab` or `paused` a display runs, but no QR shows.
                    {move || if has_qr.get() { "QR code on screen" } else { "Generate QR" }.to_owned()}
                </button>
            </Show>
            <Show when=move || state.get().is_some()>
                // One live region that stays in the page: each change of state is announced.
                <div
                    class="status-line"
                    data-testid="connection-status"
                    data-state=move || state.get().map_or("idle", UiState::as_str).to_owned()
                    role="status"
                    aria-live="polite"
                    aria-busy=move || (mine(is_mine, view, |v| v.in_flight) == Some(true)).to_string()
                >
                    <span class=move || format!("dot dot-{}", state.get().map_or("idle", UiState::as_str)) aria-hidden="true"></span>
                    {move || mine(is_mine, view, state_text).unwrap_or_default().to_owned()}
                </div>
            </Show>
            <Show when=move || has_qr.get()>
                <CountdownRing fraction=fraction>
                    <QrCode on_shown=move |qr: String| conn.qr_shown(&qr) data=qr_data/>
                </CountdownRing>
                <p class="qr-meta">
                    <span data-testid="qr-attempt">{move || qr.with(|q| q.as_ref().map(|q| format!("Code {} of {}", q.attempt, q.attempts))).unwrap_or_default()}</span>
                    " · "
                    <span data-testid="qr-countdown">{move || seconds_left().map(|s| format!("expires in {s} s")).unwrap_or_default()}</span>
                </p>
                // WhatsApp's QR holds keys, not a link: there is nothing to open or copy.
                <p class="qr-instructions" data-testid="qr-instructions">
                    "On your phone, open WhatsApp → Settings → Linked devices → Link a device, and point the camera at this code."
                </p>
                <PairingCodeOffer bot_id=bot.get_value() qr=qr/>
                <button type="button" class="secondary" data-testid="hide-qr" on:click=cancel>"Cancel"</button>
            </Show>
            <Show when=move || state.get() == Some(UiState::OtherTab)>
                <div class="notice" role="note">
                    <p>"This bot's pairing runs in another tab of this browser; one tab at a time keeps the connection."</p>
                    <button type="button" class="primary" data-testid="take-over" on:click=take_over>"Pair here instead"</button>
                </div>
            </Show>
            <Show when=move || state.get() == Some(UiState::Paused)>
                <p class="notice" role="note">"The connection rests while this tab is in the background; it resumes when you come back."</p>
            </Show>
            <Show when=move || is_stalled.get()>
                <p class="notice" role="note" data-testid="scan-stalled">
                    "Finish linking on your phone — some accounts now ask for a passkey there. We keep waiting."
                </p>
            </Show>
            {move || linked.get().map(|said| view! {
                <div class="success" data-testid="pairing-success">
                    <h2>"Linked!"</h2>
                    <p>{said}</p>
                    <a href="/" class="button primary">"Go to dashboard"</a>
                </div>
            })}
            {move || failure.get().map(|(f, retry_at)| {
                let (text, action) = (f.words(), f.action().label());
                view! {
                    <div class="error" data-testid="pairing-error" data-code=f.code() role="alert">
                        <p>{text}</p>
                        <button
                            type="button"
                            class="primary"
                            data-testid="retry"
                            disabled=move || { now.track(); retry_at.is_some_and(|at| conn.now() < at) }
                            on:click=retry
                        >{action}</button>
                    </div>
                }
            })}
        </div>
    }
}
