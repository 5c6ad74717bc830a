//! A stand-in bot for trying clawveil: plain HTTP on 127.0.0.1:8080 (or the address in
//! `ECHO_BOT_ADDR`). It answers every request with a short JSON description of what it
//! received through the proxy, and `/sse` with five server-sent events.
//!
//! `bash scripts/try.sh` builds and starts it together with clawveil (and stops both on
//! Ctrl-C); on its own:
//!
//! ```text
//! cargo run --release --example echo-bot
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

type Out = http_body_util::combinators::BoxBody<Bytes, Infallible>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("ECHO_BOT_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo-bot listening on http://{addr} (try it through clawveil: curl -k https://127.0.0.1:8443/hello)");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer))
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>) -> Result<Response<Out>, Infallible> {
    if req.uri().path() == "/sse" {
        let events = (0..5)
            .map(|i| Ok::<_, Infallible>(Frame::data(Bytes::from(format!("data: tick {i}\n\n")))));
        let (tx, rx) = tokio::sync::mpsc::channel(5);
        tokio::spawn(async move {
            for e in events {
                if tx.send(e).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let stream = tokio_stream_from(rx);
        return Ok(Response::builder()
            .header("content-type", "text/event-stream")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap());
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let summary = format!(
        "{{\"bot\":\"echo\",\"method\":\"{}\",\"path\":\"{}\",\"x_forwarded_for\":\"{}\",\"x_forwarded_proto\":\"{}\",\"x_request_id\":\"{}\"}}\n",
        req.method(),
        req.uri().path().replace('"', ""),
        header("x-forwarded-for"),
        header("x-forwarded-proto"),
        header("x-request-id"),
    );
    let _ = req.into_body().collect().await;
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(summary)).boxed())
        .unwrap())
}

/// Adapts a channel receiver into the `Stream` that `StreamBody` wants.
fn tokio_stream_from<T>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_core::Stream<Item = T> {
    struct S<T>(tokio::sync::mpsc::Receiver<T>);
    impl<T> futures_core::Stream for S<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
    S(rx)
}
