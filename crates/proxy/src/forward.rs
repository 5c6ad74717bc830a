//! Forwarding to the bot: the client's request rewritten for the upstream, the wait for
//! its response (the response timeout counts from the moment the whole request body has
//! arrived, so a slow upload is the client's 408, not the bot's 504), and the response
//! on its way back.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clawveil_telemetry::Refusal;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::body::{BodyState, BodyStats, ObservedBody, ProxyBody, RequestBody};
use crate::exchange::{local, observed, Pending};
use crate::headers::{rewrite_response, set_forwarding, strip_hop_by_hop, ForwardInfo};
use crate::service::{ConnInfo, Shared};
use crate::trace::TraceContext;
use crate::upstream::{classify, is_request_body_error};

/// The request body as it goes upstream.
pub enum Outbound {
    /// Streams frame by frame, limited and timed.
    Streaming(Incoming),
    /// Already read whole (a route that verifies signatures over it).
    Buffered(Bytes),
}

/// Reads a body whole, within `limits.max_body` and `limits.request_timeout`.
pub async fn buffer(
    shared: &Shared,
    body: Incoming,
    stats: &Arc<BodyStats>,
    pending: &Pending,
) -> Result<Bytes, Refusal> {
    let limited = RequestBody::new(
        body,
        stats.clone(),
        shared.max_body,
        shared.request_timeout,
        pending.request_tee(),
    );
    match limited.collect().await {
        Ok(all) => {
            stats.done();
            Ok(all.to_bytes())
        }
        Err(_) => Err(match stats.state() {
            BodyState::TooLarge => Refusal::BodyTooLarge,
            BodyState::TimedOut => Refusal::RequestTimeout,
            BodyState::ClientError | BodyState::Streaming => Refusal::BrokenBody,
        }),
    }
}

/// Rewrites the client's request for the bot: URI, version, hop-by-hop and forwarding
/// headers, and the limited body.
pub fn upstream_request(
    shared: &Shared,
    conn: &ConnInfo,
    trace: &TraceContext,
    mut parts: Parts,
    host: Option<&str>,
    body: Outbound,
    pending: &Pending,
) -> Result<Request<ProxyBody>, Refusal> {
    parts.uri = shared
        .target
        .uri_for(parts.uri.path_and_query())
        .map_err(|_| Refusal::Malformed)?;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    // One Host, the one that was validated (an h2 client's :authority included).
    parts.headers.remove(header::HOST);
    if let Some(h) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        parts.headers.insert(header::HOST, h);
    }
    let peer = conn.peer.ip();
    set_forwarding(
        &mut parts.headers,
        &ForwardInfo {
            peer,
            peer_trusted: shared.trusted_proxies.iter().any(|n| n.contains(&peer)),
            host,
            request_id: &trace.trace_id,
            traceparent: &trace.traceparent(),
        },
    );
    let stats = &pending.req_stats;
    let body = match body {
        Outbound::Streaming(body) => {
            let body = RequestBody::new(
                body,
                stats.clone(),
                shared.max_body,
                shared.request_timeout,
                pending.request_tee(),
            );
            if http_body::Body::is_end_stream(&body) {
                stats.done();
            }
            body.boxed()
        }
        Outbound::Buffered(bytes) => {
            stats.done();
            Full::new(bytes).map_err(|never| match never {}).boxed()
        }
    };
    Ok(Request::from_parts(parts, body))
}

/// Sends the request and waits for the response head; failures are classified and
/// counted here, once.
pub async fn send(
    shared: &Shared,
    req: Request<ProxyBody>,
    stats: &BodyStats,
) -> Result<Response<Incoming>, Refusal> {
    let timeout = shared.response_timeout;
    let exchange = shared.client.request(req);
    tokio::pin!(exchange);
    let mut deadline = tokio::time::Instant::now() + timeout;
    loop {
        tokio::select! {
            r = &mut exchange => return r.map_err(|e| failure(shared, &e, stats)),
            _ = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                match stats.done_at() {
                    // Still uploading: the body's own deadline (request_timeout) decides.
                    None => deadline = now + timeout.min(Duration::from_secs(1)),
                    Some(done) if tokio::time::Instant::from_std(done) + timeout > now => {
                        deadline = tokio::time::Instant::from_std(done) + timeout;
                    }
                    Some(_) => {
                        shared.upstream_failed(clawveil_telemetry::ErrorClass::Timeout);
                        return Err(Refusal::UpstreamTimeout);
                    }
                }
            }
        }
    }
}

/// What a failed exchange means: our own body limits are the client's doing; anything
/// else is the upstream's, counted in `clawveil_upstream_errors_total`.
fn failure(shared: &Shared, e: &hyper_util::client::legacy::Error, stats: &BodyStats) -> Refusal {
    match stats.state() {
        BodyState::TooLarge => return Refusal::BodyTooLarge,
        BodyState::TimedOut => return Refusal::RequestTimeout,
        BodyState::ClientError => return Refusal::BrokenBody,
        BodyState::Streaming if is_request_body_error(e) => return Refusal::BrokenBody,
        BodyState::Streaming => {}
    }
    let class = classify(e);
    shared.upstream_failed(class);
    tracing::warn!(
        upstream = shared.target.label.as_str(),
        error_class = class.as_str(),
        "upstream request failed"
    );
    Refusal::UpstreamFailed(class)
}

/// The bot's response on its way to the client.
pub fn respond(mut pending: Pending, resp: Response<Incoming>) -> Response<ObservedBody> {
    let (mut parts, body) = resp.into_parts();
    rewrite_response(
        &mut parts.headers,
        pending.shared.hsts.as_ref(),
        &pending.trace_id,
    );
    pending.response_started(parts.status, &parts.headers);
    let body = body
        .map_err(|e| Box::new(e) as crate::body::BoxError)
        .boxed();
    Response::from_parts(parts, observed(pending, body))
}

/// Forwards and answers: the response, or the refusal the failure maps to.
pub async fn forward(
    pending: Pending,
    req: Request<ProxyBody>,
    on_success: impl FnOnce(),
) -> Response<ObservedBody> {
    let shared = pending.shared.clone();
    match send(&shared, req, &pending.req_stats).await {
        Ok(resp) => {
            if resp.status().is_success() {
                on_success();
            }
            respond(pending, resp)
        }
        Err(refusal) => local(pending, refusal),
    }
}
