//! The request pipeline, top to bottom:
//! trace → limits → route → client allowed → verify → forward (or upgrade) → access event.
//! [`pipeline`] reads as that list; each step is a short function, and every local
//! answer is a [`Refusal`] made in one place ([`crate::exchange::local`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawveil_config::Config;
use clawveil_telemetry::{ErrorClass, Listener, Metrics, Refusal};
use http::header::{self, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::sync::watch;

use crate::body::ObservedBody;
use crate::checks::{self, MethodCheck, ServerNames};
use crate::content::ContentLog;
use crate::exchange::{local, Pending};
use crate::forward::{buffer, forward, upstream_request, Outbound};
use crate::route::{client_ip, RouteEntry, Routes};
use crate::trace::TraceContext;
use crate::tunnel::Tunnels;
use crate::upstream::{client, UpstreamClient, UpstreamTarget};
use crate::verify::Delivery;

/// Everything the pipeline needs, built once from the configuration.
pub struct Shared {
    pub target: UpstreamTarget,
    pub client: UpstreamClient,
    pub routes: Routes,
    pub server_names: ServerNames,
    pub max_body: u64,
    pub request_timeout: Duration,
    pub response_timeout: Duration,
    pub hsts: Option<HeaderValue>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub metrics: Arc<Metrics>,
    /// Redaction of whatever content reaches the access log.
    pub content: ContentLog,
    /// Upgraded connections: their idle limit, and how shutdown reaches them.
    pub tunnel_idle: Duration,
    pub drain: Duration,
    pub shutdown: watch::Receiver<bool>,
    pub tunnels: Arc<Tunnels>,
}

impl Shared {
    pub fn from_config(
        cfg: &Config,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, crate::ServeError> {
        let target = UpstreamTarget::parse(&cfg.upstream.url)?;
        let content = ContentLog::new(cfg, metrics.clone())?;
        Ok(Arc::new(Shared {
            target,
            client: client(cfg.upstream.connect_timeout),
            routes: Routes::from_config(cfg),
            server_names: ServerNames::new(&cfg.listen.server_names),
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
            tunnel_idle: cfg.limits.tunnel_idle_timeout,
            drain: cfg.limits.drain_timeout,
            shutdown,
            tunnels: Arc::new(Tunnels::default()),
        }))
    }

    /// Counts a failed exchange with the upstream (and its timeouts), in one place.
    pub fn upstream_failed(&self, class: ErrorClass) {
        let label = self.target.label.as_str();
        self.metrics
            .upstream_errors
            .with_label_values(&[label, class.as_str()])
            .inc();
        if class == ErrorClass::Timeout {
            self.metrics
                .upstream_timeouts
                .with_label_values(&[label])
                .inc();
        }
    }

    /// Re-reads the routes' secrets (SIGHUP); a route whose secrets cannot be read keeps
    /// the ones it had.
    pub fn reload_secrets(&self) {
        for route in self.routes.iter() {
            if let Some(v) = &route.verifier {
                if let Err(e) = v.reload() {
                    tracing::error!(route = route.name.as_str(), error = %e, "route secrets could not be re-read; keeping the previous ones");
                }
            }
        }
    }
}

/// What the connection told us, for every request on it.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub listener: Listener,
    pub tls_version: &'static str,
    /// The key-exchange group (`clawveil_tls::GROUP_LABELS`).
    pub tls_group: &'static str,
    pub alpn: &'static str,
    /// The server name the client asked for in the TLS handshake (lowercase).
    pub sni: Option<String>,
}

/// The https pipeline, with the request's trace id known to the panic hook.
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ObservedBody>, Infallible> {
    let start = Instant::now();
    let trace = TraceContext::from_headers(req.headers());
    let trace_id = trace.trace_id.clone();
    let resp = crate::trace::in_trace(trace_id, pipeline(shared, conn, req, start, trace)).await;
    Ok(resp)
}

async fn pipeline(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    mut req: Request<Incoming>,
    start: Instant,
    trace: TraceContext,
) -> Response<ObservedBody> {
    let route = shared.routes.find(req.uri().path());
    let pending = Pending::new(&shared, &conn, &trace, &route.name, &req, start);
    let host = match admit(&shared, &conn, route, &req) {
        Ok(host) => host,
        Err(refusal) => {
            crate::body::drain(req.into_body());
            return local(pending, refusal);
        }
    };
    let websocket = checks::is_websocket(&req).then(|| hyper::upgrade::on(&mut req));
    let version = req.version();
    let (parts, body) = req.into_parts();
    let (body, delivery) =
        match verified_body(&shared, route, &parts, body, &pending, websocket.is_some()).await {
            Ok(verified) => verified,
            Err(refusal) => return local(pending, refusal),
        };
    let mut upstream = match upstream_request(
        &shared,
        &conn,
        &trace,
        parts,
        host.as_deref(),
        body,
        &pending,
    ) {
        Ok(r) => r,
        Err(refusal) => return local(pending, refusal),
    };
    match websocket {
        Some(client) => {
            crate::upgrade::as_upstream_opening(&mut upstream, version);
            crate::upgrade::open(pending, client, upstream, version).await
        }
        None => {
            forward(pending, upstream, || {
                if let Some(v) = &route.verifier {
                    v.delivered(&delivery);
                }
            })
            .await
        }
    }
}

/// Limits, method and `Host`, then the route's own checks on the request head: client
/// allowed, WebSocket origin, signed headers. Returns the validated authority.
fn admit(
    shared: &Shared,
    conn: &ConnInfo,
    route: &RouteEntry,
    req: &Request<Incoming>,
) -> Result<Option<String>, Refusal> {
    if let MethodCheck::Local(refusal) = checks::method(req) {
        return Err(refusal);
    }
    let host = checks::host(req, &shared.server_names, conn.sni.as_deref())?;
    if declared_length(req).is_some_and(|n| n > shared.max_body) {
        return Err(Refusal::BodyTooLarge);
    }
    checks::trace_allowed(req.method(), route.allow_trace)?;
    route.admits(client_ip(
        conn.peer.ip(),
        req.headers(),
        &shared.trusted_proxies,
    ))?;
    if checks::is_websocket(req) {
        route.origin_allowed(req.headers())?;
    }
    if let Some(v) = &route.verifier {
        v.check_head(req.headers())?;
    }
    Ok(host)
}

/// The body as it will go upstream: streamed, or on a route that verifies callbacks,
/// read whole (bounded) and checked, with the delivery to record once the bot accepts it.
/// A WebSocket opening has no body to check (over HTTP/2 its body is the tunnel): it
/// passes on its signed headers alone, and a route whose signature covers a body
/// refuses it.
async fn verified_body(
    shared: &Shared,
    route: &RouteEntry,
    parts: &http::request::Parts,
    body: Incoming,
    pending: &Pending,
    websocket: bool,
) -> Result<(Outbound, Delivery), Refusal> {
    let Some(v) = &route.verifier else {
        return Ok((Outbound::Streaming(body), Delivery::default()));
    };
    if websocket {
        if v.signs_body() {
            return Err(Refusal::SignatureInvalid);
        }
        return Ok((Outbound::Streaming(body), Delivery::default()));
    }
    let bytes = buffer(shared, body, &pending.req_stats, pending).await?;
    let delivery = v.check_body(&parts.headers, parts.uri.query(), &bytes)?;
    Ok((Outbound::Buffered(bytes), delivery))
}

fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
