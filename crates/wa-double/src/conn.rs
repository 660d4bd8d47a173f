//! One client connection at `/ws/chat`: the byte stream, the Noise handshake, then encrypted
//! nodes both ways. What the nodes mean is the server's business (`server.rs`); this file only
//! carries them. Every connection is counted by the witness from its first byte to its end.

use crate::{
    Double, nodes,
    noise::{self, AfterHello, Established, Transport},
    server::{self, ConnId},
};
use axum::extract::ws::{Message, WebSocket};
use std::sync::Arc;
use tokio::sync::mpsc;
use wacore_binary::{Node, consts::WA_CONN_HEADER};
use wacore_noise::framing::{FrameDecoder, encode_frame};

/// What the rest of the double asks of a connection.
#[derive(Debug)]
pub enum Cmd {
    /// Send this node.
    Send(Node),
    /// Send this node (a stream error, a failure), then close the socket.
    End(Node),
    /// Close the socket without a word (a dead network, as the client sees it).
    Close,
}

pub type Outbox = mpsc::UnboundedSender<Cmd>;

/// The inbound bytes as frames (the client packs several in one WebSocket message).
struct Inbound {
    decoder: FrameDecoder,
    /// Bytes before the first frame: the optional edge-routing intro and `WA\x06\x03`.
    intro_done: bool,
    pending: Vec<u8>,
}

impl Inbound {
    fn new() -> Inbound {
        Inbound {
            decoder: FrameDecoder::new(),
            intro_done: false,
            pending: Vec::new(),
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        if self.intro_done {
            self.decoder.feed(data);
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        let p = &self.pending;
        let mut at = 0;
        if p.len() >= 2 && &p[..2] == b"ED" {
            // Edge routing: "ED\0\1", a 3-byte length, that many bytes (never mixed into Noise).
            if p.len() < 7 {
                return Ok(());
            }
            let len = (usize::from(p[4]) << 16) | (usize::from(p[5]) << 8) | usize::from(p[6]);
            at = 7 + len;
        }
        if p.len() < at + WA_CONN_HEADER.len() {
            return Ok(());
        }
        if p[at..at + WA_CONN_HEADER.len()] != WA_CONN_HEADER {
            return Err("the connection did not start with WhatsApp's header".into());
        }
        self.intro_done = true;
        let rest = self.pending.split_off(at + WA_CONN_HEADER.len());
        self.pending.clear();
        self.decoder.feed(&rest);
        Ok(())
    }

    fn frame(&mut self) -> Option<Vec<u8>> {
        self.decoder.decode_frame().map(|f| f.to_vec())
    }
}

/// Reads the next frame, waiting for more WebSocket messages as needed; `None`: the socket ended.
async fn next_frame(ws: &mut WebSocket, inbound: &mut Inbound) -> Option<Result<Vec<u8>, String>> {
    loop {
        if let Some(f) = inbound.frame() {
            return Some(Ok(f));
        }
        match ws.recv().await? {
            Ok(Message::Binary(data)) => {
                if let Err(e) = inbound.feed(&data) {
                    return Some(Err(e));
                }
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn send_frame(ws: &mut WebSocket, payload: &[u8]) -> bool {
    match encode_frame(payload, None) {
        Ok(frame) => ws.send(Message::Binary(frame.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn send_node(ws: &mut WebSocket, transport: &mut Transport, node: &Node) -> bool {
    tracing::debug!("→ {}", nodes::describe(node));
    match transport.encrypt(&nodes::encode(node)) {
        Ok(sealed) => send_frame(ws, &sealed).await,
        Err(_) => false,
    }
}

/// The handshake: the client's hello, our hello, and (XX) the client's finish.
async fn handshake(
    double: &Double,
    ws: &mut WebSocket,
    inbound: &mut Inbound,
) -> Option<Established> {
    let hello = match next_frame(ws, inbound).await? {
        Ok(f) => f,
        Err(e) => {
            tracing::info!("handshake refused: {e}");
            return None;
        }
    };
    match noise::answer_hello(&double.keys, &hello) {
        Ok(AfterHello::Open {
            server_hello,
            established,
        }) => send_frame(ws, &server_hello).await.then_some(*established),
        Ok(AfterHello::AwaitFinish {
            server_hello,
            responder,
        }) => {
            if !send_frame(ws, &server_hello).await {
                return None;
            }
            let finish = next_frame(ws, inbound).await?.ok()?;
            match responder.finish(&finish) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::info!("handshake failed at the client's finish: {e}");
                    None
                }
            }
        }
        Err(e) => {
            tracing::info!("handshake failed: {e}");
            None
        }
    }
}

/// Serves one connection to its end.
pub async fn serve(double: Arc<Double>, mut ws: WebSocket) {
    double.world().witness.connection_accepted();
    let mut inbound = Inbound::new();
    let Some(mut est) = handshake(&double, &mut ws, &mut inbound).await else {
        double.world().witness.unbound_ended();
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id: ConnId = server::opened(&double, &est, tx.clone());
    loop {
        tokio::select! {
            frame = next_frame(&mut ws, &mut inbound) => {
                let Some(Ok(frame)) = frame else { break };
                let node = match est.transport.decrypt(&frame).and_then(|p| {
                    nodes::decode(&p).map_err(noise::HandshakeFailed::Malformed)
                }) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::info!("dropping a connection whose frame could not be read: {e}");
                        break;
                    }
                };
                tracing::debug!("← {}", nodes::describe(&node));
                server::received(&double, id, &node, &tx);
            }
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(node)) => {
                    if !send_node(&mut ws, &mut est.transport, &node).await { break }
                }
                Some(Cmd::End(node)) => {
                    send_node(&mut ws, &mut est.transport, &node).await;
                    let _ = ws.send(Message::Close(None)).await;
                    break;
                }
                Some(Cmd::Close) | None => break,
            },
        }
    }
    server::closed(&double, id);
}
