//! The connection owner in a real browser: the real driver, the real context and the QR panel,
//! against the reference server started by `scripts/test` (its URL is BOTLINK_BACKEND_URL, baked
//! in at build time). The server's counters are the witness.
#![cfg(target_arch = "wasm32")]

use botlink::{
    api,
    components::QrPanel,
    connection::{expect_connection, provide_connection},
    session::SessionStore,
};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Polls `check` every 25 ms for up to `ms`; real time, because a real server answers.
async fn eventually(what: &str, ms: u32, check: impl Fn() -> bool) {
    let mut waited = 0;
    while !check() {
        assert!(waited < ms, "timed out after {ms} ms waiting for: {what}");
        TimeoutFuture::new(25).await;
        waited += 25;
    }
}

fn attr(testid: &str, name: &str) -> Option<String> {
    document()
        .query_selector(&format!("[data-testid='{testid}']"))
        .ok()
        .flatten()
        .and_then(|e| e.get_attribute(name))
}

fn exists(testid: &str) -> bool {
    document()
        .query_selector(&format!("[data-testid='{testid}']"))
        .ok()
        .flatten()
        .is_some()
}

fn state() -> Option<String> {
    attr("connection-status", "data-state")
}

async fn stats() -> serde_json::Value {
    gloo_net::http::Request::get(&format!("{}/api/dev/stats", botlink::http::backend_url()))
        .send()
        .await
        .expect("stats answered")
        .json()
        .await
        .expect("stats are JSON")
}

/// The user's open sockets once the count stops changing (a close takes a moment to arrive).
async fn open_sockets_settled(user: &str) -> u64 {
    let mut open = u64::MAX;
    for _ in 0..40 {
        open = stats().await["perUser"][user]["open"].as_u64().unwrap_or(0);
        if open == 0 {
            break;
        }
        TimeoutFuture::new(50).await;
    }
    open
}

async fn scan(link: &str) {
    let resp = gloo_net::http::Request::post(link)
        .send()
        .await
        .expect("the link page answered");
    assert_eq!(resp.status(), 200, "the scan was accepted");
}

/// Mounts the owner and a QR panel. The panel is unmounted (as a route change does) by setting
/// the returned signal to false; the handle keeps the mount alive.
fn mount_panel(session: SessionStore, bot: String) -> (Box<dyn std::any::Any>, RwSignal<bool>) {
    let panel_mounted = RwSignal::new(true);
    let host = document().create_element("div").unwrap();
    document().body().unwrap().append_child(&host).unwrap();
    let handle = leptos::mount::mount_to(host.unchecked_into(), move || {
        botlink::session::provide_session(session.clone());
        provide_connection(session.clone());
        let conn = expect_connection();
        let bot = StoredValue::new(bot);
        // The success view links to the dashboard, so the panel lives inside a router.
        view! {
            <leptos_router::components::Router>
                <Show when=move || panel_mounted.get()>
                    <QrPanel bot_id=bot.get_value()/>
                </Show>
                <button data-testid="test-show" on:click=move |_| bot.with_value(|b| conn.show_qr(b))>"show"</button>
            </leptos_router::components::Router>
        }
    });
    (Box::new(handle), panel_mounted)
}

fn click(testid: &str) {
    let el = document()
        .query_selector(&format!("[data-testid='{testid}']"))
        .unwrap()
        .unwrap_or_else(|| panic!("{testid} is on the page"));
    el.unchecked_into::<web_sys::HtmlElement>().click();
}

#[wasm_bindgen_test]
async fn a_qr_display_opens_one_socket_and_success_closes_it() {
    let session = SessionStore::default();
    session.sign_in().await.expect("a session");
    let bot = api::create_bot(&session, "Browser test bot")
        .await
        .expect("a bot");
    let before = stats().await;

    let (handle, _) = mount_panel(session.clone(), bot.id.clone());
    assert_eq!(state(), None, "no QR asked for: no status, no socket");
    click("generate-qr");
    eventually("waiting_for_scan", 5_000, || {
        state().as_deref() == Some("waiting_for_scan")
    })
    .await;
    let link = attr("qr-code", "data-qr").expect("the QR carries its link");
    assert!(link.contains("/link/"), "{link}");

    // Clicking again while it shows does nothing.
    for _ in 0..10 {
        click("generate-qr");
        click("test-show");
    }
    scan(&link).await;
    eventually("linked", 5_000, || state().as_deref() == Some("linked")).await;
    assert!(exists("pairing-success"));

    let after = stats().await;
    let opened =
        after["socketsOpened"].as_u64().unwrap() - before["socketsOpened"].as_u64().unwrap();
    assert_eq!(opened, 1, "exactly one socket for one QR display");
    assert_eq!(
        after["socketsReplaced"], before["socketsReplaced"],
        "no socket replaced another"
    );
    let user = session.current().unwrap().user_id;
    assert_eq!(
        open_sockets_settled(&user).await,
        0,
        "success closed the socket"
    );
    drop(handle);
}

#[wasm_bindgen_test]
fn a_qr_too_long_to_draw_says_so_and_an_empty_one_draws_nothing() {
    use botlink::components::QrCode;
    let data = RwSignal::new("x".repeat(5_000));
    let host = document().create_element("div").unwrap();
    document().body().unwrap().append_child(&host).unwrap();
    let handle = leptos::mount::mount_to(
        host.clone().unchecked_into(),
        move || view! { <QrCode data=data/> },
    );
    let text = host.text_content().unwrap_or_default();
    assert!(text.contains("too long"), "{text}");
    assert!(host.query_selector("svg").unwrap().is_none());
    drop(handle);
    assert_eq!(
        botlink::components::qr_svg("").unwrap_err(),
        "There is no code to show yet."
    );
    assert!(
        botlink::components::qr_svg("http://127.0.0.1:8000/link/0123456789abcdef0123456789abcdef")
            .is_ok()
    );
}

#[wasm_bindgen_test]
async fn unmounting_the_qr_panel_closes_the_socket() {
    let session = SessionStore::default();
    session.sign_in().await.expect("a session");
    let bot = api::create_bot(&session, "Unmount bot")
        .await
        .expect("a bot");
    let user = session.current().unwrap().user_id;

    let (handle, panel_mounted) = mount_panel(session.clone(), bot.id.clone());
    click("generate-qr");
    eventually("waiting_for_scan", 5_000, || {
        state().as_deref() == Some("waiting_for_scan")
    })
    .await;
    assert_eq!(stats().await["perUser"][&user]["open"], 1);

    panel_mounted.set(false);
    assert_eq!(
        open_sockets_settled(&user).await,
        0,
        "unmount closed the socket"
    );
    assert_eq!(stats().await["perUser"][&user]["opened"], 1);
    drop(handle);
}
