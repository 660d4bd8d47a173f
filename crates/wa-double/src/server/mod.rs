//! WhatsApp's multi-device server, as the client of whatsapp-rust 0.7 sees it: a new device is
//! offered six QR refs; a linked device logs in (`<success>`, then `<ib><offline>`); a second
//! connection of one device throws the older out (`<conflict type="replaced"/>`). Where each
//! kind of change goes:
//!
//! - this file: the world behind one lock, a connection's life (registration or login, the
//!   pairing answered, its end);
//! - `iq.rs`: the answer to every IQ the client sends (never none: an unanswered IQ stalls the
//!   client for 75 s), the pairing code's companion side among them;
//! - `phone_actions.rs`: what the phone (and a contact) does — scan, code, remove, message — as
//!   `admin.rs` asks;
//! - `failures.rs`: what a test asks to go wrong, and when it acts;
//! - `stanzas.rs`: the server's stanzas that more than one of these sends.

mod failures;
mod iq;
mod phone_actions;
mod stanzas;

pub use failures::{FailKind, fail};
pub use phone_actions::{
    CONTACT, Delivery, DeviceView, Linked, PhoneError, devices, enter_code, message, remove, scan,
    select,
};

use crate::{
    Double,
    accounts::{Device, DeviceState, b64},
    conn::{Cmd, Outbox},
    nodes::{self, attr, child, el},
    noise::Established,
    phone,
};
use failures::{Failure, LOGIN_FAILURES, login_failure};
use iq::answer_iq;
use rand::RngExt as _;
use stanzas::{conflict, failure, md_set, passkey_request, stream_error};
use std::{collections::HashMap, time::Duration};
use wacore_binary::Node;

pub type ConnId = u64;

/// How long the phone takes, after a pairing code's key bundle, to have WhatsApp send the
/// companion its `<pair-success>`.
pub(super) const PHONE_ROUND_TRIP: Duration = Duration::from_millis(300);

/// WhatsApp hands out six QR refs per pairing connection.
pub const QR_REFS: usize = 6;

/// An open connection after its handshake.
struct Live {
    noise: String,
    out: Outbox,
    /// Logged in (`<success>` sent) as its device; not while pairing, or waiting for a login.
    logged_in: bool,
    /// The pairing code exchange in progress on this connection.
    code: Option<CodeExchange>,
}

struct CodeExchange {
    /// The phone number the companion asked to link to (digits).
    phone: String,
    reference: Vec<u8>,
    wrapped_companion_ephemeral: Vec<u8>,
    /// Set once the phone typed the code.
    hello: Option<(phone::CodeHello, String)>,
}

/// A `<pair-success>` sent, waiting for the companion's `<pair-device-sign>`.
struct PendingPair {
    conn: ConnId,
    noise: String,
    phone: String,
    device_id: u16,
    companion_identity: [u8; 32],
    account_key: [u8; 32],
}

/// Everything the double knows now. Behind one lock (`Double::world`): a test's view of it is
/// always one consistent moment.
pub struct World {
    pub witness: crate::witness::Witness,
    pub saved: crate::accounts::Saved,
    conns: HashMap<ConnId, Live>,
    /// QR refs on offer, to the connection that offered them.
    offers: HashMap<String, ConnId>,
    /// `<pair-success>` ids waiting for the companion's answer.
    pairs: HashMap<String, PendingPair>,
    failures: HashMap<String, Failure>,
    /// `POST /admin/hold-login`: how long a login waits before its `<success>`.
    pub hold_login: Duration,
    next_id: u64,
    /// Each device's keys from its prekey upload (what a sender builds a Signal session from).
    keys: HashMap<String, crate::signal::UploadedKeys>,
    /// The Signal senders: each account's phone (by number) and the contact.
    senders: HashMap<String, crate::signal::Sender>,
    /// Messages for each device sent while it had no session open: delivered, in order, at its
    /// next login, before `<ib><offline count="N">` (as WhatsApp queues them).
    queued: HashMap<String, Vec<wacore_binary::Node>>,
}

impl World {
    pub fn new(saved: crate::accounts::Saved) -> World {
        World {
            witness: Default::default(),
            saved,
            conns: HashMap::new(),
            offers: HashMap::new(),
            pairs: HashMap::new(),
            failures: HashMap::new(),
            hold_login: Duration::ZERO,
            next_id: 1,
            keys: HashMap::new(),
            senders: HashMap::new(),
            queued: HashMap::new(),
        }
    }

    pub(super) fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Forgets everything but the double's own key; open connections are closed.
    pub fn reset(&mut self) {
        for c in self.conns.values() {
            let _ = c.out.send(Cmd::Close);
        }
        self.saved.accounts.clear();
        self.saved.devices.clear();
        self.offers.clear();
        self.pairs.clear();
        self.failures.clear();
        self.hold_login = Duration::ZERO;
        self.keys.clear();
        self.senders.clear();
        self.queued.clear();
        self.witness.reset();
    }
}

pub(super) fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn jid_of(phone: &str, device: u16) -> String {
    format!("{phone}:{device}@s.whatsapp.net")
}

pub(super) fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(super) fn random_digits(first: &str, n: usize) -> String {
    let mut rng = rand::rng();
    let mut s = first.to_owned();
    s.extend((0..n).map(|_| char::from(b'0' + rng.random_range(0..10u8))));
    s
}

/// A connection finished its handshake: it is a new device (registration) or a login.
pub fn opened(double: &Double, est: &Established, out: Outbox) -> ConnId {
    let noise = b64(&est.client_static);
    let mut w = double.world();
    let id = w.next();
    w.witness.opened(&noise);
    w.conns.insert(
        id,
        Live {
            noise: noise.clone(),
            out: out.clone(),
            logged_in: false,
            code: None,
        },
    );
    let p = &est.payload;
    if let Some(reg) = p.device_pairing_data.as_option() {
        let identity = reg.e_ident.as_deref().map(b64).unwrap_or_default();
        match w.saved.device_mut(&noise) {
            Some(d) => {
                d.identity = identity;
                d.state = DeviceState::Pairing;
            }
            None => w.saved.devices.push(Device {
                noise: noise.clone(),
                identity,
                state: DeviceState::Pairing,
                phone: None,
                device_id: None,
            }),
        }
        offer_qr(&mut w, id, &noise, &out);
        if w.take_failure(&noise, &[FailKind::Passkey]).is_some() {
            let _ = out.send(Cmd::Send(passkey_request(&mut w)));
        }
    } else if let Some(user) = p.username {
        let device = u16::try_from(p.device.unwrap_or(0)).unwrap_or(u16::MAX);
        login(double, &mut w, id, &noise, &user.to_string(), device, &out);
    } else {
        let _ = out.send(Cmd::End(failure("400")));
    }
    double.save(&w);
    id
}

fn offer_qr(w: &mut World, id: ConnId, noise: &str, out: &Outbox) {
    let refs: Vec<Node> = (0..QR_REFS)
        .map(|_| {
            let r = format!("2@{}", random_token(32));
            w.offers.insert(r.clone(), id);
            el("ref").bytes(r.into_bytes()).build()
        })
        .collect();
    w.witness.qr_offered(noise, QR_REFS as u64);
    let iq_id = format!("srv-{}", w.next());
    let _ = out.send(Cmd::Send(md_set(
        iq_id,
        el("pair-device").children(refs).build(),
    )));
}

fn login(
    double: &Double,
    w: &mut World,
    id: ConnId,
    noise: &str,
    user: &str,
    device: u16,
    out: &Outbox,
) {
    let known = w.saved.device(noise).is_some_and(|d| {
        d.state == DeviceState::Registered
            && d.phone.as_deref() == Some(user)
            && d.device_id == Some(device)
    });
    if !known {
        // Removed by the phone, or never linked: WhatsApp answers 401 and the client logs out.
        let _ = out.send(Cmd::End(failure("401")));
        return;
    }
    if let Some(kind) = w.take_failure(noise, LOGIN_FAILURES)
        && let Some(node) = login_failure(kind)
    {
        let _ = out.send(Cmd::End(node));
        return;
    }
    let hold = w.hold_login;
    if hold.is_zero() {
        succeed(w, id);
    } else {
        let double = double.handle();
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            if let Some(d) = double.upgrade() {
                let mut w = d.world();
                succeed(&mut w, id);
            }
        });
    }
}

/// The login goes through: the device's other connections are thrown out (WhatsApp keeps one
/// session per device), then `<success>`, the messages queued while it was offline, and the end
/// of the offline queue with their count.
fn succeed(w: &mut World, id: ConnId) {
    let Some(live) = w.conns.get(&id) else { return };
    let noise = live.noise.clone();
    let out = live.out.clone();
    let Some(dev) = w.saved.device(&noise).cloned() else {
        return;
    };
    let (Some(phone), Some(device)) = (dev.phone.clone(), dev.device_id) else {
        return;
    };
    let older: Vec<ConnId> = w
        .conns
        .iter()
        .filter(|(cid, c)| **cid != id && c.noise == noise && c.logged_in)
        .map(|(cid, _)| *cid)
        .collect();
    for cid in older {
        if let Some(c) = w.conns.get_mut(&cid) {
            c.logged_in = false;
            let _ = c.out.send(Cmd::End(conflict("replaced", None)));
            w.witness.replaced(&noise);
        }
    }
    let lid = w.saved.lid_of(&phone).unwrap_or_default();
    let jid = jid_of(&phone, device);
    if let Some(c) = w.conns.get_mut(&id) {
        c.logged_in = true;
    }
    w.witness.logged_in(&noise, &jid);
    let _ = out.send(Cmd::Send(
        el("success")
            .attr("t", now_s())
            .attr("lid", format!("{lid}:{device}@lid"))
            .build(),
    ));
    let queued = w.queued.remove(&noise).unwrap_or_default();
    let count = queued.len();
    for message in queued {
        let _ = out.send(Cmd::Send(message));
    }
    w.witness.delivered_offline(&noise, count as u64);
    let _ = out.send(Cmd::Send(
        el("ib")
            .children([el("offline").attr("count", count.to_string()).build()])
            .build(),
    ));
    // The push name, as WhatsApp tells a linked device of it: persisted by the client, so its
    // next login needs no app-state sync to learn it.
    let n = w.next();
    let _ = out.send(Cmd::Send(
        el("notification")
            .attr("from", nodes::SERVER)
            .attr("type", "account_sync")
            .attr("id", format!("srv-{n}"))
            .attr("t", now_s())
            .attr("pushname", format!("Phone +{phone}"))
            .build(),
    ));
}

/// A connection ended.
pub fn closed(double: &Double, id: ConnId) {
    let mut w = double.world();
    if let Some(live) = w.conns.remove(&id) {
        w.witness.closed(&live.noise);
        w.offers.retain(|_, c| *c != id);
        w.pairs.retain(|_, p| p.conn != id);
        // A device that never finished pairing stays known (its QR may be scanned on a later
        // connection), but nothing is on offer for it any more.
    }
}

/// One node from the client.
pub fn received(double: &Double, id: ConnId, node: &Node, out: &Outbox) {
    if node.tag != "iq" {
        // Acks, receipts, presence, `<ib>` (unified session, offline batch): nothing to answer.
        return;
    }
    let kind = attr(node, "type").unwrap_or_default();
    let mut w = double.world();
    if kind == "result" || kind == "error" {
        let iq_id = attr(node, "id").unwrap_or_default();
        if let Some(pending) = w.pairs.remove(&iq_id) {
            pair_answered(&mut w, pending, node, kind == "result", out);
            double.save(&w);
        }
        return;
    }
    let answer = answer_iq(double, &mut w, id, node, out);
    if let Some(a) = answer {
        let _ = out.send(Cmd::Send(a));
    }
    double.save(&w);
}

fn pair_answered(w: &mut World, p: PendingPair, node: &Node, ok: bool, out: &Outbox) {
    let signed = child(node, "pair-device-sign")
        .and_then(|s| child(s, "device-identity"))
        .and_then(nodes::bytes);
    let valid = ok
        && signed
            .is_some_and(|s| phone::device_sign_is_valid(s, &p.companion_identity, &p.account_key));
    if !valid {
        tracing::info!(noise = %p.noise, "the companion refused the pairing (or signed it wrongly)");
        return;
    }
    let jid = jid_of(&p.phone, p.device_id);
    if let Some(d) = w.saved.device_mut(&p.noise) {
        d.state = DeviceState::Registered;
        d.phone = Some(p.phone.clone());
        d.device_id = Some(p.device_id);
    }
    w.witness.paired(&p.noise, &jid);
    w.offers.retain(|_, c| *c != p.conn);
    tracing::info!(%jid, "device linked");
    // WhatsApp restarts the stream: the client logs in again as the new device.
    let _ = out.send(Cmd::End(stream_error("515")));
}
