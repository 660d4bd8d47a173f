//! HTTP calls and DTOs of PROTOCOL.md §1.
//!
//! Every call carries the session's bearer token. An answer of `401 token_expired` refreshes the
//! session once (single-flight, see [`crate::session`]) and repeats the call once; any other 401
//! means the session ended. No token ever goes into a URL or a log line.

pub use crate::http::ApiError;
use crate::http::{error_of, read_body, url, with_json};
use crate::session::SessionStore;
use gloo_net::http::{Request, RequestBuilder, Response};
use protocol::Pairing;
pub use protocol::http::{Bot, PairingCode, Session};
use protocol::http::{ErrorBody, NewBot, PairingCodeRequest, TOKEN_EXPIRED};
use serde::de::DeserializeOwned;

/// Whether a 401 says the token only expired (refreshable), from its `{"error"}` body.
async fn is_expired(resp: Response) -> bool {
    matches!(read_body::<ErrorBody>(resp).await, Ok(b) if b.error == TOKEN_EXPIRED)
}

/// One authorized call: `build` makes the request for a token; a `token_expired` answer
/// refreshes once and repeats it.
async fn authorized(
    session: &SessionStore,
    build: impl Fn(&str) -> Result<Request, ApiError>,
) -> Result<Response, ApiError> {
    let token = session.token().await?;
    let resp = build(&token)?.send().await.map_err(|_| ApiError::Network)?;
    if resp.status() != 401 {
        return Ok(resp);
    }
    if !is_expired(resp).await {
        return Err(ApiError::Unauthorized);
    }
    let token = session.refresh(&token).await?;
    build(&token)?.send().await.map_err(|_| ApiError::Network)
}

fn bearer(builder: RequestBuilder, token: &str) -> RequestBuilder {
    builder.header("Authorization", &format!("Bearer {token}"))
}

async fn json_of<T: DeserializeOwned>(resp: Response, ok: u16) -> Result<T, ApiError> {
    if resp.status() != ok {
        return Err(error_of(resp).await);
    }
    read_body::<T>(resp).await.map_err(|e| ApiError::Status {
        status: ok,
        message: format!("The server's answer could not be read: {e}"),
    })
}

fn no_body(builder: RequestBuilder) -> Result<Request, ApiError> {
    builder.build().map_err(|_| ApiError::Network)
}

pub async fn list_bots(session: &SessionStore) -> Result<Vec<Bot>, ApiError> {
    let resp = authorized(session, |t| {
        no_body(bearer(Request::get(&url("/api/bots")), t))
    })
    .await?;
    json_of(resp, 200).await
}

pub async fn get_bot(session: &SessionStore, id: &str) -> Result<Bot, ApiError> {
    let path = url(&format!("/api/bots/{}", encode(id)));
    let resp = authorized(session, |t| no_body(bearer(Request::get(&path), t))).await?;
    json_of(resp, 200).await
}

pub async fn create_bot(session: &SessionStore, name: &str) -> Result<Bot, ApiError> {
    let resp = authorized(session, |t| {
        with_json(
            bearer(Request::post(&url("/api/bots")), t),
            &NewBot {
                name: name.to_owned(),
            },
        )
    })
    .await?;
    json_of(resp, 201).await
}

pub async fn delete_bot(session: &SessionStore, id: &str) -> Result<(), ApiError> {
    let path = url(&format!("/api/bots/{}", encode(id)));
    let resp = authorized(session, |t| no_body(bearer(Request::delete(&path), t))).await?;
    expect_no_content(resp).await
}

pub async fn logout_bot(session: &SessionStore, id: &str) -> Result<(), ApiError> {
    let path = url(&format!("/api/bots/{}/logout", encode(id)));
    let resp = authorized(session, |t| no_body(bearer(Request::post(&path), t))).await?;
    expect_no_content(resp).await
}

/// `POST /api/bots/{id}/qr`: starts or joins the bot's pairing.
pub async fn start_qr(session: &SessionStore, id: &str) -> Result<Pairing, ApiError> {
    let path = url(&format!("/api/bots/{}/qr", encode(id)));
    let resp = authorized(session, |t| no_body(bearer(Request::post(&path), t))).await?;
    json_of(resp, 200).await
}

/// `POST /api/bots/{id}/pairing-code {"phone"}`. A backend without the extension answers 404.
pub async fn request_pairing_code(
    session: &SessionStore,
    id: &str,
    phone: &str,
) -> Result<PairingCode, ApiError> {
    let path = url(&format!("/api/bots/{}/pairing-code", encode(id)));
    let resp = authorized(session, |t| {
        with_json(
            bearer(Request::post(&path), t),
            &PairingCodeRequest {
                phone: phone.to_owned(),
            },
        )
    })
    .await?;
    json_of(resp, 200).await
}

async fn expect_no_content(resp: Response) -> Result<(), ApiError> {
    match resp.status() {
        200 | 204 => Ok(()),
        _ => Err(error_of(resp).await),
    }
}

/// Percent-encodes a path segment (ids come from the server, but a URL is no place to trust them).
fn encode(segment: &str) -> String {
    js_sys::encode_uri_component(segment).into()
}
