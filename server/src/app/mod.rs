//! How the server starts and stops: the store, the coordination and the link it runs on, the
//! order it resumes in, and the drain on SIGTERM. The router and its layers: `router.rs`; the
//! state handlers read: `state.rs`.
//!
//! The layout and where a change goes: docs/architecture.md; what was tried against the server
//! and how it answers: docs/testing.md.

mod router;
pub mod state;

use crate::{
    cluster::{
        self,
        coordination::{self, Coordination, PerMinute},
    },
    config::{Cli, Command, ServeArgs, TokenAction},
    link::{self, whatsapp},
    realtime::{adapter::NodeDriver, socket},
    store::{self, PostgresStore, SqliteStore, Store, data_dir},
};
use state::AppState;

pub async fn run(
    cli: Cli,
    check: whatsapp::certificate::CertificateCheck,
) -> Result<(), Box<dyn std::error::Error>> {
    // What only serving needs is checked only when serving (`token create` links nothing).
    let serving = cli.command.is_none();
    let whatsapp_url = if serving {
        Some(whatsapp_url(&cli.serve, check)?)
    } else {
        None
    };
    cli.serve.checked_cluster_secret()?;
    let clustered = cli.serve.cluster().is_some();
    if clustered && serving {
        // The devices are in PostgreSQL, so any node can run any bot: a node needs only an
        // address the others reach (requests about a bot are passed on to its holder).
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
    let whatsapp_url = whatsapp_url.ok_or("a command that is not `token` serves")?;
    let mut cfg = cli.serve;
    let limits = PerMinute::of_args(&cfg);
    let (driver, coordination, redis) = match cfg.cluster() {
        Some(urls) => {
            let (client, driver) = cluster::redis::connect(urls.redis).await?;
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
    let link: Box<dyn link::Link> = Box::new(whatsapp::WhatsAppLink::new(
        data.devices()?,
        whatsapp::connector::Connector::real(&whatsapp_url, cfg.whatsapp_time_divisor),
        clustered,
    ));
    let listener = tokio::net::TcpListener::bind(cfg.addr).await?;
    let addr = listener.local_addr()?;
    // With `--addr ...:0` the port is known only now; the other nodes must be told the real one.
    cfg.addr = addr;
    let node = match (&cfg.node_id, &redis) {
        (Some(id), _) => id.clone(),
        (None, None) => addr.to_string(),
        (None, Some(_)) => format!("{addr}-{}", store::random_id(3)),
    };
    let st = AppState::new(cfg.clone(), node, store, coordination, link);
    let app = router::app(&st, driver).await?;
    st.link.resume(&st.ctx).await;
    let publisher = redis.map(|client| {
        let rejoin = st.clone();
        fred::interfaces::EventInterface::on_reconnect(&client, move |_| {
            let st = rejoin.clone();
            async move {
                socket::rejoin_all(&st.ctx, &st.coordination).await;
                Ok(())
            }
        });
        cluster::redis::StatsPublisher::start(st.ctx.clone(), client)
    });
    tracing::info!(
        "botlink-server listening on http://{addr} ({} mode, WhatsApp at {whatsapp_url}, {}, node {}, data in {})",
        if cfg.production { "production" } else { "dev" },
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

/// The WhatsApp the link connects to, checked against what this build is: WhatsApp's own unless
/// told otherwise; a build that does not check certificates (a test build) must be told, and
/// only a double on this machine.
fn whatsapp_url(
    args: &ServeArgs,
    check: whatsapp::certificate::CertificateCheck,
) -> Result<String, String> {
    use whatsapp::certificate::{CertificateCheck, allowed_for_a_test_build};
    match (check, &args.whatsapp_url) {
        (CertificateCheck::On, url) => {
            if args.whatsapp_time_divisor != 1 {
                return Err("--whatsapp-time-divisor is for test builds only (this one checks WhatsApp's certificate)".into());
            }
            Ok(url
                .clone()
                .unwrap_or_else(|| whatsapp::connector::WHATSAPP_URL.to_owned()))
        }
        (CertificateCheck::Off, Some(url)) => allowed_for_a_test_build(url).map(|()| url.clone()),
        (CertificateCheck::Off, None) => Err(
            "this is a test build (it does not check WhatsApp's certificate): it links only \
             through a WhatsApp double, so --whatsapp-url ws://127.0.0.1:PORT/ws/chat is required"
                .into(),
        ),
    }
}

/// SIGTERM or Ctrl-C, with the listener closed: health turns 503; the link starts no client,
/// closes every client at once and only then gives their devices' holds back (never a client
/// here and another elsewhere; a pairing's device, never linked, is then free for another
/// node); its sockets' transports
/// close without `41` (which the app would take as final), so each app reconnects through the
/// load balancer to a node that is staying. Last, its counters leave the cluster's sum.
async fn drain(st: &AppState, publisher: Option<cluster::redis::StatsPublisher>) {
    tracing::info!(
        "draining: closing the WhatsApp clients, giving their holds back, closing the sockets"
    );
    st.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    st.link.shutdown(&st.ctx).await;
    if let Some(io) = st.io.get() {
        io.close().await;
    }
    if let Some(publisher) = publisher {
        publisher.withdraw().await;
    }
}

/// What a cluster node needs: an address the other nodes can reach. Neither a stable
/// `--node-id` nor a `--data-dir`: a node's devices are in PostgreSQL, and another node adopts
/// them when it stops. (Both only while a node still has device files of an earlier botlink to
/// move in: it finds them in its `--data-dir` when it takes their holds again, by its name.)
fn check_pinning(cfg: &ServeArgs) -> Result<(), String> {
    if cfg.node_url.is_none() && cfg.addr.ip().is_unspecified() {
        return Err(
            "a cluster node needs --node-url: how the other nodes reach this one \
                    (--addr listens on every address)"
                .into(),
        );
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
