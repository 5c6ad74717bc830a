//! What the forward proxy reports: one access event per request (a tunnel's when it
//! ends), and its counts. Destinations are log fields, never metric labels; no body,
//! header, path or query is ever logged.

use std::net::SocketAddr;
use std::sync::Arc;

use clawveil_telemetry::{ErrorClass, IntCounter, Metrics, Refusal};
use tokio::time::Instant;

use crate::addr::Blocked;
use crate::tunnel::TunnelEnd;

/// The `upstream` label of `clawveil_upstream_errors_total` for forward-proxy
/// destinations (which are never labels themselves).
pub const UPSTREAM_LABEL: &str = "egress_forward";

/// Why the forward proxy decided as it did (the access event's `detail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    TokenMissing,
    TokenWrong,
    /// A request target without a valid host and port.
    BadTarget,
    /// An origin-form request (or absolute-form to the listener itself) whose first
    /// path segment names no target: nothing to forward it to.
    NotProxyRequest,
    /// Absolute-form with a scheme other than `http`.
    SchemeNotAllowed,
    /// Absolute-form `http://` while `plain_http` is off.
    PlainHttpRefused,
    HostNotAllowed,
    PortNotAllowed,
    /// A resolved address (or the literal) is in a refused range.
    AddressBlocked,
    ResolveFailed,
    ResolveTimeout,
    ConnectFailed,
    ConnectTimeout,
    /// A plain-http destination broke the exchange or did not answer in time.
    UpstreamFailed,
    /// Allowed: a tunnel was opened or a request forwarded.
    Allowed,
}

impl Detail {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::TokenWrong => "token_wrong",
            Self::BadTarget => "bad_target",
            Self::NotProxyRequest => "not_a_proxy_request",
            Self::SchemeNotAllowed => "scheme_not_allowed",
            Self::PlainHttpRefused => "plain_http_refused",
            Self::HostNotAllowed => "host_not_allowed",
            Self::PortNotAllowed => "port_not_allowed",
            Self::AddressBlocked => "address_blocked",
            Self::ResolveFailed => "resolve_failed",
            Self::ResolveTimeout => "resolve_timeout",
            Self::ConnectFailed => "connect_failed",
            Self::ConnectTimeout => "connect_timeout",
            Self::UpstreamFailed => "upstream_failed",
            Self::Allowed => "allowed",
        }
    }
}

/// The forward proxy's counters.
#[derive(Clone)]
pub struct EgressMetrics {
    metrics: Arc<Metrics>,
    allowed: IntCounter,
    denied: IntCounter,
}

impl std::fmt::Debug for EgressMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressMetrics").finish_non_exhaustive()
    }
}

impl EgressMetrics {
    /// The `clawveil_egress_tunnels_total{decision}` series, resolved once.
    pub fn new(metrics: Arc<Metrics>) -> EgressMetrics {
        EgressMetrics {
            allowed: metrics.egress_tunnels.with_label_values(&["allowed"]),
            denied: metrics.egress_tunnels.with_label_values(&["denied"]),
            metrics,
        }
    }

    pub(crate) fn allowed(&self) {
        self.allowed.inc();
    }

    /// Counts a local answer: refusals as `denied` and in `clawveil_fail_closed_total`;
    /// failures to reach an allowed destination as `allowed` and in
    /// `clawveil_upstream_errors_total`.
    pub(crate) fn answered(&self, refusal: Refusal) {
        if let Some(reason) = refusal.reason() {
            self.denied.inc();
            self.metrics.fail_closed(reason);
            return;
        }
        self.allowed.inc();
        if let Some(class) = refusal.class().filter(|c| c.is_upstream()) {
            self.metrics
                .upstream_errors
                .with_label_values(&[UPSTREAM_LABEL, class.as_str()])
                .inc();
            if class == ErrorClass::Timeout {
                self.metrics
                    .upstream_timeouts
                    .with_label_values(&[UPSTREAM_LABEL])
                    .inc();
            }
        }
    }
}

/// One request on the egress listener, filled in as it is decided.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub started: Instant,
    pub method: &'static str,
    /// Only once validated: a raw, unparsable target is never logged.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// The address connected to, or the one that was refused.
    pub resolved: Option<SocketAddr>,
    pub blocked: Option<Blocked>,
}

impl Event {
    pub fn new(method: &'static str) -> Event {
        Event {
            started: Instant::now(),
            method,
            host: None,
            port: None,
            resolved: None,
            blocked: None,
        }
    }

    /// A local answer.
    pub fn refused(&self, refusal: Refusal, detail: Detail) {
        let denied = refusal.reason().is_some();
        self.emit(
            refusal.status().as_u16(),
            if denied { "denied" } else { "allowed" },
            detail,
            refusal,
            None,
        );
    }

    /// A forwarded plain-http request, at its response head.
    pub fn forwarded(&self, status: u16) {
        self.emit(status, "allowed", Detail::Allowed, None, None);
    }

    /// A tunnel that ended (`None`: the client went away before it upgraded).
    pub fn tunnel_ended(&self, end: Option<TunnelEnd>) {
        self.emit(200, "allowed", Detail::Allowed, None, Some(end));
    }

    fn emit(
        &self,
        status: u16,
        decision: &str,
        detail: Detail,
        refusal: impl Into<Option<Refusal>>,
        tunnel: Option<Option<TunnelEnd>>,
    ) {
        let refusal = refusal.into();
        let end = tunnel.flatten();
        let close = match tunnel {
            Some(Some(end)) => Some(end.close.as_str()),
            Some(None) => Some("client_gone"),
            None => None,
        };
        let resolved = self.resolved.map(|a| a.ip().to_string());
        let blocked = self.blocked.map(|b| b.to_string());
        let latency = self.started.elapsed();
        tracing::info!(
            target: "access",
            listener = "egress",
            route = "forward",
            method = self.method,
            host = self.host.as_deref(),
            port = self.port,
            resolved = resolved.as_deref(),
            decision,
            status,
            reason = refusal.and_then(Refusal::reason).map(|r| r.as_str()),
            detail = detail.as_str(),
            blocked = blocked.as_deref(),
            error = refusal.and_then(Refusal::class).map(ErrorClass::as_str),
            bytes_in = end.map(|e| e.bytes_in),
            bytes_out = end.map(|e| e.bytes_out),
            latency_ms = (latency.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            close_reason = close,
            "egress"
        );
    }
}
