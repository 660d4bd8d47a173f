//! The server's side of WhatsApp's Noise handshake, mirroring the client of wacore-noise 0.7 step
//! for step: XX for a new device (or one with no cached certificate chain), IK for a registered
//! device that cached the double's chain, and XX-fallback when an IK hello cannot be read (the
//! client cached another static key: the double's data directory was wiped).
//!
//! The certificate chain carries zero signatures: only a client built with whatsapp-rust's
//! `danger-skip-cert-chain-verify` accepts it. A production client stops after the server hello,
//! which is how the double proves that botlink's shipped binary checks WhatsApp's certificate.

use wacore_binary::consts::WA_CONN_HEADER;
use wacore_binary::consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK};
use wacore_libsignal::protocol::KeyPair;
use wacore_noise::{NoiseCipher, NoiseHandshake};
use waproto::buffa::{self, Message as _};
use waproto::whatsapp::{self as wa, ClientPayload, HandshakeMessage};

/// The double's long-lived Noise identity.
pub struct ServerKeys {
    pub static_key: KeyPair,
    /// The chain whose leaf is the static key (validity 2023-11 to 2030-03: the client needs
    /// `not_before`/`not_after` to cache it and use IK later).
    chain: Vec<u8>,
}

impl ServerKeys {
    pub fn new(static_key: KeyPair) -> ServerKeys {
        let public = crate::phone::public32(&static_key);
        ServerKeys {
            chain: zero_signed_chain(&public),
            static_key,
        }
    }
}

/// The double's certificate chain: an intermediate (issuer serial 0, as WhatsApp's root signs
/// it) and a leaf for the static key, with zero signatures. Its validity (2023-11 to 2030-03)
/// matters: whatsapp-rust caches a chain, and tries IK later, only within `not_before` and
/// `not_after`. (wacore-noise's `test-util` builder makes the same chain; it is not used because
/// that feature would reach every crate built beside the double.)
fn zero_signed_chain(leaf_key: &[u8; 32]) -> Vec<u8> {
    use wa::cert_chain::{NoiseCertificate, noise_certificate::Details};
    let cert = |serial: u32, issuer: u32, key: Vec<u8>, not_before: u64, not_after: u64| {
        let details = Details {
            serial: Some(serial),
            issuer_serial: Some(issuer),
            key: Some(key),
            not_before: Some(not_before),
            not_after: Some(not_after),
        };
        buffa::MessageField::some(NoiseCertificate {
            details: Some(details.encode_to_vec()),
            signature: Some(vec![0; 64]),
        })
    };
    wa::CertChain {
        intermediate: cert(1, 0, vec![0xCC; 32], 1_700_000_000, 1_900_000_000),
        leaf: cert(2, 1, leaf_key.to_vec(), 1_700_000_500, 1_899_999_500),
    }
    .encode_to_vec()
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeFailed {
    #[error("not a WhatsApp handshake message: {0}")]
    Malformed(String),
    #[error("noise: {0}")]
    Noise(String),
}

fn noise_err(e: impl std::fmt::Display) -> HandshakeFailed {
    HandshakeFailed::Noise(e.to_string())
}

/// Which pattern the handshake ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Xx,
    Ik,
    XxFallback,
}

/// A completed handshake: who the client is, what it asked for, and the transport keys.
pub struct Established {
    /// The client's static Noise key: the device's noise key (the one in its QR).
    pub client_static: [u8; 32],
    pub payload: ClientPayload,
    pub pattern: Pattern,
    pub transport: Transport,
}

/// The transport after the handshake: AES-256-GCM, one counter per direction from 0.
pub struct Transport {
    read: NoiseCipher,
    write: NoiseCipher,
    read_counter: u32,
    write_counter: u32,
}

impl Transport {
    pub fn decrypt(&mut self, frame: &[u8]) -> Result<Vec<u8>, HandshakeFailed> {
        let mut buf = frame.to_vec();
        self.read
            .decrypt_in_place_with_counter(self.read_counter, &mut buf)
            .map_err(noise_err)?;
        self.read_counter = self.read_counter.wrapping_add(1);
        Ok(buf)
    }

    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, HandshakeFailed> {
        let out = self
            .write
            .encrypt_with_counter(self.write_counter, plaintext)
            .map_err(noise_err)?;
        self.write_counter = self.write_counter.wrapping_add(1);
        Ok(out)
    }
}

/// The answer to a client hello.
pub enum AfterHello {
    /// IK succeeded: send the server hello, and the session is open (no client finish follows).
    Open {
        server_hello: Vec<u8>,
        established: Box<Established>,
    },
    /// XX or XX-fallback: send the server hello, then wait for the client's finish.
    AwaitFinish {
        server_hello: Vec<u8>,
        responder: Box<XxResponder>,
    },
}

/// An XX (or XX-fallback) responder waiting for the client's finish.
pub struct XxResponder {
    noise: NoiseHandshake,
    ephemeral: KeyPair,
    pattern: Pattern,
}

fn fresh_ephemeral() -> KeyPair {
    KeyPair::generate(&mut rand::rng())
}

fn key32(bytes: &[u8], what: &str) -> Result<[u8; 32], HandshakeFailed> {
    bytes
        .try_into()
        .map_err(|_| HandshakeFailed::Malformed(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// Answers the client's first handshake message.
pub fn answer_hello(keys: &ServerKeys, hello: &[u8]) -> Result<AfterHello, HandshakeFailed> {
    let msg = waproto::codec::handshake_message_decode(hello)
        .map_err(|e| HandshakeFailed::Malformed(e.to_string()))?;
    let hello = msg
        .client_hello
        .into_option()
        .ok_or_else(|| HandshakeFailed::Malformed("no client hello".into()))?;
    let ephemeral = key32(
        hello.ephemeral.as_deref().unwrap_or_default(),
        "the client's ephemeral key",
    )?;
    match (&hello.r#static, &hello.payload) {
        (Some(stat), Some(payload)) => match try_ik(keys, &ephemeral, stat, payload) {
            Ok(open) => Ok(open),
            // The client cached another static key (ours was renewed): XX-fallback.
            Err(_) => xx_server_hello(keys, &ephemeral, Pattern::XxFallback),
        },
        _ => xx_server_hello(keys, &ephemeral, Pattern::Xx),
    }
}

fn try_ik(
    keys: &ServerKeys,
    client_ephemeral: &[u8; 32],
    enc_static: &[u8],
    enc_payload: &[u8],
) -> Result<AfterHello, HandshakeFailed> {
    let server_static = &keys.static_key;
    let mut n = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER).map_err(noise_err)?;
    n.authenticate(server_static.public_key.public_key_bytes());
    n.authenticate(client_ephemeral);
    n.mix_shared_secret(server_static.private_key.serialize(), client_ephemeral)
        .map_err(noise_err)?;
    let client_static = key32(
        &n.decrypt(enc_static).map_err(noise_err)?,
        "the client's static key",
    )?;
    n.mix_shared_secret(server_static.private_key.serialize(), &client_static)
        .map_err(noise_err)?;
    let payload = n.decrypt(enc_payload).map_err(noise_err)?;
    let payload = ClientPayload::decode_from_slice(&payload)
        .map_err(|e| HandshakeFailed::Malformed(format!("client payload: {e}")))?;
    let e = fresh_ephemeral();
    n.authenticate(e.public_key.public_key_bytes());
    n.mix_shared_secret(e.private_key.serialize(), client_ephemeral)
        .map_err(noise_err)?;
    n.mix_shared_secret(e.private_key.serialize(), &client_static)
        .map_err(noise_err)?;
    let sealed = n.encrypt(&keys.chain).map_err(noise_err)?;
    let server_hello = waproto::codec::handshake_message_to_vec(&HandshakeMessage {
        server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(e.public_key.public_key_bytes().to_vec()),
            // Absent, not empty: a static key here would tell the client to fall back.
            r#static: None,
            payload: Some(sealed),
            ..Default::default()
        }),
        ..Default::default()
    });
    let transport = split(n)?;
    Ok(AfterHello::Open {
        server_hello,
        established: Box::new(Established {
            client_static,
            payload,
            pattern: Pattern::Ik,
            transport,
        }),
    })
}

fn xx_server_hello(
    keys: &ServerKeys,
    client_ephemeral: &[u8; 32],
    pattern: Pattern,
) -> Result<AfterHello, HandshakeFailed> {
    let name = match pattern {
        Pattern::XxFallback => NOISE_PATTERN_XXFALLBACK,
        _ => NOISE_PATTERN_XX,
    };
    let server_static = &keys.static_key;
    let mut n = NoiseHandshake::new(name, &WA_CONN_HEADER).map_err(noise_err)?;
    n.authenticate(client_ephemeral);
    let e = fresh_ephemeral();
    n.authenticate(e.public_key.public_key_bytes());
    n.mix_shared_secret(e.private_key.serialize(), client_ephemeral)
        .map_err(noise_err)?;
    let enc_static = n
        .encrypt(server_static.public_key.public_key_bytes())
        .map_err(noise_err)?;
    n.mix_shared_secret(server_static.private_key.serialize(), client_ephemeral)
        .map_err(noise_err)?;
    let enc_chain = n.encrypt(&keys.chain).map_err(noise_err)?;
    let server_hello = waproto::codec::handshake_message_to_vec(&HandshakeMessage {
        server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(e.public_key.public_key_bytes().to_vec()),
            r#static: Some(enc_static),
            payload: Some(enc_chain),
            ..Default::default()
        }),
        ..Default::default()
    });
    Ok(AfterHello::AwaitFinish {
        server_hello,
        responder: Box::new(XxResponder {
            noise: n,
            ephemeral: e,
            pattern,
        }),
    })
}

impl XxResponder {
    /// Reads the client's finish: its static key and its payload.
    pub fn finish(mut self, finish: &[u8]) -> Result<Established, HandshakeFailed> {
        let msg = waproto::codec::handshake_message_decode(finish)
            .map_err(|e| HandshakeFailed::Malformed(e.to_string()))?;
        let finish = msg
            .client_finish
            .into_option()
            .ok_or_else(|| HandshakeFailed::Malformed("no client finish".into()))?;
        let enc_static = finish.r#static.ok_or_else(|| {
            HandshakeFailed::Malformed("client finish without a static key".into())
        })?;
        let enc_payload = finish
            .payload
            .ok_or_else(|| HandshakeFailed::Malformed("client finish without a payload".into()))?;
        let n = &mut self.noise;
        let client_static = key32(
            &n.decrypt(&enc_static).map_err(noise_err)?,
            "the client's static key",
        )?;
        n.mix_shared_secret(self.ephemeral.private_key.serialize(), &client_static)
            .map_err(noise_err)?;
        let payload = n.decrypt(&enc_payload).map_err(noise_err)?;
        let payload = ClientPayload::decode_from_slice(&payload)
            .map_err(|e| HandshakeFailed::Malformed(format!("client payload: {e}")))?;
        Ok(Established {
            client_static,
            payload,
            pattern: self.pattern,
            transport: split(self.noise)?,
        })
    }
}

/// The transport keys. `finish()` names them as the initiator sees them (its write key first),
/// so the responder reads with the first and writes with the second.
fn split(n: NoiseHandshake) -> Result<Transport, HandshakeFailed> {
    let (initiator_write, initiator_read) = n.finish().map_err(noise_err)?;
    Ok(Transport {
        read: initiator_write,
        write: initiator_read,
        read_counter: 0,
        write_counter: 0,
    })
}
