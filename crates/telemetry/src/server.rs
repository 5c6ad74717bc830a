//! The metrics listener: `/metrics` (optionally behind a bearer token), `/healthz`
//! (200 while the process runs) and `/readyz` (200 only when every https listener has a
//! valid certificate to serve and, with `upstream.require_loopback`, the bot cannot be
//! reached without clawveil; 503 with a reason otherwise).
//!
//! This crate owns the answers; the connections are served by the caller (the proxy's
//! connection handling, so that its header and idle deadlines and its refusal counts
//! apply to this listener as they do to the others).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::{FailReason, Metrics};

/// Answers whether the proxy can serve: `Err(reason)` makes `/readyz` answer 503.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Who may read `/metrics`: the current tokens (re-read on SIGHUP), or `None` when
/// `/metrics` is open (a loopback listener without `metrics.token`).
pub type MetricsAccess = Arc<dyn Fn() -> Option<MetricsTokens> + Send + Sync>;

/// The bearer tokens `/metrics` accepts: any one of them (several during a rotation).
/// A presented token is compared with every one of them, each in time that does not
/// depend on where it differs, and the results are combined without an early exit, so
/// timing tells neither which token matched nor how much of one did. No tokens accept
/// nothing.
#[derive(Clone)]
pub struct MetricsTokens(Arc<[Box<[u8]>]>);

impl MetricsTokens {
    pub fn new<T: AsRef<[u8]>>(tokens: impl IntoIterator<Item = T>) -> MetricsTokens {
        MetricsTokens(tokens.into_iter().map(|t| t.as_ref().into()).collect())
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `given` is one of the tokens.
    pub fn accepts(&self, given: &[u8]) -> bool {
        any_equal(&self.0, given, ct_eq)
    }
}

impl std::fmt::Debug for MetricsTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetricsTokens({} masked)", self.0.len())
    }
}

/// Compares `given` with every token (`eq` answers 1 for equal, 0 otherwise) and ORs
/// the answers: every token is compared, whichever matches.
fn any_equal(tokens: &[Box<[u8]>], given: &[u8], mut eq: impl FnMut(&[u8], &[u8]) -> u8) -> bool {
    let mut found = 0u8;
    for token in tokens {
        found |= eq(token, given);
    }
    std::hint::black_box(found) == 1
}

/// 1 when `given` equals `token`, else 0, in time that depends only on the token's
/// length: a `given` of another length is replaced by the token itself (and the answer
/// forced to 0), so that the same bytes are compared either way, all of them.
fn ct_eq(token: &[u8], given: &[u8]) -> u8 {
    ct_eq_with(token, given, |a, b| std::hint::black_box(a ^ b))
}

/// [`ct_eq`] with the byte comparison given (to count it in tests).
fn ct_eq_with(token: &[u8], given: &[u8], mut xor: impl FnMut(u8, u8) -> u8) -> u8 {
    let same_len = token.len() == given.len();
    let other = if same_len { given } else { token };
    let diff = token
        .iter()
        .zip(other)
        .fold(0u8, |acc, (a, b)| acc | xor(*a, *b));
    u8::from(same_len) & u8::from(diff == 0)
}

struct State {
    metrics: Arc<Metrics>,
    token: MetricsAccess,
    ready: Readiness,
}

/// Answers one request of the metrics listener.
pub type Answer = Arc<dyn Fn(Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync>;

/// Accepts until `shutdown` turns true; each connection is served by `serve_conn`
/// (on its own task) with this listener's [`Answer`].
pub async fn serve_metrics<F, Fut>(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    token: MetricsAccess,
    ready: Readiness,
    mut shutdown: watch::Receiver<bool>,
    serve_conn: F,
) where
    F: Fn(TcpStream, SocketAddr, Answer) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let state = State {
        metrics,
        token,
        ready,
    };
    let answer: Answer = Arc::new(move |req| handle(&state, req));
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        tokio::spawn(serve_conn(stream, peer, answer.clone()));
    }
}

fn text(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(ctype),
    );
    r
}

fn authorized(state: &State, req: &Request<Incoming>) -> bool {
    let Some(tokens) = (state.token)() else {
        return true;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    tokens.accepts(given.as_bytes())
}

fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => match (state.ready)() {
            Ok(()) => text(StatusCode::OK, "application/json", "{\"ready\":true}\n"),
            Err(reason) => {
                let body = serde_json::json!({ "ready": false, "reason": reason }).to_string();
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    body + "\n",
                )
            }
        },
        "/metrics" => {
            if !authorized(state, &req) {
                state.metrics.fail_closed(FailReason::MetricsUnauthorized);
                let mut r = text(StatusCode::UNAUTHORIZED, "text/plain", "unauthorized\n");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
            text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                state.metrics.encode(),
            )
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz, /readyz\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert_eq!(ct_eq(b"abc", b"abc"), 1);
        assert_eq!(ct_eq(b"abc", b"abd"), 0);
        assert_eq!(ct_eq(b"abc", b"xbc"), 0);
        assert_eq!(ct_eq(b"abc", b"abcd"), 0);
        assert_eq!(ct_eq(b"abc", b"ab"), 0);
        assert_eq!(ct_eq(b"abc", b""), 0);
        assert_eq!(ct_eq(b"", b""), 1);
    }

    #[test]
    fn any_of_several_tokens_is_accepted_and_nothing_else() {
        let tokens = MetricsTokens::new(["scrape-token-new", "scrape-token-old"]);
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts(b"scrape-token-new"));
        assert!(tokens.accepts(b"scrape-token-old"));
        for other in [
            &b""[..],
            b"scrape-token-ne",
            b"scrape-token-newer",
            b"scrape-token-neW",
            b"scrape-token-new scrape-token-old",
            b"scrape-token-newscrape-token-old",
        ] {
            assert!(!tokens.accepts(other), "{other:?}");
        }
        assert!(MetricsTokens::new(["only-one"]).accepts(b"only-one"));
        let none = MetricsTokens::new(Vec::<String>::new());
        assert!(none.is_empty() && !none.accepts(b"") && !none.accepts(b"x"));
        assert_eq!(format!("{tokens:?}"), "MetricsTokens(2 masked)");
    }

    /// Every token is compared, whichever matches (the first, the last, none), each
    /// over all of its bytes whatever the presented token is.
    #[test]
    fn the_comparison_does_not_short_circuit() {
        let tokens = MetricsTokens::new(["token-a", "token-bb", "token-ccc"]);
        for (given, expected) in [
            (&b"token-a"[..], true),
            (b"token-bb", true),
            (b"token-ccc", true),
            (b"token-x", false),
            (b"", false),
            (b"xxxxxxxxxxxxxxxxxxxxxxxx", false),
        ] {
            let mut compared = Vec::new();
            let found = any_equal(&tokens.0, given, |t, g| {
                compared.push(t.to_vec());
                ct_eq(t, g)
            });
            assert_eq!(found, expected, "{given:?}");
            assert_eq!(
                compared,
                [&b"token-a"[..], b"token-bb", b"token-ccc"],
                "{given:?}"
            );
        }
        // Within one token: every byte is compared, whether the first byte differs, the
        // last, none, or the length (then the token is compared with itself).
        for given in [
            &b"Xoken-ccc"[..],
            b"token-ccX",
            b"token-ccc",
            b"t",
            b"",
            b"token-cccc",
        ] {
            let mut bytes = 0;
            let equal = ct_eq_with(b"token-ccc", given, |a, b| {
                bytes += 1;
                a ^ b
            });
            assert_eq!(bytes, 9, "{given:?}");
            assert_eq!(equal, u8::from(given == b"token-ccc"), "{given:?}");
        }
    }
}
