//! Fixtures: the real `botlink-server` binary on a free port, an HTTP client, and a raw
//! Engine.IO/Socket.IO client over tokio-tungstenite (independent of the app's own codec).
#![allow(dead_code)]

pub mod double;
pub use double::Double;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

pub struct Server {
    pub url: String,
    /// The process, when this fixture started it (not for a load balancer's address).
    child: Option<Child>,
    /// The data directory given to a server that would otherwise make its own temporary one:
    /// removed with the fixture, even when the process was killed (`kill -9` skips its cleanup).
    _data: Option<tempfile::TempDir>,
    /// The WhatsApp double this server links through, when the fixture started one for it.
    double: Option<Double>,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_db(":memory:", args)
    }

    pub fn start_with_db(db: &str, args: &[&str]) -> Server {
        let mut all = vec!["--addr", "127.0.0.1:0", "--db", db];
        all.extend(args);
        Self::start_with(&all)
    }

    /// The server with these arguments. A test build of the real link (`whatsapp-double`) links
    /// only through a WhatsApp double: given no `--whatsapp-url`, the fixture starts one of its
    /// own for it (`Server::double`).
    pub fn start_with(args: &[&str]) -> Server {
        let double = (cfg!(feature = "whatsapp-double") && !args.contains(&"--whatsapp-url"))
            .then(Double::start);
        let link = double
            .iter()
            .flat_map(|d| ["--whatsapp-url", d.ws_url.as_str()]);
        let args: Vec<&str> = args.iter().copied().chain(link).collect();
        let args = args.as_slice();
        let makes_its_own = !args.contains(&"--data-dir")
            && (args.contains(&":memory:") || args.contains(&"--database-url"));
        let data = makes_its_own.then(|| {
            tempfile::Builder::new()
                .prefix("botlink-fixture.")
                .tempdir()
                .expect("a temporary data directory")
        });
        let mut child = Command::new(env!("CARGO_BIN_EXE_botlink-server"))
            .args(args)
            .args(
                data.iter()
                    .flat_map(|d| [std::ffi::OsStr::new("--data-dir"), d.path().as_os_str()]),
            )
            .env("RUST_LOG", "botlink_server=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("botlink-server starts");
        // What it says on stderr (why it did not start, if it did not), read on the side.
        let stderr = child.stderr.take().expect("stderr");
        let said = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
            text
        });
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let Some(line) = lines.next() else {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                let said = said.join().unwrap_or_default();
                panic!("botlink-server {args:?} did not start ({status}): {said}");
            };
            let line = line.expect("readable");
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            url,
            child: Some(child),
            _data: data,
            double,
        }
    }

    /// Something else listening at `url` (a load balancer).
    pub fn at(url: String) -> Server {
        Server {
            url,
            child: None,
            _data: None,
            double: None,
        }
    }

    /// Sends the process a signal (`STOP`, `CONT`, …): a frozen node, and its waking.
    pub fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("a process of ours");
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &child.id().to_string()])
            .status()
            .expect("kill(1)");
        assert!(sent.success(), "kill -{name}");
    }

    /// SIGKILL: the process dies at once, as a crashed machine's would.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: the server drains and stops; waits (bounded) until it has.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("a process of ours");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().expect("exit status")
    }

    /// The WhatsApp double the fixture started for this server.
    pub fn double(&self) -> &Double {
        self.double
            .as_ref()
            .expect("a server the fixture started with a double of its own")
    }

    pub fn ws_url(&self) -> String {
        format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            self.url.replacen("http://", "ws://", 1)
        )
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A bodiless call with one more header.
    pub async fn call_with_header(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        (name, value): (&str, &str),
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .header(name, value);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A new dev session: (token, userId).
    pub async fn session(&self) -> (String, String) {
        let (status, s) = self.call("POST", "/api/auth/session", None, None).await;
        assert_eq!(status, 200, "{s}");
        (
            s["token"].as_str().unwrap().into(),
            s["userId"].as_str().unwrap().into(),
        )
    }

    pub async fn bot(&self, token: &str, name: &str) -> String {
        let (status, b) = self
            .call(
                "POST",
                "/api/bots",
                Some(token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{b}");
        b["id"].as_str().unwrap().into()
    }

    pub async fn stats(&self) -> Value {
        self.call("GET", "/api/dev/stats", None, None).await.1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw Socket.IO v5 client: Engine.IO frames over one WebSocket.
pub struct Sio {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Sio {
    /// Opens the WebSocket and reads the Engine.IO open packet.
    pub async fn open(server: &Server) -> (Sio, Value) {
        let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
            .await
            .expect("websocket opens");
        let mut sio = Sio { ws };
        let open = sio.next_text().await.expect("an open packet");
        assert!(open.starts_with('0'), "{open}");
        (sio, serde_json::from_str(&open[1..]).unwrap())
    }

    /// Opens and sends CONNECT with `auth`; returns the client and the server's answer.
    pub async fn connect(server: &Server, auth: Value) -> (Sio, String) {
        let (mut sio, _) = Sio::open(server).await;
        sio.send(&format!("40{auth}")).await;
        let answer = sio.next_socket_packet().await.expect("a CONNECT answer");
        (sio, answer)
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("send");
    }

    /// The next text frame within 5 s; `None` if the socket closed.
    pub async fn next_text(&mut self) -> Option<String> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) => return Some(t.to_string()),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// The next Socket.IO packet ("4..."), answering Engine.IO pings on the way.
    pub async fn next_socket_packet(&mut self) -> Option<String> {
        loop {
            let t = self.next_text().await?;
            if t == "2" {
                self.send("3").await;
                continue;
            }
            if t.starts_with('4') {
                return Some(t);
            }
        }
    }

    /// The next event as (name, payload).
    pub async fn next_event(&mut self) -> Option<(String, Value)> {
        loop {
            let p = self.next_socket_packet().await?;
            if let Some(rest) = p.strip_prefix("42") {
                let v: Value = serde_json::from_str(rest).expect("event JSON");
                return Some((v[0].as_str().unwrap().to_owned(), v[1].clone()));
            }
            if p == "41" {
                return None;
            }
        }
    }

    /// The next `whatsapp_connection_event` payload, skipping other events.
    pub async fn next_whatsapp(&mut self) -> Option<Value> {
        loop {
            let (name, payload) = self.next_event().await?;
            if name == "whatsapp_connection_event" {
                return Some(payload);
            }
        }
    }
}

pub fn auth(token: &str, user: &str, bot: &str) -> Value {
    json!({"token": token, "userId": user, "botId": bot})
}
