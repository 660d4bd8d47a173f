//! Dev-mode extras of PROTOCOL.md §8: failure codes on demand, token expiry and revocation,
//! and the counters. Absent with `--production`.

use crate::{
    api::{User, owned_bot},
    cluster,
    coordination::Coordination,
    error::{ApiError, ApiJson},
    pairing,
    state::Shared,
    stats::Counters,
    store::RETRY_WHEN_DOWN,
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;
use serde::Serialize;
use std::collections::BTreeMap;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/dev/bots/{id}/fail", post(fail))
        .route("/api/dev/tokens/expire", post(expire))
        .route("/api/dev/tokens/revoke", post(revoke))
        .route("/api/dev/stats", get(stats))
        .route("/api/dev/stats/cluster", get(cluster_stats))
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
    owned_bot(&st, &user, &id).await?;
    pairing::fail(&st.ctx, &user, &id, req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn expire(State(st): State<Shared>, User(user): User) -> Result<StatusCode, ApiError> {
    st.store.expire_tokens(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(State(st): State<Shared>, User(user): User) -> Result<StatusCode, ApiError> {
    st.store.revoke_tokens(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This node's counters, with its name.
#[derive(Serialize)]
struct NodeStats {
    node: String,
    #[serde(flatten)]
    counters: Counters,
}

async fn stats(State(st): State<Shared>) -> Json<NodeStats> {
    Json(NodeStats {
        node: st.node.clone(),
        counters: st.counters(),
    })
}

/// Every live node's counters and their sum (a node's leave the sum when it stops).
#[derive(Serialize)]
struct ClusterStats {
    nodes: BTreeMap<String, Counters>,
    #[serde(flatten)]
    sum: Counters,
}

async fn cluster_stats(State(st): State<Shared>) -> Result<Json<ClusterStats>, ApiError> {
    let nodes = match &st.coordination {
        Coordination::Local(_) => BTreeMap::from([(st.node.clone(), st.counters())]),
        Coordination::Redis(redis) => cluster::read_stats(redis.client())
            .await
            .map_err(|e| ApiError::Unavailable(e, RETRY_WHEN_DOWN))?,
    };
    let mut sum = Counters::default();
    for c in nodes.values() {
        sum.add(c);
    }
    Ok(Json(ClusterStats { nodes, sum }))
}

async fn reset(State(st): State<Shared>) -> StatusCode {
    st.stats.reset();
    StatusCode::NO_CONTENT
}
