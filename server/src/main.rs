//! `botlink-server`: the reference bot backend (PROTOCOL.md). See `--help`.

mod adapter;
mod api;
mod bot_status;
mod cluster;
mod config;
mod context;
mod coordination;
mod csp;
mod data_dir;
mod dev;
mod error;
mod forward;
mod limits;
mod link_page;
mod links;
mod outbox;
mod owned_parts;
mod pairing;
mod pairings;
mod socket;
mod state;
mod stats;
mod store;
mod sync;
mod whatsapp;

use adapter::{Adapter, NodeDriver};
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{self, Next},
    response::Response,
};
use config::{Cli, Command, LinkKind, ServeArgs, TokenAction};
use coordination::{Coordination, PerMinute};
use socketioxide::{SocketIo, TransportType};
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};
use state::{AppState, Shared};
use std::time::Duration;
use store::{PostgresStore, SqliteStore, Store};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    services::{ServeDir, ServeFile},
    set_header::SetResponseHeaderLayer,
};

/// JSON bodies larger than this are refused with 413.
const BODY_LIMIT: usize = 16 * 1024;

/// The WebSocket transport's read buffer, per socket (socketioxide's default is 4 KiB).
const WS_READ_BUFFER: usize = 256;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "botlink_server=info,socketioxide=warn,engineioxide=warn".into()
            }),
        )
        .init();
    // `--version` says whether this binary checks WhatsApp's certificate: proven by a probe of
    // the library, not read from the build's features (whatsapp/certificate.rs).
    let check = whatsapp::certificate::this_binary();
    let version: &'static str = Box::leak(
        format!(
            "{} (WhatsApp certificate check: {})",
            env!("CARGO_PKG_VERSION"),
            check.describe()
        )
        .into_boxed_str(),
    );
    let matches = <Cli as clap::CommandFactory>::command()
        .version(version)
        .get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, check).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("botlink-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(
    cli: Cli,
    check: whatsapp::certificate::CertificateCheck,
) -> Result<(), Box<dyn std::error::Error>> {
    let whatsapp_url = whatsapp_url(&cli.serve, check)?;
    cli.serve.checked_cluster_secret()?;
    let clustered = cli.serve.cluster().is_some();
    if clustered && cli.serve.link == LinkKind::Whatsapp && cli.command.is_none() {
        // A bot's device store is a file on one node's disk, pinned to that node: the node must
        // be the same one after a restart (its name, its directory, its address).
        check_pinning(&cli.serve)?;
    }
    let store: Box<dyn Store> = match cli.serve.cluster() {
        Some(urls) => Box::new(PostgresStore::open(urls.database).await?),
        None => Box::new(SqliteStore::open(&cli.serve.db)?),
    };
    if let Some(Command::Token {
        action: TokenAction::Create { user },
    }) = cli.command
    {
        if !socket::valid_id(&user) {
            return Err("--user must be 1–64 letters, digits, '_' or '-'".into());
        }
        let (token, _) = store.create_session(&user, cli.serve.token_ttl_ms).await?;
        println!("{token}");
        return Ok(());
    }
    let mut cfg = cli.serve;
    let limits = PerMinute::of_args(&cfg);
    let (driver, coordination, redis) = match cfg.cluster() {
        Some(urls) => {
            let (client, driver) = cluster::connect(urls.redis).await?;
            let coordination =
                Coordination::Redis(coordination::Redis::new(client.clone(), limits));
            (NodeDriver::Redis(driver), coordination, Some(client))
        }
        None => (NodeDriver::Alone, Coordination::local(limits), None),
    };
    // Held until the server stops: a second server on this directory refuses to start. A
    // cluster node keeps nothing there unless `--data-dir` says where.
    let db_for_dir = if clustered {
        ":memory:"
    } else {
        cfg.db.as_str()
    };
    let data = data_dir::DataDir::for_server(db_for_dir, cfg.data_dir.as_deref())?;
    let link: Box<dyn links::Link> = match cfg.link {
        LinkKind::Simulated => Box::new(links::Simulated),
        LinkKind::Whatsapp => Box::new(whatsapp::WhatsAppLink::new(
            data.devices()?,
            whatsapp::connector::Connector::real(
                whatsapp_url
                    .as_deref()
                    .unwrap_or(whatsapp::connector::WHATSAPP_URL),
                cfg.whatsapp_time_divisor,
            ),
            clustered,
        )),
    };
    let listener = tokio::net::TcpListener::bind(cfg.addr).await?;
    let addr = listener.local_addr()?;
    // With `--addr ...:0` the port is known only now; QR links must carry the real one.
    cfg.addr = addr;
    let node = match (&cfg.node_id, &redis) {
        (Some(id), _) => id.clone(),
        (None, None) => addr.to_string(),
        (None, Some(_)) => format!("{addr}-{}", store::random_id(3)),
    };
    let st = AppState::new(cfg.clone(), node, store, coordination, link);
    let app = app(&st, driver).await?;
    st.link.resume(&st.ctx).await;
    // Leases a previous run of this node held are given back first: they are adopted (maybe by
    // this node) at the next tick, with new fences, instead of being renewed with no task.
    pairing::give_back_at_start(&st.ctx).await;
    tokio::spawn(pairing::keep_leases(st.ctx.clone()));
    let publisher = redis.map(|client| {
        let rejoin = st.clone();
        fred::interfaces::EventInterface::on_reconnect(&client, move |_| {
            let st = rejoin.clone();
            async move {
                socket::rejoin_all(&st).await;
                Ok(())
            }
        });
        cluster::StatsPublisher::start(st.clone(), client)
    });
    tracing::info!(
        "botlink-server listening on http://{addr} ({} mode, {:?} link, {}, node {}, data in {})",
        if cfg.production { "production" } else { "dev" },
        cfg.link,
        if cfg.cluster().is_some() {
            "cluster: PostgreSQL + Redis"
        } else {
            "alone: SQLite"
        },
        st.node,
        data.path().display()
    );
    // On SIGTERM the listener stops accepting at once (the graceful shutdown), while the drain
    // runs beside it; `serve` returns when the drain has closed the last socket.
    let stop_accepting = tokio_util::sync::CancellationToken::new();
    let drained = tokio::spawn({
        let (st, stop_accepting) = (st.clone(), stop_accepting.clone());
        async move {
            shutdown().await;
            stop_accepting.cancel();
            drain(&st, publisher).await;
        }
    });
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(stop_accepting.cancelled_owned())
        .await?;
    drained.await?;
    Ok(())
}

/// The WhatsApp the real link connects to, checked against what this build is: `None` for
/// WhatsApp's own; a build that does not check certificates must be told, and only a double on
/// this machine.
fn whatsapp_url(
    args: &config::ServeArgs,
    check: whatsapp::certificate::CertificateCheck,
) -> Result<Option<String>, String> {
    use whatsapp::certificate::{CertificateCheck, allowed_for_a_test_build};
    match (check, &args.whatsapp_url) {
        (CertificateCheck::On, url) => {
            if args.whatsapp_time_divisor != 1 {
                return Err("--whatsapp-time-divisor is for test builds only (this one checks WhatsApp's certificate)".into());
            }
            Ok(url.clone())
        }
        (CertificateCheck::Off, Some(url)) => {
            allowed_for_a_test_build(url).map(|()| Some(url.clone()))
        }
        (CertificateCheck::Off, None) if args.link == LinkKind::Whatsapp => Err(
            "this is a test build (it does not check WhatsApp's certificate): it links only \
             through a WhatsApp double, so --whatsapp-url ws://127.0.0.1:PORT/ws/chat is required"
                .into(),
        ),
        (CertificateCheck::Off, None) => Ok(None),
    }
}

/// SIGTERM or Ctrl-C, with the listener closed: health turns 503; the link starts no client,
/// closes every client at once and only then gives their devices' holds back (never a client
/// here and another elsewhere); the node's pairings go to other nodes; its sockets' transports
/// close without `41` (which the app would take as final), so each app reconnects through the
/// load balancer to a node that is staying. Last, its counters leave the cluster's sum.
async fn drain(st: &Shared, publisher: Option<cluster::StatsPublisher>) {
    tracing::info!(
        "draining: closing the WhatsApp clients, giving the leases back, closing the sockets"
    );
    st.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    st.link.shutdown(&st.ctx).await;
    pairing::give_back(&st.ctx).await;
    if let Some(io) = st.io.get() {
        io.close().await;
    }
    if let Some(publisher) = publisher {
        publisher.withdraw().await;
    }
}

/// What a node holding real devices needs: a name and a directory that outlive a restart, and
/// an address the other nodes can reach.
fn check_pinning(cfg: &ServeArgs) -> Result<(), String> {
    let missing = |what: &str| {
        format!("--link whatsapp in a cluster needs {what}: a bot's device stays on its node")
    };
    if cfg.node_id.is_none() {
        return Err(missing("--node-id (the same after a restart)"));
    }
    if cfg.data_dir.is_none() {
        return Err(missing("--data-dir (where the devices are kept)"));
    }
    if cfg.node_url.is_none() && cfg.addr.ip().is_unspecified() {
        return Err(missing(
            "--node-url (how the other nodes reach this one; --addr listens on every address)",
        ));
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn app(st: &Shared, driver: NodeDriver) -> Result<Router, String> {
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
        .with_state(st.clone())
        .with_adapter::<Adapter>(adapter)
        .build_layer();
    let _ = st.io.set(io);
    socket::register(st).await?;

    let mut router = api::routes(st).merge(link_page::routes());
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
async fn count_upgrades(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let is_upgrade = req.uri().path().starts_with("/socket.io")
        && req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_upgrade {
        st.stats.update(|c| c.ws_upgrades += 1);
    }
    next.run(req).await
}

/// Dev mode admits any loopback origin (browser tests on random ports); production only
/// `--allow-origin`. No cookies either way: auth is a bearer header.
fn cors(cfg: &ServeArgs) -> CorsLayer {
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
