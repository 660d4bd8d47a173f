//! Socket.IO upgrade requests with their own copies of the URI and header values.
//!
//! hyper parses a request's URI and header values as slices of its connection read buffer
//! (16 KiB here) rather than copying them. That is right for a request that ends, but
//! engineioxide keeps the upgrade request's parts (`Socket::req_parts`) for the socket's whole
//! life, and those slices keep the whole buffer allocated: 16 KiB per socket, 160 MB of heap at
//! 10,000 sockets (heaptrack, 2026-11-22). Copying the few hundred bytes they hold lets hyper's
//! buffer go once the upgrade is done.

use axum::http::{HeaderMap, HeaderValue, Request, Uri};

/// The path every Engine.IO / Socket.IO request has (PROTOCOL.md §2).
const SOCKET_PATH: &str = "/socket.io";

/// Applied to every request before routing; changes only Socket.IO ones, whose parts outlive
/// the request.
pub fn detach_socket_request<B>(mut req: Request<B>) -> Request<B> {
    if req.uri().path().starts_with(SOCKET_PATH) {
        let (mut parts, body) = req.into_parts();
        detach(&mut parts.uri, &mut parts.headers);
        req = Request::from_parts(parts, body);
    }
    req
}

fn detach(uri: &mut Uri, headers: &mut HeaderMap) {
    // `Uri: TryFrom<String>` takes the String's allocation; parsing what was a valid URI
    // cannot fail, and if it ever did the shared one is kept (memory, not correctness).
    if let Ok(own) = Uri::try_from(uri.to_string()) {
        *uri = own;
    }
    let mut own = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        // Header names are static for the standard ones and copied by hyper for the rest;
        // values are the shared slices. `from_bytes` copies; it accepts every value hyper did.
        let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) else {
            continue;
        };
        copy.set_sensitive(value.is_sensitive());
        own.append(name.clone(), copy);
    }
    *headers = own;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;

    /// A request whose URI and header value are slices of one buffer, as hyper builds them.
    fn shared_request(path: &str) -> (Request<()>, Bytes) {
        let buffer = Bytes::from(format!("{path} websocket"));
        let uri = Uri::from_maybe_shared(buffer.slice(..path.len())).unwrap();
        let value = HeaderValue::from_maybe_shared(buffer.slice(path.len() + 1..)).unwrap();
        let req = Request::builder()
            .uri(uri)
            .header("upgrade", value)
            .header("x-custom", "a")
            .header("x-custom", "b")
            .body(())
            .unwrap();
        (req, buffer)
    }

    /// `Bytes::try_into_mut` succeeds only for the last handle on a buffer: the witness that
    /// nothing in the request still holds it.
    #[test]
    fn a_socket_request_lets_go_of_the_read_buffer() {
        let (req, buffer) = shared_request("/socket.io/?EIO=4&transport=websocket");
        let req = detach_socket_request(req);
        assert!(
            buffer.try_into_mut().is_ok(),
            "the request still shares the buffer"
        );
        assert_eq!(req.uri(), "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(req.headers()["upgrade"], "websocket");
        let custom: Vec<_> = req.headers().get_all("x-custom").iter().collect();
        assert_eq!(custom, ["a", "b"], "repeated headers keep their order");
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
    }
}
