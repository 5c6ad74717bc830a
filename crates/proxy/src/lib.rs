//! The proxy itself: listeners, the request pipeline, forwarding to the bot, limits,
//! and the plain-HTTP listener that only answers ACME challenges and redirects.
//!
//! [`bind`] claims every address first (so a taken port is an error before anything
//! serves); [`serve`] runs until the shutdown signal, then drains in-flight requests.

mod body;
mod capture;
mod checks;
mod conn_io;
mod content;
pub mod dingtalk;
mod exchange;
mod exposure;
mod forward;
mod headers;
mod idle;
mod linger;
mod listener;
mod plain;
mod refused;
mod route;
mod service;
mod trace;
mod tunnel;
mod upgrade;
mod upstream;
mod verify;
mod wsframe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clawveil_config::Config;
use clawveil_telemetry::{serve_metrics, Listener, Metrics, MetricsAccess};
use clawveil_tls::{server_config, CertStore, Http01Tokens};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use content::engine_config;
pub use service::Shared;
pub use trace::{current_trace_id, TraceContext};
pub use upstream::UpstreamUrlError;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (listen.{what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamUrlError),
    #[error("[redact]: {0}")]
    Redact(#[from] clawveil_redact::RedactError),
}

/// Checks what only the proxy knows about (`clawveil check` runs it too).
pub fn validate(cfg: &Config) -> Result<(), ServeError> {
    upstream::UpstreamTarget::parse(&cfg.upstream.url)?;
    clawveil_redact::Engine::new(&content::engine_config(cfg))?;
    Ok(())
}

/// The sockets, bound and not yet serving.
#[derive(Debug)]
pub struct Bound {
    https: TcpListener,
    http: Option<TcpListener>,
    metrics: Option<TcpListener>,
}

impl Bound {
    /// The actual https address (useful with port 0).
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.local_addr().ok()
    }
}

async fn bind_one(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { what, addr, source })
}

/// Binds `listen.https`, `listen.http` and `listen.metrics`.
pub async fn bind(cfg: &Config) -> Result<Bound, ServeError> {
    Ok(Bound {
        https: bind_one("https", cfg.listen.https).await?,
        http: match cfg.listen.http {
            Some(a) => Some(bind_one("http", a).await?),
            None => None,
        },
        metrics: match cfg.listen.metrics {
            Some(a) => Some(bind_one("metrics", a).await?),
            None => None,
        },
    })
}

/// What the binary hands the proxy.
pub struct Runtime {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<CertStore>,
    pub http01: Http01Tokens,
    /// The bearer token `/metrics` requires, if any (re-read on SIGHUP by the binary).
    pub metrics_token: MetricsAccess,
    /// Whether the https listener also answers TLS-ALPN-01 (`acme-tls/1`).
    pub acme_tls_alpn: bool,
    /// Bumped by the binary on SIGHUP: routes re-read their secrets.
    pub reload: watch::Receiver<u64>,
}

/// Serves until `shutdown` turns true, then stops accepting and drains.
pub async fn serve(
    bound: Bound,
    rt: Runtime,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let cfg = &rt.config;
    let shared = Shared::from_config(cfg, rt.metrics.clone(), shutdown.clone())?;
    // Before the first accept: `/readyz` is right from the first probe.
    let exposure = exposure::start(cfg, rt.metrics.clone(), shutdown.clone());
    let tunnels = shared.tunnels.clone();
    let mut reload = rt.reload.clone();
    let reloading = shared.clone();
    tokio::spawn(async move {
        while reload.changed().await.is_ok() {
            reloading.reload_secrets();
        }
    });
    let limits = &cfg.limits;
    let mut tasks = Vec::new();
    let timeouts = idle::Timeouts {
        header_read: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    let client: refused::ClientLabel = {
        let shared = shared.clone();
        Arc::new(move |ip| shared.content.client(ip))
    };

    let https_port = bound.https.local_addr().map(|a| a.port()).unwrap_or(443);
    let tls = server_config(rt.store.clone(), cfg.tls.min_version, rt.acme_tls_alpn);
    let https = Arc::new(listener::HttpsContext {
        acceptor: tokio_rustls::TlsAcceptor::from(tls),
        handshake_timeout: limits.header_read_timeout,
        store: rt.store.clone(),
        metrics: rt.metrics.clone(),
        builder: listener::http_builder(limits.max_header_bytes),
        timeouts,
        client: client.clone(),
        shared,
    });
    let counted = |listener| listener::Counted {
        metrics: rt.metrics.clone(),
        listener,
    };
    tasks.push(tokio::spawn(listener::accept_loop(
        bound.https,
        counted(Listener::Https),
        limits.max_connections,
        limits.drain_timeout,
        shutdown.clone(),
        move |s, peer, w, slot| listener::serve_tls(https.clone(), s, peer, w, slot),
    )));

    if let Some(l) = bound.http {
        let plain = Arc::new(plain::PlainContext {
            tokens: rt.http01.clone(),
            https_port,
            metrics: rt.metrics.clone(),
            builder: listener::http_builder(limits.max_header_bytes),
            timeouts,
            client,
        });
        tasks.push(tokio::spawn(listener::accept_loop(
            l,
            counted(Listener::Http),
            limits.max_connections,
            limits.drain_timeout,
            shutdown.clone(),
            move |s, peer, w, slot| plain::serve_plain(plain.clone(), s, peer, w, slot),
        )));
    }

    if let Some(l) = bound.metrics {
        let store = rt.store.clone();
        let ctx = Arc::new(listener::MetricsContext {
            metrics: rt.metrics.clone(),
            builder: listener::http_builder(limits.max_header_bytes),
            timeouts,
        });
        tasks.push(tokio::spawn(serve_metrics(
            l,
            rt.metrics.clone(),
            rt.metrics_token.clone(),
            Arc::new(move || store.readiness().and_then(|()| exposure.readiness())),
            shutdown.clone(),
            move |s, peer, answer| listener::serve_metrics_conn(ctx.clone(), s, peer, answer),
        )));
    }

    for t in tasks {
        let _ = t.await;
    }
    // Upgraded connections left hyper's tracking (they still hold their connection
    // slots); they end by themselves once the drain time is over.
    if tokio::time::timeout(
        limits.drain_timeout + Duration::from_secs(2),
        tunnels.wait_closed(),
    )
    .await
    .is_err()
    {
        tracing::warn!("WebSocket tunnels still open after the drain timeout");
    }
    Ok(())
}
