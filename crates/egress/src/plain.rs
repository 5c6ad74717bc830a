//! Absolute-form `http://` requests (`GET http://host/path`): refused unless
//! `plain_http` is on; then forwarded to allowed hosts on port 80 or one of `ports`,
//! through the same lookup, address checks and connect as CONNECT. One request per
//! destination connection; hop-by-hop headers and `Proxy-Authorization` are dropped
//! both ways; no upgrade is passed on. The access event is written when the response
//! head arrives (without byte counts).

use std::sync::Arc;

use clawveil_telemetry::{ErrorClass, Refusal};
use http::header::{self, HeaderName, HOST};
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::allow::{port_allowed, Host};
use crate::connect::{Denial, ForwardProxy, ProxyBody};
use crate::event::{Detail, Event};

pub(crate) async fn forward(
    proxy: &Arc<ForwardProxy>,
    req: Request<Incoming>,
    ev: &mut Event,
) -> Result<Response<ProxyBody>, Denial> {
    let bad = (Refusal::Malformed, Detail::BadTarget);
    let uri = req.uri();
    if uri.scheme_str() != Some("http") {
        return Err((Refusal::EgressDenied, Detail::SchemeNotAllowed));
    }
    let authority = uri.authority().ok_or(bad)?.clone();
    if authority.as_str().contains('@') {
        return Err(bad);
    }
    let host = Host::parse(authority.host()).ok_or(bad)?;
    let port = authority.port_u16().unwrap_or(80);
    ev.host = Some(host.to_string());
    ev.port = Some(port);
    if !proxy.policy.plain_http {
        return Err((Refusal::EgressDenied, Detail::PlainHttpRefused));
    }
    if port != 80 && !port_allowed(&proxy.policy.ports, port) {
        return Err((Refusal::EgressDenied, Detail::PortNotAllowed));
    }
    let stream = proxy.open(&host, port, ev).await?;
    let upstream_failed = |class| (Refusal::UpstreamFailed(class), Detail::UpstreamFailed);

    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| upstream_failed(ErrorClass::Connect))?;
    let guard = proxy.tracker.enter();
    tokio::spawn(async move {
        let _ = conn.await;
        drop(guard);
    });

    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(path);
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    let host_value = HeaderValue::from_str(authority.as_str()).map_err(|_| bad)?;
    parts.headers.insert(HOST, host_value);

    let sent = tokio::time::timeout(
        proxy.policy.response_timeout,
        sender.send_request(Request::from_parts(parts, body)),
    )
    .await;
    let resp = match sent {
        Err(_) => return Err(upstream_failed(ErrorClass::Timeout)),
        Ok(Err(e)) if e.is_parse() => return Err(upstream_failed(ErrorClass::Protocol)),
        Ok(Err(_)) => return Err(upstream_failed(ErrorClass::Reset)),
        Ok(Ok(resp)) => resp,
    };
    // Counted once: here, or (allowed but failed) as an upstream failure by the caller.
    proxy.metrics.allowed();
    ev.forwarded(resp.status().as_u16());
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body.boxed()))
}

/// Drops the headers meant for one hop only, and those `Connection` names.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        h.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        h.remove(name);
    }
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_what_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Bearer t"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }
}
