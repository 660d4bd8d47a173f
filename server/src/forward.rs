//! Cluster mode, real link: a request that acts on a bot's WhatsApp session (`POST .../qr`,
//! `.../pairing-code`, `.../logout`, `DELETE` the bot) is answered by the node that holds the
//! bot's device, wherever the load balancer sent it. This node passes it on as it came (the
//! holder checks the token itself) and hands back the holder's answer.

use crate::{error::ApiError, state::Shared};
use axum::{
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderName, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{sync::LazyLock, time::Duration};

/// Set on a passed-on request: its receiver answers it itself, whatever it finds.
const FORWARDED: HeaderName = HeaderName::from_static("x-botlink-forwarded-by");

/// The largest body passed on (the API's requests are a few hundred bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// What the holder is asked to answer within: its own longest answer (a QR, 10 s) and more.
const HOLDER_ANSWERS_WITHIN: Duration = Duration::from_secs(15);

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .timeout(HOLDER_ANSWERS_WITHIN)
        .build()
        .expect("an HTTP client with no TLS and no proxy builds")
});

/// Middleware on the routes that act on a bot's session: passes the request to the bot's
/// holder while it lives; otherwise this node answers (the link explains a gone holder).
pub async fn to_holder(
    State(st): State<Shared>,
    Path(bot_id): Path<String>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::GET || req.headers().contains_key(&FORWARDED) {
        return next.run(req).await;
    }
    match st.link.holder(&st.ctx, &bot_id).await {
        Some(hold) if hold.live() => match pass_on(&st, &hold.url, req).await {
            Ok(answer) => answer,
            Err(why) => {
                tracing::warn!(bot = %bot_id, holder = %hold.node, "could not pass a request on: {why}");
                ApiError::Unavailable(
                    format!(
                        "The server node holding this bot's WhatsApp session ({}) did not answer; try again.",
                        hold.node
                    ),
                    Duration::from_secs(2),
                )
                .into_response()
            }
        },
        _ => next.run(req).await,
    }
}

async fn pass_on(st: &Shared, holder_url: &str, req: Request) -> Result<Response, String> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|e| format!("the request body: {e}"))?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = CLIENT
        .request(parts.method.clone(), format!("{holder_url}{path}"))
        .header(&FORWARDED, st.node.as_str())
        .body(body);
    for name in [
        axum::http::header::AUTHORIZATION,
        axum::http::header::CONTENT_TYPE,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out = out.header(name, v);
        }
    }
    let answer = out.send().await.map_err(|e| e.to_string())?;
    let mut back = Response::builder().status(answer.status());
    for name in [
        axum::http::header::CONTENT_TYPE,
        axum::http::header::RETRY_AFTER,
    ] {
        if let Some(v) = answer.headers().get(&name) {
            back = back.header(name, v);
        }
    }
    let bytes = answer.bytes().await.map_err(|e| e.to_string())?;
    back.body(Body::from(bytes)).map_err(|e| e.to_string())
}
