//! The connection owner in a real browser: the real driver, the real context and the QR panel,
//! against the reference server started by `scripts/test` on the WhatsApp double (their URLs are
//! BOTLINK_BACKEND_URL and BOTLINK_DOUBLE_URL, baked in at build time). The server's counters are
//! the witness.
#![cfg(target_arch = "wasm32")]

mod common;

use botlink::{api, session::SessionStore};
use common::*;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

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
    let qr = attr("qr-code", "data-qr").expect("the QR carries its data");
    assert!(qr.starts_with("2@"), "WhatsApp's own QR string: {qr}");

    // Clicking again while it shows does nothing.
    for _ in 0..10 {
        click("generate-qr");
        click("test-show");
    }
    scan(&qr).await;
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
        move || view! { <QrCode data=Memo::new(move |_| data.get())/> },
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
        botlink::components::qr_svg(
            "2@Y2xvdWQtcmVm,bm9pc2Uta2V5LTMyLWJ5dGVzLWxvbmctLS0tLS0=,aWRlbnRpdHk=,YWR2LXNlY3JldA==,1"
        )
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
