//! WebSocket through the proxy, for the OpenClaw gateway's control UI and clients.
//!
//! The client opens with HTTP/1.1 `Upgrade: websocket`, or over HTTP/2 with an extended
//! CONNECT (RFC 8441, `:protocol = websocket`). Either way the bot is asked with an
//! HTTP/1.1 upgrade; when it answers 101, the client gets 101 (HTTP/1.1) or 200 (HTTP/2)
//! and the two connections are joined byte for byte ([`crate::tunnel`]). The route's
//! checks (allow-list, origin, signatures, limits) ran on the opening request before
//! this. One access event is written when the tunnel ends.

use base64::Engine as _;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use rand::RngCore;

use crate::body::{BodyEnd, ObservedBody, ProxyBody};
use crate::exchange::{finish, local, unobserved, Pending};
use crate::forward::{respond, send};
use crate::headers::rewrite_response;

const SEC_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const SEC_VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
const SEC_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");

/// Turns the forwarded request into an HTTP/1.1 WebSocket opening for the bot.
pub fn as_upstream_opening(req: &mut Request<ProxyBody>, client_version: Version) {
    *req.method_mut() = Method::GET;
    let h = req.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if client_version == Version::HTTP_2 {
        // RFC 8441 has no key; HTTP/1.1 needs one (the bot's accept is checked by no one
        // but us, and we answer the client with 200).
        let mut key = [0u8; 16];
        rand::rng().fill_bytes(&mut key);
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        h.insert(
            SEC_KEY,
            HeaderValue::from_str(&key).expect("base64 is a valid header"),
        );
        h.entry(SEC_VERSION)
            .or_insert(HeaderValue::from_static("13"));
    }
}

/// Sends the opening upstream; on 101 joins the two sides in a background task.
pub async fn open(
    mut pending: Pending,
    client: OnUpgrade,
    mut req: Request<ProxyBody>,
    client_version: Version,
) -> Response<ObservedBody> {
    let shared = pending.shared.clone();
    // The client's connection is not idle while the tunnel is open (HTTP/2: it is idle
    // again once the tunnel closes).
    let hold = req
        .extensions_mut()
        .remove::<crate::idle::Tunnels>()
        .map(|t| t.hold());
    let mut resp = match send(&shared, req, &pending.req_stats).await {
        Ok(r) => r,
        Err(refusal) => return local(pending, refusal),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The bot declined: its answer goes back as it is.
        return respond(pending, resp);
    }
    let upstream = hyper::upgrade::on(&mut resp);
    let mut headers = resp.headers().clone();
    rewrite_response(&mut headers, shared.hsts.as_ref(), &pending.trace_id);
    let status = if client_version == Version::HTTP_2 {
        headers.remove(SEC_ACCEPT);
        StatusCode::OK
    } else {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        StatusCode::SWITCHING_PROTOCOLS
    };
    pending.status = status.as_u16();
    tokio::spawn(join(pending, client, upstream, hold));
    let mut out = Response::new(unobserved());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

async fn join(
    mut pending: Pending,
    client: OnUpgrade,
    upstream: OnUpgrade,
    _hold: Option<crate::idle::TunnelHold>,
) {
    let shared = pending.shared.clone();
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(trace_id = %pending.trace_id, error = %e, "WebSocket upgrade did not complete");
            pending.error = Some(clawveil_telemetry::ErrorClass::Reset);
            pending.close_reason = Some(crate::tunnel::CloseReason::Error.as_str());
            return finish(
                pending,
                BodyEnd {
                    bytes: 0,
                    complete: true,
                    upstream_failed: false,
                },
            );
        }
    };
    let _tunnel = shared.tunnels.enter();
    let gauge = shared
        .metrics
        .websocket_tunnels_open
        .with_label_values(&[&pending.route]);
    gauge.inc();
    let end = crate::tunnel::run(
        TokioIo::new(client),
        TokioIo::new(upstream),
        shared.tunnel_idle,
        shared.drain,
        shared.shutdown.clone(),
    )
    .await;
    gauge.dec();
    if end.reason == crate::tunnel::CloseReason::Idle {
        shared
            .metrics
            .fail_closed(clawveil_telemetry::FailReason::ClientIdle);
    }
    pending.req_stats.add(end.bytes_up);
    pending.close_reason = Some(end.reason.as_str());
    finish(
        pending,
        BodyEnd {
            bytes: end.bytes_down,
            complete: true,
            upstream_failed: false,
        },
    );
}
