//! The forward proxy's settings, in one struct of its own: the `[egress]` keys the
//! issue adds (`ports`, `allow_cidrs`, `token`, `plain_http`) are not in the config
//! crate's model yet, so the binary fills them in when it wires the listener.

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

    /// From what the config crate models today: `egress.allow`, and the tunnel idle
    /// timeout, header timeout and drain time of `[limits]`; the rest at defaults.
    pub fn from_config(egress: &Egress, limits: &Limits) -> ForwardPolicy {
        ForwardPolicy {
            idle_timeout: limits.tunnel_idle_timeout,
            header_timeout: limits.header_read_timeout,
            drain: limits.drain_timeout,
            ..ForwardPolicy::new(egress.allow.clone())
        }
    }
}
