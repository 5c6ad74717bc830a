//! What the binary calls: [`start`] builds the forward proxy and the targets, binds the
//! loopback listener, and serves until shutdown, re-reading the targets' secrets on
//! every reload signal.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use clawveil_config::{Config, EgressTarget};
use clawveil_telemetry::Metrics;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::allow::PatternError;
use crate::connect::ForwardProxy;
use crate::event::EgressMetrics;
use crate::policy::ForwardPolicy;
use crate::serve::bind_loopback;
use crate::service::Egress;
use crate::targets::{TargetError, Targets, REPLAY_BUFFER};
use crate::tunnel::stopping;

/// Everything the egress listener takes from the configuration.
#[derive(Debug, Clone)]
pub struct EgressSettings {
    /// `egress.listen`: loopback only.
    pub listen: SocketAddr,
    pub forward: ForwardPolicy,
    pub targets: Vec<EgressTarget>,
    /// How much of a request body is held for a replay against a target's fallback.
    /// Default [`REPLAY_BUFFER`] (1 MiB).
    pub replay_buffer: usize,
}

impl EgressSettings {
    /// The settings of `[egress]`, if the file has one.
    pub fn from_config(cfg: &Config) -> Option<EgressSettings> {
        let egress = cfg.egress.as_ref()?;
        Some(EgressSettings {
            listen: egress.listen,
            forward: ForwardPolicy::from_config(egress, &cfg.limits),
            targets: egress.targets.clone(),
            replay_buffer: REPLAY_BUFFER,
        })
    }
}

/// Why the egress listener did not start.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(transparent)]
    Allow(#[from] PatternError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("egress.listen {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// The running egress listener.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    egress: Arc<Egress>,
    served: JoinHandle<()>,
}

impl Running {
    /// The address bound (the configured one, or the port picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn egress(&self) -> &Arc<Egress> {
        &self.egress
    }

    /// Resolves once shutdown has begun and every connection and tunnel has ended.
    pub async fn stopped(self) {
        let _ = self.served.await;
    }
}

/// Checks what only the egress listener knows about (`clawveil check` runs it): host
/// patterns, target URLs, `ca_roots`, secrets. Binds nothing.
pub fn check(cfg: &Config) -> Result<(), EgressError> {
    let Some(settings) = EgressSettings::from_config(cfg) else {
        return Ok(());
    };
    let metrics = Arc::new(Metrics::new("check"));
    let (_stop, shutdown) = watch::channel(false);
    ForwardProxy::new(
        settings.forward,
        EgressMetrics::new(metrics.clone()),
        shutdown,
    )?;
    Targets::with_replay_buffer(&settings.targets, settings.replay_buffer, metrics)?;
    Ok(())
}

/// Starts the egress listener: the forward proxy and the model targets on
/// `settings.listen`. Fails before binding when a target cannot be set up (a bad URL,
/// unreadable `ca_roots` or secrets, no usable roots). `shutdown` turning true (or its
/// sender dropping) starts the drain; every change of `reload` re-reads the targets'
/// `${env:..}`/`${file:..}` secrets (a target whose secrets cannot be read keeps the
/// previous ones, and the error is logged).
pub async fn start(
    settings: EgressSettings,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    reload: watch::Receiver<u64>,
) -> Result<Running, EgressError> {
    let forward = ForwardProxy::new(
        settings.forward,
        EgressMetrics::new(metrics.clone()),
        shutdown.clone(),
    )?;
    let targets = Arc::new(Targets::with_replay_buffer(
        &settings.targets,
        settings.replay_buffer,
        metrics,
    )?);
    let bind_err = |source| EgressError::Bind {
        addr: settings.listen,
        source,
    };
    let listener = bind_loopback(settings.listen).await.map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let egress = Egress::new(forward, targets.clone(), addr);
    tracing::info!(
        target: "clawveil::egress",
        listen = %addr,
        targets = ?targets.names().collect::<Vec<_>>(),
        "egress listening"
    );
    tokio::spawn(reload_on_signal(targets, reload, shutdown));
    let served = tokio::spawn(egress.clone().serve(listener));
    Ok(Running {
        addr,
        egress,
        served,
    })
}

async fn reload_on_signal(
    targets: Arc<Targets>,
    mut reload: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) {
    let stop = stopping(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            changed = reload.changed() => {
                if changed.is_err() {
                    return;
                }
                for e in targets.reload() {
                    tracing::error!(
                        target: "clawveil::egress",
                        error = %e,
                        "egress target secrets could not be re-read; keeping the previous values"
                    );
                }
            }
            () = &mut stop => return,
        }
    }
}
