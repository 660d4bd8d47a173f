//! WhatsApp's multi-device server, as the client of whatsapp-rust 0.7 sees it: a new device is
//! offered six QR refs; a linked device logs in (`<success>`, then `<ib><offline>`); every IQ gets
//! the answer the client parses (never none: an unanswered IQ stalls the client for 75 s); a
//! second connection of one device throws the older out (`<conflict type="replaced"/>`).
//!
//! The phone's actions (scan, code, remove, message) and the failures a test asks for come in
//! through `admin.rs` and act here on the open connections.

use crate::{
    Double,
    accounts::{Account, Device, DeviceState, b64, split_jid},
    conn::{Cmd, Outbox},
    nodes::{self, attr, child, el, result_to},
    noise::Established,
    phone,
};
use rand::RngExt as _;
use std::{collections::HashMap, time::Duration};
use wacore_binary::Node;

pub type ConnId = u64;

/// How long the phone takes, after a pairing code's key bundle, to have WhatsApp send the
/// companion its `<pair-success>`.
const PHONE_ROUND_TRIP: Duration = Duration::from_millis(300);

/// WhatsApp hands out six QR refs per pairing connection.
pub const QR_REFS: usize = 6;

/// An open connection after its handshake.
struct Live {
    noise: String,
    out: Outbox,
    /// Logged in (`<success>` sent) as this device; `None` while pairing or waiting.
    session: Option<String>,
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

/// What a test asked to go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum FailKind {
    #[serde(rename = "replaced")]
    Replaced,
    #[serde(rename = "503")]
    Unavailable,
    #[serde(rename = "429")]
    RateLimited,
    #[serde(rename = "405")]
    Outdated,
    #[serde(rename = "403")]
    Locked,
    #[serde(rename = "ban")]
    Ban,
    #[serde(rename = "411")]
    NoMultiDevice,
    #[serde(rename = "pair-error")]
    PairError,
    #[serde(rename = "passkey")]
    Passkey,
    /// Clears what was asked before.
    #[serde(rename = "none")]
    None,
}

#[derive(Debug, Clone, Copy)]
struct Failure {
    kind: FailKind,
    /// Logins (or scans) left to fail; `None`: until cleared.
    times: Option<u32>,
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
}

/// The contact who writes to the bots (`POST /admin/devices/message`).
pub const CONTACT: &str = "15550009999";

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
        }
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Connections of this device open now.
    pub fn open_connections(&self, noise: &str) -> usize {
        self.conns.values().filter(|c| c.noise == noise).count()
    }

    /// QR refs on offer now (the phone page lists them).
    pub fn offered_refs(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .offers
            .iter()
            .filter_map(|(r, id)| self.conns.get(id).map(|c| (r.clone(), c.noise.clone())))
            .collect();
        v.sort();
        v
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
        self.witness.reset();
    }

    fn take_failure(&mut self, noise: &str, applies: &[FailKind]) -> Option<FailKind> {
        let f = self.failures.get_mut(noise)?;
        if !applies.contains(&f.kind) {
            return None;
        }
        let kind = f.kind;
        match &mut f.times {
            Some(0) => {
                self.failures.remove(noise);
                return None;
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.failures.remove(noise);
                }
            }
            None => {}
        }
        Some(kind)
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn stream_error(code: &str) -> Node {
    el("stream:error").attr("code", code).build()
}

fn conflict(kind: &'static str, code: Option<&str>) -> Node {
    let mut b = el("stream:error");
    if let Some(c) = code {
        b = b.attr("code", c);
    }
    b.children([el("conflict").attr("type", kind).build()])
        .build()
}

fn failure(reason: &str) -> Node {
    el("failure").attr("reason", reason).build()
}

/// The node that ends a login for a failure a test asked for.
fn login_failure(kind: FailKind) -> Option<Node> {
    Some(match kind {
        FailKind::Unavailable => failure("503"),
        FailKind::RateLimited => stream_error("429"),
        FailKind::Outdated => failure("405"),
        FailKind::Locked => failure("403"),
        // A temporary ban: reason 402, the ban's code and its length in seconds.
        FailKind::Ban => el("failure")
            .attr("reason", "402")
            .attr("code", "101")
            .attr("expire", "3600")
            .build(),
        _ => return None,
    })
}

const LOGIN_FAILURES: &[FailKind] = &[
    FailKind::Unavailable,
    FailKind::RateLimited,
    FailKind::Outdated,
    FailKind::Locked,
    FailKind::Ban,
];

fn jid_of(phone: &str, device: u16) -> String {
    format!("{phone}:{device}@s.whatsapp.net")
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
            session: None,
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
    let _ = out.send(Cmd::Send(
        el("iq")
            .attr("from", nodes::SERVER)
            .attr("type", "set")
            .attr("id", iq_id)
            .attr("xmlns", "md")
            .children([el("pair-device").children(refs).build()])
            .build(),
    ));
}

/// WhatsApp asks the companion to finish on the phone with a passkey. The WebAuthn request
/// options ride along (without them the client asks for them in an IQ of its own).
fn passkey_request(w: &mut World) -> Node {
    let options = format!(
        r#"{{"challenge":"{}","rpId":"whatsapp.com","allowCredentials":[],"userVerification":"required","timeout":60000}}"#,
        random_token(43).replace(['+', '/'], "_")
    );
    el("notification")
        .attr("from", nodes::SERVER)
        .attr("type", "passkey_prologue_request")
        .attr("id", format!("srv-{}", w.next()))
        .attr("t", now_s())
        .children([el("passkey_request_options")
            .bytes(options.into_bytes())
            .build()])
        .build()
}

fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn random_digits(first: &str, n: usize) -> String {
    let mut rng = rand::rng();
    let mut s = first.to_owned();
    s.extend((0..n).map(|_| char::from(b'0' + rng.random_range(0..10u8))));
    s
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
/// session per device), then `<success>` and the end of the (empty) offline queue.
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
        .filter(|(cid, c)| **cid != id && c.noise == noise && c.session.is_some())
        .map(|(cid, _)| *cid)
        .collect();
    for cid in older {
        if let Some(c) = w.conns.get_mut(&cid) {
            c.session = None;
            let _ = c.out.send(Cmd::End(conflict("replaced", None)));
            w.witness.replaced(&noise);
        }
    }
    let lid = w.saved.lid_of(&phone).unwrap_or_default();
    let jid = jid_of(&phone, device);
    if let Some(c) = w.conns.get_mut(&id) {
        c.session = Some(jid.clone());
    }
    w.witness.logged_in(&noise, &jid);
    let _ = out.send(Cmd::Send(
        el("success")
            .attr("t", now_s())
            .attr("lid", format!("{lid}:{device}@lid"))
            .build(),
    ));
    let _ = out.send(Cmd::Send(
        el("ib")
            .children([el("offline").attr("count", "0").build()])
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

fn answer_iq(double: &Double, w: &mut World, id: ConnId, iq: &Node, out: &Outbox) -> Option<Node> {
    let xmlns = attr(iq, "xmlns").unwrap_or_default();
    let first = iq.children().and_then(|c| c.first());
    let first_tag = first.map(|c| c.tag.as_ref()).unwrap_or("");
    Some(match (xmlns.as_str(), first_tag) {
        ("w:p", _) => el("iq")
            .attr("type", "result")
            .attr("from", nodes::SERVER)
            .attr("id", attr(iq, "id").unwrap_or_default())
            .attr("t", now_s())
            .build(),
        ("abt", _) => result_to(
            iq,
            vec![
                el("props")
                    .attr("protocol", "1")
                    .attr("hash", "double")
                    .build(),
            ],
        ),
        ("privacy", _) => result_to(iq, vec![el("privacy").build()]),
        ("blocklist", _) => result_to(iq, vec![el("list").build()]),
        ("usync", _) => result_to(iq, vec![el("usync").children([el("list").build()]).build()]),
        ("encrypt", "count") => result_to(iq, vec![el("count").attr("value", "812").build()]),
        ("encrypt", "registration") => {
            // The device's prekeys: the phone can now open a Signal session to it. A device
            // uploads them after pairing, so this is when the phone shares the app-state key
            // (the client waits up to 10 s for it before its first sync).
            let noise = w.conns.get(&id).map(|c| c.noise.clone());
            if let (Some(noise), Some(keys)) = (noise, crate::signal::parse_upload(iq)) {
                match w.keys.get_mut(&noise) {
                    Some(k) => k.merge(keys),
                    None => {
                        w.keys.insert(noise.clone(), keys);
                    }
                }
                let _ = out.send(Cmd::Send(result_to(iq, vec![])));
                if let Err(e) = share_app_state_key(w, &noise) {
                    tracing::warn!(%noise, "no app-state key share: {e}");
                }
                return None;
            }
            result_to(iq, vec![])
        }
        ("encrypt", "rotate") => {
            if let Some(noise) = w.conns.get(&id).map(|c| c.noise.clone())
                && let Some(k) = w.keys.get_mut(&noise)
            {
                k.apply_rotate(iq);
            }
            result_to(iq, vec![])
        }
        ("w:sync:app:state", _) => {
            // Every collection asked for, answered as empty and complete: the client counts it
            // synced (version 0, nothing to decrypt).
            let names: Vec<Node> = first
                .map(|sync| {
                    nodes::children(sync, "collection")
                        .filter_map(|c| attr(c, "name"))
                        .map(|name| el("collection").attr("name", name).build())
                        .collect()
                })
                .unwrap_or_default();
            result_to(iq, vec![el("sync").children(names).build()])
        }
        ("md", "link_code_companion_reg") => return code_request(double, w, id, iq, out),
        ("md", "remove-companion-device") => {
            // The bot logged out: the device is gone, as when the phone removes it.
            if let Some(noise) = w.conns.get(&id).map(|c| c.noise.clone())
                && let Some(d) = w.saved.device_mut(&noise)
            {
                d.state = DeviceState::Removed;
            }
            result_to(iq, vec![])
        }
        // passive/active, prekey upload and digest, dirty bits, rotation…: a plain result is
        // what the client expects (it parses none of them).
        _ => result_to(iq, vec![]),
    })
}

/// The companion's side of a pairing code: `companion_hello` (it asks to link to a phone
/// number) and `companion_finish` (its key bundle, after the phone typed the code).
fn code_request(
    double: &Double,
    w: &mut World,
    id: ConnId,
    iq: &Node,
    out: &Outbox,
) -> Option<Node> {
    let reg = child(iq, "link_code_companion_reg")?;
    let stage = attr(reg, "stage").unwrap_or_default();
    let bytes_of = |tag: &str| child(reg, tag).and_then(nodes::bytes).map(<[u8]>::to_vec);
    match stage.as_str() {
        "companion_hello" => {
            let phone = attr(reg, "jid").and_then(|j| split_jid(&j)).map(|(u, _)| u);
            let (Some(phone), Some(wrapped)) = (
                phone,
                bytes_of("link_code_pairing_wrapped_companion_ephemeral_pub"),
            ) else {
                return Some(nodes::error_to(iq, 400, "bad-request"));
            };
            let reference = random_token(24).into_bytes();
            let noise = w.conns.get(&id)?.noise.clone();
            w.witness.code_requested(&noise);
            if let Some(c) = w.conns.get_mut(&id) {
                c.code = Some(CodeExchange {
                    phone,
                    reference: reference.clone(),
                    wrapped_companion_ephemeral: wrapped,
                    hello: None,
                });
            }
            Some(result_to(
                iq,
                vec![
                    el("link_code_companion_reg")
                        .children([el("link_code_pairing_ref").bytes(reference).build()])
                        .build(),
                ],
            ))
        }
        "companion_finish" => {
            let bundle = bytes_of("link_code_pairing_wrapped_key_bundle")?;
            let live = w.conns.get_mut(&id)?;
            let noise = live.noise.clone();
            let Some(CodeExchange {
                phone,
                hello: Some((hello, _code)),
                ..
            }) = live.code.take()
            else {
                return Some(nodes::error_to(iq, 400, "bad-request"));
            };
            let account = w.saved.account(&phone).cloned()?;
            let account_key = phone::key_pair(&crate::accounts::unb64(&account.identity_private)?)?;
            match hello.open_bundle(&account_key, &bundle) {
                Ok((companion_identity, adv)) => {
                    let answer = result_to(iq, vec![]);
                    let _ = out.send(Cmd::Send(answer));
                    // The phone's own round trip to WhatsApp before `<pair-success>` comes
                    // back (a few hundred ms in life). whatsapp-rust stores the code's adv
                    // secret through its persistence queue as it sends `companion_finish`: an
                    // instant `<pair-success>` can be checked against the old secret.
                    let handle = double.handle();
                    tokio::spawn(async move {
                        tokio::time::sleep(PHONE_ROUND_TRIP).await;
                        if let Some(d) = handle.upgrade() {
                            let mut w = d.world();
                            send_pair_success(
                                &mut w,
                                id,
                                &noise,
                                &phone,
                                companion_identity,
                                &adv,
                                false,
                            );
                            d.save(&w);
                        }
                    });
                    None
                }
                Err(e) => {
                    tracing::info!("pairing code: {e}");
                    Some(nodes::error_to(iq, 400, "bad-request"))
                }
            }
        }
        _ => Some(result_to(iq, vec![])),
    }
}

/// Encrypts `plaintext` from `from_user` (the account's phone, or the contact) to the device
/// `noise` on its open session, and sends it.
fn send_encrypted(
    w: &mut World,
    noise: &str,
    from_user: &str,
    plaintext: &[u8],
    push_name: Option<&str>,
    peer: bool,
) -> Result<(), String> {
    let device = w.saved.device(noise).cloned().ok_or("no such device")?;
    let (Some(phone), Some(device_id)) = (device.phone, device.device_id) else {
        return Err("the device is not linked".into());
    };
    let out = w
        .conns
        .values()
        .find(|c| c.noise == noise && c.session.is_some())
        .map(|c| c.out.clone())
        .ok_or("the device is not online")?;
    let to: wacore_binary::Jid = jid_of(&phone, device_id)
        .parse()
        .map_err(|e| format!("{e}"))?;
    if !w.senders.contains_key(from_user) {
        let identity = match w.saved.account(from_user) {
            Some(a) => crate::accounts::unb64(&a.identity_private)
                .and_then(|k| phone::key_pair(&k))
                .ok_or("the account's key is unreadable")?,
            None => wacore_libsignal::protocol::KeyPair::generate(&mut rand::rng()),
        };
        let registration_id = rand::rng().random_range(1..16_380);
        w.senders.insert(
            from_user.to_owned(),
            crate::signal::Sender::new(identity, registration_id),
        );
    }
    let sender = w.senders.get_mut(from_user).expect("just inserted");
    let (kind, bytes) =
        sender.encrypt_now(&to, w.keys.get_mut(noise), &crate::signal::pad(plaintext))?;
    let id = format!("3EB0{}", random_digits("", 16));
    let node = crate::signal::message_node(
        &id,
        &format!("{from_user}@s.whatsapp.net"),
        &to.to_string(),
        kind,
        bytes,
        now_s(),
        push_name,
        peer,
    );
    out.send(Cmd::Send(node))
        .map_err(|_| "the connection closed".to_string())
}

/// The phone shares the account's app-state sync key with the device, as a phone does with a
/// newly linked companion.
fn share_app_state_key(w: &mut World, noise: &str) -> Result<(), String> {
    let phone = w
        .saved
        .device(noise)
        .and_then(|d| d.phone.clone())
        .ok_or("the device is not linked")?;
    let mut key_data = [0u8; 32];
    rand::rng().fill(&mut key_data);
    let share = crate::signal::key_share_message(
        vec![0, 0, 0, 1, 0, 1],
        key_data,
        1,
        i64::try_from(now_s()).unwrap_or(0) * 1000,
    );
    send_encrypted(w, noise, &phone, &share, None, true)
}

/// A contact sends the device a text (`POST /admin/devices/message`).
pub fn message(double: &Double, noise: &str, text: &str) -> Result<(), PhoneError> {
    if text.is_empty() || text.len() > 4096 {
        return Err(PhoneError::BadInput("\"text\" is 1 to 4096 bytes".into()));
    }
    let mut w = double.world();
    if !w.keys.contains_key(noise) {
        return Err(PhoneError::NotFound(
            "the device has uploaded no prekeys to this double (it was linked before the \
             double's last start): link it again to message it"
                .into(),
        ));
    }
    send_encrypted(
        &mut w,
        noise,
        CONTACT,
        &crate::signal::text_message(text),
        Some("Contact"),
        false,
    )
    .map_err(PhoneError::NotFound)
}

/// What the phone learns of a linked device.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Linked {
    pub jid: String,
    pub lid: String,
    pub phone: String,
    pub device_id: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unsupported(String),
}

/// The account for this phone number (made if new), or a new account with a made-up number.
fn account_for(w: &mut World, phone: Option<&str>) -> Account {
    if let Some(p) = phone
        && let Some(a) = w.saved.account(p)
    {
        return a.clone();
    }
    let phone = phone
        .map(str::to_owned)
        .unwrap_or_else(|| random_digits("1555", 7));
    let key = wacore_libsignal::protocol::KeyPair::generate(&mut rand::rng());
    let account = Account {
        phone: phone.clone(),
        lid: random_digits("1", 14),
        identity_private: b64(key.private_key.serialize()),
        next_device: 1,
    };
    w.saved.accounts.push(account.clone());
    account
}

/// Sends `<pair-success>` for a new device of `phone`'s account on connection `id`.
fn send_pair_success(
    w: &mut World,
    id: ConnId,
    noise: &str,
    phone: &str,
    companion_identity: [u8; 32],
    adv: &[u8; 32],
    corrupt: bool,
) -> Option<Linked> {
    let account = account_for(w, Some(phone));
    let key = phone::key_pair(&crate::accounts::unb64(&account.identity_private)?)?;
    let device_id = account.next_device;
    if let Some(a) = w
        .saved
        .accounts
        .iter_mut()
        .find(|a| a.phone == account.phone)
    {
        a.next_device += 1;
    }
    // A pair error: signed under another adv secret, so the HMAC does not match and the
    // companion refuses it (as it would a QR that was tampered with).
    let wrong = [0x5a; 32];
    let identity = phone::signed_device_identity(
        &key,
        &companion_identity,
        if corrupt { &wrong } else { adv },
        u32::from(device_id),
        now_s(),
    );
    let iq_id = format!("pair-{}", w.next());
    let jid = jid_of(phone, device_id);
    let lid = format!("{}:{device_id}@lid", account.lid);
    let out = w.conns.get(&id)?.out.clone();
    w.pairs.insert(
        iq_id.clone(),
        PendingPair {
            conn: id,
            noise: noise.to_owned(),
            phone: phone.to_owned(),
            device_id,
            companion_identity,
            account_key: key.public_key.public_key_bytes().try_into().ok()?,
        },
    );
    let _ = out.send(Cmd::Send(
        el("iq")
            .attr("from", nodes::SERVER)
            .attr("type", "set")
            .attr("id", iq_id)
            .attr("xmlns", "md")
            .attr("t", now_s())
            .children([el("pair-success")
                .children([
                    el("device-identity")
                        .attr("key-index", u32::from(device_id))
                        .bytes(identity)
                        .build(),
                    el("platform").attr("name", "android").build(),
                    el("device")
                        .attr("jid", jid.clone())
                        .attr("lid", lid.clone())
                        .build(),
                ])
                .build()])
            .build(),
    ));
    Some(Linked {
        jid,
        lid,
        phone: format!("+{phone}"),
        device_id,
    })
}

/// The phone scans a QR. Without a phone number, a new account.
pub fn scan(double: &Double, qr: &str, phone: Option<&str>) -> Result<Linked, PhoneError> {
    let parsed = phone::parse_qr(qr).map_err(|e| PhoneError::BadInput(e.to_string()))?;
    let phone = phone
        .map(|p| {
            crate::accounts::phone_digits(p)
                .ok_or_else(|| PhoneError::BadInput(format!("{p:?} is not a phone number")))
        })
        .transpose()?;
    let mut w = double.world();
    let id = *w.offers.get(&parsed.reference).ok_or_else(|| {
        PhoneError::NotFound(
            "no open connection offers this QR (expired, or already scanned)".into(),
        )
    })?;
    let noise = w
        .conns
        .get(&id)
        .map(|c| c.noise.clone())
        .unwrap_or_default();
    if noise != parsed.noise_b64 {
        return Err(PhoneError::BadInput(
            "the QR's noise key is not the one of the connection that offered its ref".into(),
        ));
    }
    let corrupt = w.take_failure(&noise, &[FailKind::PairError]).is_some();
    let phone = phone.unwrap_or_else(|| account_for(&mut w, None).phone);
    let linked = send_pair_success(
        &mut w,
        id,
        &noise,
        &phone,
        parsed.identity,
        &parsed.adv_secret,
        corrupt,
    )
    .ok_or_else(|| PhoneError::NotFound("the connection closed".into()))?;
    // A scanned QR is used up.
    w.offers.retain(|_, c| *c != id);
    double.save(&w);
    Ok(linked)
}

/// The phone types a pairing code shown for `phone`.
pub fn enter_code(double: &Double, phone: &str, code: &str) -> Result<String, PhoneError> {
    let digits = crate::accounts::phone_digits(phone)
        .ok_or_else(|| PhoneError::BadInput(format!("{phone:?} is not a phone number")))?;
    let code: String = code
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_uppercase();
    if code.len() != 8 {
        return Err(PhoneError::BadInput(
            "a pairing code has 8 characters".into(),
        ));
    }
    let mut w = double.world();
    account_for(&mut w, Some(&digits));
    let account = w.saved.account(&digits).cloned().expect("just made");
    let key =
        phone::key_pair(&crate::accounts::unb64(&account.identity_private).unwrap_or_default())
            .ok_or_else(|| PhoneError::NotFound("the account's key is unreadable".into()))?;
    let mut found = None;
    for (id, live) in w.conns.iter_mut() {
        let Some(ex) = live.code.as_mut() else {
            continue;
        };
        if ex.phone != digits || ex.hello.is_some() {
            continue;
        }
        match phone::code_hello(&code, &ex.wrapped_companion_ephemeral) {
            Ok(hello) => {
                let node = el("notification")
                    .attr("from", nodes::SERVER)
                    .attr("type", "link_code_companion_reg")
                    .attr("id", format!("code-{id}"))
                    .children([el("link_code_companion_reg")
                        .attr("stage", "primary_hello")
                        .children([
                            el("link_code_pairing_wrapped_primary_ephemeral_pub")
                                .bytes(hello.wrapped_primary_ephemeral.to_vec())
                                .build(),
                            el("primary_identity_pub")
                                .bytes(key.public_key.public_key_bytes().to_vec())
                                .build(),
                            el("link_code_pairing_ref")
                                .bytes(ex.reference.clone())
                                .build(),
                        ])
                        .build()])
                    .build();
                let _ = live.out.send(Cmd::Send(node));
                ex.hello = Some((hello, code.clone()));
                found = Some(live.noise.clone());
                break;
            }
            // Another companion waiting for the same number, or a wrong code: try the next.
            Err(_) => continue,
        }
    }
    found.ok_or_else(|| {
        PhoneError::NotFound(format!(
            "no device is waiting for code {code} on +{digits} (wrong code, or expired)"
        ))
    })
}

/// The devices a selector names: `jid`, `phone` (its latest device) or `noise`.
pub fn select(
    w: &World,
    jid: Option<&str>,
    phone: Option<&str>,
    noise: Option<&str>,
) -> Option<String> {
    if let Some(n) = noise {
        return w.saved.device(n).map(|d| d.noise.clone()).or_else(|| {
            w.conns
                .values()
                .find(|c| c.noise == n)
                .map(|c| c.noise.clone())
        });
    }
    w.saved
        .device_by_jid(jid.or(phone)?)
        .map(|d| d.noise.clone())
}

/// The phone removes the device: its session ends with 401, its later logins fail.
pub fn remove(double: &Double, noise: &str) {
    let mut w = double.world();
    if let Some(d) = w.saved.device_mut(noise) {
        d.state = DeviceState::Removed;
    }
    for c in w.conns.values_mut().filter(|c| c.noise == noise) {
        let _ = c
            .out
            .send(Cmd::End(conflict("device_removed", Some("401"))));
        c.session = None;
    }
    double.save(&w);
}

/// A test asks for a failure.
pub fn fail(
    double: &Double,
    noise: &str,
    kind: FailKind,
    times: Option<u32>,
) -> Result<(), PhoneError> {
    let mut w = double.world();
    match kind {
        FailKind::None => {
            w.failures.remove(noise);
            return Ok(());
        }
        FailKind::NoMultiDevice => {
            return Err(PhoneError::Unsupported(
                "whatsapp-rust 0.7 never raises QrScannedWithoutMultidevice: no stanza from \
                 WhatsApp leads to it, so the double cannot send one"
                    .into(),
            ));
        }
        FailKind::Replaced => {
            let mut n = 0;
            for c in w
                .conns
                .values_mut()
                .filter(|c| c.noise == noise && c.session.is_some())
            {
                let _ = c.out.send(Cmd::End(conflict("replaced", None)));
                c.session = None;
                n += 1;
            }
            for _ in 0..n {
                w.witness.replaced(noise);
            }
            return Ok(());
        }
        FailKind::Unavailable | FailKind::RateLimited => {
            let code = if kind == FailKind::Unavailable {
                "503"
            } else {
                "429"
            };
            for c in w.conns.values().filter(|c| c.noise == noise) {
                let _ = c.out.send(Cmd::End(stream_error(code)));
            }
        }
        FailKind::Passkey => {
            let targets: Vec<Outbox> = w
                .conns
                .values()
                .filter(|c| c.noise == noise && c.session.is_none())
                .map(|c| c.out.clone())
                .collect();
            if !targets.is_empty() {
                for out in targets {
                    let n = passkey_request(&mut w);
                    let _ = out.send(Cmd::Send(n));
                }
                return Ok(());
            }
        }
        _ => {}
    }
    // Acts on the next logins (or scans, for a pair error).
    if times != Some(0) {
        w.failures.insert(noise.to_owned(), Failure { kind, times });
    }
    Ok(())
}

/// The device list of `GET /admin/devices`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub noise: String,
    pub jid: Option<String>,
    pub phone: Option<String>,
    pub state: DeviceState,
    pub open_now: usize,
    pub most_open_at_once: u64,
}

pub fn devices(w: &World) -> Vec<DeviceView> {
    let stats = w.witness.snapshot();
    w.saved
        .devices
        .iter()
        .map(|d| DeviceView {
            noise: d.noise.clone(),
            jid: d.phone.as_ref().zip(d.device_id).map(|(p, n)| jid_of(p, n)),
            phone: d.phone.as_ref().map(|p| format!("+{p}")),
            state: d.state,
            open_now: w.open_connections(&d.noise),
            most_open_at_once: stats
                .devices
                .get(&d.noise)
                .map(|c| c.most_open_at_once)
                .unwrap_or(0),
        })
        .collect()
}
