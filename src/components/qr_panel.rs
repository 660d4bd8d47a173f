//! The QR step of one bot: asks the connection owner for the QR and shows what it says:
//! progress, the QR with its countdown, success, or the failure and the next action.

use super::QrCode;
use crate::connection::{
    expect_connection,
    machine::{Failure, UiState, View},
};
use leptos::prelude::*;
use leptos_router::components::A;
use std::time::Duration;

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
    }
}

/// What went wrong, in words, and what the action button says (PROTOCOL.md §4, §6).
fn failure_text(failure: &Failure) -> (String, &'static str) {
    let text = match failure {
        Failure::QrExpired => "QR expired — nobody scanned it in time. Get a new one.".into(),
        Failure::Unauthorized => "Your session ended.".into(),
        Failure::TokenExpired => "The server kept refusing the session as expired.".into(),
        Failure::RateLimited => "Too many attempts. Wait a moment, then try again.".into(),
        Failure::ServerDisconnect => {
            "The server closed this connection (another window may have taken over).".into()
        }
        Failure::Network => "The server cannot be reached.".into(),
        Failure::Code(401) => {
            "The phone logged this device out. Get a fresh QR to link it again.".into()
        }
        Failure::Code(403) => "WhatsApp refused this account (forbidden or banned).".into(),
        Failure::Code(411) => {
            "Multi-device mismatch: update WhatsApp on the phone, then try again.".into()
        }
        Failure::Code(440) => {
            "Another session replaced this one. Close WhatsApp Web elsewhere, then try again."
                .into()
        }
        Failure::Code(code) => format!("WhatsApp's connection failed (code {code})."),
        Failure::Http { message, .. } => message.clone(),
    };
    let action = match failure {
        Failure::Unauthorized => "Sign in again",
        Failure::QrExpired | Failure::Code(401) => "Generate new QR",
        _ => "Try again",
    };
    (text, action)
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
    let view_signal = conn.view();
    let bot = StoredValue::new(bot_id);
    let is_mine = Memo::new(move |_| {
        bot.with_value(|b| conn.wanted().with(|w| w.as_deref() == Some(b.as_str())))
    });
    let view = Memo::new(move |_| {
        if is_mine.get() {
            Some(view_signal.get())
        } else {
            None
        }
    });
    let running = move || {
        view.with(|v| {
            v.as_ref().is_some_and(|v| {
                !matches!(v.state, UiState::Failed | UiState::Linked | UiState::Idle)
            })
        })
    };

    if auto {
        bot.with_value(|b| conn.show_qr(b));
    }
    on_cleanup(move || bot.with_value(|b| conn.hide_qr(b)));

    // A clock for the countdown, ticking only while this panel lives.
    let now = RwSignal::new(js_sys::Date::now());
    let tick = set_interval_with_handle(
        move || now.set(js_sys::Date::now()),
        Duration::from_millis(1000),
    )
    .ok();
    on_cleanup(move || {
        if let Some(t) = tick {
            t.clear();
        }
    });
    // When the current QR arrived, keyed by its string: each new code restarts the countdown.
    let qr_since = Memo::new(move |_| {
        view.with(|v| {
            v.as_ref()
                .and_then(|v| v.qr.as_ref().map(|q| (q.qr.clone(), q.expires_in_ms)))
        })
        .map(|(qr, ttl)| (qr, ttl, js_sys::Date::now()))
    });
    let seconds_left = move || {
        qr_since.get().map(|(_, ttl, since)| {
            // The tick may predate the QR's arrival: never show more than the code's lifetime.
            let left = (since + ttl as f64 - now.get()).min(ttl as f64);
            (left / 1000.0).ceil().max(0.0) as u64
        })
    };

    let generate = move |_| bot.with_value(|b| conn.show_qr(b));
    let cancel = move |_| bot.with_value(|b| conn.hide_qr(b));
    let retry = move |_| conn.retry();

    view! {
        <div class="qr-panel">
            <Show when=move || already_linked && !is_mine.get()>
                <p class="success-note">"This bot is already linked."</p>
            </Show>
            <Show when=move || show_generate && !already_linked>
                <button
                    type="button"
                    class="primary"
                    data-testid="generate-qr"
                    disabled=running
                    on:click=generate
                >
                    {move || if running() { "QR code on screen" } else { "Generate QR" }}
                </button>
            </Show>
            {move || view.get().map(|v| {
                let state = v.state.as_str();
                let qr_on_screen = v.qr.is_some() && !matches!(v.state, UiState::Linked | UiState::Failed);
                let locked = v.is_locked;
                view! {
                    <div class="status-line" data-testid="connection-status" data-state=state role="status" aria-live="polite" aria-busy=locked.to_string()>
                        <span class=format!("dot dot-{state}") aria-hidden="true"></span>
                        {state_text(&v)}
                    </div>
                    <Show when=move || qr_on_screen>
                        <QrCode on_shown=move |qr: String| conn.qr_shown(&qr) data=Signal::derive(move || view.with(|v| v.as_ref().and_then(|v| v.qr.as_ref().map(|q| q.qr.clone())).unwrap_or_default()))/>
                        <p class="qr-meta">
                            <span data-testid="qr-attempt">{move || view.with(|v| v.as_ref().and_then(|v| v.qr.as_ref().map(|q| format!("Code {} of {}", q.attempt, q.attempts))))}</span>
                            " · "
                            <span data-testid="qr-countdown">{move || seconds_left().map(|s| format!("expires in {s} s"))}</span>
                        </p>
                        <button type="button" class="secondary" data-testid="hide-qr" on:click=cancel>"Cancel"</button>
                    </Show>
                    {v.scan_stalled.then(|| view! {
                        <p class="notice" role="note">
                            "Finish linking on your phone — some accounts now ask for a passkey there. We keep waiting."
                        </p>
                    })}
                    {(v.state == UiState::Linked).then(|| view! {
                        <div class="success" data-testid="pairing-success">
                            <h2>"Linked!"</h2>
                            <p>{match &v.phone { Some(p) => format!("The bot now answers on {p}."), None => "The bot is connected.".into() }}</p>
                            <A href="/" attr:class="button primary">"Go to dashboard"</A>
                        </div>
                    })}
                    {v.failure.clone().map(|f| {
                        let (text, action) = failure_text(&f);
                        let retry_at = v.retry_at;
                        view! {
                            <div class="error" data-testid="pairing-error" data-code=f.code() role="alert">
                                <p>{text}</p>
                                <button
                                    type="button"
                                    class="primary"
                                    data-testid="retry"
                                    disabled=move || { now.track(); retry_at.is_some_and(|at| crate::connection::now_ms() < at) }
                                    on:click=retry
                                >{action}</button>
                            </div>
                        }
                    })}
                }
            })}
        </div>
    }
}
