//! What a connection was refused below the request pipeline, counted like every other
//! refusal: requests hyper's HTTP/1.1 parser answered itself (400, or 431 for a head
//! over `limits.max_header_bytes`), HTTP/2 protocol errors (a stream reset, or the
//! whole connection), and connections cut for idleness.
//!
//! A refused request never reached the pipeline, so it has no route, no method and no
//! trace id of its own: it is counted as `route="unrouted"`, `method="OTHER"` in
//! `clawveil_requests_total` and written as an access event with `method: "-"` and a
//! fresh trace id. (No duration is observed: there was no exchange to time.) An idle
//! cut is written the same way, with status 0 and `reason: "client_idle"`, and is not
//! a request.

use std::error::Error;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use clawveil_telemetry::{status_class, AccessEvent, ErrorClass, FailReason, Metrics};

use crate::conn_io::OnReset;
use crate::idle::{Cut, Proto};

/// How a client address is logged (hashed when `log.hash_key` is set).
pub type ClientLabel = Arc<dyn Fn(IpAddr) -> String + Send + Sync>;

/// The connection, for counting what it was refused.
pub struct ConnLog {
    pub metrics: Arc<Metrics>,
    pub listener: &'static str,
    pub peer: SocketAddr,
    pub tls_version: &'static str,
    pub tls_group: &'static str,
    pub alpn: &'static str,
    /// `None`: a listener without access events and request counts (metrics).
    pub client: Option<ClientLabel>,
}

/// A refusal hyper or h2 made on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub http_version: &'static str,
    pub reason: FailReason,
}

/// Finds the refusal in a connection's error, if it is one (an I/O error, a client
/// that went away mid-request, or a graceful close are not).
pub fn classify(e: &(dyn Error + 'static)) -> Option<Refused> {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse_too_large() {
                return Some(Refused {
                    status: 431,
                    http_version: "http/1.1",
                    reason: FailReason::HeaderTooLarge,
                });
            }
            if h.is_parse() {
                return Some(Refused {
                    status: 400,
                    http_version: "http/1.1",
                    reason: FailReason::MalformedRequest,
                });
            }
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            // A GOAWAY we sent for the client's protocol error (stream-level errors do
            // not end the connection: see `conn_io`).
            let ours = h2.is_go_away() && h2.is_library();
            if ours && h2.reason().is_some_and(|r| r != h2::Reason::NO_ERROR) {
                return Some(Refused {
                    status: 400,
                    http_version: "h2",
                    reason: FailReason::MalformedRequest,
                });
            }
        }
        cur = e.source();
    }
    None
}

impl ConnLog {
    /// The connection ended with an error.
    pub fn ended(&self, e: &(dyn Error + 'static)) {
        match classify(e) {
            Some(r) => self.refused(r),
            None => tracing::debug!(
                peer = %self.peer,
                listener = self.listener,
                error = %e,
                "connection ended with an error"
            ),
        }
    }

    /// The idle watchdog cut the connection: counted, and one access event (status 0:
    /// the socket was closed with no answer; see [`Self::event`]).
    pub fn cut(&self, why: Cut, proto: Proto) {
        self.metrics.fail_closed(FailReason::ClientIdle);
        let http_version = match proto {
            Proto::Http1 => "http/1.1",
            Proto::Http2 => "h2",
            Proto::Unknown => "",
        };
        let trace_id = self.event(Refused {
            status: 0,
            http_version,
            reason: FailReason::ClientIdle,
        });
        tracing::debug!(
            trace_id,
            peer = %self.peer,
            listener = self.listener,
            cut = why.as_str(),
            "idle connection closed"
        );
    }

    /// Counts and logs one refused request.
    pub fn refused(&self, r: Refused) {
        self.metrics.fail_closed(r.reason);
        if self.client.is_some() {
            self.metrics
                .requests
                .with_label_values(&[self.listener, "unrouted", "OTHER", status_class(r.status)])
                .inc();
        }
        let trace_id = self.event(r);
        tracing::debug!(trace_id, peer = %self.peer, listener = self.listener, status = r.status, reason = r.reason.as_str(), "request refused by the HTTP parser");
    }

    /// The access event of something refused below the pipeline, with a fresh trace id
    /// (returned, for the debug line); none on a listener without access events.
    ///
    /// An idle cut has status 0, not 408: nothing was answered, the socket was just
    /// closed (a 408 in the log always means a 408 went out: a body slower than
    /// `request_timeout`). Most cuts are not about a request either: no request came
    /// at all, or none since the last answer, or the client stopped reading an answer
    /// that has its own event. Nor is a cut counted in `clawveil_requests_total`.
    fn event(&self, r: Refused) -> Option<String> {
        let client = self.client.as_ref()?;
        let trace = crate::trace::TraceContext::from_headers(&http::HeaderMap::new());
        let error = match r.reason {
            FailReason::ClientIdle => ErrorClass::ClientTimeout,
            _ => ErrorClass::Client,
        };
        AccessEvent {
            trace_id: &trace.trace_id,
            listener: self.listener,
            route: "unrouted",
            method: "-",
            status: r.status,
            error: Some(error),
            tls_version: self.tls_version,
            tls_group: self.tls_group,
            alpn: self.alpn,
            http_version: r.http_version,
            client: &client(self.peer.ip()),
            reason: Some(r.reason.as_str()),
            ..AccessEvent::default()
        }
        .emit();
        Some(trace.trace_id)
    }

    /// What the connection's IO calls for each HTTP/2 stream h2 reset as malformed.
    pub fn on_reset(self: &Arc<Self>) -> OnReset {
        let log = self.clone();
        Arc::new(move || {
            log.refused(Refused {
                status: 400,
                http_version: "h2",
                reason: FailReason::MalformedRequest,
            })
        })
    }
}
