//! The pooled HTTP client to the bot, the upstream base URL, and the one place that
//! decides what an upstream failure means (class, status code).

use std::time::Duration;

use clawveil_telemetry::ErrorClass;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::ProxyBody;

/// Where requests go: scheme and authority of `upstream.url`, plus an optional path prefix.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    scheme: Scheme,
    authority: Authority,
    prefix: String,
    /// The label used in logs and metrics (`host:port`).
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamUrlError {
    #[error("upstream.url {0:?} is not a valid URL")]
    Invalid(String),
    #[error(
        "upstream.url {0:?}: only http:// upstreams are supported (the bot listens on loopback)"
    )]
    Scheme(String),
}

impl UpstreamTarget {
    pub fn parse(url: &str) -> Result<Self, UpstreamUrlError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| UpstreamUrlError::Invalid(url.into()))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| UpstreamUrlError::Invalid(url.into()))?;
        if scheme != Scheme::HTTP {
            return Err(UpstreamUrlError::Scheme(url.into()));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| UpstreamUrlError::Invalid(url.into()))?;
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(UpstreamTarget {
            label: authority.to_string(),
            scheme,
            authority,
            prefix,
        })
    }

    /// The upstream URI for a client request's path and query.
    pub fn uri_for(&self, pq: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let pq = pq.map(PathAndQuery::as_str).unwrap_or("/");
        let builder = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone());
        if self.prefix.is_empty() {
            builder.path_and_query(pq).build()
        } else {
            builder
                .path_and_query(format!("{}{}", self.prefix, pq))
                .build()
        }
    }
}

pub type UpstreamClient = Client<HttpConnector, ProxyBody>;

/// A keep-alive pool to the bot (HTTP/1.1).
pub fn client(connect_timeout: Duration) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// Classifies a failed upstream exchange. Never looks at the upstream's text.
pub fn classify(err: &hyper_util::client::legacy::Error) -> ErrorClass {
    if err.is_connect() {
        return if chain_has(err, |e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        }) {
            ErrorClass::Timeout
        } else {
            ErrorClass::Connect
        };
    }
    let mut class = ErrorClass::Protocol;
    chain_has(err, |e| {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                class = ErrorClass::Reset;
                return true;
            }
            if h.is_timeout() {
                class = ErrorClass::Timeout;
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            class = match io.kind() {
                std::io::ErrorKind::TimedOut => ErrorClass::Timeout,
                _ => ErrorClass::Reset,
            };
            return true;
        }
        false
    });
    class
}

fn chain_has(
    err: &(dyn std::error::Error + 'static),
    mut pred: impl FnMut(&(dyn std::error::Error + 'static)) -> bool,
) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if pred(e) {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Whether an error chain contains our own request-body error (limit, timeout, client).
pub fn is_request_body_error(err: &(dyn std::error::Error + 'static)) -> bool {
    chain_has(err, |e| {
        e.downcast_ref::<crate::body::RequestBodyError>().is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_prefix_and_path() {
        let t = UpstreamTarget::parse("http://127.0.0.1:8080/bot/").unwrap();
        let pq: PathAndQuery = "/hello?x=1".parse().unwrap();
        assert_eq!(
            t.uri_for(Some(&pq)).unwrap(),
            "http://127.0.0.1:8080/bot/hello?x=1"
        );
        let t = UpstreamTarget::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            t.uri_for(Some(&pq)).unwrap(),
            "http://127.0.0.1:8080/hello?x=1"
        );
        assert_eq!(t.label, "127.0.0.1:8080");
    }

    #[test]
    fn refuses_non_http_upstreams() {
        assert!(UpstreamTarget::parse("https://127.0.0.1:8080").is_err());
        assert!(UpstreamTarget::parse("not a url").is_err());
    }
}
