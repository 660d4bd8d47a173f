//! The HTTP API of PROTOCOL.md §1. Every error is `{"error": "..."}` with a 4xx/5xx status.

use crate::{
    app::state::AppState,
    cluster::coordination::{Coordination, Limit},
    core::bot_status::set_status,
    core::context::Ctx,
    http::error::{ApiError, ApiJson},
    link::{Link, LinkError},
    realtime::socket::valid_id,
    store::TokenCheck,
};
use axum::{
    Json, Router,
    extract::{FromRef, FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
    routing::{get, post},
};
use protocol::{
    Bot, BotStatus, Pairing, Session,
    http::{Health, NewBot, NewSession, PairingCode, PairingCodeRequest},
};
use std::sync::Arc;

/// The caller, from `Authorization: Bearer <token>`.
pub struct User(pub String);

impl<S: Send + Sync> FromRequestParts<S> for User
where
    Ctx: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized("unauthorized"))?;
        let ctx = Ctx::from_ref(st);
        match ctx.store.check_token(token).await? {
            TokenCheck::Valid { user_id } => Ok(User(user_id)),
            TokenCheck::Expired { .. } => Err(ApiError::Unauthorized("token_expired")),
            TokenCheck::Unknown => Err(ApiError::Unauthorized("unauthorized")),
        }
    }
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A stored bot with its running pairing, as `Bot` of §1.
async fn bot(ctx: &Ctx, link: &Arc<dyn Link>, stored: Bot) -> Bot {
    let pairing = link.pairing(ctx, &stored.id).await;
    Bot { pairing, ..stored }
}

pub fn routes(st: &AppState) -> Router<AppState> {
    // What acts on a bot's session is answered by the node holding its device (`forward.rs`).
    let to_holder =
        axum::middleware::from_fn_with_state(st.clone(), crate::cluster::forward::to_holder);
    let mut r = Router::new()
        .route("/api/health", get(health))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/bots", get(list_bots).post(create_bot))
        .route(
            "/api/bots/{id}",
            get(get_bot).delete(delete_bot).layer(to_holder.clone()),
        )
        .route("/api/bots/{id}/qr", post(start_qr).layer(to_holder.clone()))
        .route(
            "/api/bots/{id}/pairing-code",
            post(pairing_code).layer(to_holder.clone()),
        )
        .route("/api/bots/{id}/logout", post(logout).layer(to_holder));
    if !st.cfg.production {
        r = r.route("/api/auth/session", post(create_session));
    }
    r
}

/// `ok`, or `503 draining` once the node stops (the load balancer sends no one new here).
async fn health(State(ctx): State<Ctx>) -> (StatusCode, Json<Health>) {
    let draining = ctx.draining.load(std::sync::atomic::Ordering::SeqCst);
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let health = Health {
        status: if draining { "draining" } else { "ok" }.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        whatsapp_certificate_check: Some(
            crate::link::whatsapp::certificate::this_binary()
                .as_str()
                .into(),
        ),
    };
    (status, Json(health))
}

async fn create_session(
    State(ctx): State<Ctx>,
    body: axum::body::Bytes,
) -> Result<Json<Session>, ApiError> {
    // The body is optional: no body, or `{}`, makes a new dev user.
    let req: NewSession = if body.iter().all(u8::is_ascii_whitespace) {
        NewSession::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let user_id = match req.user_id {
        Some(u) if valid_id(&u) => u,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "userId must be 1–64 letters, digits, '_' or '-'".into(),
            ));
        }
        None => format!("dev_{}", crate::store::random_id(6)),
    };
    let (token, expires_at) = ctx
        .store
        .create_session(&user_id, ctx.cfg.token_ttl_ms)
        .await?;
    tracing::info!(user = %user_id, "session created");
    Ok(Json(Session {
        token,
        user_id,
        expires_at: rfc3339_ms(expires_at),
    }))
}

async fn refresh(State(ctx): State<Ctx>, parts: Parts) -> Result<Json<Session>, ApiError> {
    let token = bearer(&parts).ok_or(ApiError::Unauthorized("unauthorized"))?;
    match ctx.store.refresh(token, ctx.cfg.token_ttl_ms).await? {
        Some((token, user_id, expires_at)) => {
            tracing::info!(user = %user_id, "session refreshed");
            Ok(Json(Session {
                token,
                user_id,
                expires_at: rfc3339_ms(expires_at),
            }))
        }
        None => Err(ApiError::Unauthorized("unauthorized")),
    }
}

async fn list_bots(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    User(user): User,
) -> Result<Json<Vec<Bot>>, ApiError> {
    let rows = ctx.store.list_bots(&user).await?;
    let mut bots = Vec::with_capacity(rows.len());
    for row in rows {
        bots.push(bot(&ctx, &link, row).await);
    }
    Ok(Json(bots))
}

async fn create_bot(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    User(user): User,
    ApiJson(req): ApiJson<NewBot>,
) -> Result<(StatusCode, Json<Bot>), ApiError> {
    let name = req.name.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(ApiError::BadRequest("name must not be empty".into()));
    }
    if len > 64 {
        return Err(ApiError::BadRequest(format!(
            "name must be at most 64 characters (it has {len})"
        )));
    }
    let row = ctx.store.create_bot(&user, name).await?;
    Ok((StatusCode::CREATED, Json(bot(&ctx, &link, row).await)))
}

/// The caller's bot `id`; a malformed id or another user's bot is a 404.
pub async fn owned_bot(ctx: &Ctx, user: &str, id: &str) -> Result<Bot, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::NotFound);
    }
    ctx.store.get_bot(user, id).await?.ok_or(ApiError::NotFound)
}

async fn get_bot(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Json<Bot>, ApiError> {
    let stored = owned_bot(&ctx, &user, &id).await?;
    Ok(Json(bot(&ctx, &link, stored).await))
}

async fn delete_bot(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    owned_bot(&ctx, &user, &id).await?;
    if let Some(hold) = link.holder(&ctx, &id).await
        && hold.live()
    {
        // Its session runs on another node, which this request did not reach.
        return Err(LinkError::held_elsewhere(&hold).into());
    }
    // The row (and its hold) first: when the database cannot delete, nothing is unlinked and
    // the answer says so. Then the session and the device, which cannot come back.
    ctx.store.delete_bot(&user, &id).await?;
    link.unlink(&ctx, &id).await.map_err(|e| {
        ApiError::Broken(format!(
            "the bot was deleted, but its WhatsApp device could not be forgotten: {e}"
        ))
    })?;
    Ok(StatusCode::NO_CONTENT)
}

async fn start_qr(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    State(coordination): State<Arc<Coordination>>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<Json<Pairing>, ApiError> {
    let row = owned_bot(&ctx, &user, &id).await?;
    coordination
        .take(Limit::Qr, &user)
        .await?
        .map_err(ApiError::RateLimited)?;
    Ok(Json(link.start(&ctx, &user, &row).await?))
}

/// The digits of a phone number typed with its country code (`+49 151 2345-678`, `(415) 555…`),
/// or why it cannot be one. E.164 numbers have at most 15 digits; none has fewer than 7.
pub fn phone_digits(typed: &str) -> Result<String, String> {
    let typed = typed.trim();
    if let Some(c) = typed
        .chars()
        .enumerate()
        .find(|&(i, c)| !(c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0)))
        .map(|(_, c)| c)
    {
        return Err(format!(
            "A phone number has only digits, spaces, dashes and a leading + (not {c:?})."
        ));
    }
    let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        7..=15 => Ok(digits),
        0 => Err("Enter the phone number, with its country code.".into()),
        n => Err(format!(
            "A phone number with its country code has 7 to 15 digits; this one has {n}."
        )),
    }
}

/// `POST /api/bots/{id}/pairing-code {"phone"}`: a code to enter on the phone instead of a scan.
async fn pairing_code(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    State(coordination): State<Arc<Coordination>>,
    User(user): User,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PairingCodeRequest>,
) -> Result<Json<PairingCode>, ApiError> {
    let row = owned_bot(&ctx, &user, &id).await?;
    let phone = phone_digits(&req.phone).map_err(ApiError::BadRequest)?;
    coordination
        .take(Limit::Qr, &user)
        .await?
        .map_err(ApiError::RateLimited)?;
    Ok(Json(link.pairing_code(&ctx, &user, &row, &phone).await?))
}

async fn logout(
    State(ctx): State<Ctx>,
    State(link): State<Arc<dyn Link>>,
    User(user): User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    owned_bot(&ctx, &user, &id).await?;
    // A retry after any failure here is safe: unlinking an unlinked bot changes nothing.
    link.unlink(&ctx, &id).await?;
    set_status(
        &ctx,
        &user,
        &id,
        BotStatus::LoggedOut,
        None,
        Some("unlinked from the dashboard"),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Axum's own fallback for unknown `/api` paths, in the contract's shape.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

#[cfg(test)]
mod tests {
    use super::phone_digits;

    #[test]
    fn phone_numbers_are_digits_with_their_country_code() {
        assert_eq!(
            phone_digits("+49 151 2345-678").as_deref(),
            Ok("491512345678")
        );
        assert_eq!(
            phone_digits(" (415) 555.0100 ").as_deref(),
            Ok("4155550100")
        );
        assert!(
            phone_digits("")
                .unwrap_err()
                .contains("Enter the phone number")
        );
        assert!(phone_digits("12345").unwrap_err().contains("has 5"));
        assert!(
            phone_digits("1234567890123456")
                .unwrap_err()
                .contains("has 16")
        );
        assert!(phone_digits("+1 555 CALL ME").unwrap_err().contains("'C'"));
        assert!(phone_digits("1+5551234567").is_err(), "a + only in front");
    }
}
