//! The components in a real browser, the way Leptos's own examples test theirs: mount, drive,
//! assert the DOM. The QR panel through each state, the countdown ring, a bot row's actions and
//! the diagnostics panel — with the real connection owner against the reference server that
//! `scripts/test` starts (BOTLINK_BACKEND_URL).
#![cfg(target_arch = "wasm32")]

mod common;

use botlink::{
    api::{self, ApiError},
    components::{BotRow, CountdownRing, Diagnostics, QrPanel, replace_if_changed},
    connection::provide_connection,
    session::{SessionStore, provide_session},
};
use common::*;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use protocol::BotStatus;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A signed-in session and a new bot of its user.
async fn session_and_bot(name: &str) -> (SessionStore, api::Bot) {
    let session = SessionStore::default();
    session.sign_in().await.expect("a session");
    let bot = api::create_bot(&session, name).await.expect("a bot");
    (session, bot)
}

/// Mounts `app` into `host` under the app's providers: the session and the connection owner.
fn mount_with_owner<V: IntoView + 'static>(
    host: &web_sys::HtmlElement,
    session: SessionStore,
    app: impl FnOnce() -> V + 'static,
) -> impl Drop {
    leptos::mount::mount_to(host.clone(), move || {
        provide_session(session.clone());
        provide_connection(session.clone());
        app()
    })
}

/// Lets the reactive system run the effects a change scheduled.
async fn tick() {
    TimeoutFuture::new(0).await;
}

/// Records every `data-state` the panel shows, every 5 ms, until `last` (or 5 s).
async fn states_until(last: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..1_000 {
        let now = state().unwrap_or_else(|| "none".into());
        if seen.last() != Some(&now) {
            seen.push(now.clone());
        }
        if now == last {
            break;
        }
        TimeoutFuture::new(5).await;
    }
    seen
}

/// `POST /api/dev/bots/{id}/emit`: the server sends the bot's sockets a `connection_failed` with
/// `code`, as a Node.js backend would (WhatsApp itself sends a 440 only to a linked session).
async fn fail(session: &SessionStore, bot: &str, code: u16) {
    let token = session.current().expect("signed in").token;
    let resp = gloo_net::http::Request::post(&format!(
        "{}/api/dev/bots/{bot}/emit",
        botlink::http::backend_url()
    ))
    .header("Authorization", &format!("Bearer {token}"))
    .json(&serde_json::json!({
        "event": "whatsapp_connection_event",
        "data": {"type": "connection_failed", "botId": bot, "code": code},
    }))
    .unwrap()
    .send()
    .await
    .expect("the dev call answered");
    assert_eq!(resp.status(), 204);
}

#[wasm_bindgen_test]
async fn the_qr_panel_shows_each_state_of_a_pairing_from_idle_to_linked() {
    let (session, bot) = session_and_bot("States bot").await;
    let (handle, _) = mount_panel(session, bot.id);
    assert_eq!(state(), None, "idle: no status line, only the button");
    assert_eq!(text("generate-qr").as_deref(), Some("Generate QR"));

    click("generate-qr");
    let seen = states_until("waiting_for_scan").await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("waiting_for_scan"),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"debouncing".to_string()),
        "the 500 ms wait shows: {seen:?}"
    );
    assert_eq!(text("qr-attempt").as_deref(), Some("Code 1 of 6"));
    let countdown = text("qr-countdown").unwrap_or_default();
    assert!(countdown.starts_with("expires in "), "{countdown}");
    assert!(
        document()
            .query_selector("[data-testid='qr-code'] svg")
            .unwrap()
            .is_some(),
        "the QR is drawn"
    );
    assert!(exists("hide-qr") && !exists("pairing-error") && !exists("pairing-success"));

    scan(&attr("qr-code", "data-qr").expect("the QR's data")).await;
    let seen = states_until("linked").await;
    assert_eq!(seen.last().map(String::as_str), Some("linked"), "{seen:?}");
    let success = text("pairing-success").unwrap_or_default();
    assert!(
        success.contains("The bot now answers on +1555"),
        "{success}"
    );
    assert!(
        !exists("qr-code") && !exists("hide-qr"),
        "nothing left to scan or cancel"
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn the_qr_panel_shows_a_failure_in_words_with_its_one_action_and_cancel_goes_idle() {
    let (session, bot) = session_and_bot("Failure bot").await;
    let (handle, _) = mount_panel(session.clone(), bot.id.clone());
    click("generate-qr");
    eventually("waiting_for_scan", 5_000, || {
        state().as_deref() == Some("waiting_for_scan")
    })
    .await;

    fail(&session, &bot.id, 440).await;
    eventually("failed", 5_000, || state().as_deref() == Some("failed")).await;
    assert_eq!(attr("pairing-error", "data-code").as_deref(), Some("440"));
    let words = text("pairing-error").unwrap_or_default();
    assert!(
        words.contains("Another session replaced this one"),
        "{words}"
    );
    assert_eq!(text("retry").as_deref(), Some("Try again"));
    assert_eq!(attr("retry", "disabled"), None, "the action works at once");
    assert!(!exists("qr-code"), "no QR for a pairing that is over");

    click("retry");
    eventually("a new pairing", 5_000, || {
        state().as_deref() == Some("waiting_for_scan")
    })
    .await;
    click("hide-qr");
    eventually("idle", 5_000, || state().is_none()).await;
    assert!(exists("generate-qr"), "Cancel leaves the way back");
    drop(handle);
}

#[wasm_bindgen_test]
async fn the_countdown_ring_drains_and_warns_in_its_last_fifth() {
    let fraction = RwSignal::new(1.0);
    let host = host();
    let handle = leptos::mount::mount_to(host.clone(), move || {
        view! { <CountdownRing fraction=Memo::new(move |_| fraction.get())><span>"qr"</span></CountdownRing> }
    });
    let ring = |host: &web_sys::HtmlElement| {
        let left = host
            .query_selector(".ring-left")
            .unwrap()
            .expect("the ring");
        let wrapper = host
            .query_selector(".countdown-ring")
            .unwrap()
            .expect("the wrapper");
        (
            left.get_attribute("stroke-dashoffset").unwrap_or_default(),
            wrapper.class_list().contains("countdown-low"),
        )
    };
    assert_eq!(ring(&host), ("0.00".into(), false), "full");
    assert_eq!(
        host.text_content().as_deref(),
        Some("qr"),
        "its content inside"
    );
    fraction.set(0.25);
    tick().await;
    assert_eq!(ring(&host), ("75.00".into(), false));
    fraction.set(0.1);
    tick().await;
    assert_eq!(ring(&host), ("90.00".into(), true), "the last fifth warns");
    fraction.set(-3.0);
    tick().await;
    assert_eq!(
        ring(&host),
        ("100.00".into(), true),
        "clamped: empty, never beyond"
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn a_bot_rows_actions_ask_first_then_act() {
    let (session, bot) = session_and_bot("Row bot").await;
    let data = RwSignal::new(Some(bot.clone()));
    let changed = RwSignal::new(0);
    let host = host();
    let id = bot.id.clone();
    let handle = mount_with_owner(&host, session, move || {
        view! {
            <ul>
                <BotRow id=id.clone() bot=Memo::new(move |_| data.get()) on_changed=move |()| changed.update(|n| *n += 1)/>
            </ul>
        }
    });
    let row = host
        .query_selector("[data-testid='bot-row']")
        .unwrap()
        .expect("the row");
    assert_eq!(row.get_attribute("data-status").as_deref(), Some("created"));
    assert!(
        row.text_content()
            .unwrap_or_default()
            .contains("Not linked")
    );
    assert_eq!(text("generate-qr").as_deref(), Some("Reconnect"));
    assert!(
        !exists("unlink-bot"),
        "nothing to unlink before a phone is linked"
    );

    // Delete asks first; "Keep" keeps.
    click("delete-bot");
    tick().await;
    let dialog = host
        .query_selector("[role='alertdialog']")
        .unwrap()
        .expect("a question");
    assert!(
        dialog
            .text_content()
            .unwrap_or_default()
            .contains("cannot be undone")
    );
    let keep = dialog
        .query_selector("button.secondary")
        .unwrap()
        .expect("Keep");
    keep.unchecked_into::<web_sys::HtmlElement>().click();
    tick().await;
    assert!(
        host.query_selector("[role='alertdialog']")
            .unwrap()
            .is_none()
    );
    assert_eq!(changed.get_untracked(), 0);

    // A linked bot offers Unlink instead of Reconnect.
    data.set(Some(api::Bot {
        status: BotStatus::Connected,
        phone: Some("+15550001111".into()),
        ..bot.clone()
    }));
    tick().await;
    assert!(exists("unlink-bot") && !exists("generate-qr"));
    assert!(
        row.text_content()
            .unwrap_or_default()
            .contains("+15550001111")
    );

    // Delete, confirmed: the server deletes it and the list is told.
    click("delete-bot");
    tick().await;
    assert_eq!(text("confirm-action").as_deref(), Some("Delete"));
    click("confirm-action");
    eventually("the list is told", 5_000, || changed.get_untracked() == 1).await;
    let session = SessionStore::default();
    assert!(matches!(
        api::get_bot(&session, &bot.id).await,
        Err(ApiError::Status { status: 404, .. })
    ));
    drop(handle);
}

#[wasm_bindgen_test]
async fn the_diagnostics_panel_opens_and_shows_what_the_owner_did() {
    let (session, bot) = session_and_bot("Diagnostics bot").await;
    let host = host();
    let id = bot.id.clone();
    let handle = mount_with_owner(&host, session, move || {
        view! {
            <leptos_router::components::Router>
                <QrPanel bot_id=id.clone()/>
                <Diagnostics/>
            </leptos_router::components::Router>
        }
    });
    let toggle = host
        .query_selector("button[aria-controls='diagnostics']")
        .unwrap()
        .expect("the toggle")
        .unchecked_into::<web_sys::HtmlElement>();
    assert_eq!(
        toggle.get_attribute("aria-expanded").as_deref(),
        Some("false")
    );
    assert!(!exists("diagnostics"), "closed until asked for");
    toggle.click();
    tick().await;
    assert_eq!(
        toggle.get_attribute("aria-expanded").as_deref(),
        Some("true")
    );
    assert_eq!(text("diagnostics-state").as_deref(), Some("idle"));
    assert_eq!(text("diag-attempts").as_deref(), Some("0"));
    assert_eq!(text("diag-codes").as_deref(), Some("none"));

    click("generate-qr");
    eventually("waiting_for_scan", 5_000, || {
        state().as_deref() == Some("waiting_for_scan")
    })
    .await;
    tick().await;
    assert_eq!(
        text("diagnostics-state").as_deref(),
        Some("waiting_for_scan")
    );
    assert_eq!(text("diag-attempts").as_deref(), Some("1"));
    assert_eq!(text("diag-opens").as_deref(), Some("1"));
    let timeline = host
        .query_selector(".timeline tbody")
        .unwrap()
        .expect("the timeline")
        .text_content()
        .unwrap_or_default();
    assert!(timeline.contains("debouncing → connecting"), "{timeline}");
    assert!(
        timeline.contains("connected to the namespace"),
        "{timeline}"
    );

    toggle.click();
    tick().await;
    assert!(!exists("diagnostics"));
    drop(handle);
}

/// The pages put each HTTP answer in with `replace_if_changed`: the same answer again (the
/// dashboard's refresh, the link page's refetch for a new session) tells no reader, so nothing
/// on screen (a QR panel among it) is rebuilt; a different one does.
#[wasm_bindgen_test]
async fn an_answer_equal_to_the_one_shown_tells_no_reader() {
    use std::{cell::Cell, rc::Rc};
    let shown = RwSignal::new(Some("bot a".to_owned()));
    let runs = Rc::new(Cell::new(0));
    let counted = runs.clone();
    let host = host();
    let handle = leptos::mount::mount_to(host.clone(), move || {
        Effect::new(move |_| {
            shown.track();
            counted.set(counted.get() + 1);
        });
    });
    tick().await;
    assert_eq!(runs.get(), 1, "the first run");
    replace_if_changed(shown, Some("bot a".to_owned()));
    tick().await;
    assert_eq!(runs.get(), 1, "the same answer again: no reader runs");
    replace_if_changed(shown, None);
    tick().await;
    assert_eq!(runs.get(), 2, "a different answer: its readers run");
    assert_eq!(shown.get_untracked(), None);
    drop(handle);
}
