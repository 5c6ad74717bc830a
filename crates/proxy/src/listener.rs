//! Accept loops: a bounded number of connections, TLS handshakes with a deadline, hyper's
//! HTTP/1.1 + HTTP/2 server on each connection (watched for idleness, its refusals
//! counted: see [`crate::idle`] and [`crate::refused`]), and a graceful drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clawveil_telemetry::{FailReason, Listener, Metrics};
use clawveil_tls::{group_label, CertStore, ACME_TLS_ALPN};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::conn_io::Watched;
use crate::idle::{Activity, Timeouts};
use crate::linger::Lingering;
use crate::refused::{ClientLabel, ConnLog};
use crate::service::ConnInfo;

/// HTTP settings shared by every connection of a listener.
pub fn http_builder(max_header_bytes: u64) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        // The idle watchdog times request heads: hyper's timer would start only after
        // the first bytes, and restart right after each response (cutting keep-alive
        // connections at the header timeout instead of the idle timeout).
        .header_read_timeout(None)
        // hyper needs at least 8 KiB of buffer; a head that does not fit gets 431.
        .max_buf_size(max_header_bytes.max(8192) as usize)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(max_header_bytes.min(u32::MAX as u64) as u32)
        .max_concurrent_streams(256)
        // RFC 8441: WebSocket over HTTP/2 (extended CONNECT with :protocol).
        .enable_connect_protocol()
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

/// A connection's place: one of the listener's `max_connections`, and its count in
/// `clawveil_connections_open`. Both are given back when it is dropped, which is when
/// the socket closes: it travels inside the connection's IO
/// ([`crate::linger::Lingering::holding`]), so a connection hyper handed to a tunnel
/// keeps its place until the tunnel drops it.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _open: OpenGuard,
}

/// Where a listener's connections are counted.
#[derive(Clone)]
pub struct Counted {
    pub metrics: Arc<Metrics>,
    pub listener: Listener,
}

/// Accepts until `shutdown`, at most `max_connections` at once (the others wait in the
/// accept queue), handing each connection to `serve` with its [`Slot`] and a
/// graceful-shutdown watcher; then drains for at most `drain`.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    counted: Counted,
    max_connections: usize,
    drain: Duration,
    mut shutdown: watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr, Watcher, Slot) -> Fut,
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
        let slot = Slot {
            _permit: permit,
            _open: OpenGuard::new(counted.metrics.clone(), counted.listener),
        };
        tokio::spawn(serve(stream, peer, graceful.watcher(), slot));
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
    pub timeouts: Timeouts,
    /// How access events show the client.
    pub client: ClientLabel,
    pub shared: Arc<crate::service::Shared>,
}

/// Serves one TLS connection: handshake (bounded by `handshake_timeout`), then HTTP.
/// The connection keeps `slot` until its socket closes (a failed handshake: now).
pub async fn serve_tls(
    ctx: Arc<HttpsContext>,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
    slot: Slot,
) {
    let HttpsContext {
        acceptor,
        handshake_timeout,
        store,
        metrics,
        builder,
        timeouts,
        client,
        shared,
    } = &*ctx;
    let deadline = tokio::time::Instant::now() + *handshake_timeout;
    // A connection closed before its first byte is a port probe (a load balancer's or a
    // Kubernetes TCP check), not a refused handshake: counting it would make every probe
    // look like an attack in clawveil_fail_closed_total.
    let mut first = [0u8; 1];
    if let Ok(Ok(0)) = tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        tracing::debug!(%peer, "connection closed before sending anything (a port probe)");
        return;
    }
    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        outcome => {
            metrics
                .tls_handshakes
                .with_label_values(&["failed", "unknown", group_label(None)])
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
    let group = group_label(session.negotiated_key_exchange_group());
    metrics
        .tls_handshakes
        .with_label_values(&["ok", version, group])
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
        tls_group: group,
        alpn,
        sni: session.server_name().map(str::to_ascii_lowercase),
    });
    let log = Arc::new(ConnLog {
        metrics: metrics.clone(),
        listener: Listener::Https.as_str(),
        peer,
        tls_version: version,
        tls_group: group,
        alpn,
        client: Some(client.clone()),
    });
    let act = Activity::new();
    let io = Watched::new(
        Lingering::holding(tls, slot),
        act.clone(),
        Some(log.on_reset()),
    );
    let (shared, a) = (shared.clone(), act.clone());
    let svc = hyper::service::service_fn(move |mut req: http::Request<_>| {
        // A tunnel this request opens holds it (see `crate::upgrade`).
        req.extensions_mut().insert(a.tunnels());
        a.request()
            .respond(crate::service::handle(shared.clone(), conn.clone(), req))
    });
    let served = builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .into_owned();
    guard(watcher.watch(served), act, *timeouts, &log).await;
}

/// Runs a connection until it ends, or until its watchdog finds it idle (then drops
/// it: the socket closes); counts either ending.
pub async fn guard<F, E>(conn: F, act: Arc<Activity>, timeouts: Timeouts, log: &ConnLog)
where
    F: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::select! {
        ended = conn => if let Err(e) = ended {
            log.ended(&*e.into());
        },
        why = act.clone().watchdog(timeouts) => log.cut(why, act.proto()),
    }
}

/// What every connection of the metrics listener shares.
pub struct MetricsContext {
    pub metrics: Arc<Metrics>,
    pub builder: Builder<TokioExecutor>,
    pub timeouts: Timeouts,
}

/// Answers one request of the metrics listener (the telemetry crate's answers).
pub type MetricsAnswer = Arc<
    dyn Fn(http::Request<hyper::body::Incoming>) -> http::Response<http_body_util::Full<Bytes>>
        + Send
        + Sync,
>;

/// Serves one connection of the metrics listener, with the same deadlines.
pub async fn serve_metrics_conn(
    ctx: Arc<MetricsContext>,
    stream: TcpStream,
    peer: SocketAddr,
    answer: MetricsAnswer,
) {
    let log = Arc::new(ConnLog {
        metrics: ctx.metrics.clone(),
        listener: "metrics",
        peer,
        tls_version: "",
        tls_group: "",
        alpn: "",
        client: None,
    });
    let act = Activity::new();
    let io = Watched::new(Lingering::new(stream), act.clone(), Some(log.on_reset()));
    let a = act.clone();
    let svc = hyper::service::service_fn(move |req| {
        let in_flight = a.request();
        let answered = answer(req);
        in_flight.respond(std::future::ready(Ok::<_, Infallible>(answered)))
    });
    let served = ctx.builder.serve_connection(TokioIo::new(io), svc);
    guard(served, act, ctx.timeouts, &log).await;
}
