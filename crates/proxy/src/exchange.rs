//! One request's bookkeeping from its first byte to its last: what the access event and
//! the metrics will say, the local answers clawveil makes itself (all through
//! [`Refusal`]), and the access event written when the response body ends.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use clawveil_telemetry::{method_label, status_class, AccessEvent, ErrorClass, Refusal};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty, Full};

use crate::body::{BodyEnd, BodyStats, ObservedBody, ProxyBody};
use crate::capture::Capture;
use crate::content::{ContentLog, Sample};
use crate::headers::rewrite_response;
use crate::service::{ConnInfo, Shared};
use crate::trace::TraceContext;

/// Request metadata kept until the response body ends (or a tunnel closes).
pub struct Pending {
    pub shared: Arc<Shared>,
    pub conn: Arc<ConnInfo>,
    pub trace_id: String,
    pub route: String,
    pub method: http::Method,
    pub version: Version,
    pub start: Instant,
    pub status: u16,
    pub error: Option<ErrorClass>,
    pub reason: Option<&'static str>,
    pub close_reason: Option<&'static str>,
    pub req_stats: Arc<BodyStats>,
    /// Only when the access event will be written: the raw material to redact then.
    pub logged: Option<Box<Logged>>,
}

/// What the access event shows of the content: the path and query, kept raw until
/// they are redacted at the end, and with `log.bodies = "redacted"` each direction's
/// headers (redacted as soon as they are seen) and body capture.
pub struct Logged {
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

    fn sample(&self, content: &ContentLog, report: &mut clawveil_redact::Report) -> Sample {
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

impl Pending {
    pub fn new<B>(
        shared: &Arc<Shared>,
        conn: &Arc<ConnInfo>,
        trace: &TraceContext,
        route: &str,
        req: &Request<B>,
        start: Instant,
    ) -> Pending {
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
        Pending {
            shared: shared.clone(),
            conn: conn.clone(),
            trace_id: trace.trace_id.clone(),
            route: route.to_owned(),
            method: req.method().clone(),
            version: req.version(),
            start,
            status: 0,
            error: None,
            reason: None,
            close_reason: None,
            req_stats: Arc::new(BodyStats::default()),
            logged,
        }
    }

    /// Where the request body's first bytes are copied for the log, if anywhere.
    pub fn request_tee(&self) -> Option<Capture> {
        let x = self.logged.as_ref()?.req.as_ref()?;
        Some(x.body.clone())
    }

    /// The response headers are known: note the status, start the response capture.
    pub fn response_started(&mut self, status: StatusCode, headers: &http::HeaderMap) {
        self.status = status.as_u16();
        if let Some(l) = self.logged.as_mut() {
            l.resp = Exchange::new(&self.shared.content, headers, &mut l.report);
        }
    }
}

/// A response clawveil makes itself: one short line that leaks nothing from upstream.
/// Refusals of the client are counted here; upstream failures where they are classified.
pub fn local(mut pending: Pending, refusal: Refusal) -> Response<ObservedBody> {
    if let Some(reason) = refusal.reason() {
        pending.shared.metrics.fail_closed(reason);
        pending.reason = Some(reason.as_str());
    }
    let status = refusal.status();
    pending.status = status.as_u16();
    pending.error = refusal.class();
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rewrite_response(h, pending.shared.hsts.as_ref(), &pending.trace_id);
    if let Some(allow) = refusal.allow() {
        h.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if refusal.closes() {
        // The rest of the body will not be read: tell HTTP/1 clients to stop sending.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let body = Full::new(Bytes::from_static(refusal.body().as_bytes()))
        .map_err(|never| match never {})
        .boxed();
    let (parts, ()) = resp.into_parts();
    Response::from_parts(parts, observed(pending, body))
}

/// The response body, counted, with the access event written when it ends.
pub fn observed(pending: Pending, body: ProxyBody) -> ObservedBody {
    let tee = pending
        .logged
        .as_ref()
        .and_then(|l| l.resp.as_ref())
        .map(|x| x.body.clone());
    ObservedBody::new(body, tee, Box::new(move |end| finish(pending, end)))
}

/// An empty body whose end reports nothing (the access event comes later: a tunnel's).
pub fn unobserved() -> ObservedBody {
    let body = Empty::new().map_err(|never| match never {}).boxed();
    ObservedBody::new(body, None, Box::new(|_| {}))
}

/// Metrics and the access event, when the last byte has gone out (or the client left).
pub fn finish(p: Pending, end: BodyEnd) {
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
        (false, true) => {
            // The bot cut its response short: the client's stream was cut, not completed.
            p.shared.upstream_failed(ErrorClass::Reset);
            Some(ErrorClass::Reset)
        }
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
        tls_group: p.conn.tls_group,
        alpn: p.conn.alpn,
        http_version,
        client: &content.client(p.conn.peer.ip()),
        request_headers: req.as_ref().and_then(|x| x.headers.as_deref()),
        response_headers: resp.as_ref().and_then(|x| x.headers.as_deref()),
        request_body: request_body.as_ref().map(Sample::field),
        response_body: response_body.as_ref().map(Sample::field),
        reason: p.reason,
        close_reason: p.close_reason,
    }
    .emit();
}
