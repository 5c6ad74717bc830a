//! The validated, typed configuration. Nothing downstream of this crate sees TOML:
//! addresses are `SocketAddr`, durations `Duration`, sizes `u64`, secrets `Secret`.
//!
//! Every field carries a doc comment; the README's configuration reference is checked
//! against these (see `reference.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// The whole, validated `proxy.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this configuration was read from (used in messages and for relative paths).
    pub source: PathBuf,
    /// Peers whose `X-Forwarded-For` is believed (for `allow_cidrs` and logs).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub listen: Listen,
    pub upstream: Upstream,
    pub tls: Tls,
    /// Present when `[acme]` is in the file (required when `tls.mode = "acme"`).
    pub acme: Option<Acme>,
    pub limits: Limits,
    pub log: Log,
    pub redact: Redact,
    pub metrics: Metrics,
    /// Routes sorted by `path_prefix` length, longest first (so the first match wins).
    /// When the file has none, a single `default` route for `/` with `verify = none`.
    pub routes: Vec<Route>,
    pub egress: Option<Egress>,
}

/// `[listen]`
#[derive(Debug, Clone)]
pub struct Listen {
    /// TLS listener (HTTP/1.1 and HTTP/2 by ALPN). Required.
    pub https: SocketAddr,
    /// Plain-HTTP listener: ACME HTTP-01 answers and a 308 to https, nothing else.
    pub http: Option<SocketAddr>,
    /// `/metrics`, `/healthz`, `/readyz`. Default `127.0.0.1:9464`.
    pub metrics: Option<SocketAddr>,
}

/// `[upstream]`
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http://host:port` of the bot, optionally with a path prefix. Default `http://127.0.0.1:8080`.
    pub url: String,
    /// Default 2s.
    pub connect_timeout: Duration,
    /// Until response headers arrive; then bodies stream. Default 30s.
    pub response_timeout: Duration,
    /// Optional second upstream (used by egress-style fallback; parsed now).
    pub fallback: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Acme,
    Files,
    SelfSigned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// `[tls]`
#[derive(Debug, Clone)]
pub struct Tls {
    /// Default `self-signed`.
    pub mode: TlsMode,
    /// Default 1.2.
    pub min_version: TlsVersion,
    /// `Strict-Transport-Security` value; `None` when set to "". Default
    /// `max-age=31536000; includeSubDomains`.
    pub hsts: Option<String>,
    /// PEM chain (mode files; also where self-signed writes). Relative paths are resolved
    /// against the current directory. Default `certs/fullchain.pem` (files) or
    /// `certs/selfsigned.pem` (self-signed).
    pub cert: PathBuf,
    /// PEM key. Default `certs/privkey.pem` (files) or `certs/selfsigned.key` (self-signed).
    pub key: PathBuf,
    /// Names for the self-signed certificate. Default `["localhost", "127.0.0.1", "::1"]`.
    pub names: Vec<String>,
    /// How often `files` mode checks the files for changes. Default 2s.
    pub watch_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Http01,
    TlsAlpn01,
}

/// `[acme]`
#[derive(Debug, Clone)]
pub struct Acme {
    /// Non-empty; one certificate carries all of them.
    pub domains: Vec<String>,
    /// e.g. `mailto:ops@example.com`.
    pub contact: Vec<String>,
    /// Default Let's Encrypt production.
    pub directory: String,
    /// Default http-01 (which requires `listen.http`).
    pub challenge: Challenge,
    /// Default `certs/acme`.
    pub storage: PathBuf,
    /// Default 30d.
    pub renew_before: Duration,
    pub ca_roots: Option<PathBuf>,
    pub eab_kid: Option<Secret>,
    pub eab_hmac: Option<Secret>,
    /// 32 bytes as 64 hex characters (validated).
    pub storage_key: Option<Secret>,
}

/// `[limits]`
#[derive(Debug, Clone)]
pub struct Limits {
    /// Default 10MiB; larger bodies get 413.
    pub max_body: u64,
    /// Default 64KiB; larger request heads get 431.
    pub max_header_bytes: u64,
    /// Default 10s; clients that have not sent a full request head by then are cut.
    pub header_read_timeout: Duration,
    /// Default 60s; the whole request body must have arrived by then.
    pub request_timeout: Duration,
    /// Default 10000; further connections wait in the accept queue.
    pub max_connections: usize,
    /// Default 30s; on SIGTERM in-flight requests get this long to finish.
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLog {
    Off,
    Redacted,
}

/// `[log]`
#[derive(Debug, Clone)]
pub struct Log {
    /// Default json.
    pub format: LogFormat,
    /// A tracing filter: `error`, `warn`, `info`, `debug`, `trace` (default info).
    pub level: String,
    /// Default off.
    pub bodies: BodyLog,
    /// Per direction, after redaction. Default 16KiB.
    pub body_max: u64,
    pub hash_key: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    Mask,
    Hash,
}

/// One `[[redact.rule]]`.
#[derive(Debug, Clone)]
pub struct RedactRule {
    pub name: String,
    /// A regular expression (validated at load time).
    pub pattern: String,
    /// Default mask.
    pub replace: Replace,
}

/// `[redact]`
#[derive(Debug, Clone)]
pub struct Redact {
    /// Built-in rule names; default all of them.
    pub builtin: Vec<String>,
    pub json_keys: Vec<String>,
    /// Extra header names whose values are always redacted.
    pub headers: Vec<String>,
    pub rules: Vec<RedactRule>,
}

/// `[metrics]`
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Bearer token required on `/metrics`; mandatory when `listen.metrics` is not loopback.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    None,
    DingtalkRobot,
    DingtalkEvent,
}

/// One `[[route]]`.
#[derive(Debug, Clone)]
pub struct Route {
    /// Unique; the label used in logs and metrics.
    pub name: String,
    /// Starts with `/`.
    pub path_prefix: String,
    /// Default none.
    pub verify: Verify,
    /// Required (non-empty) for dingtalk-robot.
    pub app_secrets: Vec<Secret>,
    /// Default 1h.
    pub max_skew: Duration,
    /// Default true.
    pub replay: bool,
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Required for dingtalk-event.
    pub event_token: Option<Secret>,
    pub event_aes_key: Option<Secret>,
    pub event_owner_key: Option<String>,
}

/// `[egress]`
#[derive(Debug, Clone)]
pub struct Egress {
    /// Loopback only. Default 127.0.0.1:8089.
    pub listen: SocketAddr,
    /// Host patterns (`api.dingtalk.com`, `*.dingtalk.com`) that CONNECT may reach, port 443 only.
    pub allow: Vec<String>,
    pub targets: Vec<EgressTarget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackCause {
    Connect,
    Timeout,
    Status5xx,
}

/// One `[[egress.target]]`.
#[derive(Debug, Clone)]
pub struct EgressTarget {
    pub name: String,
    /// `https://` only.
    pub url: String,
    pub fallback: Option<String>,
    /// Default ["connect", "timeout"].
    pub fallback_on: Vec<FallbackCause>,
    /// Default 2s.
    pub connect_timeout: Duration,
    /// Default 120s.
    pub response_timeout: Duration,
    pub models: Vec<String>,
    /// Header name → value template (may contain secrets).
    pub inject_headers: Vec<(String, Secret)>,
    pub ca_roots: Option<PathBuf>,
}
