//! Accept loops: a bounded number of connections, TLS handshakes with a deadline, hyper's
//! HTTP/1.1 + HTTP/2 server on each connection, and a graceful drain on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clawveil_telemetry::{FailReason, Listener, Metrics};
use clawveil_tls::{CertStore, ACME_TLS_ALPN};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::service::ConnInfo;

/// HTTP settings shared by every connection of a listener.
pub fn http_builder(
    max_header_bytes: u64,
    header_read_timeout: Duration,
) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        // hyper needs at least 8 KiB of buffer; a head that does not fit gets 431.
        .max_buf_size(max_header_bytes.max(8192) as usize)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(max_header_bytes.min(u32::MAX as u64) as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    b
}

/// Counts an open connection for as long as it lives.
struct OpenGuard {
    metrics: Arc<Metrics>,
    listener: Listener,
}

impl OpenGuard {
    fn new(metrics: Arc<Metrics>, listener: Listener) -> Self {
        metrics
            .connections_open
            .with_label_values(&[listener.as_str()])
            .inc();
        OpenGuard { metrics, listener }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.metrics
            .connections_open
            .with_label_values(&[self.listener.as_str()])
            .dec();
    }
}

/// Accepts until `shutdown`, at most `max_connections` at once, handing each connection
/// to `serve` with a graceful-shutdown watcher; then drains for at most `drain`.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    max_connections: usize,
    drain: Duration,
    mut shutdown: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, Watcher) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let fut = serve(stream, peer, graceful.watcher());
        tokio::spawn(async move {
            fut.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(drain_timeout = ?drain, "drain timeout reached; closing remaining connections");
    }
}

/// What every connection of the https listener shares.
pub struct HttpsContext {
    pub acceptor: TlsAcceptor,
    /// TLS handshakes must finish within this (the header read timeout).
    pub handshake_timeout: Duration,
    pub store: Arc<CertStore>,
    pub metrics: Arc<Metrics>,
    pub builder: Builder<TokioExecutor>,
    pub shared: Arc<crate::service::Shared>,
}

/// Serves one TLS connection: handshake (bounded by `handshake_timeout`), then HTTP.
pub async fn serve_tls(
    ctx: Arc<HttpsContext>,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
) {
    let HttpsContext {
        acceptor,
        handshake_timeout,
        store,
        metrics,
        builder,
        shared,
    } = &*ctx;
    let handshake_timeout = *handshake_timeout;
    let _open = OpenGuard::new(metrics.clone(), Listener::Https);
    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        outcome => {
            metrics
                .tls_handshakes
                .with_label_values(&["failed", "unknown"])
                .inc();
            let reason = if store.readiness().is_err() {
                FailReason::NoCertificate
            } else {
                FailReason::TlsHandshake
            };
            metrics.fail_closed(reason);
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "handshake timed out".to_owned(),
            };
            tracing::debug!(%peer, reason = reason.as_str(), error = %why, "TLS handshake refused");
            return;
        }
    };
    let (_, session) = tls.get_ref();
    let version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    };
    metrics
        .tls_handshakes
        .with_label_values(&["ok", version])
        .inc();
    let alpn = match session.alpn_protocol() {
        Some(b"h2") => "h2",
        Some(b"http/1.1") => "http/1.1",
        // RFC 8737: the validation handshake is all there is to it.
        Some(p) if p == ACME_TLS_ALPN => return,
        _ => "none",
    };
    let conn = Arc::new(ConnInfo {
        peer,
        listener: Listener::Https,
        tls_version: version,
        alpn,
    });
    let shared = shared.clone();
    let svc = hyper::service::service_fn(move |req| {
        crate::service::handle(shared.clone(), conn.clone(), req)
    });
    let served = builder
        .serve_connection_with_upgrades(TokioIo::new(crate::linger::Lingering::new(tls)), svc)
        .into_owned();
    if let Err(e) = watcher.watch(served).await {
        note_connection_error(metrics, &*e, peer);
    }
}

/// Counts what hyper refused on its own (oversized heads get 431 from hyper itself).
pub fn note_connection_error(
    metrics: &Metrics,
    e: &(dyn std::error::Error + 'static),
    peer: SocketAddr,
) {
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_parse_too_large() {
            metrics.fail_closed(FailReason::HeaderTooLarge);
            tracing::info!(%peer, "request head too large: answered 431");
            return;
        }
    }
    tracing::debug!(%peer, error = %e, "connection ended with an error");
}
