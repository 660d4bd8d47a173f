//! `/`: the bots and their status. The list comes over HTTP only: after a pairing ends, when
//! the page regains focus, and every 30 s while visible. It never opens a socket by itself.

use crate::{api, app::expect_session, components::BotRow, connection::expect_connection};
use leptos::prelude::*;
use leptos_router::components::A;
use std::time::Duration;

/// The dashboard.
#[component]
pub fn Dashboard() -> impl IntoView {
    let session = expect_session();
    let conn = expect_connection();
    let reload = RwSignal::new(0u64);
    let bots = LocalResource::new(move || {
        reload.track();
        conn.pairing_ended().track();
        let session = session.get();
        async move { api::list_bots(&session).await }
    });

    let bump = move || reload.update(|n| *n += 1);
    let focus = window_event_listener(leptos::ev::focus, move |_| bump());
    let every_30s = set_interval_with_handle(
        move || {
            let visible = document().visibility_state() == web_sys::VisibilityState::Visible;
            if visible {
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
                <A href="/bots/new" attr:class="button primary">"New bot"</A>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading bots…"</p> }>
                {move || bots.get().map(|result| match result {
                    Ok(list) if list.is_empty() => view! {
                        <div class="card empty">
                            <h2>"No bots yet"</h2>
                            <p>"Create a bot, then link it to a phone by scanning a QR code."</p>
                            <A href="/bots/new" attr:class="button primary">"Create your first bot"</A>
                        </div>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="bot-list">
                            <For each=move || list.clone() key=|b| (b.id.clone(), b.status.clone(), b.messages) let:bot>
                                <BotRow bot=bot on_changed=move |_| bump()/>
                            </For>
                        </ul>
                    }.into_any(),
                    Err(e) => view! {
                        <div class="card error" role="alert">
                            <p>{e.to_string()}</p>
                            <button type="button" class="primary" on:click=move |_| bump()>"Try again"</button>
                        </div>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
