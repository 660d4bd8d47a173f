//! What a test asks to go wrong (`POST /admin/devices/fail`), and when each kind acts: stream
//! errors on the open connection at once, failures on the device's next logins (or its next
//! scan, for a pair error), a passkey request on its pairing connection.

use super::{
    PhoneError, World,
    stanzas::{conflict, failure, passkey_request, stream_error},
};
use crate::{
    Double,
    conn::{Cmd, Outbox},
    nodes::el,
};
use wacore_binary::Node;

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
pub(super) struct Failure {
    pub(super) kind: FailKind,
    /// Logins (or scans) left to fail; `None`: until cleared.
    pub(super) times: Option<u32>,
}

impl World {
    pub(super) fn take_failure(&mut self, noise: &str, applies: &[FailKind]) -> Option<FailKind> {
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

/// The node that ends a login for a failure a test asked for.
pub(super) fn login_failure(kind: FailKind) -> Option<Node> {
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

pub(super) const LOGIN_FAILURES: &[FailKind] = &[
    FailKind::Unavailable,
    FailKind::RateLimited,
    FailKind::Outdated,
    FailKind::Locked,
    FailKind::Ban,
];

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
                .filter(|c| c.noise == noise && c.logged_in)
            {
                let _ = c.out.send(Cmd::End(conflict("replaced", None)));
                c.logged_in = false;
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
                .filter(|c| c.noise == noise && !c.logged_in)
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
