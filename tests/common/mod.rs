//! What the browser suites share: waiting on the real server, the WhatsApp double's phone, reading
//! the DOM by `data-testid`, clicking, and mounting the QR panel with its connection owner.
#![allow(dead_code)]

use botlink::{
    components::QrPanel,
    connection::{expect_connection, provide_connection},
    session::SessionStore,
};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Polls `check` every 25 ms for up to `ms`; real time, because a real server answers.
pub async fn eventually(what: &str, ms: u32, check: impl Fn() -> bool) {
    let mut waited = 0;
    while !check() {
        assert!(waited < ms, "timed out after {ms} ms waiting for: {what}");
        TimeoutFuture::new(25).await;
        waited += 25;
    }
}

pub fn attr(testid: &str, name: &str) -> Option<String> {
    document()
        .query_selector(&format!("[data-testid='{testid}']"))
        .ok()
        .flatten()
        .and_then(|e| e.get_attribute(name))
}

pub fn exists(testid: &str) -> bool {
    document()
        .query_selector(&format!("[data-testid='{testid}']"))
        .ok()
        .flatten()
        .is_some()
}

pub fn state() -> Option<String> {
    attr("connection-status", "data-state")
}

pub async fn stats() -> serde_json::Value {
    gloo_net::http::Request::get(&format!("{}/api/dev/stats", botlink::http::backend_url()))
        .send()
        .await
        .expect("stats answered")
        .json()
        .await
        .expect("stats are JSON")
}

/// The user's open sockets once the count stops changing (a close takes a moment to arrive).
pub async fn open_sockets_settled(user: &str) -> u64 {
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

/// The WhatsApp double the server links through: `BOTLINK_DOUBLE_URL` at build time (scripts/test
/// starts one, and the server on it, before building these tests).
pub fn double_url() -> &'static str {
    // Not `env!`: the lints and a plain build of these tests run without a double.
    match option_env!("BOTLINK_DOUBLE_URL") {
        Some(url) => url,
        None => panic!("BOTLINK_DOUBLE_URL: the WhatsApp double's address (scripts/test sets it)"),
    }
}

/// The double's phone scans WhatsApp's QR string (the double's admin API allows any origin).
pub async fn scan(qr: &str) {
    let resp = gloo_net::http::Request::post(&format!("{}/admin/scan", double_url()))
        .json(&serde_json::json!({ "qr": qr }))
        .unwrap()
        .send()
        .await
        .expect("the double answered");
    assert_eq!(resp.status(), 200, "the scan was accepted");
}

/// Mounts the owner and a QR panel. The panel is unmounted (as a route change does) by setting
/// the returned signal to false; the handle keeps the mount alive.
pub fn mount_panel(session: SessionStore, bot: String) -> (Box<dyn std::any::Any>, RwSignal<bool>) {
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

pub fn click(testid: &str) {
    let el = document()
        .query_selector(&format!("[data-testid='{testid}']"))
        .unwrap()
        .unwrap_or_else(|| panic!("{testid} is on the page"));
    el.unchecked_into::<web_sys::HtmlElement>().click();
}

/// The text of the element with `testid`, if it is on the page.
pub fn text(testid: &str) -> Option<String> {
    document()
        .query_selector(&format!("[data-testid='{testid}']"))
        .ok()
        .flatten()
        .and_then(|e| e.text_content())
}

/// A fresh host element in the page to mount a component into.
pub fn host() -> web_sys::HtmlElement {
    let host = document().create_element("div").unwrap();
    document().body().unwrap().append_child(&host).unwrap();
    host.unchecked_into()
}

/// Removes every mounted host (a test's leftovers must not answer another's queries).
pub fn clear_page() {
    if let Some(body) = document().body() {
        body.set_inner_html("");
    }
}
