//! The validated, typed configuration. Nothing downstream of this crate sees TOML:
//! addresses are `SocketAddr`, durations `Duration`, sizes `u64`, secrets `Secret`.
//!
//! The file spelling, type, default and meaning of every key are in `reference.rs`
//! (the README's configuration reference), which is tested against the raw serde structs;
//! the doc comments here say what each field means to the code that uses it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::perms::PermissionWarning;
use crate::secret::Secret;

/// Gives a config enum its file spelling: `NAMES` (every valid value, in the order the
/// reference lists them), `as_str`, `from_name` and `Display`.
macro_rules! named_enum {
    ($t:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        impl $t {
            /// Every valid spelling in `proxy.toml`.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            /// The spelling used in `proxy.toml`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$v => $s),+
                }
            }

            /// Parses the spelling used in `proxy.toml` (exact, case-sensitive).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($s => Some(Self::$v),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

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
    /// Present when `[egress]` is in the file. Always `None` from [`parse`](crate::parse)
    /// and [`load`](crate::load) while `[egress]` is refused as "not supported yet" (until
    /// the egress listener flips `EGRESS_SUPPORTED` in `reference.rs`).
    pub egress: Option<Egress>,
    /// Insecure file permissions that `LoadOptions::allow_insecure_permissions` let
    /// through (tls.key, `${file:..}` secrets). The binary logs each one loudly.
    pub warnings: Vec<PermissionWarning>,
}

impl Config {
    /// Every secret in the configuration, whatever reads it.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        let acme = self.acme.iter().flat_map(|a| {
            [&a.eab_kid, &a.eab_hmac, &a.storage_key]
                .into_iter()
                .flatten()
        });
        let routes = self.routes.iter().flat_map(|r| {
            r.app_secrets
                .iter()
                .chain(&r.event_token)
                .chain(&r.event_aes_key)
        });
        let egress = self.egress.iter().flat_map(|e| {
            e.token.iter().chain(e.targets.iter().flat_map(|t| {
                t.inject_headers
                    .iter()
                    .map(|(_, s)| s)
                    .chain(&t.client_token)
            }))
        });
        self.log
            .hash_key
            .iter()
            .chain(acme)
            .chain(&self.metrics.tokens)
            .chain(routes)
            .chain(egress)
    }

    /// The `${file:..}` paths of every secret, sorted and without duplicates, as
    /// written (a symlink is not resolved: the binary polls them for changes, and
    /// Kubernetes rotates a Secret by swapping the `..data` symlink behind the path).
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .secrets()
            .flat_map(Secret::files)
            .map(Path::to_path_buf)
            .collect();
        files.sort();
        files.dedup();
        files
    }
}

/// `[listen]`
#[derive(Debug, Clone)]
pub struct Listen {
    /// TLS listener (HTTP/1.1 and HTTP/2 by ALPN). Required.
    pub https: SocketAddr,
    /// Plain-HTTP listener: ACME HTTP-01 answers and a 308 to https, nothing else.
    pub http: Option<SocketAddr>,
    /// `/metrics`, `/healthz`, `/readyz`. Default `127.0.0.1:9464`; `metrics = ""`
    /// disables the listener (`None`).
    pub metrics: Option<SocketAddr>,
    /// Host names the https listener serves (exact, or `*.suffix`); empty: any. Other
    /// hosts, and a `Host` that differs from the TLS SNI, get 421. Lowercase, unique,
    /// without port; an IP address in its canonical form (IPv6 without brackets).
    pub server_names: Vec<String>,
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
    /// Optional second upstream. Always `None` from [`parse`](crate::parse) and
    /// [`load`](crate::load): `upstream.fallback` is refused as "not supported yet".
    pub fallback: Option<String>,
    /// How often to look for the bot listening on a non-loopback address (on the
    /// upstream's port) where it can be reached without clawveil. `None`: the check is
    /// off (`"0s"`). Default 30s.
    pub exposure_check: Option<Duration>,
    /// Whether an exposed bot makes `/readyz` answer 503. Default: true when the host of
    /// `url` is a loopback address (or `localhost`); never true otherwise, nor with the
    /// check off.
    pub require_loopback: bool,
}

/// `tls.mode`: where the serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Obtained and renewed by ACME (`[acme]`).
    Acme,
    /// PEM files `tls.cert` / `tls.key`, reloaded on SIGHUP and on change.
    Files,
    /// Generated on first start (development only).
    SelfSigned,
}
named_enum!(TlsMode { Acme = "acme", Files = "files", SelfSigned = "self-signed" });

/// `tls.min_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}
named_enum!(TlsVersion { V1_2 = "1.2", V1_3 = "1.3" });

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

/// `acme.challenge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// Answered on `listen.http` (port 80).
    Http01,
    /// Answered on `listen.https` by ALPN `acme-tls/1` (port 443).
    TlsAlpn01,
}
named_enum!(Challenge { Http01 = "http-01", TlsAlpn01 = "tls-alpn-01" });

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
    /// Renew when less than this remains (or a third of the lifetime, whichever is
    /// larger) and the CA offers no renewal information. Unset: a third of the lifetime.
    pub renew_before: Option<Duration>,
    /// Extra PEM roots to trust the ACME server with (private CA, Pebble in tests).
    pub ca_roots: Option<PathBuf>,
    /// External account binding key id (set together with `eab_hmac`).
    pub eab_kid: Option<Secret>,
    /// External account binding HMAC key, base64url (set together with `eab_kid`).
    pub eab_hmac: Option<Secret>,
    /// 32 bytes as 64 hex characters (validated).
    pub storage_key: Option<Secret>,
    /// The certificate profile to ask the CA for (`shortlived`, `tlsserver`, ...);
    /// checked against the profiles the directory advertises. Unset: the CA's default.
    pub profile: Option<String>,
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
    /// Default 30s; on SIGTERM in-flight requests get this long to finish. Zero: no drain.
    pub drain_timeout: Duration,
    /// Default 60s; a keep-alive connection with no request in flight, an h2
    /// connection with no open stream, or a client that reads none of its response,
    /// is cut after this long.
    pub idle_timeout: Duration,
    /// Default 10m; an upgraded (WebSocket) connection with no byte either way is
    /// closed after this long.
    pub tunnel_idle_timeout: Duration,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line on stdout.
    Json,
    /// Human-readable, for terminals.
    Pretty,
}
named_enum!(LogFormat { Json = "json", Pretty = "pretty" });

/// `log.bodies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLog {
    /// Bodies are never logged.
    Off,
    /// A bounded sample, after the redaction engine.
    Redacted,
}
named_enum!(BodyLog { Off = "off", Redacted = "redacted" });

/// `[log]`
#[derive(Debug, Clone)]
pub struct Log {
    /// `None` when the file does not say: human-readable when stdout is a terminal,
    /// JSON lines otherwise (the choice is the binary's, which knows its stdout).
    pub format: Option<LogFormat>,
    /// A tracing filter: `error`, `warn`, `info`, `debug`, `trace` (default info).
    pub level: String,
    /// Default off.
    pub bodies: BodyLog,
    /// Per direction, after redaction. Default 16KiB.
    pub body_max: u64,
    /// When set, identifiers become keyed hashes (same id → same tag) instead of fixed masks.
    pub hash_key: Option<Secret>,
}

/// `redact.rule.replace`: what a match becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// A fixed mask naming the rule.
    Mask,
    /// A keyed hash (`log.hash_key`), so equal values get equal tags.
    Hash,
}
named_enum!(Replace { Mask = "mask", Hash = "hash" });

/// One `[[redact.rule]]`.
#[derive(Debug, Clone)]
pub struct RedactRule {
    /// Unique, non-empty; shown in place of what it redacts.
    pub name: String,
    /// A regular expression (validated at load time).
    pub pattern: String,
    /// Default mask.
    pub replace: Replace,
}

/// `[redact]`
#[derive(Debug, Clone)]
pub struct Redact {
    /// Built-in rule names (see `BUILTIN_RULES`); default all of them.
    pub builtin: Vec<String>,
    /// Extra JSON keys whose values are always redacted.
    pub json_keys: Vec<String>,
    /// Extra header names whose values are always redacted.
    pub headers: Vec<String>,
    /// Custom rules, in file order.
    pub rules: Vec<RedactRule>,
}

/// `[metrics]`
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// `metrics.token`: the bearer tokens `/metrics` accepts, any one of them (several
    /// during a rotation), in file order, each unique. Empty: `/metrics` is open, which
    /// is only accepted when `listen.metrics` is loopback.
    pub tokens: Vec<Secret>,
}

/// `route.verify`: how a callback is proven to come from DingTalk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// No verification.
    None,
    /// `timestamp` + `sign` headers, HMAC-SHA256 with one of `app_secrets`.
    DingtalkRobot,
    /// Signature over token/timestamp/nonce/encrypt with `event_token`.
    DingtalkEvent,
}
named_enum!(Verify { None = "none", DingtalkRobot = "dingtalk-robot", DingtalkEvent = "dingtalk-event" });

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
    /// Optional client allow-list (empty: everyone).
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Required for dingtalk-event.
    pub event_token: Option<Secret>,
    /// 43 characters (validated); when set the ciphertext must also decrypt.
    pub event_aes_key: Option<Secret>,
    /// corpId, appKey or suiteKey expected at the end of the decrypted plaintext.
    pub event_owner_key: Option<String>,
    /// Origins (`https://host[:port]` or `http://host[:port]`) a WebSocket upgrade may
    /// come from; empty: any. Lowercase, unique, without a default port (`:443` for
    /// https, `:80` for http), as browsers send `Origin`.
    pub allowed_origins: Vec<String>,
    /// Whether TRACE is forwarded on this route (default false: 405).
    pub allow_trace: bool,
}

/// `[egress]`
#[derive(Debug, Clone)]
pub struct Egress {
    /// Loopback only. Default 127.0.0.1:8089.
    pub listen: SocketAddr,
    /// Host patterns (`api.dingtalk.com`, `*.dingtalk.com`) that CONNECT may reach, on one
    /// of `ports`. Lowercase.
    pub allow: Vec<String>,
    /// Ports CONNECT may reach: non-empty, each 1..=65535, unique, in file order.
    /// Default `[443]`.
    pub ports: Vec<u16>,
    /// Whether absolute-form `http://` requests to allowed hosts are forwarded. Default
    /// false (refused: TLS everywhere).
    pub plain_http: bool,
    /// Exceptions to the refused destination ranges (loopback, private, link-local,
    /// metadata, ...): an address inside one is connected to anyway. Together they never
    /// cover every IPv4 address, every IPv6 address, or every IPv4-mapped IPv6 address
    /// (validated). As written, not truncated (`10.20.0.1/16` stays so).
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// When set, clients must send `Proxy-Authorization: Bearer <token>` (407 otherwise).
    /// At least 16 characters, no control characters, no surrounding whitespace.
    pub token: Option<Secret>,
    /// Reverse-proxy targets; requests to `/<name>/...` go to target `name`.
    pub targets: Vec<EgressTarget>,
}

/// `egress.target.fallback_on`: what makes a request go to the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackCause {
    /// The primary could not be connected to (including TLS handshake failures).
    Connect,
    /// The primary did not answer within `response_timeout`.
    Timeout,
    /// The primary answered with a 5xx status.
    Status5xx,
}
named_enum!(FallbackCause { Connect = "connect", Timeout = "timeout", Status5xx = "5xx" });

/// One `[[egress.target]]`.
#[derive(Debug, Clone)]
pub struct EgressTarget {
    /// Unique; the first path segment that selects this target, and its metric label.
    pub name: String,
    /// `https://` only. The host may be an IP address, a private or loopback one included
    /// (an internal model gateway): targets are configured, not chosen by the bot.
    pub url: String,
    /// `https://` only; tried per `fallback_on`.
    pub fallback: Option<String>,
    /// Default ["connect", "timeout"].
    pub fallback_on: Vec<FallbackCause>,
    /// Default 2s.
    pub connect_timeout: Duration,
    /// Default 120s.
    pub response_timeout: Duration,
    /// Allow-list for the `model` metric label; others are `other`.
    pub models: Vec<String>,
    /// Header name → value template (may contain secrets), sorted by name.
    pub inject_headers: Vec<(String, Secret)>,
    /// When set, the bot must present it as `Authorization: Bearer <token>` or
    /// `x-api-key: <token>`; it is swapped for the injected key. At least 16 characters,
    /// no control characters, no surrounding whitespace, and not contained in any
    /// `inject_headers` value (validated).
    pub client_token: Option<Secret>,
    /// Extra PEM roots trusted for this target (in addition to the system roots).
    pub ca_roots: Option<PathBuf>,
}

/// The built-in redaction rules `redact.builtin` may name (the redact crate implements
/// the same names).
pub const BUILTIN_RULES: &[&str] = &[
    "email",
    "phone",
    "id-card",
    "bank-card",
    "bearer",
    "api-key",
    "jwt",
    "url-secret",
    "dingtalk",
];
