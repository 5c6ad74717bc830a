//! A recording HTTP/1.1 upstream that stands in for the bot.
//!
//! Routes: `/sha` (hex SHA-256 of the body), `/echo` (the body back, same content
//! type), `/slow?s=N` (answers after N seconds), `/sse` (5 events, 200 ms apart),
//! `/status/N` (status N, with a body that must never be logged), anything else `ok`.
//! Faults, for tests of what the proxy makes of a bot that misbehaves: `/fault/reset…`
//! (the connection is closed without an answer), `/fault/cut…` (a `200` declaring
//! 100,000 bytes, then 1,000 of them and the connection closed), `/fault/endless…` (a
//! `200` whose body does not end before `?n=N` bytes, default 1 GiB, for clients that
//! stop reading); any other path under `/fault/` is `ok`.
//! Every request is recorded with its method, target, headers and body length.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Recorded {
    /// All values of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A running test upstream; stops when dropped.
pub struct TestUpstream {
    pub addr: SocketAddr,
    records: Arc<Mutex<Vec<Recorded>>>,
    _runtime: tokio::runtime::Runtime,
}

impl TestUpstream {
    pub fn start() -> TestUpstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let recs = records.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let recs = recs.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| answer(recs.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        TestUpstream {
            addr,
            records,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn records(&self) -> Vec<Recorded> {
        self.records.lock().unwrap().clone()
    }

    /// The recorded requests whose target starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.records()
            .into_iter()
            .filter(|r| r.target.starts_with(prefix))
            .collect()
    }
}

type Out = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Response<Out> {
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

/// What `/fault/reset` answers: hyper closes the connection without writing anything
/// when the service fails.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("test upstream: connection reset on purpose")
    }
}

impl std::error::Error for Reset {}

async fn answer(
    records: Arc<Mutex<Vec<Recorded>>>,
    req: Request<Incoming>,
) -> Result<Response<Out>, Reset> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    records.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        target: target.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_len: body.len(),
    });
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    if let Some(fault) = path.strip_prefix("/fault/") {
        return fault_answer(fault, query);
    }
    Ok(if path.ends_with("/sha") {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        full(StatusCode::OK, "text/plain", hex)
    } else if path.ends_with("/echo") {
        let ctype = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        full(StatusCode::OK, &ctype, body)
    } else if path.ends_with("/slow") {
        let secs: f64 = query
            .strip_prefix("s=")
            .and_then(|s| s.parse().ok())
            .unwrap_or(5.0);
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        full(StatusCode::OK, "text/plain", "slow")
    } else if path.ends_with("/sse") {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            for i in 0..5 {
                if tx
                    .send(Bytes::from(format!("data: event {i}\n\n")))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(ChannelBody(rx).boxed())
            .unwrap()
    } else if let Some(code) = path.strip_prefix("/status/") {
        let status = code
            .parse()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::OK);
        full(
            status,
            "application/json",
            "{\"error\":\"upstream-internal-detail-7f3a\"}",
        )
    } else {
        full(StatusCode::OK, "text/plain", "ok")
    })
}

/// The `/fault/` routes (see the module documentation).
fn fault_answer(fault: &str, query: &str) -> Result<Response<Out>, Reset> {
    if fault.starts_with("reset") {
        return Err(Reset);
    }
    if fault.starts_with("cut") {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(&[b'c'; 1000])).await;
            // Long enough for the head and the first bytes to be flushed; then the
            // body ends 99,000 bytes short and hyper closes the connection.
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        return Ok(Response::builder()
            .header("content-type", "application/octet-stream")
            .header("content-length", "100000")
            .body(ChannelBody(rx).boxed())
            .unwrap());
    }
    if fault.starts_with("endless") {
        let left = query
            .strip_prefix("n=")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1u64 << 30);
        return Ok(Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Endless { left }.boxed())
            .unwrap());
    }
    Ok(full(StatusCode::OK, "text/plain", "ok"))
}

/// `left` bytes of `z`, in 64 KiB frames, produced as fast as they are taken.
struct Endless {
    left: u64,
}

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 64 * 1024] = [b'z'; 64 * 1024];
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &CHUNK[..n as usize],
        )))))
    }
}

/// A body fed from a channel, so events leave as they are produced.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
