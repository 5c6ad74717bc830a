//! A minimal challenge responder for `clawveil cert renew` when no clawveil is running:
//! HTTP-01 answers on `listen.http`, TLS-ALPN-01 answers on `listen.https`, nothing
//! else (other paths get 404, handshakes without `acme-tls/1` are refused). It stops
//! when the returned guard drops.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clawveil_config::{Challenge, TlsVersion};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::challenge::Responder;
use crate::error::AcmeError;

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Aborts the responder task when dropped; [`Answering::stop`] also waits until the
/// listening socket is closed.
pub(crate) struct Answering(Option<JoinHandle<()>>);

impl Answering {
    pub(crate) async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Binds the listener the configured challenge needs and answers on it.
pub(crate) async fn answer_on(
    responder: &Responder,
    listen: &clawveil_config::Listen,
) -> Result<Answering, AcmeError> {
    let addr: SocketAddr = match responder.kind {
        Challenge::Http01 => listen.http.ok_or_else(|| AcmeError::Renew {
            reason: "challenge = \"http-01\" needs listen.http to answer on".into(),
        })?,
        Challenge::TlsAlpn01 => listen.https,
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| AcmeError::io(format!("{addr}"), "listen for the ACME challenge", e))?;
    let task = match responder.kind {
        Challenge::Http01 => {
            let tokens = responder.http01.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let tokens = tokens.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let answer = req
                                .uri()
                                .path()
                                .strip_prefix(CHALLENGE_PREFIX)
                                .and_then(|t| tokens.get(t));
                            async move { Ok::<_, Infallible>(http01_response(answer)) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            })
        }
        Challenge::TlsAlpn01 => {
            let config =
                clawveil_tls::server_config(responder.store.clone(), TlsVersion::V1_2, true);
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    // The validation is the handshake itself; nothing is read or written.
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        )
                        .await;
                    });
                }
            })
        }
    };
    Ok(Answering(Some(task)))
}

fn http01_response(key_auth: Option<String>) -> Response<Full<Bytes>> {
    let (status, body) = match key_auth {
        Some(k) => (StatusCode::OK, Bytes::from(k)),
        None => (
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"no such challenge\n"),
        ),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}
