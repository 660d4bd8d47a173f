//! `wa-double`: WhatsApp's multi-device server and a phone, for botlink's tests and local demos.

use clap::Parser;
use std::{net::SocketAddr, path::PathBuf};

#[derive(Parser)]
#[command(
    name = "wa-double",
    version,
    about = "A local double of WhatsApp's multi-device server and of a phone (tests and demos; not WhatsApp)"
)]
struct Cli {
    /// Where to listen (port 0: any free one).
    #[arg(long, env = "WA_DOUBLE_ADDR", default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Keeps the double's key and its accounts across restarts (none: a temporary directory).
    #[arg(long, env = "WA_DOUBLE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wa_double=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let running = match wa_double::start(wa_double::Options {
        addr: cli.addr,
        data_dir: cli.data_dir,
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wa-double: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "wa-double listening on {} (clients: {}; phone page: {}/phone)",
        running.url, running.ws_url, running.url
    );
    let _ = tokio::signal::ctrl_c().await;
    running.stop();
}
