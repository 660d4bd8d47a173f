//! The cluster suite's fixtures: PostgreSQL, Redis, HAProxy and botlink-server nodes, each a real
//! process on loopback in a temporary directory, started and stopped by the tests (a restart, a
//! `kill -9`, a SIGTERM). `scripts/cluster-test` installs what is missing and runs the suite.
#![allow(dead_code)]

use crate::common::{Double, Server};
use serde_json::Value;
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A free loopback port for a process started next, below the kernel's ephemeral range (Linux:
/// 32768–60999): a port `bind(0)` hands out comes from that range, and any outgoing connection
/// can take it before the process binds it ("Address already in use", a failure by chance).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
        ^ u64::from(std::process::id());
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((seed.wrapping_add(n.wrapping_mul(7_919))) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program; as the `postgres` user when we are root (it refuses root).
fn pg(bin: &Path, program: &str, args: &[&str]) -> std::process::ExitStatus {
    let path = bin.join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

impl Postgres {
    pub fn start(dir: &Path) -> Postgres {
        let bin = PathBuf::from(
            String::from_utf8(
                Command::new("pg_config")
                    .arg("--bindir")
                    .output()
                    .expect("pg_config (scripts/cluster-test installs PostgreSQL)")
                    .stdout,
            )
            .unwrap()
            .trim(),
        );
        let dir = dir.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status()
                .unwrap();
        }
        let data = dir.join("data");
        let init = pg(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(init.success(), "initdb");
        let p = Postgres {
            bin,
            data,
            dir,
            port: free_port(),
        };
        p.start_again();
        p
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let ok = pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(ok.success(), "pg_ctl start");
    }

    pub fn stop(&self) {
        pg(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        pg(
            &self.bin,
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        let mut r = Redis {
            port: free_port(),
            dir: dir.join("redis"),
            child: None,
        };
        std::fs::create_dir_all(&r.dir).unwrap();
        r.start_again();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/cluster-test installs it)");
        self.child = Some(child);
        wait_for_port(self.port);
    }

    /// Stops Redis at once; what it held is gone (no persistence), as after a crash.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Haproxy {
    child: Child,
    pub port: u16,
}

impl Haproxy {
    /// HAProxy with the repository's configuration (`deploy/haproxy.cfg`) in front of `nodes`.
    pub fn start(nodes: &[u16]) -> Haproxy {
        let port = free_port();
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy.cfg");
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(cfg);
        cmd.env("BOTLINK_LB_ADDR", format!("127.0.0.1:{port}"));
        for (i, p) in nodes.iter().enumerate() {
            cmd.env(format!("BOTLINK_NODE{}", i + 1), format!("127.0.0.1:{p}"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (scripts/cluster-test installs it)");
        wait_for_port(port);
        Haproxy { child, port }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three nodes behind HAProxy, on one PostgreSQL and one Redis.
pub struct Cluster {
    pub nodes: Vec<Option<Server>>,
    pub ports: Vec<u16>,
    pub lb: Server,
    pub redis: Redis,
    pub pg: Postgres,
    /// WhatsApp, for every node: its phone scans, its counts are the witness.
    pub double: Double,
    _haproxy: Haproxy,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts everything; `args` go to every node.
    pub async fn start(args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        if is_root() {
            // PostgreSQL runs as `postgres` and must reach its directory.
            Command::new("chmod")
                .args(["755"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let pg = Postgres::start(dir.path());
        let redis = Redis::start(dir.path());
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let haproxy = Haproxy::start(&ports);
        let lb_url = format!("http://127.0.0.1:{}", haproxy.port);
        let double = Double::start();
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--whatsapp-url".into(), double.ws_url.clone()]);
        let mut c = Cluster {
            nodes: Vec::new(),
            ports,
            lb: Server::at(lb_url),
            redis,
            pg,
            double,
            _haproxy: haproxy,
            args,
            _dir: dir,
        };
        for i in 0..3 {
            let node = c.start_node(i);
            c.nodes.push(Some(node));
        }
        c.until_balanced().await;
        c
    }

    /// Starts node `i` (again) on its port.
    pub fn start_node(&self, i: usize) -> Server {
        let addr = format!("127.0.0.1:{}", self.ports[i]);
        let id = format!("node{}", i + 1);
        let (db, redis) = (self.pg.url(), self.redis.url());
        // Its own directory, the same after a restart (the real link keeps devices there).
        let data = self._dir.path().join(&id);
        let data = data.to_str().expect("a UTF-8 path");
        let mut args = vec![
            "--addr",
            &addr,
            "--node-id",
            &id,
            "--database-url",
            &db,
            "--redis-url",
            &redis,
            "--cluster-secret",
            "the-cluster-suites-secret",
            "--data-dir",
            data,
        ];
        args.extend(self.args.iter().map(String::as_str));
        Server::start_with(&args)
    }

    /// Node `i`'s data directory (`--data-dir`), the same across its restarts.
    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self._dir.path().join(format!("node{}", i + 1))
    }

    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("a running node")
    }

    /// Until HAProxy sees every running node healthy (it checks every 500 ms).
    pub async fn until_balanced(&self) {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }

    /// The cluster-wide counters, as any node reads them.
    pub async fn sum(&self) -> Value {
        let node = self.nodes.iter().flatten().next().expect("a running node");
        let (status, v) = node.call("GET", "/api/dev/stats/cluster", None, None).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Waits (bounded) until the cluster-wide counters satisfy `ok`; returns them.
    pub async fn until_sum(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let sum = self.sum().await;
            if ok(&sum) {
                return sum;
            }
            assert!(Instant::now() < until, "{what}: never so; last {sum:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Waits (bounded) until `f` gives `Some`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    f: impl Fn() -> F,
) -> T {
    let until = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
