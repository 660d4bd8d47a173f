//! The backend's address and the HTTP failures of PROTOCOL.md §1, shared by the API calls
//! ([`crate::api`]) and the session ([`crate::session`]).

use crate::connection::machine::{HttpFailure, Millis};
use crate::json::BrowserJson;
use gloo_net::http::{Request, RequestBuilder, Response};
use protocol::{http::ErrorBody, json::Json};
use serde::{Serialize, de::DeserializeOwned};

/// The backend's origin: `BOTLINK_BACKEND_URL` at build time, or empty for the app's own origin.
pub fn backend_url() -> &'static str {
    option_env!("BOTLINK_BACKEND_URL")
        .unwrap_or("")
        .trim_end_matches('/')
}

/// `ws(s)://<backend>/socket.io/?EIO=4&transport=websocket` — no token in it.
pub fn socket_url() -> String {
    let base = match backend_url() {
        "" => web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default(),
        url => url.to_owned(),
    };
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base
    };
    format!("{ws}/socket.io/?EIO=4&transport=websocket")
}

/// Why a call failed, in words a page can show.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("Your session ended. Sign in again.")]
    Unauthorized,
    #[error("Too many requests; try again in a moment.")]
    RateLimited { retry_after: Option<Millis> },
    #[error("{message}")]
    Status { status: u16, message: String },
    #[error("The server cannot be reached. Check that botlink-server is running.")]
    Network,
}

impl ApiError {
    pub fn to_http_failure(&self) -> HttpFailure {
        match self {
            ApiError::Unauthorized => HttpFailure::Unauthorized,
            ApiError::RateLimited { retry_after } => HttpFailure::RateLimited {
                retry_after: *retry_after,
            },
            ApiError::Status { status: 409, .. } => HttpFailure::AlreadyConnected,
            ApiError::Status { status, message } => HttpFailure::Status {
                status: *status,
                message: message.clone(),
            },
            ApiError::Network => HttpFailure::Network,
        }
    }
}

pub async fn error_of(resp: Response) -> ApiError {
    let status = resp.status();
    if status == 429 {
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            // Untrusted: a hostile header must not overflow (the machine bounds the wait).
            .map(|s| s.saturating_mul(1000));
        return ApiError::RateLimited { retry_after };
    }
    let message = match read_body::<ErrorBody>(resp).await {
        Ok(body) => body.error,
        Err(_) => format!("The server answered {status}."),
    };
    if status == 401 {
        return ApiError::Unauthorized;
    }
    ApiError::Status { status, message }
}

/// A response's JSON body, read through the browser's own parser.
pub async fn read_body<T: DeserializeOwned>(resp: Response) -> Result<T, String> {
    let text = resp.text().await.map_err(|e| e.to_string())?;
    BrowserJson.read(&text)
}

/// A request with `body` as its JSON.
pub fn with_json<T: Serialize>(builder: RequestBuilder, body: &T) -> Result<Request, ApiError> {
    builder
        .header("Content-Type", "application/json")
        .body(BrowserJson.write(body))
        .map_err(|_| ApiError::Network)
}

/// The URL of an API path on the backend.
pub fn url(path: &str) -> String {
    format!("{}{path}", backend_url())
}
