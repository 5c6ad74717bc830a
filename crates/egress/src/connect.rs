//! One request on the egress listener, read top to bottom:
//!
//! token (407) → request target (400) → allow-list and port (403) → resolve once →
//! every resolved address checked (403) → connect to a checked address (502/504) →
//! `200` and the tunnel → one access event when it ends.
//!
//! A name is refused when **any** of its addresses is in a refused range, not only
//! when all are: a mixed answer is how rebinding and split-horizon tricks look, the
//! decision does not depend on which address a connect happens to try first, and the
//! log can name the address that caused it. Connects then go only to the addresses
//! that were checked, in the resolver's order; there is no second lookup.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use clawveil_telemetry::{method_label, ErrorClass, Refusal};
use http::header::{CONNECTION, CONTENT_TYPE, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::addr::AddrPolicy;
use crate::allow::{port_allowed, Host, HostAllow, PatternError};
use crate::event::{Detail, EgressMetrics, Event};
use crate::policy::ForwardPolicy;
use crate::tunnel::{self, Tracker};

/// The body of every answer on the egress listener.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A refusal on its way out: what to answer, and why (for the log).
pub(crate) type Denial = (Refusal, Detail);

/// The forward proxy: policy, counters, and what it still has running.
#[derive(Debug)]
pub struct ForwardProxy {
    pub(crate) policy: ForwardPolicy,
    hosts: HostAllow,
    addrs: AddrPolicy,
    pub(crate) metrics: EgressMetrics,
    pub(crate) tracker: Tracker,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl ForwardProxy {
    /// `shutdown` turning true (or its sender dropping) starts the drain.
    pub fn new(
        policy: ForwardPolicy,
        metrics: EgressMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<ForwardProxy>, PatternError> {
        Ok(Arc::new(ForwardProxy {
            hosts: HostAllow::new(&policy.allow)?,
            addrs: AddrPolicy::new(&policy.allow_cidrs),
            policy,
            metrics,
            tracker: Tracker::default(),
            shutdown,
        }))
    }

    /// Connections and tunnels still open.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Answers one request. A CONNECT that is admitted gets `200` here, and its tunnel
    /// runs on a task of its own once hyper hands over the connection.
    pub async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Response<ProxyBody> {
        let mut ev = Event::new(method_label(req.method().as_str()));
        if let Err(detail) = self.authorize(req.headers()) {
            return self.refuse(&ev, Refusal::ProxyUnauthorized, detail);
        }
        let result = if req.method() == Method::CONNECT {
            self.connect(req, &mut ev).await
        } else if req.uri().scheme().is_some() {
            crate::plain::forward(self, req, &mut ev).await
        } else {
            Err((Refusal::EgressDenied, Detail::NotProxyRequest))
        };
        result.unwrap_or_else(|(refusal, detail)| self.refuse(&ev, refusal, detail))
    }

    /// A request meant for a target that is not configured (origin-form, or
    /// absolute-form to the listener itself): refused like any request the forward
    /// proxy has nothing to forward to.
    pub(crate) fn no_such_target(&self, method: &Method) -> Response<ProxyBody> {
        let ev = Event::new(method_label(method.as_str()));
        self.refuse(&ev, Refusal::EgressDenied, Detail::NotProxyRequest)
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Detail> {
        let Some(token) = &self.policy.token else {
            return Ok(());
        };
        let mut values = headers.get_all(PROXY_AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(if headers.contains_key(PROXY_AUTHORIZATION) {
                Detail::TokenWrong
            } else {
                Detail::TokenMissing
            });
        };
        let v = value.as_bytes();
        let bearer = v.len() > 7 && v[..6].eq_ignore_ascii_case(b"bearer") && v[6] == b' ';
        if bearer && token.ct_eq(v[7..].trim_ascii_start()) {
            Ok(())
        } else {
            Err(Detail::TokenWrong)
        }
    }

    async fn connect(
        self: &Arc<Self>,
        req: Request<Incoming>,
        ev: &mut Event,
    ) -> Result<Response<ProxyBody>, Denial> {
        let authority = req.uri().authority().ok_or(BAD_TARGET)?;
        if authority.as_str().contains('@') {
            return Err(BAD_TARGET);
        }
        let host = Host::parse(authority.host()).ok_or(BAD_TARGET)?;
        let port = authority.port_u16().ok_or(BAD_TARGET)?;
        ev.host = Some(host.to_string());
        ev.port = Some(port);
        if !port_allowed(&self.policy.ports, port) {
            return Err((Refusal::EgressDenied, Detail::PortNotAllowed));
        }
        let stream = self.open(&host, port, ev).await?;
        self.metrics.allowed();
        let proxy = self.clone();
        let ev = ev.clone();
        let guard = self.tracker.enter();
        tokio::spawn(async move {
            let end = match hyper::upgrade::on(req).await {
                Ok(upgraded) => Some(
                    tunnel::copy(
                        TokioIo::new(upgraded),
                        stream,
                        proxy.policy.idle_timeout,
                        proxy.policy.drain,
                        proxy.shutdown.clone(),
                    )
                    .await,
                ),
                Err(_) => None,
            };
            ev.tunnel_ended(end);
            drop(guard);
        });
        Ok(Response::new(
            Empty::new().map_err(|never| match never {}).boxed(),
        ))
    }

    /// The allow-list, then one lookup, every address checked, and a connect to a
    /// checked address.
    pub(crate) async fn open(
        &self,
        host: &Host,
        port: u16,
        ev: &mut Event,
    ) -> Result<TcpStream, Denial> {
        if !self.hosts.allows(host) {
            return Err((Refusal::EgressDenied, Detail::HostNotAllowed));
        }
        let addrs = self.resolve(host, port).await?;
        for addr in &addrs {
            if let Err(blocked) = self.addrs.check(addr.ip()) {
                ev.resolved = Some(*addr);
                ev.blocked = Some(blocked);
                return Err((Refusal::EgressDenied, Detail::AddressBlocked));
            }
        }
        let mut failure = (
            Refusal::UpstreamFailed(ErrorClass::Connect),
            Detail::ConnectFailed,
        );
        for addr in addrs {
            ev.resolved = Some(addr);
            let attempt =
                tokio::time::timeout(self.policy.connect_timeout, TcpStream::connect(addr));
            match attempt.await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(_)) => {}
                Err(_) => {
                    failure = (
                        Refusal::UpstreamFailed(ErrorClass::Timeout),
                        Detail::ConnectTimeout,
                    )
                }
            }
        }
        Err(failure)
    }

    /// The addresses of `host`, looked up once (an IP literal is its own address).
    async fn resolve(&self, host: &Host, port: u16) -> Result<Vec<SocketAddr>, Denial> {
        let name = match host {
            Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
            Host::Name(name) => name.as_str(),
        };
        let lookup = tokio::net::lookup_host((name, port));
        let found = match tokio::time::timeout(self.policy.connect_timeout, lookup).await {
            Err(_) => {
                return Err((
                    Refusal::UpstreamFailed(ErrorClass::Timeout),
                    Detail::ResolveTimeout,
                ))
            }
            Ok(Err(_)) => return Err(RESOLVE_FAILED),
            Ok(Ok(found)) => found,
        };
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for a in found {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        if addrs.is_empty() {
            return Err(RESOLVE_FAILED);
        }
        Ok(addrs)
    }

    /// Counts, logs and answers a refusal.
    fn refuse(&self, ev: &Event, refusal: Refusal, detail: Detail) -> Response<ProxyBody> {
        self.metrics.answered(refusal);
        ev.refused(refusal, detail);
        answer(refusal)
    }
}

const BAD_TARGET: Denial = (Refusal::Malformed, Detail::BadTarget);
const RESOLVE_FAILED: Denial = (
    Refusal::UpstreamFailed(ErrorClass::Connect),
    Detail::ResolveFailed,
);

/// The response for a local answer: the refusal's status and one-line body.
pub(crate) fn answer(refusal: Refusal) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from_static(refusal.body().as_bytes()))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = refusal.status();
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if refusal.status() == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
        h.insert(
            PROXY_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"clawveil\""),
        );
    }
    if refusal.closes() {
        h.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
