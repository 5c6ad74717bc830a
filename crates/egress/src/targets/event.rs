//! One request to a target, from its head to its last byte: the counts and the access
//! event, written once.
//!
//! The event carries the target (as `route`: the same name as the `route` label of
//! `clawveil_requests_total{listener="egress"}`; forward-proxy events have
//! `route="forward"`), method, status, the model *label* (never the name the
//! bot sent), which upstream answered and why the fallback was used, error class,
//! refusal reason, latency, time to the first byte and bytes each way. Never a header
//! (no `Authorization`, `x-api-key` or injected value), a path, a query or a body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clawveil_config::FallbackCause;
use clawveil_telemetry::{status_class, ErrorClass, Metrics, Refusal};
use http::Response;
use tokio::time::Instant;

use crate::connect::{answer, ProxyBody};

/// Which of a target's upstreams a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leg {
    Primary,
    Fallback,
}

impl Leg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Leg::Primary => "primary",
            Leg::Fallback => "fallback",
        }
    }
}

/// How a response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Complete,
    /// The bot went away before the end.
    ClientGone,
    /// The target broke the body off.
    UpstreamBroke,
}

/// A request to a target, filled in as it goes.
pub(crate) struct Exchange {
    pub metrics: Arc<Metrics>,
    /// The target's name (its metric label).
    pub target: Arc<str>,
    pub started: Instant,
    pub method: &'static str,
    /// The model label (set once the body was read).
    pub model: Option<Arc<str>>,
    /// Set once the request went to an upstream: it then counts in the model latency.
    pub leg: Option<Leg>,
    pub fallback: Option<FallbackCause>,
    /// A fallback that failed after a primary 5xx (the 5xx is what the bot got).
    pub fallback_error: Option<ErrorClass>,
    pub status: u16,
    pub bytes_in: Arc<AtomicU64>,
}

impl Exchange {
    pub(crate) fn new(metrics: Arc<Metrics>, target: Arc<str>, method: &'static str) -> Exchange {
        Exchange {
            metrics,
            target,
            started: Instant::now(),
            method,
            model: None,
            leg: None,
            fallback: None,
            fallback_error: None,
            status: 0,
            bytes_in: Arc::default(),
        }
    }

    /// A local answer: a refusal of the bot, or the upstreams' failure.
    pub(crate) fn answer(mut self, refusal: Refusal) -> Response<ProxyBody> {
        if let Some(reason) = refusal.reason() {
            self.metrics.fail_closed(reason);
        }
        self.status = refusal.status().as_u16();
        self.record(
            0,
            None,
            refusal.class(),
            refusal.reason().map(|r| r.as_str()),
            None,
        );
        answer(refusal)
    }

    /// The end of a response the target sent.
    pub(crate) fn finished(self, bytes_out: u64, first_byte: Option<Duration>, end: End) {
        let error = match end {
            End::Complete => None,
            End::ClientGone => Some(ErrorClass::Client),
            End::UpstreamBroke => {
                let upstream = self.upstream_label();
                count_upstream_failure(&self.metrics, &upstream, ErrorClass::Reset);
                Some(ErrorClass::Reset)
            }
        };
        let close = match end {
            End::Complete => "complete",
            End::ClientGone => "client_gone",
            End::UpstreamBroke => "upstream_broke",
        };
        self.record(bytes_out, first_byte, error, None, Some(close));
    }

    /// The `upstream` label of the leg this request is on.
    pub(crate) fn upstream_label(&self) -> String {
        upstream_label(&self.target, self.leg.unwrap_or(Leg::Primary))
    }

    fn record(
        &self,
        bytes_out: u64,
        first_byte: Option<Duration>,
        error: Option<ErrorClass>,
        reason: Option<&str>,
        close: Option<&str>,
    ) {
        let latency = self.started.elapsed();
        let m = &self.metrics;
        let target = &*self.target;
        m.requests
            .with_label_values(&["egress", target, self.method, status_class(self.status)])
            .inc();
        m.request_duration
            .with_label_values(&["egress", target])
            .observe(latency.as_secs_f64());
        let model = self.model.as_deref();
        if let (Some(model), Some(_)) = (model, self.leg) {
            m.model_duration
                .with_label_values(&[target, model])
                .observe(latency.as_secs_f64());
            if let Some(fb) = first_byte {
                m.model_first_byte
                    .with_label_values(&[target, model])
                    .observe(fb.as_secs_f64());
            }
        }
        let ms = |d: Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
        tracing::info!(
            target: "access",
            listener = "egress",
            route = target,
            method = self.method,
            status = self.status,
            model,
            upstream = self.leg.map(Leg::as_str),
            fallback = self.fallback.map(FallbackCause::as_str),
            fallback_error = self.fallback_error.map(ErrorClass::as_str),
            error = error.map(ErrorClass::as_str),
            reason,
            bytes_in = self.bytes_in.load(Ordering::Relaxed),
            bytes_out,
            latency_ms = ms(latency),
            first_byte_ms = first_byte.map(ms),
            close_reason = close,
            "egress"
        );
    }
}

/// The `upstream` label of a target's primary (its name) or fallback (`<name>/fallback`).
pub(crate) fn upstream_label(target: &str, leg: Leg) -> String {
    match leg {
        Leg::Primary => target.to_owned(),
        Leg::Fallback => format!("{target}/fallback"),
    }
}

/// Counts a failed exchange with an upstream: `clawveil_upstream_errors_total`, its
/// timeouts, and TLS failures as `clawveil_fail_closed_total{reason="upstream_tls_invalid"}`.
pub(crate) fn count_upstream_failure(metrics: &Metrics, upstream: &str, class: ErrorClass) {
    metrics
        .upstream_errors
        .with_label_values(&[upstream, class.as_str()])
        .inc();
    match class {
        ErrorClass::Timeout => metrics
            .upstream_timeouts
            .with_label_values(&[upstream])
            .inc(),
        ErrorClass::Tls => metrics.fail_closed(clawveil_telemetry::FailReason::UpstreamTlsInvalid),
        _ => {}
    }
}
