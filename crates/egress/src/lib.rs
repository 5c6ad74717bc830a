//! The bot's way out: the egress listener on loopback, with two jobs behind one address.
//!
//! **Model targets** (`[[egress.target]]`): a request for `/<name>/rest` goes to
//! `<url>/rest` over HTTPS with full certificate verification, the target's headers
//! injected (the bot never holds the model key), an optional client token checked and
//! swapped, the body's `model` read for a bounded label, responses streamed back
//! unbuffered, and one replay against the fallback on the configured causes. See
//! [`Targets`] and the [`targets`] module.
//!
//! **The forward proxy** (what OpenClaw's `proxy.proxyUrl` points at): `CONNECT
//! host:port` to allow-listed hosts, absolute-form `http://` only when `plain_http`
//! allows it, and every destination address checked after DNS against the refused
//! ranges of [`addr`].
//!
//! [`Egress::handle`] decides which one a request is for (absolute-form requests
//! addressed to the listener itself are target requests); [`start`] is what the binary
//! calls.
//!
//! The pieces, each owning one decision:
//!
//! - [`addr`]: which IP addresses are refused (loopback, private, link-local, cloud
//!   metadata, documentation, IPv4 inside IPv6, …) and the `allow_cidrs` exceptions;
//! - [`allow`]: which names and ports may be asked for at all;
//! - [`ForwardProxy::handle`]: one forward-proxy request, read top to bottom (token,
//!   target, allow-list, one lookup, address checks, connect, tunnel), answering
//!   through [`clawveil_telemetry::Refusal`];
//! - [`tunnel`]: the byte copy with its idle timeout and drain;
//! - [`Egress::serve`]: the loopback listener and the drain on shutdown.
//!
//! Every request ends in one access event on the `access` target. Forward-proxy
//! events carry destination host and port, resolved address, decision, status, reason,
//! bytes each way and duration; target events carry target, model label, status,
//! upstream (primary or fallback), error class, latency, time to first byte and bytes.
//! No body, credential header, injected value, path or query is ever logged.
//! Forward-proxy decisions are counted in `clawveil_egress_tunnels_total{decision}`;
//! targets in `clawveil_requests_total{listener="egress",route=<target>}`,
//! `clawveil_model_request_duration_seconds`, `clawveil_model_first_byte_seconds`,
//! `clawveil_fallback_total`, `clawveil_upstream_errors_total` and
//! `clawveil_upstream_timeouts_total`; refusals in `clawveil_fail_closed_total{reason}`.

pub mod addr;
pub mod allow;
mod connect;
mod event;
mod plain;
mod policy;
mod serve;
mod service;
mod start;
pub mod targets;
pub mod tunnel;

pub use addr::{classify, AddrPolicy, Blocked, Embedding, Range};
pub use allow::{port_allowed, Host, HostAllow, PatternError};
pub use connect::{ForwardProxy, ProxyBody};
pub use event::{Detail, EgressMetrics, UPSTREAM_LABEL};
pub use policy::ForwardPolicy;
pub use serve::bind_loopback;
pub use service::Egress;
pub use start::{check, start, EgressError, EgressSettings, Running};
pub use targets::{TargetError, TargetErrorKind, Targets, REPLAY_BUFFER};
