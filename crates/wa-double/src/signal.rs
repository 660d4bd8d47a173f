//! Signal for the double's phone and contacts. They send end-to-end encrypted 1:1 messages to a
//! linked whatsapp-rust device (the bot), the way WhatsApp's phones do. Two examples: the
//! app-state sync key share that the account's own phone sends a freshly linked companion
//! (after pairing, whatsapp-rust waits up to 10 s for it before its first app-state sync), and
//! a text from a contact.
//!
//! The bot publishes its keys in its prekey upload (`<iq xmlns="encrypt" type="set">`, read by
//! [`parse_upload`]). A [`Sender`] builds an X3DH session from those keys, using one one-time
//! prekey that is handed out only once, as the server does. It then encrypts with
//! wacore-libsignal, the same library the bot decrypts with. The plaintext is a waproto
//! `Message` ([`text_message`], [`key_share_message`]) plus WhatsApp's padding ([`pad`]),
//! carried in a `<message><enc>` stanza ([`message_node`]).
//!
//! This is pure library code. The stores live in memory and answer at once, so every future
//! here is ready on its first poll. [`Sender::encrypt_now`] serves callers that are not async.
//!
//! # Addresses (whatsapp-rust 0.7: `wacore::types::jid`, `message/receive.rs`, `lid_pn.rs`)
//! A Signal address is `ProtocolAddress::new("{user}[:{device}]@{server}", 0)`. The device sits
//! in the name, the Signal device id is always 0, and `s.whatsapp.net` is written as `c.us`. So
//! `15551234567:3@s.whatsapp.net` becomes `15551234567:3@c.us.0`. This is
//! `wacore::types::jid::JidExt::to_protocol_address`, which the sender below also uses for the
//! bot. Only the receiver's name for the sender has to stay the same across messages: the bot
//! keys its session by `resolve_encryption_jid(from)`, which is `from` itself, or `from`'s LID
//! if the bot knows the PN→LID mapping for that user.
//!
//! A 1:1 message to the bot carries **no `participant` and no `recipient`**. `participant` is
//! only for groups and broadcasts. `recipient` marks an own message echoed to the account's
//! other devices, and it makes `chat = recipient`.
//! * From a contact: `from="C@s.whatsapp.net"`, or `from="C:D@s.whatsapp.net"` for device D≠0.
//!   The bot decrypts under `C[:D]@c.us.0` and sets `is_from_me=false`. Leave `sender_lid` off:
//!   it teaches the bot a mapping, and the address becomes the LID one. The bot answers with
//!   `<receipt to=from id [type="inactive"]/>`.
//! * From the account's own phone: `from="P@s.whatsapp.net"`, where P is the account's number.
//!   Device 0 has no `:0`. `OWNLID@lid` works as well. `is_from_me` is a match on *user* with
//!   the bot's own PN or LID; the device is not checked. Pairing stored the own PN→LID mapping
//!   (whatsapp-rust `pair.rs`), so the bot decrypts under `OWNLID@lid.0` in both forms. Only an
//!   `is_from_me` message gets its `app_state_sync_key_share` accepted. With `category="peer"`
//!   the bot answers `<receipt type="peer_msg">`; without it, an `<ack class="message">`.
//!   The phone's `Sender` should hold the account's identity key pair (the one that signed the
//!   device in), as a real primary device does.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use wacore::types::jid::JidExt as _;
use wacore_binary::{Jid, Node, NodeContent, builder::NodeBuilder};
use wacore_libsignal::protocol::{
    CiphertextMessage, Direction, IdentityChange, IdentityKey, IdentityKeyPair, IdentityKeyStore,
    KeyPair, PreKeyBundle, PreKeyId, ProtocolAddress, PublicKey, SessionRecord, SessionStore,
    SignalProtocolError, UsePQRatchet, message_encrypt, process_prekey_bundle,
};
use waproto::buffa::{self, Message as _};
use waproto::whatsapp as wa;

/// The keys a device published in its prekey upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedKeys {
    pub registration_id: u32,
    /// The raw X25519 identity key: 32 bytes, without the 0x05 prefix.
    pub identity: [u8; 32],
    pub signed_prekey_id: u32,
    pub signed_prekey: [u8; 32],
    /// XEdDSA by the identity key over the 33-byte (0x05-prefixed) signed prekey.
    pub signed_prekey_signature: Vec<u8>,
    /// The one-time prekeys not handed out yet, in upload order.
    pub prekeys: Vec<(u32, [u8; 32])>,
}

impl UploadedKeys {
    /// Hands out the first one-time prekey left, once, as the server does. whatsapp-rust
    /// deletes a prekey after a pkmsg uses it, so a second session built on it would fail.
    pub fn take_prekey(&mut self) -> Option<(u32, [u8; 32])> {
        (!self.prekeys.is_empty()).then(|| self.prekeys.remove(0))
    }

    /// Takes in a later upload from the same device slot. A refill (same identity) adds the
    /// new prekeys and the current signed prekey. A new identity (re-pairing) replaces
    /// everything.
    pub fn merge(&mut self, newer: UploadedKeys) {
        if newer.identity != self.identity {
            *self = newer;
            return;
        }
        self.registration_id = newer.registration_id;
        self.signed_prekey_id = newer.signed_prekey_id;
        self.signed_prekey = newer.signed_prekey;
        self.signed_prekey_signature = newer.signed_prekey_signature;
        for (id, key) in newer.prekeys {
            if !self.prekeys.iter().any(|(known, _)| *known == id) {
                self.prekeys.push((id, key));
            }
        }
    }

    /// Applies `<iq xmlns="encrypt" type="set"><rotate><skey>…</skey></rotate></iq>`, the
    /// signed-prekey rotation whatsapp-rust may send after an upload. Returns whether it was one.
    pub fn apply_rotate(&mut self, iq: &Node) -> bool {
        let rotated = iq
            .get_optional_child("rotate")
            .and_then(|r| r.get_optional_child("skey"));
        match rotated.and_then(signed_prekey) {
            Some((id, key, signature)) => {
                self.signed_prekey_id = id;
                self.signed_prekey = key;
                self.signed_prekey_signature = signature;
                true
            }
            None => false,
        }
    }
}

/// A child's content as bytes. The decoder gives byte content as `Bytes`. A `String` is
/// tolerated, the same way as in `nodes::bytes`.
fn content(node: Option<&Node>) -> Option<&[u8]> {
    match &node?.content {
        Some(NodeContent::Bytes(b)) => Some(b),
        Some(NodeContent::String(s)) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A big-endian integer of exactly `len` bytes (ids are 3 bytes, the registration id 4).
fn big_endian(bytes: &[u8], len: usize) -> Option<u32> {
    (bytes.len() == len).then(|| bytes.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)))
}

/// A 32-byte public key. A 33-byte one carrying the 0x05 type prefix is accepted too.
fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    let raw = match bytes {
        [5, rest @ ..] if rest.len() == 32 => rest,
        _ => bytes,
    };
    raw.try_into().ok()
}

/// `<key>` or `<skey>`: `<id>` (3 bytes BE) and `<value>` (32 bytes).
fn id_and_key(node: &Node) -> Option<(u32, [u8; 32])> {
    let id = big_endian(content(node.get_optional_child("id"))?, 3)?;
    Some((id, key32(content(node.get_optional_child("value"))?)?))
}

fn signed_prekey(skey: &Node) -> Option<(u32, [u8; 32], Vec<u8>)> {
    let (id, key) = id_and_key(skey)?;
    let signature = content(skey.get_optional_child("signature"))?;
    (signature.len() == 64).then(|| (id, key, signature.to_vec()))
}

/// Reads the bot's prekey upload: `<iq xmlns="encrypt" type="set"><registration>4B</registration>
/// <type>0x05</type><identity>32B</identity><list><key><id>3B</id><value>32B</value></key>…</list>
/// <skey><id>3B</id><value>32B</value><signature>64B</signature></skey></iq>`. The function is
/// `None` for anything else (a count query, a digest, a rotation).
pub fn parse_upload(iq: &Node) -> Option<UploadedKeys> {
    let registration_id = big_endian(content(iq.get_optional_child("registration"))?, 4)?;
    let identity = key32(content(iq.get_optional_child("identity"))?)?;
    let (signed_prekey_id, signed_prekey, signed_prekey_signature) =
        signed_prekey(iq.get_optional_child("skey")?)?;
    let prekeys = iq
        .get_optional_child("list")
        .map(|list| {
            list.get_children_by_tag("key")
                .filter_map(id_and_key)
                .collect()
        })
        .unwrap_or_default();
    Some(UploadedKeys {
        registration_id,
        identity,
        signed_prekey_id,
        signed_prekey,
        signed_prekey_signature,
        prekeys,
    })
}

type SigResult<T> = Result<T, SignalProtocolError>;

/// What `#[async_trait]` makes of the `async fn`s in wacore-libsignal's store traits. This
/// crate does not depend on async-trait, so the impls below are written desugared, the way
/// whatsapp-rust's own `store/signal_adapter.rs` does it. Each method has the same lifetimes in
/// the same order: one per reference, then the future's `'f`, each bounded by `'f`.
type Fut<'a, T> = Pin<Box<dyn Future<Output = SigResult<T>> + Send + 'a>>;

fn ready<'a, T: Send + 'a>(value: SigResult<T>) -> Fut<'a, T> {
    Box::pin(std::future::ready(value))
}

/// Polls a future once. Everything in this file is ready on its first poll, because the
/// stores answer at once and libsignal does no I/O. `None` would mean it was not ready.
fn now<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[derive(Default)]
struct Sessions(HashMap<ProtocolAddress, SessionRecord>);

impl SessionStore for Sessions {
    fn load_session<'s: 'f, 'a: 'f, 'f>(
        &'s self,
        address: &'a ProtocolAddress,
    ) -> Fut<'f, Option<SessionRecord>> {
        ready(Ok(self.0.get(address).cloned()))
    }

    fn has_session<'s: 'f, 'a: 'f, 'f>(&'s self, address: &'a ProtocolAddress) -> Fut<'f, bool> {
        ready(Ok(self.0.contains_key(address)))
    }

    fn store_session<'s: 'f, 'a: 'f, 'f>(
        &'s mut self,
        address: &'a ProtocolAddress,
        record: SessionRecord,
    ) -> Fut<'f, ()> {
        self.0.insert(address.clone(), record);
        ready(Ok(()))
    }
}

/// Our identity, and the identities of the parties we have sessions with. Every identity is
/// trusted, as in whatsapp-rust (and WA Web).
struct Identities {
    pair: IdentityKeyPair,
    registration_id: u32,
    known: HashMap<ProtocolAddress, IdentityKey>,
}

impl IdentityKeyStore for Identities {
    fn get_identity_key_pair<'s: 'f, 'f>(&'s self) -> Fut<'f, IdentityKeyPair> {
        ready(Ok(self.pair.clone()))
    }

    fn get_local_registration_id<'s: 'f, 'f>(&'s self) -> Fut<'f, u32> {
        ready(Ok(self.registration_id))
    }

    fn save_identity<'s: 'f, 'a: 'f, 'i: 'f, 'f>(
        &'s mut self,
        address: &'a ProtocolAddress,
        identity: &'i IdentityKey,
    ) -> Fut<'f, IdentityChange> {
        let old = self.known.insert(address.clone(), *identity);
        ready(Ok(IdentityChange::from_changed(
            old.is_some_and(|old| old != *identity),
        )))
    }

    fn is_trusted_identity<'s: 'f, 'a: 'f, 'i: 'f, 'f>(
        &'s self,
        _address: &'a ProtocolAddress,
        _identity: &'i IdentityKey,
        _direction: Direction,
    ) -> Fut<'f, bool> {
        ready(Ok(true))
    }

    fn get_identity<'s: 'f, 'a: 'f, 'f>(
        &'s self,
        address: &'a ProtocolAddress,
    ) -> Fut<'f, Option<IdentityKey>> {
        ready(Ok(self.known.get(address).copied()))
    }
}

/// One sending party (a contact, or the account's phone) with its Signal sessions.
pub struct Sender {
    sessions: Sessions,
    identities: Identities,
}

impl Sender {
    pub fn new(identity: KeyPair, registration_id: u32) -> Sender {
        Sender {
            sessions: Sessions::default(),
            identities: Identities {
                pair: identity.into(),
                registration_id,
                known: HashMap::new(),
            },
        }
    }

    /// Whether a session with the device `to` exists (e.g. `15551234567:3@s.whatsapp.net`).
    pub fn has_session(&self, to: &Jid) -> bool {
        self.sessions.0.contains_key(&to.to_protocol_address())
    }

    /// Drops the session with `to`. The next message then needs fresh keys.
    pub fn forget(&mut self, to: &Jid) {
        let address = to.to_protocol_address();
        self.sessions.0.remove(&address);
        self.identities.known.remove(&address);
    }

    /// Encrypts `plaintext` for the device `to`. Pass a padded plaintext:
    /// `pad(&text_message(..))`. A session is built from `keys` when there is none yet, or
    /// when `keys` carries a different identity (a re-paired device). One one-time prekey is
    /// taken from `keys` for it. Gives `("pkmsg", bytes)` until `to` has answered on the
    /// session, and `("msg", bytes)` after that. This is the `<enc type>` and its content.
    pub async fn encrypt(
        &mut self,
        to: &Jid,
        keys: Option<&mut UploadedKeys>,
        plaintext: &[u8],
    ) -> Result<(&'static str, Vec<u8>), String> {
        let address = to.to_protocol_address();
        if let Some(keys) = keys {
            let identity = IdentityKey::new(public(&keys.identity)?);
            let current = self.sessions.0.contains_key(&address)
                && self.identities.known.get(&address) == Some(&identity);
            if !current {
                let prekey: Option<(PreKeyId, PublicKey)> = match keys.take_prekey() {
                    Some((id, key)) => Some((id.into(), public(&key)?)),
                    None => None,
                };
                let bundle = PreKeyBundle::new(
                    keys.registration_id,
                    u32::from(to.device).into(),
                    prekey,
                    keys.signed_prekey_id.into(),
                    public(&keys.signed_prekey)?,
                    keys.signed_prekey_signature.clone(),
                    identity,
                )
                .map_err(|e| e.to_string())?;
                let mut rng: rand::rngs::StdRng = rand::make_rng();
                process_prekey_bundle(
                    &address,
                    &mut self.sessions,
                    &mut self.identities,
                    &bundle,
                    &mut rng,
                    UsePQRatchet::No,
                )
                .await
                .map_err(|e| format!("the bundle of {to} is refused: {e}"))?;
            }
        }
        let message = message_encrypt(
            plaintext,
            &address,
            &mut self.sessions,
            &mut self.identities,
        )
        .await
        .map_err(|e| e.to_string())?;
        let kind = match &message {
            CiphertextMessage::PreKeySignalMessage(_) => "pkmsg",
            CiphertextMessage::SignalMessage(_) => "msg",
            other => return Err(format!("unexpected {:?}", other.message_type())),
        };
        Ok((kind, message.serialize().to_vec()))
    }

    /// [`Sender::encrypt`] for a caller that is not async, such as one holding a `std` lock.
    pub fn encrypt_now(
        &mut self,
        to: &Jid,
        keys: Option<&mut UploadedKeys>,
        plaintext: &[u8],
    ) -> Result<(&'static str, Vec<u8>), String> {
        now(self.encrypt(to, keys, plaintext))
            .unwrap_or_else(|| Err("encrypt did not complete".into()))
    }
}

fn public(key: &[u8; 32]) -> Result<PublicKey, String> {
    PublicKey::from_djb_public_key_bytes(key).map_err(|e| e.to_string())
}

/// WhatsApp's padding, version 2 (`<enc v="2">`): n bytes of value n, with n random in 1..=16
/// (wacore's own `pad_message_v2`). The receiver (`MessageUtils::unpadded_message_len`) takes
/// any n in 1..=len whose bytes all equal n.
pub fn pad(message_bytes: &[u8]) -> Vec<u8> {
    wacore::messages::MessageUtils::pad_message_v2(message_bytes.to_vec())
}

/// `Message { conversation: text }`, encoded.
pub fn text_message(text: &str) -> Vec<u8> {
    wa::Message {
        conversation: Some(text.to_owned()),
        ..Default::default()
    }
    .encode_to_vec()
}

/// An app-state sync key share, as the primary phone sends it to a new companion. whatsapp-rust
/// (`message/special.rs`) stores a key that has a key id, key data **and a fingerprint**; a key
/// without a fingerprint is skipped without a word. The length of the key data is not checked
/// (WhatsApp's is 32). The key is accepted only from the account itself (see the module doc).
/// Storing one ends the client's wait for keys.
pub fn key_share_message(
    key_id: Vec<u8>,
    key_data: [u8; 32],
    fingerprint_raw_id: u32,
    timestamp_ms: i64,
) -> Vec<u8> {
    use wa::message as m;
    let key = m::AppStateSyncKey {
        key_id: buffa::MessageField::some(m::AppStateSyncKeyId {
            key_id: Some(key_id),
        }),
        key_data: buffa::MessageField::some(m::AppStateSyncKeyData {
            key_data: Some(key_data.to_vec()),
            fingerprint: buffa::MessageField::some(m::AppStateSyncKeyFingerprint {
                raw_id: Some(fingerprint_raw_id),
                current_index: Some(0),
                device_indexes: vec![0],
            }),
            timestamp: Some(timestamp_ms),
        }),
    };
    wa::Message {
        protocol_message: buffa::MessageField::some(m::ProtocolMessage {
            r#type: Some(m::protocol_message::Type::APP_STATE_SYNC_KEY_SHARE),
            app_state_sync_key_share: buffa::MessageField::some(m::AppStateSyncKeyShare {
                keys: vec![key],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// `<message id from t type="text" [notify] [category="peer"]><enc v="2" type>BYTES</enc>
/// </message>`. `from` is a JID string; the module doc says which one. There is no
/// `participant` and no `recipient` in a 1:1 message. `to_device_jid` is not written: the
/// client reads no `to` on a message. The parameter is kept so that callers name the device
/// the stanza goes to. `type` is not read by the client either.
#[allow(clippy::too_many_arguments)]
pub fn message_node(
    id: &str,
    from: &str,
    to_device_jid: &str,
    enc_type: &str,
    ciphertext: Vec<u8>,
    t: u64,
    push_name: Option<&str>,
    category_peer: bool,
) -> Node {
    let _ = to_device_jid;
    let mut message = NodeBuilder::new("message")
        .attr("id", id)
        .attr("from", from)
        .attr("t", t)
        .attr("type", "text");
    if let Some(name) = push_name {
        message = message.attr("notify", name);
    }
    if category_peer {
        message = message.attr("category", "peer");
    }
    let enc = NodeBuilder::new("enc")
        .attr("v", "2")
        .attr("type", enc_type)
        .bytes(ciphertext)
        .build();
    message.children([enc]).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wacore_libsignal::protocol::{
        GenericSignedPreKey, PreKeyRecord, PreKeySignalMessage, PreKeyStore, SignalMessage,
        SignedPreKeyId, SignedPreKeyRecord, SignedPreKeyStore, Timestamp, message_decrypt_prekey,
        message_decrypt_signal,
    };

    #[derive(Default)]
    struct PreKeys(HashMap<PreKeyId, PreKeyRecord>);

    impl PreKeyStore for PreKeys {
        fn get_pre_key<'s: 'f, 'f>(&'s self, id: PreKeyId) -> Fut<'f, PreKeyRecord> {
            ready(
                self.0
                    .get(&id)
                    .cloned()
                    .ok_or(SignalProtocolError::InvalidPreKeyId),
            )
        }

        fn save_pre_key<'s: 'f, 'r: 'f, 'f>(
            &'s mut self,
            id: PreKeyId,
            record: &'r PreKeyRecord,
        ) -> Fut<'f, ()> {
            self.0.insert(id, record.clone());
            ready(Ok(()))
        }

        fn remove_pre_key<'s: 'f, 'f>(&'s mut self, id: PreKeyId) -> Fut<'f, ()> {
            self.0.remove(&id);
            ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct SignedPreKeys(HashMap<SignedPreKeyId, SignedPreKeyRecord>);

    impl SignedPreKeyStore for SignedPreKeys {
        fn get_signed_pre_key<'s: 'f, 'f>(
            &'s self,
            id: SignedPreKeyId,
        ) -> Fut<'f, SignedPreKeyRecord> {
            ready(
                self.0
                    .get(&id)
                    .cloned()
                    .ok_or(SignalProtocolError::InvalidSignedPreKeyId),
            )
        }

        fn save_signed_pre_key<'s: 'f, 'r: 'f, 'f>(
            &'s mut self,
            id: SignedPreKeyId,
            record: &'r SignedPreKeyRecord,
        ) -> Fut<'f, ()> {
            self.0.insert(id, record.clone());
            ready(Ok(()))
        }
    }

    /// The bot after login: its stores, and the upload whatsapp-rust's own builder writes.
    struct Bot {
        jid: Jid,
        party: Sender,
        prekeys: PreKeys,
        signed: SignedPreKeys,
        upload: Node,
    }

    fn bot() -> Bot {
        let mut rng: rand::rngs::StdRng = rand::make_rng();
        let identity = KeyPair::generate(&mut rng);
        let spk = KeyPair::generate(&mut rng);
        let sig = identity
            .private_key
            .calculate_signature(&spk.public_key.serialize(), &mut rng)
            .unwrap();
        let one_time: Vec<(u32, KeyPair)> = (1..=3)
            .map(|id| (id, KeyPair::generate(&mut rng)))
            .collect();
        let mut prekeys = PreKeys::default();
        for (id, pair) in &one_time {
            prekeys
                .0
                .insert((*id).into(), PreKeyRecord::new((*id).into(), pair));
        }
        let mut signed = SignedPreKeys::default();
        let record =
            SignedPreKeyRecord::new(7u32.into(), Timestamp::from_epoch_millis(0), &spk, &sig);
        signed.0.insert(7u32.into(), record);
        let children = wacore::prekeys::PreKeyUtils::build_upload_prekeys_request(
            4242,
            identity.public_key.public_key_bytes(),
            7,
            spk.public_key.public_key_bytes(),
            &sig,
            one_time
                .iter()
                .map(|(id, pair)| (*id, pair.public_key.public_key_bytes())),
        );
        let iq = NodeBuilder::new("iq")
            .attr("xmlns", "encrypt")
            .attr("type", "set")
            .children(children)
            .build();
        Bot {
            jid: "15551234567:3@s.whatsapp.net".parse().unwrap(),
            party: Sender::new(identity, 4242),
            prekeys,
            signed,
            upload: crate::nodes::decode(&crate::nodes::encode(&iq)).unwrap(),
        }
    }

    fn decode(padded: &[u8]) -> wa::Message {
        wacore::messages::decode_plaintext(padded, 2).expect("whatsapp-rust unpads and decodes it")
    }

    impl Bot {
        /// Decrypts as whatsapp-rust does (`message/receive.rs`), with the same library calls.
        fn open(&mut self, from: &ProtocolAddress, kind: &str, bytes: &[u8]) -> wa::Message {
            let mut rng: rand::rngs::StdRng = rand::make_rng();
            let (sessions, identities) = (&mut self.party.sessions, &mut self.party.identities);
            let out = if kind == "pkmsg" {
                let m = PreKeySignalMessage::try_from(bytes).unwrap();
                let (prekeys, signed) = (&mut self.prekeys, &self.signed);
                let no = UsePQRatchet::No;
                now(message_decrypt_prekey(
                    &m, from, sessions, identities, prekeys, signed, &mut rng, no,
                ))
            } else {
                let m = SignalMessage::try_from(bytes).unwrap();
                now(message_decrypt_signal(
                    &m, from, sessions, identities, &mut rng,
                ))
            };
            decode(&out.expect("ready").expect("decrypts").plaintext)
        }
    }

    #[test]
    fn the_upload_is_read_as_whatsapp_rust_writes_it() {
        let bot = bot();
        let keys = parse_upload(&bot.upload).expect("an upload");
        assert_eq!(keys.registration_id, 4242);
        assert_eq!(keys.signed_prekey_id, 7);
        assert_eq!(keys.signed_prekey_signature.len(), 64);
        assert_eq!(
            keys.prekeys.iter().map(|k| k.0).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let identity = bot.party.identities.pair.public_key().public_key_bytes();
        assert_eq!(keys.identity.as_slice(), identity);
        assert!(parse_upload(&NodeBuilder::new("iq").build()).is_none());
    }

    #[test]
    fn the_bot_decrypts_what_the_phone_sends_and_the_session_moves_on_to_msg() {
        let mut bot = bot();
        let mut keys = parse_upload(&bot.upload).unwrap();
        let phone_jid: Jid = "15550001111@s.whatsapp.net".parse().unwrap();
        let from = phone_jid.to_protocol_address();
        assert_eq!(from.as_str(), "15550001111@c.us.0");
        let mut phone = Sender::new(KeyPair::generate(&mut rand::rng()), 77);

        let hello = pad(&text_message("hello"));
        let (kind, bytes) = phone
            .encrypt_now(&bot.jid, Some(&mut keys), &hello)
            .unwrap();
        assert_eq!((kind, keys.prekeys.len()), ("pkmsg", 2));
        let used = PreKeySignalMessage::try_from(bytes.as_slice())
            .unwrap()
            .pre_key_id();
        let got = bot.open(&from, kind, &bytes);
        assert_eq!(got.conversation.as_deref(), Some("hello"));

        // whatsapp-rust deletes the used prekey. A second pkmsg (no answer yet) still opens.
        bot.prekeys.0.remove(&used.expect("a one-time prekey"));
        let share = key_share_message(vec![0, 0, 0, 0, 1, 2], [9; 32], 1, 1_700_000_000_000);
        let (kind, bytes) = phone
            .encrypt_now(&bot.jid, Some(&mut keys), &pad(&share))
            .unwrap();
        assert_eq!((kind, keys.prekeys.len()), ("pkmsg", 2));
        let got = bot.open(&from, kind, &bytes);
        let protocol = got
            .protocol_message
            .as_option()
            .expect("a protocol message");
        let shared = protocol
            .app_state_sync_key_share
            .as_option()
            .expect("a key share");
        let key = shared.keys[0].key_data.as_option().unwrap();
        assert!(key.fingerprint.as_option().is_some());
        assert_eq!(key.key_data.as_deref(), Some(&[9u8; 32][..]));

        // The bot answers. From then on the phone sends "msg".
        let reply = pad(&text_message("hi back"));
        let (kind, reply) = bot.party.encrypt_now(&phone_jid, None, &reply).unwrap();
        assert_eq!(kind, "msg");
        let reply = SignalMessage::try_from(reply.as_slice()).unwrap();
        let to_bot = bot.jid.to_protocol_address();
        let mut rng: rand::rngs::StdRng = rand::make_rng();
        let (sessions, identities) = (&mut phone.sessions, &mut phone.identities);
        let out = now(message_decrypt_signal(
            &reply, &to_bot, sessions, identities, &mut rng,
        ));
        assert_eq!(
            decode(&out.unwrap().unwrap().plaintext)
                .conversation
                .as_deref(),
            Some("hi back")
        );
        let third = pad(&text_message("third"));
        let (kind, bytes) = phone
            .encrypt_now(&bot.jid, Some(&mut keys), &third)
            .unwrap();
        assert_eq!(kind, "msg");
        assert_eq!(
            bot.open(&from, kind, &bytes).conversation.as_deref(),
            Some("third")
        );
        assert!(
            phone.encrypt_now(&phone_jid, None, b"x").is_err(),
            "no session, no keys"
        );
    }

    #[test]
    fn padding_is_what_whatsapp_rust_strips() {
        for _ in 0..64 {
            let padded = pad(b"abc");
            assert!((4..=19).contains(&padded.len()));
            let len = wacore::messages::MessageUtils::unpadded_message_len(&padded, 2).unwrap();
            assert_eq!(len, 3);
        }
    }

    #[test]
    fn the_stanza_is_own_for_the_same_user_and_foreign_otherwise() {
        let node = message_node(
            "3EB0AB",
            "15550001111@s.whatsapp.net",
            "15550001111:3@s.whatsapp.net",
            "pkmsg",
            vec![1, 2, 3],
            1_700_000_000,
            Some("Alice"),
            true,
        );
        let wire = crate::nodes::encode(&node);
        let body = wacore_binary::util::unpack(&wire).unwrap();
        let node_ref = wacore_binary::marshal::unmarshal_ref(&body).unwrap();
        let own: Jid = "15550001111:3@s.whatsapp.net".parse().unwrap();
        let info = wacore::messages::parse_message_info(&node_ref, &own, None).unwrap();
        assert!(info.source.is_from_me);
        assert_eq!(info.push_name, "Alice");
        assert_eq!(info.category, wacore::types::message::MessageCategory::Peer);
        let other: Jid = "15559998888:3@s.whatsapp.net".parse().unwrap();
        let info = wacore::messages::parse_message_info(&node_ref, &other, None).unwrap();
        assert!(!info.source.is_from_me);
        assert_eq!(
            info.source.sender.to_protocol_address().as_str(),
            "15550001111@c.us.0"
        );
        let enc = node.get_optional_child("enc").unwrap();
        assert_eq!(content(Some(enc)), Some(&[1u8, 2, 3][..]));
        assert_eq!(crate::nodes::attr(enc, "type").as_deref(), Some("pkmsg"));
    }
}
