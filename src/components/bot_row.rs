//! One bot in the dashboard list, with its actions. Destructive actions ask first, inline.

use super::{QrPanel, StatusBadge};
use crate::{
    api::{self, Bot},
    connection::{ConnectionContext, LiveBot, expect_connection},
    session::expect_session,
};
use leptos::{prelude::*, task::spawn_local};
use protocol::BotStatus;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Confirm {
    Unlink,
    Delete,
}

/// What the socket said of bot `id`, if anything: one field of its live facts.
fn live<T>(
    conn: ConnectionContext,
    id: StoredValue<String>,
    read: fn(&LiveBot) -> Option<T>,
) -> Option<T> {
    id.with_value(|id| conn.live().with(|m| m.get(id).and_then(read)))
}

/// A bot row: name, status, phone, messages; Reconnect, Unlink, Delete. It lives as long as the
/// bot is in the list; `bot` brings each refresh's data in place.
#[component]
pub fn BotRow(
    /// The bot's id (the row's key).
    id: String,
    /// The bot as the last list refresh saw it.
    bot: Memo<Option<Bot>>,
    /// Called after an action changed the bot, so the list reloads.
    #[prop(into)]
    on_changed: Callback<()>,
) -> impl IntoView {
    let conn = expect_connection();
    let session = expect_session();
    let id = StoredValue::new(id);
    let field = move |f: fn(&Bot) -> String| bot.with(|b| b.as_ref().map(f).unwrap_or_default());
    let showing_qr = Memo::new(move |_| {
        id.with_value(|id| conn.wanted().with(|w| w.as_deref() == Some(id.as_str())))
    });
    // The socket's live status wins over the list while this bot's QR is shown; the list (which
    // refreshes when the pairing ends) wins after.
    let status = Memo::new(move |_| {
        let live_status = live(conn, id, |l| l.status).filter(|_| showing_qr.get());
        live_status
            .unwrap_or_else(|| bot.with(|b| b.as_ref().map_or(BotStatus::Unknown, |b| b.status)))
    });
    let message_count = move || {
        live(conn, id, |l| l.messages)
            .unwrap_or_else(|| bot.with(|b| b.as_ref().map_or(0, |b| b.messages)))
    };
    let name = move || field(|b| b.name.clone());
    let phone = move || {
        bot.with(|b| b.as_ref().and_then(|b| b.phone.clone()))
            .unwrap_or_else(|| "—".into())
    };
    let confirm = RwSignal::new(None::<Confirm>);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);

    let run = move |what: Confirm| {
        busy.set(true);
        error.set(None);
        let session = session.get();
        let bot = id.get_value();
        spawn_local(async move {
            let result = match what {
                Confirm::Unlink => api::logout_bot(&session, &bot).await,
                Confirm::Delete => api::delete_bot(&session, &bot).await,
            };
            busy.set(false);
            confirm.set(None);
            match result {
                Ok(()) => on_changed.run(()),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };

    view! {
        <li class="bot-row" data-testid="bot-row" data-bot-id=id.get_value() data-status=move || status.get().as_str().to_owned()>
            <div class="bot-main">
                <h2 class="bot-title">{name}</h2>
                <StatusBadge status=status/>
                <dl class="bot-facts">
                    <dt>"Phone"</dt><dd>{phone}</dd>
                    <dt>"Messages"</dt><dd>{move || message_count().to_string()}</dd>
                </dl>
                {move || (status.get() != BotStatus::Connected).then(|| bot.with(|b| b.as_ref().and_then(|b| b.status_reason.clone())))
                    .flatten()
                    .map(|why| view! { <p class="bot-reason" data-testid="status-reason">{why}</p> })}
            </div>
            <div class="bot-actions">
                <Show when=move || status.get() != BotStatus::Connected && !showing_qr.get()>
                    <button type="button" class="primary" data-testid="generate-qr"
                        on:click=move |_| id.with_value(|id| conn.show_qr(id))>"Reconnect"</button>
                </Show>
                <Show when=move || status.get() == BotStatus::Connected>
                    <button type="button" class="secondary" data-testid="unlink-bot"
                        on:click=move |_| confirm.set(Some(Confirm::Unlink))>"Unlink"</button>
                </Show>
                <button type="button" class="danger" data-testid="delete-bot"
                    on:click=move |_| confirm.set(Some(Confirm::Delete))>"Delete"</button>
            </div>
            {move || confirm.get().map(|what| {
                let question = match what {
                    Confirm::Unlink => "Unlink the phone from this bot? It stops answering until linked again.",
                    Confirm::Delete => "Delete this bot? This cannot be undone.",
                };
                view! {
                    <div class="confirm" role="alertdialog" aria-label="Confirm">
                        <p>{question}</p>
                        <button type="button" class="danger" data-testid="confirm-action" disabled=move || busy.get()
                            on:click=move |_| run(what)>
                            {if what == Confirm::Delete { "Delete" } else { "Unlink" }}
                        </button>
                        <button type="button" class="secondary" on:click=move |_| confirm.set(None)>"Keep"</button>
                    </div>
                }
            })}
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <Show when=move || showing_qr.get()>
                <QrPanel bot_id=id.get_value() show_generate=false/>
            </Show>
        </li>
    }
}
