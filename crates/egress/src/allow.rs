//! `egress.allow` and `egress.ports`: which names and ports the forward proxy may
//! reach at all, before anything is resolved.
//!
//! A pattern is an exact name (`api.dingtalk.com`), a suffix (`*.dingtalk.com`: one or
//! more labels before `.dingtalk.com`, never `dingtalk.com` itself), or an IP literal.
//! Names compare case-insensitively and without a trailing dot. An IP-literal
//! destination matches only an IP-literal entry equal to it, never a name pattern
//! (`*.0.0.1` does not admit `127.0.0.1`).

use std::net::{IpAddr, Ipv6Addr};

/// A destination host as the client named it, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name: lowercase, no trailing dot, labels of `[a-z0-9_-]`.
    Name(String),
    /// An IP literal (IPv6 given in brackets in a request target).
    Ip(IpAddr),
}

impl Host {
    /// Parses the host part of a request target (`example.com`, `1.2.3.4`, `[::1]`).
    /// `None` for anything that is neither a valid name nor an IP literal.
    pub fn parse(s: &str) -> Option<Host> {
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner.parse::<Ipv6Addr>().ok().map(|v6| Host::Ip(v6.into()));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        normalize_name(s).map(Host::Name)
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Lowercases `s` and drops one trailing dot; `None` unless it is a valid DNS name.
fn normalize_name(s: &str) -> Option<String> {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return None;
    }
    let ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    // A top-level label is never numeric: `127.1`, `2130706433` or `1.0x7f` would be
    // read as IPv4 addresses by the resolver (inet_aton), so they are not names.
    let last = s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    (ok && !numeric).then(|| s.to_ascii_lowercase())
}

/// An `egress.allow` entry that is not a name, a `*.suffix` or an IP literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "egress.allow entry {pattern:?}: expected a host name, \"*.\" and a domain, or an IP address"
)]
pub struct PatternError {
    pub pattern: String,
}

/// The compiled `egress.allow` list.
#[derive(Debug, Clone, Default)]
pub struct HostAllow {
    exact: Vec<String>,
    /// Each with its leading dot: `.dingtalk.com`.
    suffixes: Vec<String>,
    ips: Vec<IpAddr>,
}

impl HostAllow {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<HostAllow, PatternError> {
        let mut allow = HostAllow::default();
        for p in patterns {
            let p = p.as_ref();
            let bad = || PatternError {
                pattern: p.to_owned(),
            };
            if let Some(rest) = p.strip_prefix("*.") {
                let domain = normalize_name(rest).ok_or_else(bad)?;
                allow.suffixes.push(format!(".{domain}"));
                continue;
            }
            match Host::parse(p).ok_or_else(bad)? {
                Host::Name(name) => allow.exact.push(name),
                Host::Ip(ip) => allow.ips.push(ip),
            }
        }
        Ok(allow)
    }

    /// Whether the list admits `host` (the port is checked apart: [`port_allowed`]).
    pub fn allows(&self, host: &Host) -> bool {
        match host {
            Host::Ip(ip) => self.ips.contains(ip),
            Host::Name(name) => {
                self.exact.iter().any(|e| e == name)
                    || self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
            }
        }
    }
}

/// Whether `egress.ports` admits `port`.
pub fn port_allowed(ports: &[u16], port: u16) -> bool {
    ports.contains(&port)
}

#[cfg(test)]
mod tests;
