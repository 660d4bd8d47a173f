//! `/bots/{id}/link`: the QR step of one bot. A reload comes back here; if the bot's pairing is
//! still running, its QR is shown again at once (joining the same pairing).

use crate::{
    api::{self, Bot},
    components::{QrPanel, replace_if_changed, use_fetched},
    session::expect_session,
};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use protocol::BotStatus;

/// Step 2 of 2: link the bot by scanning its QR code.
#[component]
pub fn LinkBot() -> impl IntoView {
    let session = expect_session();
    let params = use_params_map();
    let bot_id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let bot = RwSignal::new(None::<Bot>);
    let error = RwSignal::new(None::<String>);
    use_fetched(
        move || {
            let id = bot_id.get();
            let session = session.get();
            async move { api::get_bot(&session, &id).await }
        },
        move |answer| match answer {
            // The same bot again (a new session's refetch) must not rebuild the panel and its QR.
            Ok(found) => {
                replace_if_changed(bot, Some(found));
                replace_if_changed(error, None);
            }
            Err(e) => replace_if_changed(error, Some(e.to_string())),
        },
    );

    view! {
        <section class="card wizard">
            <p class="step">"Step 2 of 2"</p>
            {move || match (bot.get(), error.get()) {
                (_, Some(e)) => view! {
                    <h1>"This bot cannot be linked"</h1>
                    <p class="form-error" role="alert">{e}</p>
                    <a href="/">"Go to the dashboard"</a>
                }.into_any(),
                (None, None) => view! { <p class="muted">"Loading the bot…"</p> }.into_any(),
                (Some(bot), None) => {
                    let auto = bot.status == BotStatus::Pairing;
                    view! {
                        <h1>"Link " <span class="bot-name">{bot.name.clone()}</span></h1>
                        <p class="muted">
                            "Open WhatsApp on the phone, go to Linked devices, and scan the code."
                        </p>
                        <QrPanel bot_id=bot.id.clone() auto=auto already_linked=bot.status == BotStatus::Connected/>
                    }.into_any()
                }
            }}
        </section>
    }
}
