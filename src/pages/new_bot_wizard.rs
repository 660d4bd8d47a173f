//! `/bots/new`: name the bot, create it, then go to its QR step (`/bots/{id}/link`).

use crate::{api, session::expect_session};
use leptos::{ev::SubmitEvent, prelude::*, task::spawn_local};
use leptos_router::hooks::use_navigate;

/// The contract's limits for a bot name, after trimming.
const MAX_NAME: usize = 64;

/// Why a name cannot be used, or `None` when it can.
pub fn name_problem(name: &str) -> Option<String> {
    let len = name.trim().chars().count();
    match len {
        0 => Some("Give the bot a name.".into()),
        n if n > MAX_NAME => Some(format!(
            "Use at most {MAX_NAME} characters (this name has {n})."
        )),
        _ => None,
    }
}

/// Step 1 of 2: the bot's name.
#[component]
pub fn NewBotWizard() -> impl IntoView {
    let session = expect_session();
    let navigate = use_navigate();
    let name = RwSignal::new(String::new());
    let touched = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let server_error = RwSignal::new(None::<String>);
    let problem = Memo::new(move |_| name.with(|n| name_problem(n)));
    let shown_problem = move || if touched.get() { problem.get() } else { None };

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        touched.set(true);
        if problem.get_untracked().is_some() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        server_error.set(None);
        let session = session.get();
        let navigate = navigate.clone();
        let chosen = name.get_untracked().trim().to_owned();
        spawn_local(async move {
            match api::create_bot(&session, &chosen).await {
                Ok(bot) => navigate(&format!("/bots/{}/link", bot.id), Default::default()),
                Err(e) => {
                    server_error.set(Some(e.to_string()));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <section class="card wizard">
            <p class="step">"Step 1 of 2"</p>
            <h1>"Create a bot"</h1>
            <form on:submit=on_submit novalidate>
                <label for="bot-name">"Bot name"</label>
                <input
                    id="bot-name"
                    data-testid="bot-name-input"
                    type="text"
                    autocomplete="off"
                    placeholder="Support bot"
                    value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                    on:blur=move |_| touched.set(true)
                    aria-invalid=move || shown_problem().is_some().to_string()
                    aria-describedby="bot-name-help"
                />
                <p id="bot-name-help" class=move || if shown_problem().is_some() { "field-error" } else { "field-help" }.to_owned() aria-live="polite">
                    {move || shown_problem().unwrap_or_else(|| "1 to 64 characters.".into())}
                </p>
                <button type="submit" data-testid="create-bot" class="primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create and continue" }.to_owned()}
                </button>
                <Show when=move || server_error.get().is_some()>
                    <p class="form-error" role="alert">{move || server_error.get().unwrap_or_default()}</p>
                </Show>
            </form>
        </section>
    }
}
