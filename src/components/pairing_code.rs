//! "Link with a phone number instead": a pairing code for people on a phone, who cannot scan
//! their own screen. Offered by itself on narrow screens and after two unscanned QR codes;
//! hidden for good once the backend says it has no such call (404).
//!
//! The code belongs to the pairing the QR display runs: the connection owner's socket hears the
//! link (`qr_scanned`, `whatsapp_connected`) whichever way the phone makes it.

use super::{CopyButton, use_ticking_clock};
use crate::{api, connection::expect_connection, session::expect_session};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the backend answered 404: the option stays hidden for the rest of the page's life.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// From which QR on the offer opens by itself: two codes went by unscanned.
const OPEN_FROM_ATTEMPT: u32 = 3;

/// `ABCDEFGH` as people read it: `ABCD-EFGH`.
pub fn show_code(code: &str) -> String {
    if code.len() == 8 && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

fn is_narrow_screen() -> bool {
    web_sys::window()
        .and_then(|w| w.match_media("(max-width: 600px)").ok().flatten())
        .is_some_and(|m| m.matches())
}

/// The pairing-code option of bot `bot_id`'s QR display.
#[component]
pub fn PairingCodeOffer(
    #[prop(into)] bot_id: String,
    /// The QR on screen: its number ("code n of N") opens the offer from the third on.
    qr: Memo<Option<protocol::Pairing>>,
) -> impl IntoView {
    let session = expect_session();
    let bot = StoredValue::new(bot_id);
    let supported = RwSignal::new(!UNSUPPORTED.load(Ordering::Relaxed));
    let narrow = is_narrow_screen();
    let asked_open = RwSignal::new(false);
    let is_offered = move || {
        narrow
            || asked_open.get()
            || qr.with(|q| q.as_ref().is_some_and(|q| q.attempt >= OPEN_FROM_ATTEMPT))
    };

    let phone = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // The code and when it expires (`Date.now()` milliseconds), and how many codes the server
    // had declared dead when it came: a later `pairing_code_expired` makes it dead too.
    let code = RwSignal::new(None::<(String, f64, u64)>);
    let codes_expired = expect_connection().codes_expired();
    let now = use_ticking_clock();
    let seconds_left = move || {
        code.with(|c| {
            c.as_ref()
                .filter(|(_, _, seen)| *seen == codes_expired.get())
                .map(|(_, until, _)| ((until - now.get()) / 1000.0).ceil().max(0.0) as u64)
        })
    };
    // A memo: it reads the ticking clock, but tells its readers only when the code comes or goes,
    // so the code box (and the focus on its Copy button) is not rebuilt every second.
    let live_code = Memo::new(move |_| {
        code.with(|c| c.as_ref().map(|(code, _, _)| code.clone()))
            .filter(|_| seconds_left().is_some_and(|s| s > 0))
    });
    let had_code = move || code.with(Option::is_some);

    let request = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let typed = phone.get_untracked();
        if typed.trim().is_empty() {
            error.set(Some(
                "Enter the phone number, with its country code.".into(),
            ));
            return;
        }
        busy.set(true);
        error.set(None);
        let session = session.get();
        let id = bot.get_value();
        spawn_local(async move {
            match api::request_pairing_code(&session, &id, &typed).await {
                Ok(c) => code.set(Some((
                    c.code,
                    js_sys::Date::now() + c.expires_in_ms as f64,
                    codes_expired.get_untracked(),
                ))),
                Err(api::ApiError::Status { status: 404, .. }) => {
                    // A backend without pairing codes: the option goes away, quietly.
                    web_sys::console::log_1(&"[botlink] this backend has no pairing codes".into());
                    UNSUPPORTED.store(true, Ordering::Relaxed);
                    supported.set(false);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };

    view! {
        <Show when=move || supported.get()>
            <section class="pairing-code" aria-labelledby="pairing-code-title">
                <Show
                    when=is_offered
                    fallback=move || view! {
                        <button type="button" class="link-button" aria-expanded="false" on:click=move |_| asked_open.set(true)>
                            "Can't scan? Link with a phone number instead"
                        </button>
                    }
                >
                    <h2 id="pairing-code-title" class="subhead">"Link with a phone number instead"</h2>
                    <Show when=move || live_code.with(Option::is_none)>
                        <form class="pairing-code-form" on:submit=request novalidate>
                            <label for="pairing-phone">"The phone's WhatsApp number, with its country code"</label>
                            <input
                                id="pairing-phone"
                                type="tel"
                                inputmode="tel"
                                autocomplete="tel"
                                placeholder="+49 151 2345678"
                                value=move || phone.get()
                                on:input=move |ev| phone.set(event_target_value(&ev))
                                aria-invalid=move || error.with(Option::is_some).to_string()
                                aria-describedby="pairing-phone-help"
                            />
                            <p id="pairing-phone-help" class=move || if error.with(Option::is_some) { "field-error" } else { "field-help" }.to_owned() aria-live="polite">
                                {move || error.get().unwrap_or_else(|| {
                                    if had_code() { "That code expired — get a new one.".into() } else { "We show a code to enter on that phone.".into() }
                                })}
                            </p>
                            <button type="submit" class="primary" data-testid="pairing-code-request" disabled=move || busy.get()>
                                {move || if busy.get() { "Getting a code…" } else { "Get a pairing code" }.to_owned()}
                            </button>
                        </form>
                    </Show>
                    {move || live_code.get().map(|c| {
                        let shown = show_code(&c);
                        let copied = shown.clone();
                        view! {
                            <div class="code-box">
                                <div class="code-row">
                                    <input
                                        id="pairing-code-text"
                                        class="code-text"
                                        data-testid="pairing-code"
                                        readonly
                                        aria-label="Pairing code"
                                        value=shown
                                    />
                                    <CopyButton text=Memo::new(move |_| copied.clone()) label="Copy code" testid="copy-code" input_id="pairing-code-text"/>
                                </div>
                                <p class="qr-meta">{move || seconds_left().map(|s| format!("Valid for {}:{:02}", s / 60, s % 60)).unwrap_or_default()}</p>
                                <ol class="steps">
                                    <li>"On that phone, open WhatsApp → Linked devices → Link a device."</li>
                                    <li>"Tap “Link with phone number instead”."</li>
                                    <li>"Enter this code."</li>
                                </ol>
                            </div>
                        }
                    })}
                </Show>
            </section>
        </Show>
    }
}
