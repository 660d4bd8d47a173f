//! `botlink-server`: the reference bot backend (PROTOCOL.md). See `--help`.
//!
//! Where a change goes (docs/architecture.md has the whole map):
//! - `config.rs`: a flag or an environment variable.
//! - `app/`: how the server starts and stops, and the router's layers (CORS, CSP, limits).
//! - `core/`: what every part shares — the context a link gets, the counters, a bot's status
//!   and its one ordered path to the user's socket (the outbox).
//! - `http/`: the HTTP API of PROTOCOL.md §1 and the dev endpoints.
//! - `realtime/`: the Socket.IO channel (§2–§5).
//! - `cluster/`: what only a cluster needs — Redis, limits across nodes, passing a request to
//!   the node that holds a bot's device.
//! - `link/`: the seam to WhatsApp — the `Link` trait and the link on whatsapp-rust
//!   (`link/whatsapp/`).
//! - `store/`: SQLite and PostgreSQL behind one trait, and the data directory.

mod app;
mod cluster;
mod config;
mod core;
mod http;
mod link;
mod realtime;
mod store;

use config::Cli;

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
    let check = link::whatsapp::certificate::this_binary();
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
    match app::run(cli, check).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("botlink-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
