//! Whether this binary checks WhatsApp's certificate chain, proven by what it does rather than
//! by how it was built: cargo unifies features within one build (dev-dependencies included), so
//! a binary built beside the WhatsApp double's tests could carry whatsapp-rust's
//! `danger-skip-cert-chain-verify` without anyone asking for it. At start the server hands
//! wacore's own check a chain with zeroed signatures: a binary that checks refuses it.
//!
//! A binary that does not check is a test build: it has no default WhatsApp address and talks
//! only to a WhatsApp double on this machine (`ws://` to a loopback address).

use whatsapp_rust::{
    buffa::{Message as _, MessageField},
    wacore::handshake::{HandshakeError, HandshakeUtils},
    waproto::whatsapp::{self as wa, cert_chain::noise_certificate::Details},
};

/// What the probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateCheck {
    /// WhatsApp's certificate chain is verified (every production build).
    On,
    /// Signatures are not checked: a build for the WhatsApp double.
    Off,
}

impl CertificateCheck {
    /// As `/api/health` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateCheck::On => "on",
            CertificateCheck::Off => "off",
        }
    }

    /// As `--version` says it.
    pub fn describe(self) -> &'static str {
        match self {
            CertificateCheck::On => "on",
            CertificateCheck::Off => "OFF (a test build for the WhatsApp double)",
        }
    }
}

/// A well-formed chain for `leaf_key` whose signatures are zeros.
fn zero_signed_chain(leaf_key: [u8; 32]) -> Vec<u8> {
    let details = |serial: u32, issuer: u32, key: Vec<u8>| {
        Details {
            serial: Some(serial),
            issuer_serial: Some(issuer),
            key: Some(key),
            not_before: Some(1_700_000_000),
            not_after: Some(1_900_000_000),
        }
        .encode_to_vec()
    };
    wa::CertChain {
        intermediate: MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(details(1, 0, vec![0x42; 32])),
            signature: Some(vec![0; 64]),
        }),
        leaf: MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(details(2, 1, leaf_key.to_vec())),
            signature: Some(vec![0; 64]),
        }),
    }
    .encode_to_vec()
}

/// Runs wacore's certificate check on a zero-signed chain.
pub fn probe() -> CertificateCheck {
    let key = [0x24u8; 32];
    match HandshakeUtils::verify_server_cert(&zero_signed_chain(key), &key) {
        Ok(_) => CertificateCheck::Off,
        Err(HandshakeError::CertVerification(_)) => CertificateCheck::On,
        // Anything else means the probe itself is wrong: say the check is on only if it
        // really refused a signature, so treat this as the unsafe answer.
        Err(_) => CertificateCheck::Off,
    }
}

/// The probe's answer for this process (run once).
pub fn this_binary() -> CertificateCheck {
    static CHECK: std::sync::OnceLock<CertificateCheck> = std::sync::OnceLock::new();
    *CHECK.get_or_init(probe)
}

/// Where a build that does not check may connect: `ws://` to this machine only.
pub fn allowed_for_a_test_build(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("ws://").ok_or_else(|| {
        format!("this build does not check WhatsApp's certificate: --whatsapp-url must be ws:// to this machine, not {url}")
    })?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!(
            "this build does not check WhatsApp's certificate: --whatsapp-url must be a loopback address, not {host}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_build_s_check_is_what_its_features_say() {
        // The unit tests of a production build check; of a double build, do not.
        let expected = if cfg!(feature = "whatsapp-double") {
            CertificateCheck::Off
        } else {
            CertificateCheck::On
        };
        assert_eq!(probe(), expected);
    }

    #[test]
    fn a_test_build_talks_only_to_loopback_over_ws() {
        assert!(allowed_for_a_test_build("ws://127.0.0.1:4000/ws/chat").is_ok());
        assert!(allowed_for_a_test_build("ws://localhost:4000/ws/chat").is_ok());
        assert!(allowed_for_a_test_build("ws://[::1]:4000/ws/chat").is_ok());
        assert!(allowed_for_a_test_build("wss://web.whatsapp.com/ws/chat").is_err());
        assert!(allowed_for_a_test_build("ws://10.0.0.5:4000/ws/chat").is_err());
        assert!(allowed_for_a_test_build("ws://127.0.0.1.evil.example/ws/chat").is_err());
    }
}
