//! A protocol-level double of WhatsApp's multi-device server and of a phone, on whatsapp-rust's
//! own building blocks (wacore, wacore-binary, wacore-noise, wacore-libsignal, waproto 0.7). The
//! real, unmodified `whatsapp_rust::Client` (built with `danger-skip-cert-chain-verify`, the
//! only thing it needs) pairs with it, logs in and is thrown out; and the double is the
//! witness of every connection a device makes (`witness.rs`).
//!
//! - `noise.rs`: the handshake (XX, IK, XX-fallback) and the transport;
//! - `conn.rs`: one WebSocket connection, its frames and nodes;
//! - `server.rs`: what WhatsApp's server answers, and the phone's actions on it;
//! - `phone.rs`: the phone's cryptography (signing a device in, pairing codes);
//! - `signal.rs`: Signal messages from the phone and contacts (the app-state key share, texts);
//! - `accounts.rs`: what is kept across restarts; `admin.rs`: the HTTP API and the phone page.

pub mod accounts;
mod admin;
mod conn;
mod nodes;
pub mod noise;
pub mod phone;
pub mod server;
pub mod signal;
pub mod witness;

use accounts::{Disk, Saved, b64, unb64};
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, Weak},
};

/// The double's shared state.
pub struct Double {
    keys: noise::ServerKeys,
    world: Mutex<server::World>,
    disk: Disk,
    this: Weak<Double>,
}

impl Double {
    /// The world, under its lock (a poisoned lock is taken over: the state is plain data).
    pub fn world(&self) -> MutexGuard<'_, server::World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, w: &server::World) {
        self.disk.save(&w.saved);
    }

    fn handle(&self) -> Weak<Double> {
        self.this.clone()
    }
}

pub struct Options {
    pub addr: SocketAddr,
    /// Keeps the static key and the accounts across restarts; `None`: a temporary directory.
    pub data_dir: Option<PathBuf>,
}

/// A running double.
pub struct Running {
    /// `http://127.0.0.1:PORT`: the admin API, the phone page and `/sw.js`.
    pub url: String,
    /// `ws://127.0.0.1:PORT/ws/chat`: where the client connects.
    pub ws_url: String,
    pub double: Arc<Double>,
    server: tokio::task::JoinHandle<()>,
    _temp: Option<tempfile::TempDir>,
}

impl Running {
    pub fn stop(self) {
        self.server.abort();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the double: loads (or makes) its data directory and listens.
pub async fn start(opts: Options) -> std::io::Result<Running> {
    let (dir, temp) = match opts.data_dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("wa-double.").tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    let disk = Disk::new(&dir);
    let mut saved = disk.load()?.unwrap_or_default();
    let key = unb64(&saved.static_private)
        .and_then(|k| phone::key_pair(&k))
        .unwrap_or_else(|| {
            let k = wacore_libsignal::protocol::KeyPair::generate(&mut rand::rng());
            saved = Saved {
                static_private: b64(k.private_key.serialize()),
                ..saved.clone()
            };
            k
        });
    disk.save(&saved);
    let double = Arc::new_cyclic(|this| Double {
        keys: noise::ServerKeys::new(key),
        world: Mutex::new(server::World::new(saved)),
        disk,
        this: this.clone(),
    });
    let listener = tokio::net::TcpListener::bind(opts.addr).await?;
    let addr = listener.local_addr()?;
    let app = admin::routes(double.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the double stopped serving: {e}");
        }
    });
    Ok(Running {
        url: format!("http://{addr}"),
        ws_url: format!("ws://{addr}/ws/chat"),
        double,
        server,
        _temp: temp,
    })
}
