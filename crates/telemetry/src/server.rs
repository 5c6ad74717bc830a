//! The metrics listener: `/metrics` (optionally behind a bearer token), `/healthz`
//! (200 while the process runs) and `/readyz` (200 only when every https listener has a
//! valid certificate to serve; 503 with a reason otherwise).
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

/// Who may read `/metrics`: the current token (re-read on SIGHUP), if any.
pub type MetricsAccess = Arc<dyn Fn() -> Option<String> + Send + Sync>;

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

/// Compares without an early exit, so the token cannot be guessed byte by byte by timing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(state: &State, req: &Request<Incoming>) -> bool {
    let Some(token) = (state.token)() else {
        return true;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    same(given.as_bytes(), token.as_bytes())
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
    use super::same;

    #[test]
    fn token_comparison() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
