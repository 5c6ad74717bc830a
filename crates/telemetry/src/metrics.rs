//! The metric families of METRICS.md, registered once and shared as `Arc<Metrics>`.

use std::fmt::Write as _;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Why a request, connection or scrape was refused (`clawveil_fail_closed_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    NoCertificate,
    PlaintextRefused,
    TlsHandshake,
    SignatureInvalid,
    TimestampSkew,
    BodyTooLarge,
    HeaderTooLarge,
    RedactionOmitted,
    UpstreamTlsInvalid,
    MetricsUnauthorized,
    /// A DingTalk delivery (msgId, or a signed header pair) seen before.
    Replay,
    /// The client is outside the route's `allow_cidrs`.
    ClientNotAllowed,
    /// A WebSocket upgrade from an `Origin` outside the route's `allowed_origins`.
    OriginNotAllowed,
    /// The egress listener refused a destination.
    EgressDenied,
    /// The egress listener's `Proxy-Authorization` or a target's client token was wrong.
    EgressUnauthorized,
    /// Broken HTTP: the parser's 400s, a bad or missing `Host`, an h2 protocol error.
    MalformedRequest,
    /// A method the inbound listener never forwards (CONNECT, TRACE).
    MethodNotAllowed,
    /// A `Host` outside `listen.server_names`, or one that differs from the TLS SNI (421).
    MisdirectedRequest,
    /// A connection cut for idleness: no request head in time, idle keep-alive, a
    /// client that stopped reading, an idle tunnel.
    ClientIdle,
    /// A request body that did not arrive within `limits.request_timeout` (408).
    RequestTimeout,
}

impl FailReason {
    pub const ALL: [FailReason; 20] = [
        Self::NoCertificate,
        Self::PlaintextRefused,
        Self::TlsHandshake,
        Self::SignatureInvalid,
        Self::TimestampSkew,
        Self::BodyTooLarge,
        Self::HeaderTooLarge,
        Self::RedactionOmitted,
        Self::UpstreamTlsInvalid,
        Self::MetricsUnauthorized,
        Self::Replay,
        Self::ClientNotAllowed,
        Self::OriginNotAllowed,
        Self::EgressDenied,
        Self::EgressUnauthorized,
        Self::MalformedRequest,
        Self::MethodNotAllowed,
        Self::MisdirectedRequest,
        Self::ClientIdle,
        Self::RequestTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::PlaintextRefused => "plaintext_refused",
            Self::TlsHandshake => "tls_handshake",
            Self::SignatureInvalid => "signature_invalid",
            Self::TimestampSkew => "timestamp_skew",
            Self::BodyTooLarge => "body_too_large",
            Self::HeaderTooLarge => "header_too_large",
            Self::RedactionOmitted => "redaction_omitted",
            Self::UpstreamTlsInvalid => "upstream_tls_invalid",
            Self::MetricsUnauthorized => "metrics_unauthorized",
            Self::Replay => "replay",
            Self::ClientNotAllowed => "client_not_allowed",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::EgressDenied => "egress_denied",
            Self::EgressUnauthorized => "egress_unauthorized",
            Self::MalformedRequest => "malformed_request",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MisdirectedRequest => "misdirected_request",
            Self::ClientIdle => "client_idle",
            Self::RequestTimeout => "request_timeout",
        }
    }
}

/// The `listener` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Https,
    Http,
    Egress,
}

impl Listener {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
            Self::Egress => "egress",
        }
    }
}

/// `1xx` … `5xx` for a status code.
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// Methods become a bounded label: the standard ones by name, anything else `OTHER`.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// Proxied requests: from a local answer (1 ms) to a slow bot (a minute); longer ones
/// (streams, tunnels) are counted in `+Inf`. Fixed, like every label set, so that the
/// number of series never grows with traffic.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// Model calls: from a fast cached answer (50 ms) to a long generation (5 minutes).
const MODEL_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
    180.0, 240.0, 300.0,
];

/// Every metric family clawveil exports.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub upstream_timeouts: IntCounterVec,
    pub fallbacks: IntCounterVec,
    pub model_duration: HistogramVec,
    pub model_first_byte: HistogramVec,
    pub fail_closed: IntCounterVec,
    pub tls_handshakes: IntCounterVec,
    pub cert_expiry: GaugeVec,
    pub cert_lifetime: GaugeVec,
    pub cert_reloads: IntCounterVec,
    pub acme_orders: IntCounterVec,
    pub acme_next_renewal: GaugeVec,
    pub redactions: IntCounterVec,
    pub connections_open: IntGaugeVec,
    pub websocket_tunnels_open: IntGaugeVec,
    pub egress_tunnels: IntCounterVec,
    /// No labels: one upstream per process. Set through [`Metrics::set_upstream_exposed`].
    pub upstream_exposed: IntGaugeVec,
    pub build_info: IntGaugeVec,
    /// (name, help, type) of every family, so that families without samples yet still
    /// announce themselves with `# HELP`/`# TYPE` lines.
    declared: Vec<(&'static str, &'static str, &'static str)>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Builder {
    registry: Registry,
    declared: Vec<(&'static str, &'static str, &'static str)>,
}

impl Builder {
    fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[&str],
    ) -> IntCounterVec {
        let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.registry
            .register(Box::new(m.clone()))
            .expect("unique metric");
        self.declared.push((name, help, "counter"));
        m
    }
    fn gauge(&mut self, name: &'static str, help: &'static str, labels: &[&str]) -> GaugeVec {
        let m = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.registry
            .register(Box::new(m.clone()))
            .expect("unique metric");
        self.declared.push((name, help, "gauge"));
        m
    }
    fn int_gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[&str],
    ) -> IntGaugeVec {
        let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
        self.registry
            .register(Box::new(m.clone()))
            .expect("unique metric");
        self.declared.push((name, help, "gauge"));
        m
    }
    fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[&str],
    ) -> HistogramVec {
        self.histogram_with(name, help, labels, LATENCY_BUCKETS)
    }
    fn histogram_with(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[&str],
        buckets: &[f64],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        let m = HistogramVec::new(opts, labels).expect("valid metric");
        self.registry
            .register(Box::new(m.clone()))
            .expect("unique metric");
        self.declared.push((name, help, "histogram"));
        m
    }
}

impl Metrics {
    /// Registers every family, plus the process collector (memory, CPU, open fds).
    pub fn new(version: &str) -> Metrics {
        let mut b = Builder {
            registry: Registry::new(),
            declared: Vec::new(),
        };
        let requests = b.counter(
            "clawveil_requests_total",
            "Requests finished.",
            &["listener", "route", "method", "status_class"],
        );
        let request_duration = b.histogram(
            "clawveil_request_duration_seconds",
            "First byte in to last byte out.",
            &["listener", "route"],
        );
        let upstream_errors = b.counter(
            "clawveil_upstream_errors_total",
            "Failures talking to an upstream.",
            &["upstream", "class"],
        );
        let upstream_timeouts = b.counter(
            "clawveil_upstream_timeouts_total",
            "Upstream connect or response timeouts.",
            &["upstream"],
        );
        let fallbacks = b.counter(
            "clawveil_fallback_total",
            "Requests retried on the fallback target.",
            &["target", "cause"],
        );
        let model_duration = b.histogram_with(
            "clawveil_model_request_duration_seconds",
            "Egress latency per model, request start to last byte.",
            &["target", "model"],
            MODEL_BUCKETS,
        );
        let model_first_byte = b.histogram_with(
            "clawveil_model_first_byte_seconds",
            "Egress time to the first response byte, per model.",
            &["target", "model"],
            MODEL_BUCKETS,
        );
        let fail_closed = b.counter(
            "clawveil_fail_closed_total",
            "Every refusal, by reason.",
            &["reason"],
        );
        let tls_handshakes = b.counter(
            "clawveil_tls_handshakes_total",
            "TLS handshakes on the https listener.",
            &["result", "version", "group"],
        );
        let cert_expiry = b.gauge(
            "clawveil_certificate_expiry_timestamp_seconds",
            "notAfter of each served certificate (Unix seconds).",
            &["name"],
        );
        let cert_lifetime = b.gauge(
            "clawveil_certificate_lifetime_seconds",
            "notAfter minus notBefore of each served certificate, for alerts on the fraction of its lifetime left.",
            &["name"],
        );
        let cert_reloads = b.counter(
            "clawveil_certificate_reloads_total",
            "Certificate (re)loads.",
            &["source", "result"],
        );
        let acme_orders = b.counter("clawveil_acme_orders_total", "ACME orders.", &["result"]);
        let acme_next_renewal = b.gauge(
            "clawveil_acme_next_renewal_timestamp_seconds",
            "When the next renewal will be tried (Unix seconds).",
            &["name"],
        );
        let redactions = b.counter(
            "clawveil_redactions_total",
            "Values replaced in log output, by rule.",
            &["rule"],
        );
        let connections_open = b.int_gauge(
            "clawveil_connections_open",
            "Open client connections.",
            &["listener"],
        );
        let websocket_tunnels_open = b.int_gauge(
            "clawveil_websocket_tunnels_open",
            "Upgraded (WebSocket) connections in progress.",
            &["route"],
        );
        let egress_tunnels = b.counter(
            "clawveil_egress_tunnels_total",
            "CONNECT tunnels and absolute-form requests, by decision.",
            &["decision"],
        );
        let upstream_exposed = b.int_gauge(
            "clawveil_upstream_exposed",
            "1 while the bot listens on a non-loopback address (reachable without clawveil).",
            &[],
        );
        let build_info = b.int_gauge("clawveil_build_info", "Always 1.", &["version"]);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            b.registry
                .register(Box::new(pc))
                .expect("process collector");
        }

        // Start every enumerable series at zero so rate() works from the first scrape.
        for r in FailReason::ALL {
            fail_closed.with_label_values(&[r.as_str()]);
        }
        for source in ["files", "acme"] {
            for result in ["ok", "failed"] {
                cert_reloads.with_label_values(&[source, result]);
            }
        }
        for result in ["ok", "failed"] {
            acme_orders.with_label_values(&[result]);
        }
        for l in [Listener::Https, Listener::Http] {
            connections_open.with_label_values(&[l.as_str()]);
        }
        for decision in ["allowed", "denied"] {
            egress_tunnels.with_label_values(&[decision]);
        }
        upstream_exposed.with_label_values::<&str>(&[]);
        build_info.with_label_values(&[version]).set(1);

        Metrics {
            registry: b.registry,
            requests,
            request_duration,
            upstream_errors,
            upstream_timeouts,
            fallbacks,
            model_duration,
            model_first_byte,
            fail_closed,
            tls_handshakes,
            cert_expiry,
            cert_lifetime,
            cert_reloads,
            acme_orders,
            acme_next_renewal,
            redactions,
            connections_open,
            websocket_tunnels_open,
            egress_tunnels,
            upstream_exposed,
            build_info,
            declared: b.declared,
        }
    }

    pub fn fail_closed(&self, reason: FailReason) {
        self.fail_closed.with_label_values(&[reason.as_str()]).inc();
    }

    /// `clawveil_upstream_exposed`: whether the last exposure check found the bot
    /// listening beyond loopback.
    pub fn set_upstream_exposed(&self, exposed: bool) {
        self.upstream_exposed
            .with_label_values::<&str>(&[])
            .set(i64::from(exposed));
    }

    /// The Prometheus text exposition of every family. Families with no series yet are
    /// still announced (HELP and TYPE lines) so scrapers and alerts can rely on them.
    pub fn encode(&self) -> String {
        let families = self.registry.gather();
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding our own well-formed families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&families, &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        for (name, help, kind) in &self.declared {
            if !families.iter().any(|f| f.name() == *name) {
                let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_announced_even_without_samples() {
        let m = Metrics::new("0.0.0-test");
        let text = m.encode();
        for (name, _, kind) in &m.declared {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} missing"
            );
        }
        assert!(text.contains("clawveil_build_info{version=\"0.0.0-test\"} 1"));
        assert!(text.contains("clawveil_fail_closed_total{reason=\"plaintext_refused\"} 0"));
    }

    #[test]
    fn model_histograms_span_fast_answers_to_long_generations() {
        let m = Metrics::new("0.0.0-test");
        m.model_duration
            .with_label_values(&["models", "qwen-max"])
            .observe(200.0);
        m.model_first_byte
            .with_label_values(&["models", "qwen-max"])
            .observe(0.04);
        let text = m.encode();
        let bucket = |name: &str, le: &str| {
            format!("{name}_bucket{{model=\"qwen-max\",target=\"models\",le=\"{le}\"}}")
        };
        for name in [
            "clawveil_model_request_duration_seconds",
            "clawveil_model_first_byte_seconds",
        ] {
            assert!(text.contains(&bucket(name, "0.05")), "{name}");
            assert!(text.contains(&bucket(name, "300")), "{name}");
            assert!(!text.contains(&bucket(name, "0.001")), "{name}");
        }
        assert!(text.contains(&format!(
            "{} 1",
            bucket("clawveil_model_request_duration_seconds", "240")
        )));
        assert!(text.contains(&format!(
            "{} 1",
            bucket("clawveil_model_first_byte_seconds", "0.05")
        )));
    }

    #[test]
    fn request_histograms_span_a_millisecond_to_a_minute() {
        let m = Metrics::new("0.0.0-test");
        let h = m.request_duration.with_label_values(&["https", "default"]);
        h.observe(0.0005);
        h.observe(90.0);
        let text = m.encode();
        let bucket = |le: &str| {
            format!(
                "clawveil_request_duration_seconds_bucket{{listener=\"https\",route=\"default\",le=\"{le}\"}}"
            )
        };
        let les: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("clawveil_request_duration_seconds_bucket"))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(les.first(), Some(&"0.001"), "{text}");
        assert_eq!(les[les.len() - 2..], ["60", "+Inf"], "{text}");
        assert!(text.contains(&format!("{} 1\n", bucket("0.001"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", bucket("60"))), "{text}");
        assert!(text.contains(&format!("{} 2\n", bucket("+Inf"))), "{text}");
    }

    #[test]
    fn unknown_methods_are_bounded() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "OTHER");
        assert_eq!(status_class(504), "5xx");
        assert_eq!(status_class(308), "3xx");
    }
}
