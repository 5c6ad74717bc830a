//! In transit: the bot's model URLs must be HTTPS (or clawveil's egress on loopback),
//! and its forward proxy should be clawveil's egress listener.

use std::net::{IpAddr, SocketAddr};

use crate::check::{Check, Section, Status};
use crate::openclaw::OpenClawConfig;

/// The parts of a URL the doctor looks at. Never the user, password, path or query:
/// any of them may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Lower-case scheme (`http`, `https`).
    pub scheme: String,
    /// Host as written (IPv6 without brackets).
    pub host: String,
    pub port: Option<u16>,
}

impl Endpoint {
    /// Parses `scheme://[user@]host[:port][/...]`.
    pub fn parse(url: &str) -> Option<Endpoint> {
        let (scheme, rest) = url.trim().split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            Some("") | None => None,
            Some(p) => Some(p.parse().ok()?),
        };
        if host.is_empty() {
            return None;
        }
        Some(Endpoint {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_owned(),
            port,
        })
    }

    /// The port, or the scheme's default.
    pub fn port_or_default(&self) -> Option<u16> {
        self.port.or(match self.scheme.as_str() {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        })
    }

    /// Whether the host is this machine (`localhost`, `127.0.0.0/8`, `::1`).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(clawveil_sockets::is_loopback)
    }

    /// Whether this is clawveil's egress listener at `egress`.
    pub fn is_egress(&self, egress: SocketAddr) -> bool {
        self.is_loopback() && self.port_or_default() == Some(egress.port())
    }

    /// `host:port` for messages.
    pub fn show(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

/// `models.providers.*.baseUrl` of one configuration.
pub fn check_models(cfg: &OpenClawConfig, egress: Option<SocketAddr>) -> Vec<Check> {
    let file = cfg.path.display();
    let mut out = Vec::new();
    for p in cfg.providers() {
        let Some(url) = &p.base_url else { continue };
        let key = format!("models.providers.{}.baseUrl", p.id);
        let check = |status, msg: String| {
            Check::new(
                Section::InTransit,
                "models.base_url",
                status,
                format!("{file}: {key} {msg}"),
            )
            .path(&cfg.path)
        };
        let via_egress = |ep: &Endpoint| {
            match egress {
            Some(e) => format!(
                "send it through clawveil's egress: {key} = \"http://{e}/<target>/...\" and [[egress.target]] url = \"https://{}\"",
                ep.show()
            ),
            None => format!(
                "add clawveil's [egress] with [[egress.target]] url = \"https://{}\" and point {key} at it",
                ep.show()
            ),
        }
        };
        let Some(ep) = Endpoint::parse(url) else {
            out.push(check(Status::Warn, "is not an http(s) URL".into()));
            continue;
        };
        out.push(match ep.scheme.as_str() {
            "https" => check(Status::Pass, format!("is HTTPS ({})", ep.show())),
            "http" if egress.is_some_and(|e| ep.is_egress(e)) => {
                check(Status::Pass, format!("goes through clawveil's egress ({})", ep.show()))
            }
            "http" if ep.is_loopback() => check(
                Status::Warn,
                format!("is plain http to {} on this host, not clawveil's egress", ep.show()),
            )
            .fix(match egress {
                Some(e) => format!("unless a model server runs on this host, point {key} at clawveil's egress: \"http://{e}/<target>/...\""),
                None => "unless a model server runs on this host, send it through clawveil's [egress]".into(),
            }),
            "http" => check(
                Status::Fail,
                format!(
                    "is plain http to {}: prompts, answers and the key cross the network unencrypted",
                    ep.show()
                ),
            )
            .fix(format!(
                "use https:// even for an internal endpoint, or {}",
                via_egress(&ep)
            )),
            other => check(Status::Warn, format!("has the scheme {other}://, not https")),
        });
    }
    out
}

/// `proxy.proxyUrl` against clawveil's egress listener.
pub fn check_proxy(cfg: &OpenClawConfig, egress: Option<SocketAddr>) -> Check {
    let file = cfg.path.display();
    let c = |status, msg: String| {
        Check::new(
            Section::InTransit,
            "proxy.proxy_url",
            status,
            format!("{file}: {msg}"),
        )
        .path(&cfg.path)
    };
    let Some(egress) = egress else {
        return c(
            Status::Skipped,
            "clawveil has no [egress] listener to compare proxy.proxyUrl with".into(),
        );
    };
    let fix = format!("set proxy.proxyUrl = \"http://{egress}\" (and proxy.enabled = true)");
    match cfg.proxy_url().map(|u| (u, Endpoint::parse(u))) {
        None => c(
            Status::Warn,
            "proxy.proxyUrl is not set: the bot reaches the network without clawveil's egress"
                .into(),
        )
        .fix(fix),
        Some(_) if !cfg.proxy_enabled() => c(
            Status::Warn,
            "proxy.enabled is false: the bot reaches the network without clawveil's egress".into(),
        )
        .fix(fix),
        Some((_, Some(ep))) if ep.is_egress(egress) => c(
            Status::Pass,
            format!("proxy.proxyUrl is clawveil's egress ({})", ep.show()),
        ),
        Some((_, Some(ep))) => c(
            Status::Warn,
            format!(
                "proxy.proxyUrl points at {}, not clawveil's egress ({egress})",
                ep.show()
            ),
        )
        .fix(fix),
        Some((_, None)) => c(Status::Warn, "proxy.proxyUrl is not a URL".into()).fix(fix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_drop_credentials_and_paths() {
        let e = Endpoint::parse("http://user:pw@10.0.0.5:8000/v1?key=abc").unwrap();
        assert_eq!(e.show(), "10.0.0.5:8000");
        assert_eq!(e.scheme, "http");
        assert!(!e.is_loopback());
        let e = Endpoint::parse("HTTP://[::1]:8089/models").unwrap();
        assert_eq!(
            (e.scheme.as_str(), e.show().as_str()),
            ("http", "[::1]:8089")
        );
        assert!(e.is_egress("127.0.0.1:8089".parse().unwrap()));
        let e = Endpoint::parse("https://api.example.com").unwrap();
        assert_eq!(e.port_or_default(), Some(443));
        assert!(Endpoint::parse("not a url").is_none());
        assert!(Endpoint::parse("http://:80").is_none());
    }
}
