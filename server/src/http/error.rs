//! The API's errors in the contract's shape (`{"error": "..."}` with a 4xx/5xx status and, for
//! 429 and 503, `Retry-After`), and the JSON extractor whose rejections are such errors.

use crate::{
    cluster::coordination::Down,
    link::LinkError,
    store::{RETRY_WHEN_DOWN, StoreError},
};
use axum::{
    Json,
    extract::{FromRequest, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use protocol::http::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    TooLarge,
    #[error("too many requests; retry after {} s", .0.as_secs().max(1))]
    RateLimited(std::time::Duration),
    #[error("{0}")]
    Unavailable(String, std::time::Duration),
    #[error("{0}")]
    Broken(String),
    #[error("internal error")]
    Internal(#[from] StoreError),
}

/// Redis is down: come back shortly (a 503, never a logout).
impl From<Down> for ApiError {
    fn from(e: Down) -> Self {
        ApiError::Unavailable(e.to_string(), RETRY_WHEN_DOWN)
    }
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::AlreadyConnected => {
                ApiError::Conflict("the bot is already connected".into())
            }
            LinkError::Unavailable {
                reason,
                retry_after,
            } => ApiError::Unavailable(reason, retry_after),
            LinkError::Broken(why) => ApiError::Broken(why),
        }
    }
}

/// `Retry-After` in whole seconds, at least 1.
fn retry_after_secs(wait: std::time::Duration) -> String {
    (wait.as_secs_f64().ceil().max(1.0) as u64).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Broken(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(wait) | ApiError::Unavailable(_, wait) => {
                let status = match &self {
                    ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                let body = Json(ErrorBody {
                    error: self.to_string(),
                });
                return (
                    status,
                    [(axum::http::header::RETRY_AFTER, retry_after_secs(*wait))],
                    body,
                )
                    .into_response();
            }
            ApiError::Internal(StoreError::Down(why)) => {
                tracing::warn!("answering 503: the database is down: {why}");
                return ApiError::Unavailable(
                    "the database is unavailable; try again shortly".into(),
                    RETRY_WHEN_DOWN,
                )
                .into_response();
            }
            ApiError::Internal(e) => {
                tracing::error!("{e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

/// `Json` whose rejections are contract errors (`{"error"}`), not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}
