//! Stage one: serde structs that mirror `proxy.toml` exactly. Unknown keys are refused
//! (`deny_unknown_fields`), every key is optional here; defaults and checks live in
//! `validate`. Nothing outside this crate sees these types.
//!
//! Durations, addresses and enums are strings here; sizes are `toml::Value` because both
//! `"16KiB"` and `16384` are accepted.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub trusted_proxies: Option<Vec<String>>,
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub tls: RawTls,
    pub acme: Option<RawAcme>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub redact: RawRedact,
    #[serde(default)]
    pub metrics: RawMetrics,
    pub route: Option<Vec<RawRoute>>,
    pub egress: Option<RawEgress>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListen {
    pub https: Option<String>,
    pub http: Option<String>,
    pub metrics: Option<String>,
    pub server_names: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub url: Option<String>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub fallback: Option<String>,
    pub exposure_check: Option<String>,
    pub require_loopback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub mode: Option<String>,
    pub min_version: Option<String>,
    pub hsts: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub names: Option<Vec<String>>,
    pub watch_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAcme {
    pub domains: Option<Vec<String>>,
    pub contact: Option<Vec<String>>,
    pub directory: Option<String>,
    pub challenge: Option<String>,
    pub storage: Option<String>,
    pub renew_before: Option<String>,
    pub ca_roots: Option<String>,
    pub eab_kid: Option<String>,
    pub eab_hmac: Option<String>,
    pub storage_key: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_body: Option<toml::Value>,
    pub max_header_bytes: Option<toml::Value>,
    pub header_read_timeout: Option<String>,
    pub request_timeout: Option<String>,
    pub max_connections: Option<i64>,
    pub drain_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub tunnel_idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
    pub bodies: Option<String>,
    pub body_max: Option<toml::Value>,
    pub hash_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedact {
    pub builtin: Option<Vec<String>>,
    pub json_keys: Option<Vec<String>>,
    pub headers: Option<Vec<String>>,
    pub rule: Option<Vec<RawRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub name: Option<String>,
    pub pattern: Option<String>,
    pub replace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    /// One secret string or an array of them (checked in `validate::metrics`).
    pub token: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub name: Option<String>,
    pub path_prefix: Option<String>,
    pub verify: Option<String>,
    pub app_secrets: Option<Vec<String>>,
    pub max_skew: Option<String>,
    pub replay: Option<bool>,
    pub allow_cidrs: Option<Vec<String>>,
    pub event_token: Option<String>,
    pub event_aes_key: Option<String>,
    pub event_owner_key: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub allow_trace: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEgress {
    pub listen: Option<String>,
    pub allow: Option<Vec<String>>,
    /// `i64` so that 0, negative and too-large ports get a range error naming the key.
    pub ports: Option<Vec<i64>>,
    pub plain_http: Option<bool>,
    pub allow_cidrs: Option<Vec<String>>,
    pub token: Option<String>,
    pub target: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub name: Option<String>,
    pub url: Option<String>,
    pub fallback: Option<String>,
    pub fallback_on: Option<Vec<String>>,
    pub connect_timeout: Option<String>,
    pub response_timeout: Option<String>,
    pub models: Option<Vec<String>>,
    pub inject_headers: Option<BTreeMap<String, String>>,
    pub client_token: Option<String>,
    pub ca_roots: Option<String>,
}
