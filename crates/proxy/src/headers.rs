//! Header rewriting in both directions: hop-by-hop headers are removed, the forwarding
//! headers are set from what clawveil itself saw (client copies are replaced, except
//! from `trusted_proxies`), and the response gets HSTS and the request id.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the
/// legacy `Proxy-Connection` and `Keep-Alive`.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including every header named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP.iter() {
        headers.remove(n);
    }
    headers.remove(header::UPGRADE);
}

/// What the proxy knows about the client side of one request.
#[derive(Debug, Clone)]
pub struct ForwardInfo<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// Whether the peer is in `trusted_proxies` (its X-Forwarded-For is kept and extended).
    pub peer_trusted: bool,
    /// The Host the client asked for (`Host` or `:authority`).
    pub host: Option<&'a str>,
    pub request_id: &'a str,
    pub traceparent: &'a str,
}

/// Sets X-Forwarded-For/-Proto/-Host, Forwarded, X-Request-Id and traceparent.
pub fn set_forwarding(headers: &mut HeaderMap, info: &ForwardInfo<'_>) {
    let peer = info.peer.to_string();
    let xff = match (
        info.peer_trusted,
        headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
    ) {
        (true, Some(prior)) if !prior.trim().is_empty() => format!("{}, {peer}", prior.trim()),
        _ => peer.clone(),
    };
    let node = match info.peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(_) => format!("\"[{peer}]\""),
    };
    let mut forwarded = format!("for={node};proto=https");
    if let Some(h) = info.host {
        forwarded.push_str(";host=\"");
        forwarded.push_str(&h.replace(['"', '\\'], ""));
        forwarded.push('"');
    }
    put(headers, "x-forwarded-for", &xff);
    put(headers, "x-forwarded-proto", "https");
    match info.host {
        Some(h) => put(headers, "x-forwarded-host", h),
        None => {
            headers.remove("x-forwarded-host");
        }
    }
    put(headers, "forwarded", &forwarded);
    put(headers, "x-request-id", info.request_id);
    put(headers, "traceparent", info.traceparent);
}

/// Prepares an upstream response for the client.
pub fn rewrite_response(headers: &mut HeaderMap, hsts: Option<&HeaderValue>, request_id: &str) {
    strip_hop_by_hop(headers);
    if let Some(v) = hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
    }
    put(headers, "x-request-id", request_id);
}

fn put(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(peer: &str, trusted: bool) -> ForwardInfo<'static> {
        ForwardInfo {
            peer: peer.parse().unwrap(),
            peer_trusted: trusted,
            host: Some("bot.example.com"),
            request_id: "abc",
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }
    }

    #[test]
    fn client_forwarding_headers_are_replaced() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        h.insert("x-forwarded-proto", "http".parse().unwrap());
        h.insert("forwarded", "for=6.6.6.6".parse().unwrap());
        h.insert("x-request-id", "spoofed".parse().unwrap());
        set_forwarding(&mut h, &info("10.1.2.3", false));
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "bot.example.com");
        assert_eq!(
            h["forwarded"],
            "for=10.1.2.3;proto=https;host=\"bot.example.com\""
        );
        assert_eq!(h["x-request-id"], "abc");
    }

    #[test]
    fn trusted_proxies_extend_the_chain() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        set_forwarding(&mut h, &info("10.0.0.1", true));
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.1");
    }

    #[test]
    fn ipv6_nodes_are_quoted_in_forwarded() {
        let mut h = HeaderMap::new();
        set_forwarding(&mut h, &info("::1", false));
        assert!(h["forwarded"]
            .to_str()
            .unwrap()
            .starts_with("for=\"[::1]\";"));
    }

    #[test]
    fn hop_by_hop_headers_go_including_those_named_in_connection() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret-hop".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("upgrade", "h2c".parse().unwrap());
        h.insert("x-kept", "yes".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-kept"], "yes");
    }
}
