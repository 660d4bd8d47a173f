//! Cluster mode, real link: a request that acts on a bot's WhatsApp session (`POST .../qr`,
//! `.../pairing-code`, `.../logout`, `DELETE` the bot) is answered by the node that holds the
//! bot's device, wherever the load balancer sent it. This node passes it on as it came (the
//! holder checks the token itself) and hands back the holder's answer.
//!
//! A passed-on request is signed with the cluster's secret (`--cluster-secret`): an HMAC-SHA256
//! over its method, path, sender, time and body. Its receiver answers it itself only when the
//! signature is valid and under 30 s old; a request that merely claims to be passed on is
//! treated as coming from outside (its claim removed), so no one outside can make a node that
//! does not hold a device act on it.

use crate::{core::context::Ctx, http::error::ApiError, link::Link, store::now_ms};
use axum::{
    body::{Body, Bytes},
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderName, Method, StatusCode, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::{sync::LazyLock, time::Duration};

/// Set on a passed-on request: the node that passed it on, when, and its signature.
const FORWARDED: HeaderName = HeaderName::from_static("x-botlink-forwarded-by");
const FORWARDED_AT: HeaderName = HeaderName::from_static("x-botlink-forwarded-at");
const SIGNATURE: HeaderName = HeaderName::from_static("x-botlink-forward-signature");

/// A signature older than this (or this far in the future: clocks differ) is refused.
const SIGNATURE_FRESH_MS: i64 = 30_000;

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
/// holder while it lives; otherwise this node answers (the link explains a gone holder). A
/// request validly signed by another node is answered here.
pub async fn to_holder(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    Path(bot_id): Path<String>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() == Method::GET {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::TooLarge.into_response();
    };
    if parts.headers.contains_key(&FORWARDED) {
        let checked = match ctx.cfg.cluster_secret.as_deref() {
            Some(secret) => verify(secret, &parts, &body, now_ms()),
            None => Err("this server has no cluster secret"),
        };
        match checked {
            Ok(()) => return next.run(Request::from_parts(parts, Body::from(body))).await,
            Err(why) => {
                tracing::warn!(bot = %bot_id, "a request claimed to be passed on by another node: {why}; treated as coming from outside");
                strip(&mut parts.headers);
            }
        }
    }
    match link.holder(&ctx, &bot_id).await {
        Some(hold) if hold.live() => match pass_on(&ctx, &hold.url, &parts, body).await {
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
        _ => {
            let answer = next
                .run(Request::from_parts(parts.clone(), Body::from(body.clone())))
                .await;
            // Asked on two nodes at once, the other one took the device's hold first (this one
            // found no holder, then lost the race for the hold): the holder's answer is the one,
            // not a "try again".
            if answer.status() != StatusCode::SERVICE_UNAVAILABLE {
                return answer;
            }
            match link.holder(&ctx, &bot_id).await {
                Some(hold) if hold.live() => pass_on(&ctx, &hold.url, &parts, body)
                    .await
                    .unwrap_or(answer),
                _ => answer,
            }
        }
    }
}

fn strip(headers: &mut HeaderMap) {
    for name in [FORWARDED, FORWARDED_AT, SIGNATURE] {
        headers.remove(name);
    }
}

/// The signature of a passed-on request: HMAC-SHA256 with the cluster's secret over what the
/// request is (method, path with query, body) and who sent it when.
fn sign(
    secret: &str,
    method: &Method,
    path: &str,
    node: &str,
    at: i64,
    body: &[u8],
) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    let body_hash = hex::encode(Sha256::digest(body));
    mac.update(
        format!("botlink-forward-v1\n{method}\n{path}\n{node}\n{at}\n{body_hash}").as_bytes(),
    );
    mac
}

/// Whether a request claiming to be passed on was, by a node of this cluster, lately.
fn verify(secret: &str, parts: &Parts, body: &[u8], now: i64) -> Result<(), &'static str> {
    let header = |name: &HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or("a header of the signature is missing")
    };
    let node = header(&FORWARDED)?;
    let at: i64 = header(&FORWARDED_AT)?
        .parse()
        .map_err(|_| "its time is not a number")?;
    let signature = hex::decode(header(&SIGNATURE)?).map_err(|_| "its signature is not hex")?;
    if (now - at).abs() > SIGNATURE_FRESH_MS {
        return Err("its signature is not fresh");
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    sign(secret, &parts.method, path, node, at, body)
        .verify_slice(&signature)
        .map_err(|_| "its signature does not match")
}

async fn pass_on(
    ctx: &Ctx,
    holder_url: &str,
    parts: &Parts,
    body: Bytes,
) -> Result<Response, String> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let secret = ctx
        .cfg
        .cluster_secret
        .as_deref()
        .ok_or("this node has no cluster secret to sign with")?;
    let at = now_ms();
    let signature = sign(secret, &parts.method, path, &ctx.node, at, &body)
        .finalize()
        .into_bytes();
    let mut out = CLIENT
        .request(parts.method.clone(), format!("{holder_url}{path}"))
        .header(&FORWARDED, ctx.node.as_str())
        .header(&FORWARDED_AT, at.to_string())
        .header(&SIGNATURE, hex::encode(signature))
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

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-cluster-secret-of-the-test";

    fn passed_on(
        method: Method,
        path: &str,
        node: &str,
        at: i64,
        body: &[u8],
        secret: &str,
    ) -> Parts {
        let signature = hex::encode(
            sign(secret, &method, path, node, at, body)
                .finalize()
                .into_bytes(),
        );
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header(FORWARDED, node)
            .header(FORWARDED_AT, at.to_string())
            .header(SIGNATURE, signature)
            .body(())
            .unwrap();
        req.into_parts().0
    }

    #[test]
    fn only_a_fresh_request_signed_with_the_clusters_secret_is_taken_as_passed_on() {
        let now = 1_000_000;
        let path = "/api/bots/bot_1/logout";
        let ok = passed_on(Method::POST, path, "node1", now, b"{}", SECRET);
        assert_eq!(verify(SECRET, &ok, b"{}", now), Ok(()));
        assert_eq!(verify(SECRET, &ok, b"{}", now + SIGNATURE_FRESH_MS), Ok(()));
        // Another body, another secret, a stale or a future time, another path: refused.
        assert!(verify(SECRET, &ok, b"{\"x\":1}", now).is_err());
        let other = passed_on(
            Method::POST,
            path,
            "node1",
            now,
            b"{}",
            "someone-elses-secret",
        );
        assert!(verify(SECRET, &other, b"{}", now).is_err());
        assert!(verify(SECRET, &ok, b"{}", now + SIGNATURE_FRESH_MS + 1).is_err());
        assert!(verify(SECRET, &ok, b"{}", now - SIGNATURE_FRESH_MS - 1).is_err());
        let mut moved = ok.clone();
        moved.uri = "/api/bots/bot_2/logout".parse().unwrap();
        assert!(verify(SECRET, &moved, b"{}", now).is_err());
        // The bare claim of the old header, as anyone could send it.
        let mut claim = axum::http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(FORWARDED, "node1")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        assert!(verify(SECRET, &claim, b"", now).is_err());
        strip(&mut claim.headers);
        assert!(claim.headers.is_empty());
    }
}
