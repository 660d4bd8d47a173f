//! What a Socket.IO socket keeps of its upgrade request, for its whole life: as little as
//! engineioxide needs, in copies of its own.
//!
//! engineioxide keeps the upgrade request's parts (`Socket::req_parts`) as long as the socket
//! lives, and nothing reads them after the handshake. As hyper hands them over they cost far
//! more than their few bytes:
//! - hyper parses a request's URI and header values as slices of its connection read buffer
//!   (16 KiB here) rather than copying them, and those slices keep the whole buffer allocated:
//!   16 KiB per socket, 160 MB of heap at 10,000 sockets (heaptrack, 2026-11-22);
//! - a `HeaderMap` holds about 100 bytes per header slot, and a browser sends a dozen headers
//!   (its user agent, languages, cookies) that nothing here reads after the request;
//! - the extensions (axum's copy of the URI among them, itself a slice of that buffer) are a map
//!   of their own.
//!
//! So this runs last before the Socket.IO layer, after CORS and the upgrade counter have read the
//! headers they need, and leaves the request a copied URI, the one header engineioxide reads
//! (`Sec-WebSocket-Key`), and the one extension it takes (hyper's upgrade).

use axum::http::{Extensions, HeaderMap, HeaderValue, Request, Uri, header};
use hyper::upgrade::OnUpgrade;

/// The path every Engine.IO / Socket.IO request has (PROTOCOL.md §2).
const SOCKET_PATH: &str = "/socket.io";

/// Applied to every request just before the Socket.IO layer; changes only Socket.IO ones, whose
/// parts outlive the request. (This server serves the WebSocket transport only, so every one of
/// them is an upgrade.)
pub fn detach_socket_request<B>(mut req: Request<B>) -> Request<B> {
    if req.uri().path().starts_with(SOCKET_PATH) {
        let (mut parts, body) = req.into_parts();
        detach(&mut parts.uri, &mut parts.headers, &mut parts.extensions);
        req = Request::from_parts(parts, body);
    }
    req
}

fn detach(uri: &mut Uri, headers: &mut HeaderMap, extensions: &mut Extensions) {
    // `Uri: TryFrom<String>` takes the String's allocation; parsing what was a valid URI
    // cannot fail, and if it ever did the shared one is kept (memory, not correctness).
    if let Ok(own) = Uri::try_from(uri.to_string()) {
        *uri = own;
    }
    // `from_bytes` copies; it accepts every value hyper did.
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|key| HeaderValue::from_bytes(key.as_bytes()).ok());
    *headers = match key {
        Some(key) => {
            let mut own = HeaderMap::with_capacity(1);
            own.insert(header::SEC_WEBSOCKET_KEY, key);
            own
        }
        None => HeaderMap::new(),
    };
    let upgrade = extensions.remove::<OnUpgrade>();
    *extensions = Extensions::new();
    if let Some(upgrade) = upgrade {
        extensions.insert(upgrade);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    /// A request whose URI and WebSocket key are slices of one buffer, as hyper builds them,
    /// with headers nothing reads later and two extensions: hyper's upgrade and another.
    fn shared_request(path: &str) -> (Request<()>, Bytes) {
        let buffer = Bytes::from(format!("{path} dGhlIHNhbXBsZSBub25jZQ=="));
        let uri = Uri::from_maybe_shared(buffer.slice(..path.len())).unwrap();
        let key = HeaderValue::from_maybe_shared(buffer.slice(path.len() + 1..)).unwrap();
        let mut req = Request::builder()
            .uri(uri)
            .header(header::SEC_WEBSOCKET_KEY, key)
            .header(header::UPGRADE, "websocket")
            .header(
                header::USER_AGENT,
                "Mozilla/5.0 (a browser's long self-description)",
            )
            .body(())
            .unwrap();
        let upgrade = hyper::upgrade::on(Request::new(()));
        req.extensions_mut().insert(upgrade);
        req.extensions_mut().insert(7_u32);
        (req, buffer)
    }

    /// `Bytes::try_into_mut` succeeds only for the last handle on a buffer: the witness that
    /// nothing in the request still holds it.
    #[test]
    fn a_socket_request_keeps_only_copies_of_what_engineioxide_reads() {
        let (req, buffer) = shared_request("/socket.io/?EIO=4&transport=websocket");
        let req = detach_socket_request(req);
        assert!(
            buffer.try_into_mut().is_ok(),
            "the request still shares the buffer"
        );
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        let names: Vec<_> = req.headers().keys().collect();
        assert_eq!(names, [header::SEC_WEBSOCKET_KEY], "only the key is kept");
        assert_eq!(
            req.headers()[header::SEC_WEBSOCKET_KEY],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        assert!(
            req.extensions().get::<OnUpgrade>().is_some(),
            "the upgrade is kept"
        );
        assert_eq!(req.extensions().len(), 1, "only the upgrade is kept");
    }

    #[test]
    fn other_requests_are_left_as_they_are() {
        let (req, buffer) = shared_request("/api/bots");
        let req = detach_socket_request(req);
        assert!(
            buffer.try_into_mut().is_err(),
            "an ordinary request was copied"
        );
        assert_eq!(req.uri(), "/api/bots");
        assert_eq!(req.headers().len(), 3);
        assert_eq!(req.extensions().len(), 2);
    }
}
