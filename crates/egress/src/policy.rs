//! The forward proxy's settings, in one struct of its own: `[egress]`'s forward-proxy
//! keys and the `[limits]` the listener uses, or defaults for tests.

use std::time::Duration;

use clawveil_config::{Egress, Limits, Secret};
use ipnet::IpNet;

/// What the forward proxy admits, and its timeouts.
#[derive(Debug, Clone)]
pub struct ForwardPolicy {
    /// `egress.allow`: host patterns (`api.dingtalk.com`, `*.dingtalk.com`, IP literals).
    pub allow: Vec<String>,
    /// `egress.ports`: the ports CONNECT may reach. Default `[443]`.
    pub ports: Vec<u16>,
    /// `egress.allow_cidrs`: addresses admitted although they are in a refused range.
    pub allow_cidrs: Vec<IpNet>,
    /// `egress.token`: clients must send `Proxy-Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// `egress.plain_http`: absolute-form `http://` requests to allowed hosts, on port
    /// 80 or one of `ports`. Default false (refused).
    pub plain_http: bool,
    /// For the DNS lookup, and again for each connect attempt. Default 5s.
    pub connect_timeout: Duration,
    /// A plain-http destination must send its response head within this. Default 30s.
    pub response_timeout: Duration,
    /// A tunnel with no byte either way is closed after this. Default 10m.
    pub idle_timeout: Duration,
    /// A client must send its request head within this. Default 10s.
    pub header_timeout: Duration,
    /// On shutdown, open tunnels and requests get this long. Default 30s.
    pub drain: Duration,
}

impl ForwardPolicy {
    /// The defaults, with `allow` as the allow-list.
    pub fn new(allow: Vec<String>) -> ForwardPolicy {
        ForwardPolicy {
            allow,
            ports: vec![443],
            allow_cidrs: Vec::new(),
            token: None,
            plain_http: false,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(30),
        }
    }

    /// `egress.allow`, `ports`, `allow_cidrs`, `token` and `plain_http`, and the tunnel
    /// idle timeout, header timeout and drain time of `[limits]`; the connect and
    /// response timeouts at their defaults.
    pub fn from_config(egress: &Egress, limits: &Limits) -> ForwardPolicy {
        ForwardPolicy {
            ports: egress.ports.clone(),
            allow_cidrs: egress.allow_cidrs.clone(),
            token: egress.token.clone(),
            plain_http: egress.plain_http,
            idle_timeout: limits.tunnel_idle_timeout,
            header_timeout: limits.header_read_timeout,
            drain: limits.drain_timeout,
            ..ForwardPolicy::new(egress.allow.clone())
        }
    }
}
