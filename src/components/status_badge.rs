use leptos::prelude::*;
use protocol::BotStatus;

/// Words for a bot status of PROTOCOL.md §1.
pub fn status_label(status: BotStatus) -> &'static str {
    match status {
        BotStatus::Created => "Not linked",
        BotStatus::Pairing => "Pairing",
        BotStatus::Connected => "Connected",
        BotStatus::Disconnected => "Disconnected",
        BotStatus::LoggedOut => "Logged out",
        BotStatus::Conflict => "Conflict",
        BotStatus::Unknown => "Unknown",
    }
}

/// A bot's status as a coloured badge with words (colour is never the only signal).
#[component]
pub fn StatusBadge(status: Memo<BotStatus>) -> impl IntoView {
    view! {
        <span class=move || format!("badge badge-{}", status.get().as_str())>
            {move || status_label(status.get()).to_owned()}
        </span>
    }
}
