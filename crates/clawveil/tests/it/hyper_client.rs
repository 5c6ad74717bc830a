//! A hyper client over rustls, HTTP/1.1 and HTTP/2, streaming a body in chunks.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;

use crate::common::{sha256_hex, Harness};

async fn connect(
    h: &Harness,
    alpn: &[u8],
) -> TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&h.cert.cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", h.https))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    TokioIo::new(tls)
}

/// 64 chunks of 16 KiB, sent as they are produced (no length declared).
fn chunked_body() -> (Vec<u8>, StreamBody<tokio_stream_shim::Chunks>) {
    let data: Vec<u8> = (0..64 * 16384u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let chunks = data
        .chunks(16384)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    (data, StreamBody::new(tokio_stream_shim::Chunks(chunks)))
}

mod tokio_stream_shim {
    use super::*;
    pub struct Chunks(
        pub std::collections::VecDeque<Result<Frame<Bytes>, std::convert::Infallible>>,
    );
    impl futures_core::Stream for Chunks {
        type Item = Result<Frame<Bytes>, std::convert::Infallible>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.pop_front())
        }
    }
}

#[test]
fn hyper_clients_stream_bodies_over_http1_and_http2() {
    // The harness owns a runtime of its own, so it lives outside this one.
    let h = Harness::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(exchange(&h));
}

async fn exchange(h: &Harness) {
    let uri = format!("https://localhost:{}/sha", h.https);

    let (data, body) = chunked_body();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), connect(h, b"h2").await)
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(&uri).body(body).unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(std::str::from_utf8(&got).unwrap(), sha256_hex(&data));

    let (data, body) = chunked_body();
    let (mut send, conn) = hyper::client::conn::http1::handshake(connect(h, b"http/1.1").await)
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(&uri)
        .header("host", format!("localhost:{}", h.https))
        .body(body)
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(std::str::from_utf8(&got).unwrap(), sha256_hex(&data));
    let rec = h.upstream.requests_to("/sha");
    assert_eq!(rec.len(), 2);
    assert!(rec.iter().all(|r| r.body_len == data.len()));
}
