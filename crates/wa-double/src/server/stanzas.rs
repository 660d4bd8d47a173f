//! The server's stanzas that more than one part of the double sends.

use super::{World, now_s, random_token};
use crate::nodes::{self, el};
use wacore_binary::Node;

pub(super) fn stream_error(code: &str) -> Node {
    el("stream:error").attr("code", code).build()
}

pub(super) fn conflict(kind: &'static str, code: Option<&str>) -> Node {
    let mut b = el("stream:error");
    if let Some(c) = code {
        b = b.attr("code", c);
    }
    b.children([el("conflict").attr("type", kind).build()])
        .build()
}

pub(super) fn failure(reason: &str) -> Node {
    el("failure").attr("reason", reason).build()
}

/// WhatsApp asks the companion to finish on the phone with a passkey. The WebAuthn request
/// options ride along (without them the client asks for them in an IQ of its own).
pub(super) fn passkey_request(w: &mut World) -> Node {
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

/// `<iq from="s.whatsapp.net" type="set" id=… xmlns="md">` with one child: how WhatsApp starts
/// a pairing step (`<pair-device>`, `<pair-success>`).
pub(super) fn md_set(id: String, child: Node) -> Node {
    el("iq")
        .attr("from", nodes::SERVER)
        .attr("type", "set")
        .attr("id", id)
        .attr("xmlns", "md")
        .attr("t", now_s())
        .children([child])
        .build()
}
