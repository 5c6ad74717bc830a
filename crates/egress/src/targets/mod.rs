//! Model targets: `[[egress.target]]` entries reached through the egress listener. A
//! request for `/<name>/rest` goes to `<url>/rest` over verified HTTPS (module `tls`),
//! with the target's headers injected and the bot's client token checked and removed
//! (`secrets`), its `model` read for the label ([`model`]), streamed back unbuffered
//! (`body`), and replayed once against the fallback when the primary fails in one of
//! the `fallback_on` ways before anything went back to the bot (`send`).

mod body;
mod event;
pub mod model;
mod secrets;
mod send;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use clawveil_config::{EgressTarget, FallbackCause};
use clawveil_telemetry::Metrics;
use http::uri::{Authority, Scheme};
use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

pub use secrets::SecretError;
pub use tls::TrustError;

use body::UpstreamBody;
use tls::Connector;

/// How much of a request body is held for a replay against the fallback. Larger
/// bodies are streamed to the primary and never retried.
pub const REPLAY_BUFFER: usize = 1024 * 1024;

/// Why a target cannot be set up (at start) or its secrets re-read (on SIGHUP).
#[derive(Debug, thiserror::Error)]
#[error("egress.target {target:?}: {kind}")]
pub struct TargetError {
    pub target: String,
    pub kind: TargetErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetErrorKind {
    #[error("name: must be one path segment (letters, digits, '-', '_', '.')")]
    BadName,
    #[error("name: another target has the same name")]
    Duplicate,
    #[error("{key}: {reason}")]
    BadUrl {
        key: &'static str,
        reason: &'static str,
    },
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The configured targets, by name.
#[derive(Debug, Default)]
pub struct Targets {
    targets: Vec<Arc<Target>>,
}

impl Targets {
    /// The `[[egress.target]]` entries, with the default replay buffer
    /// ([`REPLAY_BUFFER`]).
    pub fn new(targets: &[EgressTarget], metrics: Arc<Metrics>) -> Result<Targets, TargetError> {
        Targets::with_replay_buffer(targets, REPLAY_BUFFER, metrics)
    }

    /// The entries, each holding up to `replay_buffer` bytes of a request body for a
    /// replay against its fallback.
    pub fn with_replay_buffer(
        entries: &[EgressTarget],
        replay_buffer: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Targets, TargetError> {
        let mut targets: Vec<Arc<Target>> = Vec::with_capacity(entries.len());
        for entry in entries {
            let err = |kind| TargetError {
                target: entry.name.clone(),
                kind,
            };
            let target = Target::new(entry, replay_buffer, metrics.clone()).map_err(err)?;
            if targets.iter().any(|t| *t.name == *target.name) {
                return Err(err(TargetErrorKind::Duplicate));
            }
            targets.push(Arc::new(target));
        }
        Ok(Targets { targets })
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| &*t.name)
    }

    /// Re-reads every target's secrets (SIGHUP). A target whose secrets cannot be read
    /// keeps the ones it had; its error is returned.
    pub fn reload(&self) -> Vec<TargetError> {
        self.targets
            .iter()
            .filter_map(|t| {
                t.secrets.reload().err().map(|e| TargetError {
                    target: t.name.to_string(),
                    kind: e.into(),
                })
            })
            .collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Target>> {
        self.targets.iter().find(|t| &*t.name == name)
    }
}

/// Where a target's requests go: `https://authority/prefix`.
#[derive(Debug, Clone)]
struct Base {
    authority: Authority,
    /// The URL's path without its trailing `/` (often empty).
    prefix: String,
}

impl Base {
    fn parse(url: &str, key: &'static str) -> Result<Base, TargetErrorKind> {
        let bad = |reason| TargetErrorKind::BadUrl { key, reason };
        let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
        if uri.scheme() != Some(&Scheme::HTTPS) {
            return Err(bad("must start with https://"));
        }
        let authority = uri.authority().ok_or(bad("needs a host"))?.clone();
        if authority.as_str().contains('@') {
            return Err(bad("must not carry credentials (use inject_headers)"));
        }
        if uri.query().is_some() {
            return Err(bad("must not have a query"));
        }
        Ok(Base {
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream URI for `rest` (the request's path after `/<name>`, and its query).
    fn uri(&self, rest: &str) -> Option<Uri> {
        let mut path = format!("{}{rest}", self.prefix);
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .ok()
    }
}

/// One target, ready to serve.
pub(crate) struct Target {
    name: Arc<str>,
    primary: Base,
    fallback: Option<Base>,
    fallback_on: Vec<FallbackCause>,
    response_timeout: Duration,
    /// The `model` label allow-list, each shared by the requests that carry it.
    models: Vec<Arc<str>>,
    other: Arc<str>,
    replay_buffer: usize,
    client: Client<Connector, UpstreamBody>,
    secrets: secrets::Secrets,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("primary", &self.primary)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

impl Target {
    fn new(
        t: &EgressTarget,
        replay_buffer: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Target, TargetErrorKind> {
        let name_ok = !t.name.is_empty()
            && t.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !name_ok {
            return Err(TargetErrorKind::BadName);
        }
        let primary = Base::parse(&t.url, "url")?;
        let fallback = t
            .fallback
            .as_deref()
            .map(|f| Base::parse(f, "fallback"))
            .transpose()?;
        let roots = match &t.ca_roots {
            Some(path) => tls::load_ca_roots(path)?,
            None => Vec::new(),
        };
        let connector = tls::connector(tls::client_config(roots)?, t.connect_timeout);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let secrets = secrets::Secrets::new(&t.inject_headers, t.client_token.clone())?;
        // Series that exist from the start, so rate() works from the first scrape.
        if fallback.is_some() {
            for cause in &t.fallback_on {
                metrics
                    .fallbacks
                    .with_label_values(&[t.name.as_str(), cause.as_str()]);
            }
        }
        Ok(Target {
            name: Arc::from(t.name.as_str()),
            primary,
            fallback,
            fallback_on: t.fallback_on.clone(),
            response_timeout: t.response_timeout,
            models: t.models.iter().map(|m| Arc::from(m.as_str())).collect(),
            other: Arc::from(model::OTHER),
            replay_buffer,
            client,
            secrets,
            metrics,
        })
    }

    /// The shared label for what the body's `model` says.
    fn model_label(&self, body: &[u8]) -> Arc<str> {
        model::listed(&self.models, model::find(body))
            .unwrap_or(&self.other)
            .clone()
    }
}

/// Splits an origin-form request target `/<name>/rest?query` into the name and the
/// rest (`/rest?query`, `?query` or empty).
pub(crate) fn split_target(path_and_query: &str) -> Option<(&str, &str)> {
    let after = path_and_query.strip_prefix('/')?;
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (name, rest) = after.split_at(end);
    (!name.is_empty()).then_some((name, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets_split_into_name_and_rest() {
        assert_eq!(
            split_target("/models/v1/chat/completions?x=1"),
            Some(("models", "/v1/chat/completions?x=1"))
        );
        assert_eq!(split_target("/models?x=1"), Some(("models", "?x=1")));
        assert_eq!(split_target("/models"), Some(("models", "")));
        assert_eq!(split_target("/models/"), Some(("models", "/")));
        assert_eq!(split_target("/"), None);
        assert_eq!(split_target("//x"), None);
        assert_eq!(split_target("*"), None);
    }

    #[test]
    fn upstream_uris_keep_the_base_path_and_the_rest() {
        let b = Base::parse("https://gw.example:8443/api/", "url").unwrap();
        let uri = |rest| b.uri(rest).unwrap().to_string();
        assert_eq!(
            uri("/v1/chat?x=1"),
            "https://gw.example:8443/api/v1/chat?x=1"
        );
        assert_eq!(uri(""), "https://gw.example:8443/api");
        assert_eq!(uri("?x"), "https://gw.example:8443/api?x");
        let b = Base::parse("https://gw.example", "url").unwrap();
        assert_eq!(b.uri("").unwrap().to_string(), "https://gw.example/");
        assert_eq!(b.uri("?x").unwrap().to_string(), "https://gw.example/?x");
        // The rest never changes the host.
        assert_eq!(
            b.uri("//evil.example/x")
                .unwrap()
                .authority()
                .unwrap()
                .as_str(),
            "gw.example"
        );
    }

    #[test]
    fn only_plain_https_urls_are_targets() {
        for (url, want) in [
            ("http://gw.example", "https://"),
            ("https://user:pw@gw.example", "credentials"),
            ("https://gw.example/?k=v", "query"),
            ("gw.example", "https://"),
            ("https://", "valid URL"),
        ] {
            let e = Base::parse(url, "url").unwrap_err().to_string();
            assert!(e.starts_with("url: ") && e.contains(want), "{url}: {e}");
        }
    }
}
