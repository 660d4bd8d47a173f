//! Dev-mode extras of PROTOCOL.md §8: contract events on demand (`emit`), token expiry and
//! revocation, and the counters. Absent with `--production`. WhatsApp's own failures come from
//! WhatsApp (in tests, from the WhatsApp double's admin API), not from here.

use crate::{
    app::state::AppState,
    cluster::coordination::Coordination,
    cluster::redis as cluster_redis,
    core::context::Ctx,
    core::stats::Counters,
    http::api::{User, owned_bot},
    http::error::{ApiError, ApiJson},
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
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/dev/bots/{id}/emit", post(emit))
        .route("/api/dev/tokens/expire", post(expire))
        .route("/api/dev/tokens/revoke", post(revoke))
        .route("/api/dev/stats", get(stats))
        .route("/api/dev/stats/cluster", get(cluster_stats))
        .route("/api/dev/stats/reset", post(reset))
}

/// A contract event as a Node.js backend would send it: its name and its payload.
#[derive(Deserialize)]
struct Emit {
    event: String,
    data: serde_json::Value,
}

/// The events of PROTOCOL.md §3 a bot's sockets may be sent.
const CONTRACT_EVENTS: [&str; 4] = [
    protocol::events::WHATSAPP_CONNECTION_EVENT,
    protocol::events::BOT_STATUS_UPDATE,
    protocol::events::CONNECTION_UPDATE,
    protocol::events::MESSAGE_SYNC,
];

/// `POST /api/dev/bots/{id}/emit {"event", "data"}`: sends a contract event, as it is (say a
/// `connection_failed` with a code only Baileys backends send), to the bot's sockets, in the
/// bot's order. It drives no pairing and stores nothing: it keeps the app's handling of what
/// other backends send tested.
async fn emit(
    State(ctx): State<Ctx>,
    User(user): User,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Emit>,
) -> Result<StatusCode, ApiError> {
    owned_bot(&ctx, &user, &id).await?;
    if !CONTRACT_EVENTS.contains(&req.event.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "event must be one of {}",
            CONTRACT_EVENTS.join(", ")
        )));
    }
    if req.data.get("botId").and_then(serde_json::Value::as_str) != Some(id.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "data must be an object whose botId is this bot's ({id})"
        )));
    }
    ctx.emit_json_to_user(&user, &id, req.event, req.data);
    Ok(StatusCode::NO_CONTENT)
}

async fn expire(State(ctx): State<Ctx>, User(user): User) -> Result<StatusCode, ApiError> {
    ctx.store.expire_tokens(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(State(ctx): State<Ctx>, User(user): User) -> Result<StatusCode, ApiError> {
    ctx.store.revoke_tokens(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This node's counters, with its name.
#[derive(Serialize)]
struct NodeStats {
    node: String,
    #[serde(flatten)]
    counters: Counters,
}

async fn stats(State(ctx): State<Ctx>) -> Json<NodeStats> {
    Json(NodeStats {
        node: ctx.node.clone(),
        counters: ctx.counters(),
    })
}

/// Every live node's counters and their sum (a node's leave the sum when it stops).
#[derive(Serialize)]
struct ClusterStats {
    nodes: BTreeMap<String, Counters>,
    #[serde(flatten)]
    sum: Counters,
}

async fn cluster_stats(
    State(ctx): State<Ctx>,
    State(coordination): State<Arc<Coordination>>,
) -> Result<Json<ClusterStats>, ApiError> {
    let nodes = match coordination.as_ref() {
        Coordination::Local(_) => BTreeMap::from([(ctx.node.clone(), ctx.counters())]),
        Coordination::Redis(redis) => cluster_redis::read_stats(redis.client())
            .await
            .map_err(|e| ApiError::Unavailable(e, RETRY_WHEN_DOWN))?,
    };
    let mut sum = Counters::default();
    for c in nodes.values() {
        sum.add(c);
    }
    Ok(Json(ClusterStats { nodes, sum }))
}

async fn reset(State(ctx): State<Ctx>) -> StatusCode {
    ctx.stats.reset();
    StatusCode::NO_CONTENT
}
