//! Command line and environment settings of `botlink-server`.

use clap::{Args, Parser, Subcommand};
use std::{net::SocketAddr, path::PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "botlink-server",
    version,
    about = "Reference bot backend for botlink (PROTOCOL.md)"
)]
pub struct Cli {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Session tokens, for `--production` where they are not handed out over HTTP.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Mints a session for a user and prints its token.
    Create {
        #[arg(long)]
        user: String,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BOTLINK_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// SQLite database file, or `:memory:`.
    #[arg(long, env = "BOTLINK_DB", default_value = "botlink.db")]
    pub db: String,
    /// Where the server keeps its lock and each bot's WhatsApp device store. Defaults to the
    /// directory of `--db`; with `--db :memory:`, a temporary directory (and no lock).
    #[arg(long, env = "BOTLINK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The WhatsApp the link connects to. Defaults to WhatsApp's own
    /// (`wss://web.whatsapp.com/ws/chat`); a test build (one that does not check WhatsApp's
    /// certificate, `--version` says which) has no default and accepts only `ws://` to this
    /// machine: a WhatsApp double (`wa-double`).
    #[arg(long, env = "BOTLINK_WHATSAPP_URL")]
    pub whatsapp_url: Option<String>,
    /// Test builds only: whatsapp-rust's own clocks (QR lifetimes, reconnect backoff) run this
    /// many times faster, and `expiresInMs` says so.
    #[arg(long, env = "BOTLINK_WHATSAPP_TIME_DIVISOR", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub whatsapp_time_divisor: u32,
    /// Serve a built app (`dist/`) at `/`.
    #[arg(long = "static")]
    pub static_dir: Option<PathBuf>,
    /// Production mode: no `/api/dev/*`, no sessions over HTTP, CORS only for `--allow-origin`.
    #[arg(long)]
    pub production: bool,
    /// An origin allowed by CORS in production (repeatable).
    #[arg(long = "allow-origin")]
    pub allow_origins: Vec<String>,
    #[arg(long, default_value_t = 25_000)]
    pub ping_interval_ms: u64,
    #[arg(long, default_value_t = 20_000)]
    pub ping_timeout_ms: u64,
    /// Socket.IO CONNECTs a user may make a minute (0: no limit); beyond, `rate_limited`.
    #[arg(long, default_value_t = 30)]
    pub connect_limit_per_min: u32,
    /// `POST /api/bots/{id}/qr` calls a user may make a minute (0: no limit); beyond, 429.
    #[arg(long, default_value_t = 60)]
    pub qr_limit_per_min: u32,
    /// Lifetime of a session token.
    #[arg(long, default_value_t = 3_600_000)]
    pub token_ttl_ms: u64,
    /// Cluster mode: the PostgreSQL every node shares (`postgres://user@host/db`), instead of
    /// `--db`. Needs `--redis-url` too.
    #[arg(
        long,
        env = "BOTLINK_DATABASE_URL",
        hide_env_values = true,
        requires = "redis_url"
    )]
    pub database_url: Option<String>,
    /// Cluster mode: the Redis every node shares (`redis://host:6379`). Needs `--database-url`.
    #[arg(
        long,
        env = "BOTLINK_REDIS_URL",
        hide_env_values = true,
        requires = "database_url"
    )]
    pub redis_url: Option<String>,
    /// This node's name in the cluster, unique among the nodes (leases are held in its name).
    /// Defaults to `<host>:<port>` of `--addr` alone, and to `<addr>-<random>` in a cluster.
    #[arg(long, env = "BOTLINK_NODE_ID")]
    pub node_id: Option<String>,
    /// Cluster mode: where the other nodes reach this node's API (the
    /// requests about a bot whose device is here are forwarded to it). Defaults to
    /// `http://<addr>`.
    #[arg(long, env = "BOTLINK_NODE_URL")]
    pub node_url: Option<String>,
    /// Cluster mode: a secret every node shares (16 characters or more), with which the nodes
    /// sign the requests they pass to each other; a request claiming to be passed on without
    /// a valid signature is treated as coming from outside.
    #[arg(long, env = "BOTLINK_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
}

/// Where cluster mode's shared state lives.
pub struct ClusterUrls<'a> {
    pub database: &'a str,
    pub redis: &'a str,
}

impl ServeArgs {
    /// The cluster's secret, checked: a node of a cluster cannot start without one.
    pub fn checked_cluster_secret(&self) -> Result<Option<&str>, String> {
        match (self.cluster(), self.cluster_secret.as_deref()) {
            (None, _) => Ok(None),
            (Some(_), Some(s)) if s.chars().count() >= 16 => Ok(Some(s)),
            (Some(_), Some(_)) => Err("--cluster-secret must be 16 characters or more".into()),
            (Some(_), None) => Err(
                "cluster mode needs --cluster-secret (or BOTLINK_CLUSTER_SECRET): \
                 the nodes sign the requests they pass to each other with it"
                    .into(),
            ),
        }
    }

    /// The cluster's URLs, when the server runs as a node of one.
    pub fn cluster(&self) -> Option<ClusterUrls<'_>> {
        Some(ClusterUrls {
            database: self.database_url.as_deref()?,
            redis: self.redis_url.as_deref()?,
        })
    }

    /// Where the other nodes reach this one's API.
    pub fn node_url(&self) -> String {
        match &self.node_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    /// `--help` names the variables that hold credentials, never their values (clap prints a
    /// set variable's value unless told not to).
    #[test]
    fn help_shows_no_database_or_redis_url() {
        let cmd = <super::Cli as clap::CommandFactory>::command();
        for id in ["database_url", "redis_url", "cluster_secret"] {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == id)
                .expect("the argument");
            assert!(arg.get_env().is_some(), "{id} is read from the environment");
            assert!(
                arg.is_hide_env_values_set(),
                "{id}'s value would print in --help"
            );
        }
    }
}
