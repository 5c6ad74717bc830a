//! The egress listener's one service: which requests are for a model target and which
//! for the forward proxy.
//!
//! - `CONNECT host:port` → the forward proxy.
//! - Origin-form `/<name>/...` → target `name` (a name no target has is refused, 403).
//! - Absolute-form addressed to the listener itself (`http://127.0.0.1:8089/<name>/...`,
//!   or `localhost` with the listener's port) → the target, as origin-form. This is how
//!   a client sends everything once it uses the listener as its HTTP proxy (OpenClaw's
//!   `proxy.proxyUrl`): the model `baseUrl` on the same listener arrives this way, and is
//!   not a plain-http egress to loopback.
//! - Any other absolute-form → the forward proxy (plain http, when allowed).

use std::net::SocketAddr;
use std::sync::Arc;

use http::uri::Authority;
use http::{Method, Request, Response};
use hyper::body::Incoming;

use crate::allow::Host;
use crate::connect::{ForwardProxy, ProxyBody};
use crate::targets::{split_target, Targets};

/// The forward proxy and the targets behind one listener address.
#[derive(Debug)]
pub struct Egress {
    pub(crate) forward: Arc<ForwardProxy>,
    targets: Arc<Targets>,
    /// The listener's own address, to recognize absolute-form requests to itself.
    own: SocketAddr,
}

impl Egress {
    pub fn new(forward: Arc<ForwardProxy>, targets: Arc<Targets>, own: SocketAddr) -> Arc<Egress> {
        Arc::new(Egress {
            forward,
            targets,
            own,
        })
    }

    pub fn targets(&self) -> &Arc<Targets> {
        &self.targets
    }

    pub fn forward(&self) -> &Arc<ForwardProxy> {
        &self.forward
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<ProxyBody> {
        let for_target = req.method() != Method::CONNECT
            && match (req.uri().scheme_str(), req.uri().authority()) {
                (None, _) => true,
                (Some("http"), Some(authority)) => is_own(authority, self.own),
                _ => false,
            };
        if !for_target {
            return self.forward.handle(req).await;
        }
        let pq = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let found = split_target(pq)
            .and_then(|(name, rest)| self.targets.get(name).map(|t| (t.clone(), rest.to_owned())));
        match found {
            Some((target, rest)) => target.serve(req, &rest).await,
            None => self.forward.no_such_target(req.method()),
        }
    }
}

/// Whether an absolute-form authority names the listener itself: its IP address (or
/// `localhost`, the listener being on loopback) and its port (80 when none is given).
fn is_own(authority: &Authority, own: SocketAddr) -> bool {
    if authority.as_str().contains('@') || authority.port_u16().unwrap_or(80) != own.port() {
        return false;
    }
    match Host::parse(authority.host()) {
        Some(Host::Ip(ip)) => ip == own.ip(),
        Some(Host::Name(name)) => name == "localhost" && own.ip().is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listeners_own_address_is_itself() {
        let own: SocketAddr = "127.0.0.1:8089".parse().unwrap();
        let is = |a: &str| is_own(&a.parse().unwrap(), own);
        assert!(is("127.0.0.1:8089"));
        assert!(is("localhost:8089"));
        assert!(is("LOCALHOST.:8089"));
        assert!(!is("127.0.0.1:8090"));
        assert!(!is("127.0.0.1"));
        assert!(!is("127.0.0.2:8089"));
        assert!(!is("[::1]:8089"));
        assert!(!is("user@127.0.0.1:8089"));
        assert!(!is("api.dingtalk.com:8089"));
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert!(is_own(&"[::1]".parse().unwrap(), v6));
        assert!(is_own(&"localhost".parse().unwrap(), v6));
    }
}
