//! `/link/<ref>`: the phone-friendly page a QR code opens, and its form that completes the "scan".
//! Every server string in it is HTML-escaped.

use crate::{
    pairing::{self, RefLookup},
    state::Shared,
};
use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};

pub fn routes() -> Router<Shared> {
    Router::new().route("/link/{qr_ref}", get(show).post(complete))
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · botlink</title>
<style>
body{{font:18px/1.5 system-ui,sans-serif;margin:0;padding:2rem 1rem;background:#f4f6f8;color:#17212b}}
main{{max-width:26rem;margin:auto;background:#fff;border-radius:12px;padding:1.5rem;box-shadow:0 1px 4px #0002}}
h1{{font-size:1.4rem;margin-top:0}}
button{{font:inherit;width:100%;padding:.9rem;border:0;border-radius:8px;background:#0b6e4f;color:#fff;cursor:pointer}}
button:focus-visible{{outline:3px solid #f5a623;outline-offset:2px}}
</style></head><body><main>{body}</main></body></html>"#,
        title = escape(title),
    );
    (status, Html(html)).into_response()
}

fn gone(why: &str) -> Response {
    let (status, text) = match why {
        "used" => (
            StatusCode::GONE,
            "This code was already used. Nothing was linked.",
        ),
        "expired" => (
            StatusCode::GONE,
            "This code has expired. Nothing was linked — get a new QR code on the dashboard.",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "This link is not valid. Nothing was linked.",
        ),
    };
    page(
        status,
        "Link not valid",
        &format!(r#"<h1 data-testid="link-invalid">Link not valid</h1><p>{text}</p>"#),
    )
}

async fn show(State(st): State<Shared>, Path(qr_ref): Path<String>) -> Response {
    let bot_id = match st.pairings.lookup(&qr_ref) {
        RefLookup::Live { bot_id } => bot_id,
        RefLookup::Spent(why) => return gone(why),
        RefLookup::Unknown => return gone("unknown"),
    };
    let name = st
        .store
        .get_bot_any(&bot_id)
        .ok()
        .flatten()
        .map(|(_, b)| b.name)
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "Link this device",
        &format!(
            r#"<h1>Link this device to {name}?</h1>
<p>This links the bot <strong>{name}</strong> to this phone's WhatsApp.</p>
<form method="post"><button type="submit" data-testid="confirm-link">Link device</button></form>"#,
            name = escape(&name)
        ),
    )
}

async fn complete(State(st): State<Shared>, Path(qr_ref): Path<String>) -> Response {
    match pairing::scan(&st, &qr_ref) {
        Ok(name) => page(
            StatusCode::OK,
            "Linking",
            &format!(
                r#"<h1 data-testid="link-done">Linking {}…</h1><p>The device is being linked. You can go back to the dashboard.</p>"#,
                escape(&name)
            ),
        ),
        Err(why) => gone(why),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape(r#"<img src=x onerror="a">&'"#),
            "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;"
        );
    }
}
