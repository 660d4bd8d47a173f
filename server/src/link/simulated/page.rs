//! `/link/<ref>`: the phone-friendly page a QR code opens, and its form that completes the "scan";
//! `/link/code`: where a phone enters a pairing code instead. Every server string in them is
//! HTML-escaped.

use crate::{
    app::state::AppState, cluster::coordination::Coordination, cluster::coordination::Limit,
    core::context::Ctx, link::simulated::pairing, link::simulated::pairings::RefLookup,
};
use axum::{
    Router,
    extract::{Form, Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/link/code", get(code_form).post(enter_code))
        .route("/link/{qr_ref}", get(show).post(complete))
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
button:focus-visible,input:focus-visible{{outline:3px solid #f5a623;outline-offset:2px}}
label{{display:block;font-weight:600;margin-bottom:.25rem}}
input{{font:600 1.6rem/1.2 ui-monospace,monospace;letter-spacing:.15em;width:100%;padding:.6rem;border:1px solid #8895a1;border-radius:8px;margin-bottom:1rem;text-transform:uppercase}}
.error{{background:#fde8e7;border-radius:8px;padding:.5rem .75rem}}
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
        "unavailable" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server cannot complete this right now. Nothing was linked — try again in a moment.",
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

/// The phone accepted the link: say so, with the bot's name.
fn linking(name: &str) -> Response {
    page(
        StatusCode::OK,
        "Linking",
        &format!(
            r#"<h1 data-testid="link-done">Linking {}…</h1><p>The device is being linked. You can go back to the dashboard.</p>"#,
            escape(name)
        ),
    )
}

async fn show(State(ctx): State<Ctx>, Path(qr_ref): Path<String>) -> Response {
    let bot_id = match pairing::lookup(&ctx, &qr_ref).await {
        Ok(RefLookup::Live { bot_id }) => bot_id,
        Ok(RefLookup::Spent(why)) => return gone(&why),
        Ok(RefLookup::Unknown) => return gone("unknown"),
        Err(e) => {
            tracing::warn!("a link page could not be shown: {e}");
            return gone("unavailable");
        }
    };
    let name = ctx
        .store
        .get_bot_any(&bot_id)
        .await
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
<form method="post"><button type="submit" data-testid="confirm-link">Link device</button></form>
<p><a href="/link/code">Have a pairing code instead?</a></p>"#,
            name = escape(&name)
        ),
    )
}

/// The form where a pairing code is entered, with `error` above it when the last try failed.
fn code_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| {
            format!(
                r#"<p class="error" role="alert" data-testid="code-invalid">{}</p>"#,
                escape(e)
            )
        })
        .unwrap_or_default();
    page(
        status,
        "Enter a pairing code",
        &format!(
            r#"<h1>Link with a pairing code</h1>
<p>Enter the 8-character code the botlink dashboard shows.</p>{error}
<form method="post"><label for="code">Pairing code</label>
<input id="code" name="code" required maxlength="12" autocomplete="one-time-code"
 autocapitalize="characters" spellcheck="false" placeholder="XXXX-XXXX" data-testid="code-input">
<button type="submit" data-testid="confirm-code">Link device</button></form>"#
        ),
    )
}

async fn code_form() -> Response {
    code_page(StatusCode::OK, None)
}

#[derive(serde::Deserialize)]
struct CodeEntry {
    #[serde(default)]
    code: String,
}

async fn enter_code(
    State(ctx): State<Ctx>,
    State(coordination): State<Arc<Coordination>>,
    Form(entry): Form<CodeEntry>,
) -> Response {
    let allowed = match coordination.take(Limit::CodeEntry, "everyone").await {
        Ok(allowed) => allowed,
        Err(e) => {
            tracing::warn!("a pairing code could not be checked: {e}");
            return code_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The server cannot check codes right now. Try again in a moment."),
            );
        }
    };
    if let Err(wait) = allowed {
        let secs = wait.as_secs().max(1);
        return code_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many tries. Wait {secs} s, then enter the code again."
            )),
        );
    }
    match pairing::enter_code(&ctx, &entry.code)
        .await
        .as_deref()
        .map_err(String::as_str)
    {
        Ok(name) => linking(name),
        Err("unavailable") => code_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The server cannot check codes right now. Try again in a moment."),
        ),
        Err("expired" | "used") => code_page(
            StatusCode::GONE,
            Some(
                "This code has expired or was used. Nothing was linked — get a new code on the dashboard.",
            ),
        ),
        Err(_) => code_page(
            StatusCode::NOT_FOUND,
            Some("That is not a valid pairing code. Nothing was linked — check it and try again."),
        ),
    }
}

async fn complete(State(ctx): State<Ctx>, Path(qr_ref): Path<String>) -> Response {
    match pairing::scan(&ctx, &qr_ref).await {
        Ok(name) => linking(&name),
        Err(why) => gone(&why),
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
