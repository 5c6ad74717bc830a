//! The request pipeline, top to bottom: trace id → limits → route → forward → access
//! event. One function reads as the list of steps; the helpers below it do one thing each.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clawveil_config::Config;
use clawveil_telemetry::{
    method_label, status_class, AccessEvent, ErrorClass, FailReason, Listener, Metrics,
};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::body::{BodyEnd, BodyState, BodyStats, ObservedBody, RequestBody};
use crate::capture::Capture;
use crate::content::ContentLog;
use crate::headers::{rewrite_response, set_forwarding, strip_hop_by_hop, ForwardInfo};
use crate::trace::TraceContext;
use crate::upstream::{
    classify, client, is_request_body_error, status_for, UpstreamClient, UpstreamTarget,
};

/// A configured route: requests whose path starts with `prefix` carry `name` in logs and metrics.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub name: String,
    pub prefix: String,
}

/// Everything the pipeline needs, built once from the configuration.
pub struct Shared {
    pub target: UpstreamTarget,
    pub client: UpstreamClient,
    /// Longest prefix first.
    pub routes: Vec<RouteEntry>,
    pub max_body: u64,
    pub request_timeout: Duration,
    pub response_timeout: Duration,
    pub hsts: Option<HeaderValue>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub metrics: Arc<Metrics>,
    /// Redaction of whatever content reaches the access log.
    pub content: ContentLog,
}

impl Shared {
    pub fn from_config(
        cfg: &Config,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, crate::ServeError> {
        let target = UpstreamTarget::parse(&cfg.upstream.url)?;
        let content = ContentLog::new(cfg, metrics.clone())?;
        // The configuration keeps routes longest prefix first.
        let routes: Vec<RouteEntry> = cfg
            .routes
            .iter()
            .map(|r| RouteEntry {
                name: r.name.clone(),
                prefix: r.path_prefix.clone(),
            })
            .collect();
        Ok(Arc::new(Shared {
            target,
            client: client(cfg.upstream.connect_timeout),
            routes,
            max_body: cfg.limits.max_body,
            request_timeout: cfg.limits.request_timeout,
            response_timeout: cfg.upstream.response_timeout,
            hsts: cfg
                .tls
                .hsts
                .as_deref()
                .and_then(|h| HeaderValue::from_str(h).ok()),
            trusted_proxies: cfg.trusted_proxies.clone(),
            metrics,
            content,
        }))
    }

    fn route(&self, path: &str) -> &str {
        self.routes
            .iter()
            .find(|r| path.starts_with(&r.prefix))
            .map(|r| r.name.as_str())
            .unwrap_or("unrouted")
    }
}

/// What the connection told us, for every request on it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub listener: Listener,
    pub tls_version: &'static str,
    pub alpn: &'static str,
}

/// Request metadata kept until the response body ends, for the access event.
struct Pending {
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    trace_id: String,
    route: String,
    method: http::Method,
    version: Version,
    start: Instant,
    status: u16,
    error: Option<ErrorClass>,
    req_stats: Arc<BodyStats>,
    /// Only when the access event will be written: the raw material to redact then.
    logged: Option<Box<Logged>>,
}

/// What the access event shows of the content: the path and query, kept raw until
/// they are redacted at the end, and with `log.bodies = "redacted"` each direction's
/// headers (redacted as soon as they are seen) and body capture.
struct Logged {
    path: String,
    query: Option<String>,
    req: Option<Exchange>,
    resp: Option<Exchange>,
    report: clawveil_redact::Report,
}

/// One direction of a logged exchange.
struct Exchange {
    /// Already redacted, as a JSON object; only at `log.level = "debug"` or more.
    headers: Option<String>,
    content_type: Option<HeaderValue>,
    content_encoding: Option<HeaderValue>,
    body: Capture,
}

impl Exchange {
    fn new(
        content: &ContentLog,
        headers: &http::HeaderMap,
        report: &mut clawveil_redact::Report,
    ) -> Option<Self> {
        let body = content.capture()?;
        Some(Exchange {
            headers: tracing::enabled!(target: "access", tracing::Level::DEBUG)
                .then(|| content.headers(headers, report)),
            content_type: headers.get(header::CONTENT_TYPE).cloned(),
            content_encoding: headers.get(header::CONTENT_ENCODING).cloned(),
            body,
        })
    }

    fn sample(
        &self,
        content: &ContentLog,
        report: &mut clawveil_redact::Report,
    ) -> crate::content::Sample {
        fn text(v: &Option<HeaderValue>) -> Option<&str> {
            v.as_ref().and_then(|v| v.to_str().ok())
        }
        content.body(
            &self.body,
            text(&self.content_type),
            text(&self.content_encoding),
            report,
        )
    }
}

/// The https pipeline, with the request's trace id known to the panic hook.
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ObservedBody>, Infallible> {
    let start = Instant::now();
    let trace = TraceContext::from_headers(req.headers());
    crate::trace::in_trace(
        trace.trace_id.clone(),
        pipeline(shared, conn, req, start, trace),
    )
    .await
}

async fn pipeline(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
    start: Instant,
    trace: TraceContext,
) -> Result<Response<ObservedBody>, Infallible> {
    let route = shared.route(req.uri().path()).to_owned();
    let req_stats = Arc::new(BodyStats::default());
    let logged = tracing::enabled!(target: "access", tracing::Level::INFO).then(|| {
        let mut report = clawveil_redact::Report::new();
        Box::new(Logged {
            path: req.uri().path().to_owned(),
            query: req.uri().query().map(str::to_owned),
            req: Exchange::new(&shared.content, req.headers(), &mut report),
            resp: None,
            report,
        })
    });
    let mut pending = Pending {
        shared: shared.clone(),
        conn: conn.clone(),
        trace_id: trace.trace_id.clone(),
        route,
        method: req.method().clone(),
        version: req.version(),
        start,
        status: 0,
        error: None,
        req_stats: req_stats.clone(),
        logged,
    };

    // Limits: a declared length over the limit is refused before anything is forwarded.
    if declared_length(&req).is_some_and(|n| n > shared.max_body) {
        shared.metrics.fail_closed(FailReason::BodyTooLarge);
        crate::body::drain(req.into_body());
        return Ok(local(
            pending,
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorClass::BodyTooLarge,
        ));
    }

    let tee = pending
        .logged
        .as_ref()
        .and_then(|l| l.req.as_ref())
        .map(|x| x.body.clone());
    let upstream_req = match upstream_request(&shared, &conn, &trace, req, req_stats.clone(), tee) {
        Ok(r) => r,
        Err(status) => return Ok(local(pending, status, ErrorClass::Client)),
    };

    let label = shared.target.label.as_str();
    match tokio::time::timeout(shared.response_timeout, shared.client.request(upstream_req)).await {
        Err(_elapsed) => {
            shared
                .metrics
                .upstream_timeouts
                .with_label_values(&[label])
                .inc();
            shared
                .metrics
                .upstream_errors
                .with_label_values(&[label, "timeout"])
                .inc();
            Ok(local(
                pending,
                StatusCode::GATEWAY_TIMEOUT,
                ErrorClass::Timeout,
            ))
        }
        Ok(Err(e)) => {
            // Our own body limits surface as client errors of the exchange.
            match req_stats.state() {
                BodyState::TooLarge => {
                    shared.metrics.fail_closed(FailReason::BodyTooLarge);
                    return Ok(local(
                        pending,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorClass::BodyTooLarge,
                    ));
                }
                BodyState::TimedOut => {
                    return Ok(local(
                        pending,
                        StatusCode::REQUEST_TIMEOUT,
                        ErrorClass::ClientTimeout,
                    ))
                }
                BodyState::ClientError => {
                    return Ok(local(pending, StatusCode::BAD_REQUEST, ErrorClass::Client))
                }
                BodyState::Streaming if is_request_body_error(&e) => {
                    return Ok(local(pending, StatusCode::BAD_REQUEST, ErrorClass::Client))
                }
                BodyState::Streaming => {}
            }
            let class = classify(&e);
            shared
                .metrics
                .upstream_errors
                .with_label_values(&[label, class.as_str()])
                .inc();
            if class == ErrorClass::Timeout {
                shared
                    .metrics
                    .upstream_timeouts
                    .with_label_values(&[label])
                    .inc();
            }
            tracing::warn!(trace_id = %pending.trace_id, upstream = label, error_class = class.as_str(), "upstream request failed");
            Ok(local(pending, status_for(class), class))
        }
        Ok(Ok(resp)) => {
            let (mut parts, body) = resp.into_parts();
            rewrite_response(&mut parts.headers, shared.hsts.as_ref(), &trace.trace_id);
            pending.status = parts.status.as_u16();
            if let Some(l) = pending.logged.as_mut() {
                l.resp = Exchange::new(&shared.content, &parts.headers, &mut l.report);
            }
            let body = body
                .map_err(|e| Box::new(e) as crate::body::BoxError)
                .boxed();
            Ok(Response::from_parts(parts, observed(pending, body)))
        }
    }
}

fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Rewrites the client's request for the bot: URI, version, hop-by-hop and forwarding
/// headers, and the limited body.
fn upstream_request(
    shared: &Shared,
    conn: &ConnInfo,
    trace: &TraceContext,
    req: Request<Incoming>,
    stats: Arc<BodyStats>,
    tee: Option<Capture>,
) -> Result<Request<crate::body::ProxyBody>, StatusCode> {
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    parts.uri = shared
        .target
        .uri_for(parts.uri.path_and_query())
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    if let Some(h) = host.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
        parts.headers.insert(header::HOST, h);
    }
    let peer = conn.peer.ip();
    set_forwarding(
        &mut parts.headers,
        &ForwardInfo {
            peer,
            peer_trusted: shared.trusted_proxies.iter().any(|n| n.contains(&peer)),
            host: host.as_deref(),
            request_id: &trace.trace_id,
            traceparent: &trace.traceparent(),
        },
    );
    let body = RequestBody::new(body, stats, shared.max_body, shared.request_timeout, tee);
    Ok(Request::from_parts(parts, body.boxed()))
}

/// A response clawveil makes itself: a short text that leaks nothing from upstream.
fn local(mut pending: Pending, status: StatusCode, class: ErrorClass) -> Response<ObservedBody> {
    pending.status = status.as_u16();
    pending.error = Some(class);
    let text = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large\n",
        StatusCode::GATEWAY_TIMEOUT => "upstream timed out\n",
        StatusCode::BAD_GATEWAY => "upstream unavailable\n",
        StatusCode::REQUEST_TIMEOUT => "request body too slow\n",
        _ => "bad request\n",
    };
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rewrite_response(h, pending.shared.hsts.as_ref(), &pending.trace_id);
    if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body will not be read: tell HTTP/1 clients to stop sending.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed();
    let (parts, ()) = resp.into_parts();
    Response::from_parts(parts, observed(pending, body))
}

fn observed(pending: Pending, body: crate::body::ProxyBody) -> ObservedBody {
    let tee = pending
        .logged
        .as_ref()
        .and_then(|l| l.resp.as_ref())
        .map(|x| x.body.clone());
    ObservedBody::new(body, tee, Box::new(move |end| finish(pending, end)))
}

/// Metrics and the access event, when the last byte has gone out (or the client left).
fn finish(p: Pending, end: BodyEnd) {
    let latency = p.start.elapsed();
    let listener = p.conn.listener.as_str();
    let m = &p.shared.metrics;
    let method = method_label(p.method.as_str());
    m.requests
        .with_label_values(&[listener, &p.route, method, status_class(p.status)])
        .inc();
    m.request_duration
        .with_label_values(&[listener, &p.route])
        .observe(latency.as_secs_f64());
    let error = p.error.or(match (end.complete, end.upstream_failed) {
        (true, _) => None,
        (false, true) => Some(ErrorClass::Reset),
        (false, false) => Some(ErrorClass::Client),
    });
    let http_version = match p.version {
        Version::HTTP_2 => "h2",
        Version::HTTP_10 => "http/1.0",
        _ => "http/1.1",
    };
    let Some(logged) = p.logged else { return };
    let Logged {
        path,
        query,
        req,
        resp,
        mut report,
    } = *logged;
    let content = &p.shared.content;
    let path = content.text(&path, &mut report);
    let query = query.map(|q| content.query(&q, &mut report));
    let request_body = req.as_ref().map(|x| x.sample(content, &mut report));
    let response_body = resp.as_ref().map(|x| x.sample(content, &mut report));
    content.count(&report);
    AccessEvent {
        trace_id: &p.trace_id,
        listener,
        route: &p.route,
        method,
        path: Some(&path),
        query: query.as_deref(),
        status: p.status,
        latency,
        bytes_in: p.req_stats.bytes(),
        bytes_out: end.bytes,
        upstream: &p.shared.target.label,
        error,
        tls_version: p.conn.tls_version,
        alpn: p.conn.alpn,
        http_version,
        client: &content.client(p.conn.peer.ip()),
        request_headers: req.as_ref().and_then(|x| x.headers.as_deref()),
        response_headers: resp.as_ref().and_then(|x| x.headers.as_deref()),
        request_body: request_body.as_ref().map(crate::content::Sample::field),
        response_body: response_body.as_ref().map(crate::content::Sample::field),
    }
    .emit();
}
