//! What the phone does, as `admin.rs` asks (the phone page, the tests): scan a QR, type a
//! pairing code, remove a device; and what it sends a device over Signal — the app-state key
//! share after linking, and a contact's texts.

use super::{
    ConnId, FailKind, PendingPair, World, jid_of, now_s, random_digits,
    stanzas::{conflict, md_set},
};
use crate::{
    Double,
    accounts::{Account, DeviceState, b64},
    conn::Cmd,
    nodes::{self, el},
    phone,
};
use rand::RngExt as _;

/// The contact who writes to the bots (`POST /admin/devices/message`).
pub const CONTACT: &str = "15550009999";

/// Encrypts `plaintext` from `from_user` (the account's phone, or the contact) to the device
/// `noise` and sends it on its open session; with none open, `queue` keeps it for the device's
/// next login (a contact's text), else it is an error (what only a live session takes).
fn send_encrypted(
    w: &mut World,
    noise: &str,
    from_user: &str,
    plaintext: &[u8],
    push_name: Option<&str>,
    peer: bool,
    queue: bool,
) -> Result<Delivery, String> {
    let device = w.saved.device(noise).cloned().ok_or("no such device")?;
    let (Some(phone), Some(device_id)) = (device.phone, device.device_id) else {
        return Err("the device is not linked".into());
    };
    let out = w
        .conns
        .values()
        .find(|c| c.noise == noise && c.logged_in)
        .map(|c| c.out.clone());
    if out.is_none() && !queue {
        return Err("the device is not online".into());
    }
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
    if let Some(out) = out
        && out.send(Cmd::Send(node.clone())).is_ok()
    {
        return Ok(Delivery::Sent);
    }
    let waiting = w.queued.entry(noise.to_owned()).or_default();
    waiting.push(node);
    Ok(Delivery::Queued {
        waiting: waiting.len(),
    })
}

/// How a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "delivery")]
pub enum Delivery {
    /// On the device's open session.
    Sent,
    /// Kept for its next login: `waiting` messages are queued for it now.
    Queued { waiting: usize },
}

/// The phone shares the account's app-state sync key with the device, as a phone does with a
/// newly linked companion.
pub(super) fn share_app_state_key(w: &mut World, noise: &str) -> Result<(), String> {
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
    send_encrypted(w, noise, &phone, &share, None, true, false).map(drop)
}

/// A contact sends the device a text (`POST /admin/devices/message`): at once on its open
/// session, or queued for its next login.
pub fn message(double: &Double, noise: &str, text: &str) -> Result<Delivery, PhoneError> {
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
        true,
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
pub(super) fn account_for(w: &mut World, phone: Option<&str>) -> Account {
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
pub(super) fn send_pair_success(
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
            account_key: phone::public32(&key),
        },
    );
    let _ = out.send(Cmd::Send(md_set(
        iq_id,
        el("pair-success")
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
            .build(),
    )));
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
        c.logged_in = false;
    }
    double.save(&w);
}

/// The device list of `GET /admin/devices`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub noise: String,
    pub jid: Option<String>,
    pub phone: Option<String>,
    pub state: DeviceState,
    pub open_now: u64,
    pub most_open_at_once: u64,
}

pub fn devices(w: &World) -> Vec<DeviceView> {
    let stats = w.witness.snapshot();
    w.saved
        .devices
        .iter()
        .map(|d| {
            // The witness's counts: one source for "open" (it counts what the connections do).
            let seen = stats.devices.get(&d.noise).cloned().unwrap_or_default();
            DeviceView {
                noise: d.noise.clone(),
                jid: d.phone.as_ref().zip(d.device_id).map(|(p, n)| jid_of(p, n)),
                phone: d.phone.as_ref().map(|p| format!("+{p}")),
                state: d.state,
                open_now: seen.open_now,
                most_open_at_once: seen.most_open_at_once,
            }
        })
        .collect()
}
