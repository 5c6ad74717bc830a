//! Routes and what each one enforces: who may call it (`allow_cidrs`, with
//! `X-Forwarded-For` believed only from `trusted_proxies`), where a WebSocket upgrade
//! may come from (`allowed_origins`), whether TRACE is forwarded, and how a callback
//! proves it comes from DingTalk (the route's [`Verifier`]).

use std::net::IpAddr;

use clawveil_config::{Config, Route};
use clawveil_telemetry::Refusal;
use http::HeaderMap;
use ipnet::IpNet;

use crate::verify::Verifier;

/// A configured route: requests whose path starts with `prefix` carry `name` in logs
/// and metrics, and pass its checks before anything is forwarded.
pub struct RouteEntry {
    pub name: String,
    pub prefix: String,
    allow_cidrs: Vec<IpNet>,
    allowed_origins: Vec<String>,
    pub allow_trace: bool,
    pub verifier: Option<Verifier>,
}

impl RouteEntry {
    pub fn from_config(route: &Route) -> Self {
        RouteEntry {
            name: route.name.clone(),
            prefix: route.path_prefix.clone(),
            allow_cidrs: route.allow_cidrs.clone(),
            allowed_origins: route.allowed_origins.clone(),
            allow_trace: route.allow_trace,
            verifier: Verifier::from_route(route),
        }
    }

    /// `allow_cidrs`: an empty list admits everyone.
    pub fn admits(&self, client: IpAddr) -> Result<(), Refusal> {
        if self.allow_cidrs.is_empty() || self.allow_cidrs.iter().any(|n| n.contains(&client)) {
            Ok(())
        } else {
            Err(Refusal::ClientNotAllowed)
        }
    }

    /// `allowed_origins`, for WebSocket upgrades: a browser always sends `Origin`, so a
    /// listed origin or no `Origin` at all (a non-browser client) passes.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.allowed_origins.is_empty() {
            return Ok(());
        }
        let mut origins = headers.get_all(http::header::ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (None, _) => Ok(()),
            (Some(o), None)
                if o.to_str().is_ok_and(|o| {
                    let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
                    self.allowed_origins.contains(&o)
                }) =>
            {
                Ok(())
            }
            _ => Err(Refusal::OriginNotAllowed),
        }
    }
}

/// The routes of a configuration, longest prefix first.
pub struct Routes {
    entries: Vec<RouteEntry>,
    unrouted: RouteEntry,
}

impl Routes {
    pub fn from_config(cfg: &Config) -> Self {
        // The configuration keeps routes longest prefix first.
        Routes {
            entries: cfg.routes.iter().map(RouteEntry::from_config).collect(),
            unrouted: RouteEntry {
                name: "unrouted".into(),
                prefix: String::new(),
                allow_cidrs: Vec::new(),
                allowed_origins: Vec::new(),
                allow_trace: false,
                verifier: None,
            },
        }
    }

    /// The route for `path`; paths no route covers are `unrouted` (forwarded, unchecked,
    /// as before routes existed; a config with a `/` route has none).
    pub fn find(&self, path: &str) -> &RouteEntry {
        self.entries
            .iter()
            .find(|r| path.starts_with(&r.prefix))
            .unwrap_or(&self.unrouted)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RouteEntry> {
        self.entries.iter()
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        // An unparsable chain proves nothing: decide by the peer.
        .unwrap_or_default();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "203.0.113.7, 10.1.1.1")]);
        assert_eq!(
            client_ip("10.0.0.2".parse().unwrap(), &h, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("198.51.100.1".parse().unwrap(), &h, &trusted),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        // A spoofed left-most entry does not win over the last untrusted hop.
        let h = headers(&[("x-forwarded-for", "127.0.0.1, 203.0.113.7")]);
        assert_eq!(
            client_ip("10.0.0.2".parse().unwrap(), &h, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("x-forwarded-for", "garbage, 203.0.113.7")]);
        assert_eq!(
            client_ip("10.0.0.2".parse().unwrap(), &h, &trusted),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }

    fn entry(cidrs: &[&str], origins: &[&str]) -> RouteEntry {
        RouteEntry {
            name: "r".into(),
            prefix: "/".into(),
            allow_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_trace: false,
            verifier: None,
        }
    }

    #[test]
    fn allow_cidrs_and_origins() {
        let r = entry(&["203.119.0.0/16"], &["https://bot.example.com"]);
        assert!(r.admits("203.119.4.5".parse().unwrap()).is_ok());
        assert_eq!(
            r.admits("127.0.0.1".parse().unwrap()),
            Err(Refusal::ClientNotAllowed)
        );
        assert!(r.origin_allowed(&headers(&[])).is_ok());
        assert!(r
            .origin_allowed(&headers(&[("origin", "https://BOT.example.com")]))
            .is_ok());
        assert_eq!(
            r.origin_allowed(&headers(&[("origin", "https://evil.example")])),
            Err(Refusal::OriginNotAllowed)
        );
        assert_eq!(
            r.origin_allowed(&headers(&[
                ("origin", "https://bot.example.com"),
                ("origin", "https://evil.example")
            ])),
            Err(Refusal::OriginNotAllowed)
        );
        assert!(entry(&[], &[]).admits("8.8.8.8".parse().unwrap()).is_ok());
    }
}
