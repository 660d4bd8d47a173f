//! Dev-mode extras of PROTOCOL.md §8: failure codes on demand, token expiry and revocation,
//! and the counters. Absent with `--production`.

use crate::{
    api::{ApiError, ApiJson, User, owned_bot},
    pairing,
    state::{Counters, Shared},
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/dev/bots/{id}/fail", post(fail))
        .route("/api/dev/tokens/expire", post(expire))
        .route("/api/dev/tokens/revoke", post(revoke))
        .route("/api/dev/stats", get(stats))
        .route("/api/dev/stats/reset", post(reset))
}

#[derive(Deserialize)]
struct Fail {
    code: u16,
}

async fn fail(
    State(st): State<Shared>,
    User(user): User,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Fail>,
) -> Result<StatusCode, ApiError> {
    owned_bot(&st, &user, &id)?;
    pairing::fail(&st, &user, &id, req.code);
    Ok(StatusCode::NO_CONTENT)
}

async fn expire(State(st): State<Shared>, User(user): User) -> Result<StatusCode, ApiError> {
    st.store.expire_tokens(&user)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(State(st): State<Shared>, User(user): User) -> Result<StatusCode, ApiError> {
    st.store.revoke_tokens(&user)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stats(State(st): State<Shared>) -> Json<Counters> {
    Json(st.stats.snapshot())
}

async fn reset(State(st): State<Shared>) -> StatusCode {
    st.stats.reset();
    StatusCode::NO_CONTENT
}
