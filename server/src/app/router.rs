//! The router: the API, the dev endpoints, the Socket.IO layer, the static app, and the layers
//! every request passes (CORS, the body limit, the upgrade counter, the CSP).

use super::state::AppState;
use crate::{
    core::context::Ctx,
    http::{api, csp, dev},
    realtime::{
        adapter::{Adapter, NodeDriver},
        owned_parts, socket,
    },
};
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{self, Next},
    response::Response,
};
use socketioxide::{SocketIo, TransportType};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use std::time::Duration;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
};

/// JSON bodies larger than this are refused with 413.
const BODY_LIMIT: usize = 16 * 1024;

/// The WebSocket transport's read buffer, per socket (socketioxide's default is 4 KiB).
const WS_READ_BUFFER: usize = 256;

pub async fn app(st: &AppState, driver: NodeDriver) -> Result<Router, String> {
    let cfg = &st.cfg;
    let adapter = RedisAdapterCtr::new_with_driver(
        driver,
        RedisAdapterConfig::new().with_prefix("botlink-socket.io"),
    );
    let (io_layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_millis(cfg.ping_interval_ms))
        .ping_timeout(Duration::from_millis(cfg.ping_timeout_ms))
        .transports([TransportType::Websocket])
        .max_payload(100_000)
        // Clients of this contract send small frames (CONNECT, pongs, acks): a 256-byte first read
        // buffer instead of 4 KiB is 37 MB less at 10,000 sockets; larger frames still read whole
        // (the buffer grows for them: a 20 KB CONNECT is a test).
        .ws_read_buffer_size(WS_READ_BUFFER)
        // Each handler takes the parts it needs (as the HTTP handlers do: FromRef).
        .with_state(st.ctx.clone())
        .with_state(st.link.clone())
        .with_state(st.coordination.clone())
        .with_adapter::<Adapter>(adapter)
        .build_layer();
    let _ = st.io.set(io);
    socket::register(&st.ctx).await?;

    let mut router = api::routes(st);
    if !cfg.production {
        router = router.merge(dev::routes());
    }
    router = router.route("/api/{*rest}", axum::routing::any(api::not_found));
    if let Some(dir) = &cfg.static_dir {
        // A single-page app: unknown paths get index.html, so /bots/{id}/link survives a reload.
        let index = ServeFile::new(dir.join("index.html"));
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap_or_default();
        let policy = HeaderValue::from_str(&csp::policy_for(&html))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        let app = tower::ServiceBuilder::new()
            .layer(SetResponseHeaderLayer::overriding(
                header::CONTENT_SECURITY_POLICY,
                policy,
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .service(ServeDir::new(dir).fallback(index));
        router = router.fallback_service(app);
    }
    let router = router
        .layer(io_layer)
        // Last before the Socket.IO layer, after CORS and the upgrade counter read the headers.
        .layer(tower::util::MapRequestLayer::new(
            owned_parts::detach_socket_request::<axum::body::Body>,
        ))
        .layer(middleware::from_fn_with_state(st.clone(), count_upgrades))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(cors(cfg))
        .with_state(st.clone());
    Ok(router)
}

/// Counts every WebSocket upgrade on `/socket.io/`: the raw figure of sockets clients opened.
async fn count_upgrades(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let is_upgrade = req.uri().path().starts_with("/socket.io")
        && req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_upgrade {
        ctx.stats.update(|c| c.ws_upgrades += 1);
    }
    next.run(req).await
}

/// Dev mode admits any loopback origin (browser tests on random ports); production only
/// `--allow-origin`. No cookies either way: auth is a bearer header.
fn cors(cfg: &crate::config::ServeArgs) -> CorsLayer {
    let origins = if cfg.production {
        let list: Vec<HeaderValue> = cfg
            .allow_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        AllowOrigin::list(list)
    } else {
        AllowOrigin::predicate(|origin, _| is_loopback_origin(origin.to_str().unwrap_or("")))
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_origins_pass_in_dev() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "http://[::1]:9",
            "https://127.9.9.9",
        ] {
            assert!(super::is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "http://example.com",
            "http://127.0.0.1.evil.com",
            "null",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
        ] {
            assert!(!super::is_loopback_origin(bad), "{bad}");
        }
    }
}
