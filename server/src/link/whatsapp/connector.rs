//! How a bot's client reaches WhatsApp: the transport (WebSocket), the HTTP client (version
//! look-up, media) and the runtime — real ones in production, failing or scripted ones in tests —
//! and the supervised transport factory through which every connection attempt first asks the
//! bot's retry budget.

use super::pinning::HoldClock;
use crate::store::device::Fence;
use std::sync::Arc;
use whatsapp_rust::{
    anyhow,
    async_channel::Receiver,
    async_trait,
    transport::{Transport, TransportEvent, TransportFactory},
    wacore::net::{HttpClient, HttpRequest, HttpResponse},
};

/// What every bot's client is built with.
#[derive(Clone)]
pub struct Connector {
    pub transport: Arc<dyn TransportFactory>,
    pub http: Arc<dyn HttpClient>,
    /// Tests compress whatsapp-rust's own backoff timers by this factor (1 in production).
    pub time_divisor: u32,
}

/// WhatsApp's own address (`--whatsapp-url`'s default in a build that checks certificates).
pub const WHATSAPP_URL: &str = "wss://web.whatsapp.com/ws/chat";

/// Where WhatsApp Web serves what the client fetches over HTTP (its version look-up).
const WHATSAPP_WEB: &str = "https://web.whatsapp.com/";

impl Connector {
    /// The WhatsApp at `url` (WhatsApp's own, or a double), over the crate's tokio WebSocket
    /// transport and ureq. The client's HTTP requests to WhatsApp Web go to the same host:
    /// against a double, its version look-up runs the production code path there.
    pub fn real(url: &str, time_divisor: u32) -> Connector {
        let transport =
            whatsapp_rust::transport::TokioWebSocketTransportFactory::new().with_url(url);
        let ureq: Arc<dyn HttpClient> = Arc::new(whatsapp_rust::http::UreqHttpClient::new());
        let http: Arc<dyn HttpClient> = match web_origin(url) {
            Some(origin) if url != WHATSAPP_URL => Arc::new(Redirected {
                origin,
                inner: ureq,
            }),
            _ => ureq,
        };
        Connector {
            transport: Arc::new(transport),
            http,
            time_divisor: time_divisor.max(1),
        }
    }
}

/// `ws://host:port/ws/chat` → `http://host:port/` (and `wss` → `https`).
fn web_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    let scheme = match scheme {
        "ws" => "http",
        "wss" => "https",
        _ => return None,
    };
    Some(format!("{scheme}://{host}/"))
}

/// The HTTP client, with WhatsApp Web's address replaced by the configured WhatsApp's.
struct Redirected {
    origin: String,
    inner: Arc<dyn HttpClient>,
}

#[async_trait]
impl HttpClient for Redirected {
    async fn execute(&self, mut request: HttpRequest) -> anyhow::Result<HttpResponse> {
        if let Some(path) = request.url.strip_prefix(WHATSAPP_WEB) {
            request.url = format!("{}{path}", self.origin);
        }
        self.inner.execute(request).await
    }
}

/// Asked before each connection attempt; `false` refuses it (the budget is spent).
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

/// The bot's transport factory: the real one, behind the bot's hold (cluster) and its retry
/// budget.
pub struct Supervised {
    pub inner: Arc<dyn TransportFactory>,
    pub gate: Gate,
    pub hold: Option<HoldGate>,
}

/// In a cluster, a client connects only while its node surely holds the device: before its
/// hold's safe time by this node's own clock, and under the fence the database names now. A
/// node that was frozen (SIGSTOP) past its hold fails the first; one whose clock stood still
/// (a suspended VM: `Instant` does not advance) fails the second.
pub struct HoldGate {
    pub fence: Arc<Fence>,
    pub devices: deadpool_postgres::Pool,
    pub clock: Arc<HoldClock>,
}

impl HoldGate {
    async fn admits(&self) -> Result<(), String> {
        if self.fence.is_lost() {
            return Err("another node holds this bot's device".into());
        }
        if !self.clock.safe(std::time::Instant::now()) {
            return Err("this node's hold on the device may have run out".into());
        }
        match self.fence.holds(&self.devices).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.fence.lose();
                Err("another node holds this bot's device".into())
            }
            Err(e) => Err(format!("the device's fence could not be checked: {e}")),
        }
    }
}

#[async_trait]
impl TransportFactory for Supervised {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, Receiver<TransportEvent>), anyhow::Error> {
        if let Some(hold) = &self.hold
            && let Err(why) = hold.admits().await
        {
            return Err(anyhow::anyhow!("not connecting: {why}"));
        }
        if !(self.gate)() {
            return Err(anyhow::anyhow!(
                "botlink's retry budget for this bot is spent"
            ));
        }
        self.inner.create_transport().await
    }
}

/// The shared HTTP client, as the value the builder takes.
pub struct SharedHttp(pub Arc<dyn HttpClient>);

#[async_trait]
impl HttpClient for SharedHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.0.execute(request).await
    }
}

/// Tokio, with whatsapp-rust's sleeps divided by `divisor`: its reconnect backoff (1, 1, 2, 3,
/// 5 s …) runs in milliseconds in tests, so they replay a whole retry budget quickly.
pub struct ScaledRuntime {
    pub divisor: u32,
}

#[async_trait]
impl whatsapp_rust::Runtime for ScaledRuntime {
    fn spawn(
        &self,
        future: std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
    ) -> whatsapp_rust::wacore::runtime::AbortHandle {
        whatsapp_rust::TokioRuntime.spawn(future)
    }

    fn sleep(
        &self,
        duration: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        whatsapp_rust::TokioRuntime.sleep(duration / self.divisor.max(1))
    }

    fn spawn_blocking(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        whatsapp_rust::TokioRuntime.spawn_blocking(f)
    }

    fn yield_now(&self) -> Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> {
        None
    }
}
