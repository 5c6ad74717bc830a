//! The access event: one structured log event per finished request. Metadata only;
//! anything that may carry user content arrives here already redacted.

use std::time::Duration;

/// The target of access events (`log.level` directives can name it: `access=warn`).
pub const ACCESS_TARGET: &str = "access";

/// Access-event fields whose values are JSON objects already, written as objects in
/// JSON lines rather than as strings.
pub const JSON_VALUED: &[&str] = &[
    "request_json",
    "response_json",
    "request_headers",
    "response_headers",
];

/// A body sample as the access event carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyField<'a> {
    /// A complete, redacted JSON object: logged as an object (`request_json`,
    /// `response_json`), so log stores can query inside it.
    Json(&'a str),
    /// Anything else (text, a cut sample, an omission reason): logged as a string
    /// (`request_body`, `response_body`).
    Text(&'a str),
}

impl<'a> BodyField<'a> {
    fn json(self) -> Option<&'a str> {
        match self {
            BodyField::Json(s) => Some(s),
            BodyField::Text(_) => None,
        }
    }

    fn text(self) -> Option<&'a str> {
        match self {
            BodyField::Text(s) => Some(s),
            BodyField::Json(_) => None,
        }
    }
}

/// What went wrong with a request, from a fixed list (never an upstream's own text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Could not connect to the upstream.
    Connect,
    /// The upstream did not answer in time.
    Timeout,
    /// The upstream closed or reset the connection mid-request.
    Reset,
    /// The upstream spoke broken HTTP.
    Protocol,
    /// TLS to an upstream failed verification.
    Tls,
    /// The client's body exceeded `limits.max_body`.
    BodyTooLarge,
    /// The client went away or sent a broken body.
    Client,
    /// The client took longer than `limits.request_timeout` to send its body.
    ClientTimeout,
    /// Refused by clawveil's own policy (signature, allow-list, …).
    Refused,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Protocol => "protocol",
            Self::Tls => "tls",
            Self::BodyTooLarge => "body_too_large",
            Self::Client => "client",
            Self::ClientTimeout => "client_timeout",
            Self::Refused => "refused",
        }
    }

    /// Whether this class belongs in `clawveil_upstream_errors_total`.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            Self::Connect | Self::Timeout | Self::Reset | Self::Protocol | Self::Tls
        )
    }
}

/// One finished request.
#[derive(Debug, Clone, Default)]
pub struct AccessEvent<'a> {
    pub trace_id: &'a str,
    pub listener: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    /// The path, only once redacted (paths can carry identifiers); the route name
    /// is what identifies a request otherwise.
    pub path: Option<&'a str>,
    /// The query string after redaction, if any.
    pub query: Option<&'a str>,
    pub status: u16,
    pub latency: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upstream: &'a str,
    pub error: Option<ErrorClass>,
    pub tls_version: &'a str,
    /// The key-exchange group of the handshake (`X25519MLKEM768`, `X25519`, ...).
    pub tls_group: &'a str,
    pub alpn: &'a str,
    pub http_version: &'a str,
    /// Client address (already hashed when `log.hash_key` is set).
    pub client: &'a str,
    /// Redacted headers as a JSON object, when `log.bodies = "redacted"` and the
    /// level is `debug`.
    pub request_headers: Option<&'a str>,
    pub response_headers: Option<&'a str>,
    /// Redacted body samples (or an omission reason), when `log.bodies = "redacted"`.
    pub request_body: Option<BodyField<'a>>,
    pub response_body: Option<BodyField<'a>>,
    /// The `clawveil_fail_closed_total` reason of a refused request.
    pub reason: Option<&'a str>,
    /// How an upgraded (WebSocket) connection ended.
    pub close_reason: Option<&'a str>,
}

impl AccessEvent<'_> {
    /// Emits the event on the `access` target at INFO.
    pub fn emit(&self) {
        tracing::info!(
            target: ACCESS_TARGET,
            trace_id = self.trace_id,
            listener = self.listener,
            route = self.route,
            method = self.method,
            path = self.path,
            query = self.query,
            status = self.status,
            latency_ms = (self.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            upstream = self.upstream,
            error = self.error.map(ErrorClass::as_str),
            tls_version = self.tls_version,
            tls_group = self.tls_group,
            alpn = self.alpn,
            http_version = self.http_version,
            client = self.client,
            request_headers = self.request_headers,
            response_headers = self.response_headers,
            request_body = self.request_body.and_then(BodyField::text),
            request_json = self.request_body.and_then(BodyField::json),
            response_body = self.response_body.and_then(BodyField::text),
            response_json = self.response_body.and_then(BodyField::json),
            reason = self.reason,
            close_reason = self.close_reason,
            "request"
        );
    }
}
