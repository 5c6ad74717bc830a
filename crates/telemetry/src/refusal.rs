//! Every answer clawveil makes itself, in one place: the status, the one-line body, the
//! error class in the access event, and the `clawveil_fail_closed_total` reason. The
//! inbound pipeline and the egress listener both answer through [`Refusal`], so a
//! refusal can never be sent without being counted the same way everywhere.

use http::StatusCode;

use crate::{ErrorClass, FailReason};

/// A local answer: nothing of it comes from an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A declared or streamed body over `limits.max_body` (413).
    BodyTooLarge,
    /// A request head over `limits.max_header_bytes` (431).
    HeaderTooLarge,
    /// The body did not arrive within `limits.request_timeout` (408).
    RequestTimeout,
    /// The client broke its own body mid-stream (400; counted as a client error only).
    BrokenBody,
    /// Broken HTTP: a bad or missing `Host`, a target we cannot forward (400).
    Malformed,
    /// A DingTalk callback without its signature headers, or whose signature matches
    /// no configured secret (401).
    SignatureInvalid,
    /// A DingTalk callback whose timestamp is outside `max_skew` (401).
    TimestampSkew,
    /// A DingTalk delivery already answered 2xx: acknowledged (200), not forwarded again.
    Replay,
    /// A captured (timestamp, sign) pair reused with a different body (401).
    ReplayTampered,
    /// The client is outside the route's `allow_cidrs` (403).
    ClientNotAllowed,
    /// A WebSocket upgrade from an origin outside `allowed_origins` (403).
    OriginNotAllowed,
    /// CONNECT or TRACE on the inbound listener (405).
    MethodNotAllowed,
    /// `OPTIONS *`: answered here, never forwarded (200 with `Allow`).
    ServerOptions,
    /// A `Host` this listener does not serve, or one that differs from the SNI (421).
    Misdirected,
    /// The upstream could not be reached or broke the exchange (502).
    UpstreamFailed(ErrorClass),
    /// The upstream did not answer within its timeout (504).
    UpstreamTimeout,
    /// The egress listener refused a destination (403).
    EgressDenied,
    /// The egress listener wants `Proxy-Authorization` (407).
    ProxyUnauthorized,
    /// A model target's client token was missing or wrong (401).
    ClientTokenInvalid,
}

/// The methods the inbound listener forwards, for `Allow` headers.
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BrokenBody | Self::Malformed => StatusCode::BAD_REQUEST,
            Self::SignatureInvalid
            | Self::TimestampSkew
            | Self::ReplayTampered
            | Self::ClientTokenInvalid => StatusCode::UNAUTHORIZED,
            Self::Replay | Self::ServerOptions => StatusCode::OK,
            Self::ClientNotAllowed | Self::OriginNotAllowed | Self::EgressDenied => {
                StatusCode::FORBIDDEN
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Self::UpstreamFailed(ErrorClass::Timeout) | Self::UpstreamTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::UpstreamFailed(_) => StatusCode::BAD_GATEWAY,
            Self::ProxyUnauthorized => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
        }
    }

    /// One short line; never anything the client or an upstream sent.
    pub fn body(self) -> &'static str {
        match self {
            Self::BodyTooLarge => "request body too large\n",
            Self::HeaderTooLarge => "request header fields too large\n",
            Self::RequestTimeout => "request body too slow\n",
            Self::BrokenBody | Self::Malformed => "bad request\n",
            Self::SignatureInvalid => "invalid signature\n",
            Self::TimestampSkew => "timestamp outside the accepted window\n",
            Self::Replay => "already delivered\n",
            Self::ReplayTampered => "signature already used for another body\n",
            Self::ClientNotAllowed => "client not allowed\n",
            Self::OriginNotAllowed => "origin not allowed\n",
            Self::MethodNotAllowed => "method not allowed\n",
            Self::ServerOptions => "",
            Self::Misdirected => "misdirected request\n",
            Self::UpstreamFailed(ErrorClass::Timeout) | Self::UpstreamTimeout => {
                "upstream timed out\n"
            }
            Self::UpstreamFailed(_) => "upstream unavailable\n",
            Self::EgressDenied => "destination not allowed\n",
            Self::ProxyUnauthorized => "proxy authentication required\n",
            Self::ClientTokenInvalid => "invalid client token\n",
        }
    }

    /// The error class of the access event (`None`: the answer is not an error).
    pub fn class(self) -> Option<ErrorClass> {
        Some(match self {
            Self::ServerOptions => return None,
            Self::BodyTooLarge => ErrorClass::BodyTooLarge,
            Self::RequestTimeout => ErrorClass::ClientTimeout,
            Self::BrokenBody | Self::Malformed | Self::HeaderTooLarge => ErrorClass::Client,
            Self::UpstreamFailed(class) => class,
            Self::UpstreamTimeout => ErrorClass::Timeout,
            Self::SignatureInvalid
            | Self::TimestampSkew
            | Self::Replay
            | Self::ReplayTampered
            | Self::ClientNotAllowed
            | Self::OriginNotAllowed
            | Self::MethodNotAllowed
            | Self::Misdirected
            | Self::EgressDenied
            | Self::ProxyUnauthorized
            | Self::ClientTokenInvalid => ErrorClass::Refused,
        })
    }

    /// The `clawveil_fail_closed_total` reason, for answers that refuse something.
    /// Upstream failures are counted in `clawveil_upstream_errors_total` instead.
    pub fn reason(self) -> Option<FailReason> {
        Some(match self {
            Self::BodyTooLarge => FailReason::BodyTooLarge,
            Self::HeaderTooLarge => FailReason::HeaderTooLarge,
            Self::RequestTimeout => FailReason::RequestTimeout,
            Self::Malformed => FailReason::MalformedRequest,
            Self::SignatureInvalid | Self::ReplayTampered => FailReason::SignatureInvalid,
            Self::TimestampSkew => FailReason::TimestampSkew,
            Self::Replay => FailReason::Replay,
            Self::ClientNotAllowed => FailReason::ClientNotAllowed,
            Self::OriginNotAllowed => FailReason::OriginNotAllowed,
            Self::MethodNotAllowed => FailReason::MethodNotAllowed,
            Self::Misdirected => FailReason::MisdirectedRequest,
            Self::EgressDenied => FailReason::EgressDenied,
            Self::ProxyUnauthorized | Self::ClientTokenInvalid => FailReason::EgressUnauthorized,
            Self::BrokenBody
            | Self::ServerOptions
            | Self::UpstreamFailed(_)
            | Self::UpstreamTimeout => return None,
        })
    }

    /// Whether the client's connection should close after the answer (HTTP/1: the
    /// rest of its body will not be read).
    pub fn closes(self) -> bool {
        matches!(self, Self::BodyTooLarge | Self::RequestTimeout)
    }

    /// The `Allow` header value, where the answer needs one.
    pub fn allow(self) -> Option<&'static str> {
        matches!(self, Self::MethodNotAllowed | Self::ServerOptions).then_some(ALLOWED_METHODS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Refusal] = &[
        Refusal::BodyTooLarge,
        Refusal::HeaderTooLarge,
        Refusal::RequestTimeout,
        Refusal::BrokenBody,
        Refusal::Malformed,
        Refusal::SignatureInvalid,
        Refusal::TimestampSkew,
        Refusal::Replay,
        Refusal::ReplayTampered,
        Refusal::ClientNotAllowed,
        Refusal::OriginNotAllowed,
        Refusal::MethodNotAllowed,
        Refusal::ServerOptions,
        Refusal::Misdirected,
        Refusal::UpstreamFailed(ErrorClass::Connect),
        Refusal::UpstreamFailed(ErrorClass::Timeout),
        Refusal::UpstreamTimeout,
        Refusal::EgressDenied,
        Refusal::ProxyUnauthorized,
        Refusal::ClientTokenInvalid,
    ];

    #[test]
    fn every_refusal_of_the_client_is_counted_and_short() {
        for r in ALL {
            let body = r.body();
            assert!(body.len() < 64 && body.lines().count() <= 1, "{r:?}");
            let by_upstream = matches!(r, Refusal::UpstreamFailed(_) | Refusal::UpstreamTimeout);
            let harmless = matches!(r, Refusal::ServerOptions | Refusal::BrokenBody);
            assert_eq!(
                r.reason().is_some(),
                !by_upstream && !harmless,
                "{r:?}: refusals of the client are counted, upstream failures elsewhere"
            );
            if r.status().is_client_error() || r.status().is_server_error() {
                assert!(r.class().is_some(), "{r:?}");
            }
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(Refusal::SignatureInvalid.status(), 401);
        assert_eq!(Refusal::Misdirected.status(), 421);
        assert_eq!(Refusal::UpstreamFailed(ErrorClass::Timeout).status(), 504);
        assert_eq!(Refusal::UpstreamFailed(ErrorClass::Reset).status(), 502);
        assert_eq!(Refusal::Replay.status(), 200);
        assert_eq!(Refusal::MethodNotAllowed.allow(), Some(ALLOWED_METHODS));
    }
}
