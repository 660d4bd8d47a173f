use leptos::prelude::*;

/// Words for a bot status of PROTOCOL.md §1.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "created" => "Not linked",
        "pairing" => "Pairing",
        "connected" => "Connected",
        "disconnected" => "Disconnected",
        "logged_out" => "Logged out",
        "conflict" => "Conflict",
        _ => "Unknown",
    }
}

/// A bot's status as a coloured badge with words (colour is never the only signal).
#[component]
pub fn StatusBadge(#[prop(into)] status: Signal<String>) -> impl IntoView {
    view! {
        <span class=move || format!("badge badge-{}", status.get())>
            {move || status_label(&status.get())}
        </span>
    }
}
