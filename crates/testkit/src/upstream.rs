//! A recording HTTP/1.1 upstream that stands in for the bot.
//!
//! Routes: `/sha` (hex SHA-256 of the body), `/echo` (the body back, same content
//! type), `/slow?s=N` (answers after N seconds), `/sse` (5 events, 200 ms apart),
//! `/status/N` (status N, with a body that must never be logged), anything else `ok`.
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

async fn answer(
    records: Arc<Mutex<Vec<Recorded>>>,
    req: Request<Incoming>,
) -> Result<Response<Out>, Infallible> {
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
