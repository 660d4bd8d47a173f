//! The phone's side of linking a device: reading the QR it scans, signing the new device into
//! the account (the ADV identity WhatsApp hands the companion in `<pair-success>`), checking the
//! companion's counter-signature, and the phone's half of the pairing-code exchange. The
//! companion's checks are whatsapp-rust's own (`wacore::pair`, `wacore::adv`); this file is their
//! mirror image, following wacore 0.7's `pair.rs` and `pair_code.rs`.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{KeyInit, Mac};
use wacore_libsignal::protocol::{KeyPair, PrivateKey, PublicKey};
use waproto::buffa::Message as _;
use waproto::whatsapp as wa;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The parts of a WhatsApp QR string: `ref,noise,identity,adv,client-type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    pub reference: String,
    /// The companion's noise key, base64 as in the QR (the double's name for the device).
    pub noise_b64: String,
    pub identity: [u8; 32],
    pub adv_secret: [u8; 32],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    #[error("a WhatsApp QR has at least 4 comma-separated fields (ref,noise,identity,adv)")]
    Fields,
    #[error("QR field {0} is not base64 of 32 bytes")]
    Key(&'static str),
}

fn key32(b64: &str, what: &'static str) -> Result<[u8; 32], QrError> {
    STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(QrError::Key(what))
}

/// Reads a QR string as the phone's camera would (a `wa.me` link prefix is allowed).
pub fn parse_qr(qr: &str) -> Result<Qr, QrError> {
    let qr = qr.trim();
    let qr = qr.rsplit_once('#').map(|(_, s)| s).unwrap_or(qr);
    let parts: Vec<&str> = qr.split(',').collect();
    if parts.len() < 4 || parts[0].is_empty() {
        return Err(QrError::Fields);
    }
    key32(parts[1], "noise")?;
    Ok(Qr {
        reference: parts[0].to_owned(),
        noise_b64: parts[1].trim().to_owned(),
        identity: key32(parts[2], "identity")?,
        adv_secret: key32(parts[3], "adv")?,
    })
}

/// The `<device-identity>` of `<pair-success>`: the account (the phone's identity key) signs the
/// companion's identity key into the account, under an HMAC keyed with the QR's adv secret.
pub fn signed_device_identity(
    account: &KeyPair,
    companion_identity: &[u8; 32],
    adv_secret: &[u8; 32],
    key_index: u32,
    now_s: u64,
) -> Vec<u8> {
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(key_index),
        timestamp: Some(now_s),
        key_index: Some(key_index),
        account_type: Some(wa::ADVEncryptionType::E2EE),
        device_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let mut to_sign = vec![6u8, 0];
    to_sign.extend_from_slice(&details);
    to_sign.extend_from_slice(companion_identity);
    let signature = account
        .private_key
        .calculate_signature(&to_sign, &mut rand::rng())
        .expect("an XEdDSA signature with a valid key");
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.public_key.public_key_bytes().to_vec()),
        account_signature: Some(signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(adv_secret).expect("any key length");
    mac.update(&signed);
    wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(mac.finalize().into_bytes().to_vec()),
        account_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec()
}

/// Checks the companion's `<pair-device-sign>`: the account's signature is ours and the
/// companion signed the identity with the key it showed in its QR.
pub fn device_sign_is_valid(
    signed: &[u8],
    companion_identity: &[u8; 32],
    account: &[u8; 32],
) -> bool {
    let Ok(identity) = wa::ADVSignedDeviceIdentity::decode_from_slice(signed) else {
        return false;
    };
    let (Some(details), Some(account_key), Some(device_sig)) = (
        identity.details.as_deref(),
        identity.account_signature_key.as_deref(),
        identity.device_signature.as_deref(),
    ) else {
        return false;
    };
    if account_key != account {
        return false;
    }
    let Ok(companion) = PublicKey::from_djb_public_key_bytes(companion_identity) else {
        return false;
    };
    let mut msg = vec![6u8, 1];
    msg.extend_from_slice(details);
    msg.extend_from_slice(companion_identity);
    msg.extend_from_slice(account_key);
    companion.verify_signature(&msg, device_sig)
}

/// The phone's half of a pairing code: what it sends (`primary_hello`), and what it keeps to
/// open the companion's key bundle.
pub struct CodeHello {
    pub wrapped_primary_ephemeral: [u8; 80],
    ephemeral: KeyPair,
    companion_ephemeral: [u8; 32],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    #[error("the code does not open the companion's key (a wrong code)")]
    WrongCode,
    #[error("the companion's key bundle does not open: {0}")]
    Bundle(&'static str),
}

/// The phone types `code`: it unwraps the companion's ephemeral key with it and wraps its own.
pub fn code_hello(code: &str, wrapped_companion_ephemeral: &[u8]) -> Result<CodeHello, CodeError> {
    let companion_ephemeral = wacore::pair_code::PairCodeUtils::decrypt_primary_ephemeral_pub(
        wrapped_companion_ephemeral,
        code,
    )
    .map_err(|_| CodeError::WrongCode)?;
    let ephemeral = KeyPair::generate(&mut rand::rng());
    let public = public32(&ephemeral);
    Ok(CodeHello {
        wrapped_primary_ephemeral: wacore::pair_code::PairCodeUtils::encrypt_ephemeral_pub(
            &public, code,
        ),
        ephemeral,
        companion_ephemeral,
    })
}

impl CodeHello {
    /// Opens the companion's `companion_finish` bundle: the companion's identity key and the adv
    /// secret both sides now share (the QR's fourth field, for a code).
    pub fn open_bundle(
        &self,
        account: &KeyPair,
        wrapped_bundle: &[u8],
    ) -> Result<([u8; 32], [u8; 32]), CodeError> {
        if wrapped_bundle.len() < 32 + 12 + 16 {
            return Err(CodeError::Bundle("too short"));
        }
        let companion_eph = PublicKey::from_djb_public_key_bytes(&self.companion_ephemeral)
            .map_err(|_| CodeError::Bundle("bad ephemeral key"))?;
        let eph_shared = self
            .ephemeral
            .private_key
            .calculate_agreement(&companion_eph)
            .map_err(|_| CodeError::Bundle("agreement"))?;
        let mut enc_key = [0u8; 32];
        wacore::crypto::hkdf_sha256_into(
            &eph_shared,
            Some(&wrapped_bundle[..32]),
            b"link_code_pairing_key_bundle_encryption_key",
            &mut enc_key,
        )
        .map_err(|_| CodeError::Bundle("hkdf"))?;
        let iv: [u8; 12] = wrapped_bundle[32..44].try_into().expect("12 bytes");
        let mut bundle = Vec::new();
        wacore_libsignal::crypto::aes_256_gcm_decrypt(
            &enc_key,
            &iv,
            b"",
            &wrapped_bundle[44..],
            &mut bundle,
        )
        .map_err(|_| CodeError::Bundle("does not decrypt"))?;
        if bundle.len() != 96 || bundle[32..64] != *account.public_key.public_key_bytes() {
            return Err(CodeError::Bundle("not addressed to this account"));
        }
        let companion_identity: [u8; 32] = bundle[..32].try_into().expect("32 bytes");
        let companion = PublicKey::from_djb_public_key_bytes(&companion_identity)
            .map_err(|_| CodeError::Bundle("bad identity key"))?;
        let id_shared = account
            .private_key
            .calculate_agreement(&companion)
            .map_err(|_| CodeError::Bundle("agreement"))?;
        let mut ikm = Vec::with_capacity(96);
        ikm.extend_from_slice(&eph_shared);
        ikm.extend_from_slice(&id_shared);
        ikm.extend_from_slice(&bundle[64..96]);
        let mut adv = [0u8; 32];
        wacore::crypto::hkdf_sha256_into(&ikm, None, b"adv_secret", &mut adv)
            .map_err(|_| CodeError::Bundle("hkdf"))?;
        Ok((companion_identity, adv))
    }
}

/// A key pair's public half as the 32 bytes on the wire (Noise, QR, ADV).
pub fn public32(key: &KeyPair) -> [u8; 32] {
    key.public_key
        .public_key_bytes()
        .try_into()
        .expect("a Curve25519 public key is 32 bytes")
}

/// A key pair from its 32 private bytes (the data directory keeps only those).
pub fn key_pair(private: &[u8]) -> Option<KeyPair> {
    let private = PrivateKey::deserialize(private).ok()?;
    let public = private.public_key().ok()?;
    Some(KeyPair::new(public, private))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn companion() -> wacore::pair::DeviceState {
        wacore::pair::DeviceState {
            identity_key: KeyPair::generate(&mut rand::rng()),
            noise_key: KeyPair::generate(&mut rand::rng()),
            adv_secret_key: [7u8; 32],
        }
    }

    #[test]
    fn the_companion_accepts_the_phone_s_signature_and_the_phone_its_counter_signature() {
        let c = companion();
        let account = KeyPair::generate(&mut rand::rng());
        let identity = public32(&c.identity_key);
        let bytes =
            signed_device_identity(&account, &identity, &c.adv_secret_key, 1, 1_700_000_000);
        let (signed, key_index) =
            wacore::pair::PairUtils::do_pair_crypto(&c, &bytes).expect("the companion accepts it");
        assert_eq!(key_index, 1);
        let account_pub = public32(&account);
        assert!(device_sign_is_valid(&signed, &identity, &account_pub));
        let mut forged = signed.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(!device_sign_is_valid(&forged, &identity, &account_pub));
    }

    #[test]
    fn a_wrong_adv_secret_is_refused_by_the_companion() {
        let c = companion();
        let account = KeyPair::generate(&mut rand::rng());
        let identity = public32(&c.identity_key);
        let bytes = signed_device_identity(&account, &identity, &[8u8; 32], 1, 0);
        assert!(wacore::pair::PairUtils::do_pair_crypto(&c, &bytes).is_err());
    }

    #[test]
    fn a_qr_is_read_as_whatsapp_writes_it() {
        let c = companion();
        let qr = wacore::pair::PairUtils::make_qr_data(
            &c,
            "2@abc",
            wacore::companion_reg::CompanionWebClientType::default(),
        );
        let parsed = parse_qr(&qr).expect("a QR");
        assert_eq!(parsed.reference, "2@abc");
        assert_eq!(parsed.adv_secret, [7u8; 32]);
        assert_eq!(
            STANDARD.decode(&parsed.noise_b64).unwrap(),
            c.noise_key.public_key.public_key_bytes()
        );
        assert_eq!(parse_qr("nonsense"), Err(QrError::Fields));
        assert_eq!(parse_qr("r,AAAA,BBBB,CCCC"), Err(QrError::Key("noise")));
    }
}
