//! The WhatsApp double (crates/wa-double) for the fixtures: on a thread and a runtime of its own,
//! so a synchronous fixture (`Server::start`) can start one and a test on a current-thread runtime
//! never starves it. Its admin API is the phone (`scan`, `code`) and the lever for WhatsApp's
//! failures (`fail`); its counts are the witness.

use serde_json::{Value, json};
use std::time::Duration;

pub struct Double {
    /// `http://127.0.0.1:PORT`: the admin API and the phone page.
    pub url: String,
    /// `ws://127.0.0.1:PORT/ws/chat`: what `--whatsapp-url` names.
    pub ws_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Double {
    pub fn start() -> Double {
        let (started, addresses) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime for the double");
            runtime.block_on(async move {
                let running = wa_double::start(wa_double::Options {
                    addr: "127.0.0.1:0".parse().unwrap(),
                    data_dir: None,
                })
                .await
                .expect("the double starts");
                let _ = started.send((running.url.clone(), running.ws_url.clone()));
                let _ = stopped.await;
                running.stop();
            });
        });
        let (url, ws_url) = addresses
            .recv_timeout(Duration::from_secs(10))
            .expect("the double said where it listens");
        Double {
            url,
            ws_url,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A call to the admin API: (status, JSON answer).
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        super::Server::at(self.url.clone())
            .call(method, path, None, body)
            .await
    }

    /// The phone scans `qr` (as `phone`, or a number of the double's); what it linked
    /// (`{"jid", "phone", "noise"}`).
    pub async fn scan(&self, qr: &str, phone: Option<&str>) -> Value {
        let mut body = json!({ "qr": qr });
        if let Some(p) = phone {
            body["phone"] = json!(p);
        }
        let (status, linked) = self.admin("POST", "/admin/scan", Some(body)).await;
        assert_eq!(status, 200, "the scan: {linked}");
        linked
    }

    /// The phone enters a pairing code: (status, answer).
    pub async fn enter_code(&self, phone: &str, code: &str) -> (u16, Value) {
        self.admin(
            "POST",
            "/admin/code",
            Some(json!({ "phone": phone, "code": code })),
        )
        .await
    }

    /// WhatsApp fails the device showing `qr` (named by its noise key) the way `kind` says.
    pub async fn fail_device_of(&self, qr: &str, kind: &str) {
        let body = json!({ "noise": noise_of(qr), "kind": kind });
        let (status, answer) = self.admin("POST", "/admin/devices/fail", Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }

    /// WhatsApp keeps a scanned device waiting this long before its login (`/admin/hold-login`).
    pub async fn hold_login(&self, ms: u64) {
        let (status, answer) = self
            .admin("POST", "/admin/hold-login", Some(json!({ "ms": ms })))
            .await;
        assert_eq!(status, 200, "{answer}");
    }

    pub async fn stats(&self) -> Value {
        self.admin("GET", "/admin/stats", None).await.1
    }

    /// The rule this project exists for, as WhatsApp saw it.
    pub async fn assert_never_two_sessions(&self) {
        let stats = self.stats().await;
        assert!(
            stats["totals"]["mostOpenAtOnce"].as_u64().unwrap_or(9) <= 1,
            "a device had two connections open at once: {stats}"
        );
    }
}

/// The noise key of the device showing this WhatsApp QR (its second field): how the double names
/// a device that has no phone yet.
pub fn noise_of(qr: &str) -> &str {
    qr.split(',').nth(1).expect("a WhatsApp QR has a noise key")
}

impl Drop for Double {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
