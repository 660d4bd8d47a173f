//! The double's HTTP side: `/ws/chat` (where the client connects), the admin API that tests
//! and people drive knowing only what botlink shows (the QR string, the pairing code, the phone
//! number), the phone page, and WhatsApp Web's `/sw.js` (the client's version look-up).
//!
//! Bad input is a 4xx with `{"error": "…"}`, never a panic.

use crate::{
    Double,
    server::{self, FailKind, PhoneError},
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{State, WebSocketUpgrade},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};

type Shared = State<Arc<Double>>;

pub fn routes(double: Arc<Double>) -> Router {
    Router::new()
        .route("/ws/chat", get(chat))
        .route("/sw.js", get(sw_js))
        .route("/phone", get(phone_page))
        .route("/admin/scan", post(scan))
        .route("/admin/code", post(code))
        .route("/admin/devices", get(devices))
        .route("/admin/devices/remove", post(remove))
        .route("/admin/devices/fail", post(fail))
        .route("/admin/devices/message", post(message))
        .route("/admin/hold-login", post(hold_login))
        .route("/admin/reset", post(reset))
        .route("/admin/stats", get(stats))
        // Browser tests drive the double from the app's page, another origin.
        .layer(tower_http::cors::CorsLayer::permissive())
        .with_state(double)
}

async fn chat(State(double): Shared, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| crate::conn::serve(double, socket))
}

/// What the client reads of WhatsApp Web's service worker: its revision.
async fn sw_js(State(double): Shared) -> Response {
    double.world().witness.version_looked_up();
    (
        [(header::CONTENT_TYPE, "application/javascript")],
        "/* wa-double */ self.__swData = {\"client_revision\":1026131876};\n",
    )
        .into_response()
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

fn phone_error(e: PhoneError) -> Response {
    match e {
        PhoneError::BadInput(m) => error(StatusCode::BAD_REQUEST, m),
        PhoneError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        PhoneError::Unsupported(m) => error(StatusCode::UNPROCESSABLE_ENTITY, m),
    }
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("bad JSON body: {e}"),
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanBody {
    qr: String,
    phone: Option<String>,
}

async fn scan(State(double): Shared, bytes: Bytes) -> Response {
    let b: ScanBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match server::scan(&double, &b.qr, b.phone.as_deref()) {
        Ok(linked) => Json(linked).into_response(),
        Err(e) => phone_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    phone: String,
    code: String,
}

async fn code(State(double): Shared, bytes: Bytes) -> Response {
    let b: CodeBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match server::enter_code(&double, &b.phone, &b.code) {
        Ok(noise) => Json(json!({ "noise": noise, "phone": b.phone })).into_response(),
        Err(e) => phone_error(e),
    }
}

async fn devices(State(double): Shared) -> Response {
    let w = double.world();
    Json(server::devices(&w)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Selected {
    jid: Option<String>,
    phone: Option<String>,
    noise: Option<String>,
    kind: Option<FailKind>,
    times: Option<u32>,
    text: Option<String>,
}

fn selected(double: &Double, b: &Selected) -> Result<String, Box<Response>> {
    if b.jid.is_none() && b.phone.is_none() && b.noise.is_none() {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "name the device by \"jid\", \"phone\" or \"noise\"",
        )));
    }
    let w = double.world();
    server::select(&w, b.jid.as_deref(), b.phone.as_deref(), b.noise.as_deref())
        .ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, "no such device")))
}

async fn remove(State(double): Shared, bytes: Bytes) -> Response {
    let b: Selected = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match selected(&double, &b) {
        Ok(noise) => {
            server::remove(&double, &noise);
            Json(json!({ "removed": noise })).into_response()
        }
        Err(r) => *r,
    }
}

async fn message(State(double): Shared, bytes: Bytes) -> Response {
    let b: Selected = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(text) = b.text.as_deref() else {
        return error(StatusCode::BAD_REQUEST, "\"text\" is the message to send");
    };
    let noise = match selected(&double, &b) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    match server::message(&double, &noise, text) {
        Ok(delivery) => Json(json!({
            "noise": noise,
            "from": format!("+{}", server::CONTACT),
            "delivery": delivery,
        }))
        .into_response(),
        Err(e) => phone_error(e),
    }
}

async fn fail(State(double): Shared, bytes: Bytes) -> Response {
    let b: Selected = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(kind) = b.kind else {
        return error(
            StatusCode::BAD_REQUEST,
            "\"kind\" is one of replaced, 503, 429, 405, 403, ban, 411, pair-error, passkey, none",
        );
    };
    let noise = match selected(&double, &b) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    match server::fail(&double, &noise, kind, b.times) {
        Ok(()) => Json(json!({ "noise": noise, "kind": kind, "times": b.times })).into_response(),
        Err(e) => phone_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    ms: u64,
}

async fn hold_login(State(double): Shared, bytes: Bytes) -> Response {
    let b: HoldBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if b.ms > 600_000 {
        return error(
            StatusCode::BAD_REQUEST,
            "\"ms\" is at most 600000 (10 minutes)",
        );
    }
    double.world().hold_login = Duration::from_millis(b.ms);
    Json(json!({ "ms": b.ms })).into_response()
}

async fn reset(State(double): Shared) -> Response {
    let mut w = double.world();
    w.reset();
    double.save(&w);
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(double): Shared) -> Response {
    let s = double.world().witness.snapshot();
    Json(serde_json::to_value(s).unwrap_or(Value::Null)).into_response()
}

async fn phone_page() -> Html<&'static str> {
    Html(include_str!("phone.html"))
}
