//! `/`: the bots and their status. The list comes over HTTP only: after a pairing ends, when
//! the page regains focus, and every 30 s while visible. It never opens a socket by itself.
//!
//! The rows live in one keyed `<For>` that survives refreshes: a refresh updates a row in place,
//! so a QR shown in a row ("Reconnect") is not unmounted — and its socket not closed — by it.

use crate::{
    api::{self, Bot},
    components::{BotRow, replace_if_changed, use_fetched},
    connection::expect_connection,
    session::expect_session,
};
use leptos::prelude::*;
use std::time::Duration;

/// The dashboard.
#[component]
pub fn Dashboard() -> impl IntoView {
    let session = expect_session();
    let conn = expect_connection();
    let reload = RwSignal::new(0u64);
    // The last list that arrived: a failed refresh keeps showing it, with the error above.
    let bots = RwSignal::new(None::<Vec<Bot>>);
    let error = RwSignal::new(None::<String>);
    use_fetched(
        move || {
            reload.track();
            conn.pairing_ended().track();
            let session = session.get();
            async move { api::list_bots(&session).await }
        },
        move |answer| match answer {
            Ok(list) => {
                replace_if_changed(bots, Some(list));
                replace_if_changed(error, None);
            }
            Err(e) => replace_if_changed(error, Some(e.to_string())),
        },
    );
    let ids = Memo::new(move |_| {
        bots.with(|b| b.iter().flatten().map(|b| b.id.clone()).collect::<Vec<_>>())
    });
    let is_empty = move || bots.with(|b| b.as_ref().is_some_and(Vec::is_empty));
    let is_loading = move || bots.with(Option::is_none) && error.with(Option::is_none);

    let bump = move || reload.update(|n| *n += 1);
    let focus = window_event_listener(leptos::ev::focus, move |_| bump());
    let every_30s = set_interval_with_handle(
        move || {
            if document().visibility_state() == web_sys::VisibilityState::Visible {
                bump();
            }
        },
        Duration::from_secs(30),
    )
    .ok();
    on_cleanup(move || {
        focus.remove();
        if let Some(h) = every_30s {
            h.clear();
        }
    });

    view! {
        <section class="dashboard">
            <div class="dashboard-head">
                <h1>"Your bots"</h1>
                <a href="/bots/new" class="button primary">"New bot"</a>
            </div>
            <Show when=move || error.get().is_some()>
                <div class="card error" role="alert">
                    <p>{move || error.get().unwrap_or_default()}</p>
                    <button type="button" class="primary" on:click=move |_| bump()>"Try again"</button>
                </div>
            </Show>
            <Show when=is_loading>
                <p class="muted">"Loading bots…"</p>
            </Show>
            <Show when=is_empty>
                <div class="card empty">
                    <h2>"No bots yet"</h2>
                    <p>"Create a bot, then link it to a phone by scanning a QR code."</p>
                    <a href="/bots/new" class="button primary">"Create your first bot"</a>
                </div>
            </Show>
            <ul class="bot-list">
                <For each=move || ids.get() key=|id| id.clone() let:id>
                    <BotRow
                        id=id.clone()
                        bot=Memo::new({
                            let id = id.clone();
                            move |_| bots.with(|b| b.iter().flatten().find(|b| b.id == id).cloned())
                        })
                        on_changed=move |_| bump()
                    />
                </For>
            </ul>
        </section>
    }
}
