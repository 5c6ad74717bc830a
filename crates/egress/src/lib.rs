//! The bot's way out. This crate owns the egress listener's forward proxy (the
//! address OpenClaw's `proxy.proxyUrl` points at): `CONNECT host:port` to allow-listed
//! hosts, absolute-form `http://` only when `plain_http` allows it, and every
//! destination address checked after DNS against the refused ranges of [`addr`].
//!
//! The pieces, each owning one decision:
//!
//! - [`addr`]: which IP addresses are refused (loopback, private, link-local, cloud
//!   metadata, documentation, IPv4 inside IPv6, …) and the `allow_cidrs` exceptions;
//! - [`allow`]: which names and ports may be asked for at all;
//! - [`ForwardProxy::handle`]: one request, read top to bottom (token, target,
//!   allow-list, one lookup, address checks, connect, tunnel), answering through
//!   [`clawveil_telemetry::Refusal`];
//! - [`tunnel`]: the byte copy with its idle timeout and drain;
//! - [`ForwardProxy::serve`]: the loopback listener and the drain on shutdown.
//!
//! Every request ends in one access event on the `access` target (destination host
//! and port, resolved address, decision, status, reason, bytes each way, duration);
//! no body, header, path or query is logged. Decisions are counted in
//! `clawveil_egress_tunnels_total{decision}`, refusals in
//! `clawveil_fail_closed_total{reason}`. Model targets are not here yet.

pub mod addr;
pub mod allow;
mod connect;
mod event;
mod plain;
mod policy;
mod serve;
pub mod tunnel;

pub use addr::{classify, AddrPolicy, Blocked, Embedding, Range};
pub use allow::{port_allowed, Host, HostAllow, PatternError};
pub use connect::{ForwardProxy, ProxyBody};
pub use event::{Detail, EgressMetrics, UPSTREAM_LABEL};
pub use policy::ForwardPolicy;
pub use serve::bind_loopback;
