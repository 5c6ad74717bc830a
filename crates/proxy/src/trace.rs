//! Trace ids: a valid incoming W3C `traceparent` is continued (same trace id, a new
//! parent id for our hop); otherwise a new trace is started. The trace id doubles as
//! the request id returned to the client and sent upstream as `X-Request-Id`.

use http::HeaderMap;
use rand::RngCore;

tokio::task_local! {
    /// The trace id of the request whose code is running, for the panic hook.
    static CURRENT: String;
}

/// The trace id of the request being handled on this task, if any.
pub fn current_trace_id() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `f` with `trace_id` as the current request's trace id.
pub async fn in_trace<F: std::future::Future>(trace_id: String, f: F) -> F::Output {
    CURRENT.scope(trace_id, f).await
}

/// The trace context of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex characters.
    pub trace_id: String,
    /// Our span id (16 hex), sent upstream as the parent id.
    pub span_id: String,
    /// Trace flags (2 hex), kept from the incoming header or `01` (sampled).
    pub flags: String,
}

impl TraceContext {
    /// Continues the incoming `traceparent` when it is valid, else starts a new trace.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut rng = rand::rng();
        let span_id = hex(&rng.next_u64().to_be_bytes());
        if let Some((trace_id, flags)) = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_traceparent)
        {
            return TraceContext {
                trace_id,
                span_id,
                flags,
            };
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        TraceContext {
            trace_id: hex(&id),
            span_id,
            flags: "01".into(),
        }
    }

    /// The `traceparent` value to send upstream.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Returns (trace id, flags) of a valid version-00 (or future-version) traceparent.
fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let v = v.trim();
    let mut parts = v.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = version.len() == 2
        && is_lower_hex(version)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && trace.len() == 32
        && is_lower_hex(trace)
        && trace.bytes().any(|b| b != b'0')
        && parent.len() == 16
        && is_lower_hex(parent)
        && parent.bytes().any(|b| b != b'0')
        && flags.len() == 2
        && is_lower_hex(flags);
    valid.then(|| (trace.to_owned(), flags.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(tp: &str) -> TraceContext {
        let mut h = HeaderMap::new();
        h.insert("traceparent", tp.parse().unwrap());
        TraceContext::from_headers(&h)
    }

    #[test]
    fn continues_a_valid_traceparent() {
        let c = ctx("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(c.span_id, "00f067aa0ba902b7");
        assert!(c
            .traceparent()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    #[test]
    fn rejects_invalid_traceparents() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            let c = ctx(bad);
            assert_ne!(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert_eq!(c.trace_id.len(), 32);
        }
    }

    #[test]
    fn new_traces_are_unique_and_well_formed() {
        let a = TraceContext::from_headers(&HeaderMap::new());
        let b = TraceContext::from_headers(&HeaderMap::new());
        assert_ne!(a.trace_id, b.trace_id);
        assert!(parse_traceparent(&a.traceparent()).is_some());
    }
}
