//! Wiring: configuration → logging → metrics → certificates → listeners → signals.

use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use clawveil_config::{Challenge, Config, LoadOptions, LogFormat, TlsMode};
use clawveil_proxy::{bind, serve, Runtime};
use clawveil_telemetry::{init_logging, Metrics};
use clawveil_tls::{
    ensure_self_signed, spawn_file_watcher, CertSource, CertStore, FileReloader, Http01Tokens,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cli::ConfigArgs;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exit status for an invalid configuration (before anything is bound).
const EXIT_CONFIG: u8 = 2;

fn load(args: &ConfigArgs) -> Result<Config, ExitCode> {
    let opts = LoadOptions {
        allow_insecure_permissions: args.allow_insecure_permissions,
    };
    clawveil_config::load(&args.config, &opts).map_err(|e| {
        eprintln!("clawveil: invalid configuration: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// `clawveil check`: validate everything that can be validated without binding.
pub fn check(args: &ConfigArgs) -> ExitCode {
    let cfg = match load(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = clawveil_proxy::validate(&cfg) {
        eprintln!("clawveil: invalid configuration: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if let Err(e) = clawveil_egress::check(&cfg) {
        eprintln!("clawveil: invalid configuration: [egress]: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if cfg.tls.mode == TlsMode::Files {
        if let Err(e) = clawveil_tls::LoadedCert::from_files(
            &cfg.tls.cert,
            &cfg.tls.key,
            args.allow_insecure_permissions,
        ) {
            eprintln!("clawveil: invalid configuration: tls.cert/tls.key: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    print!("{}", cfg.effective_toml());
    eprintln!("clawveil: {} is valid", args.config.display());
    ExitCode::SUCCESS
}

/// `clawveil run`.
pub fn run(args: &ConfigArgs) -> ExitCode {
    let cfg = match load(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Held until run() returns: dropping it flushes the queued log lines.
    let _log = match init_logging(cfg.log.format == LogFormat::Json, &cfg.log.level) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("clawveil: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for w in &cfg.warnings {
        tracing::warn!(warning = %w, "INSECURE: accepted only because of --allow-insecure-permissions");
    }
    if let Err(e) = clawveil_proxy::validate(&cfg) {
        tracing::error!(error = %e, "invalid configuration");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clawveil: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_until_signal(cfg, args.allow_insecure_permissions)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "clawveil stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_signal(cfg: Config, allow_insecure: bool) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::new(VERSION));
    let store = CertStore::new(metrics.clone());
    let (stop_tx, stop_rx) = watch::channel(false);

    // Certificates first: with no valid certificate there is no service.
    let reloader = match cfg.tls.mode {
        TlsMode::Files | TlsMode::SelfSigned => {
            let (source, cert, key) = (
                source_of(cfg.tls.mode),
                cfg.tls.cert.clone(),
                cfg.tls.key.clone(),
            );
            if source == CertSource::SelfSigned {
                let loaded = ensure_self_signed(&cert, &key, &cfg.tls.names)
                    .context("self-signed certificate")?;
                store.install(loaded, source);
            }
            let r = FileReloader::new(
                cert,
                key,
                allow_insecure,
                source,
                store.clone(),
                metrics.clone(),
            );
            if source == CertSource::Files {
                r.reload("startup").context("tls.cert/tls.key")?;
                spawn_file_watcher(r.clone(), cfg.tls.watch_interval, stop_rx.clone());
            }
            Some(r)
        }
        TlsMode::Acme => None,
    };
    // ACME: refuse to start on what retrying cannot fix (storage key, lock, CA roots);
    // a stored valid certificate is served at once, issuance runs in the background.
    let http01 = Http01Tokens::default();
    let acme = match (&cfg.tls.mode, &cfg.acme) {
        (TlsMode::Acme, Some(acme)) => Some(
            clawveil_acme::AcmeManager::prepare(
                acme,
                store.clone(),
                http01.clone(),
                metrics.clone(),
                clawveil_acme::Options::from_env(),
            )
            .context("acme")?,
        ),
        (TlsMode::Acme, None) => anyhow::bail!("tls.mode = \"acme\" needs an [acme] section"),
        _ => None,
    };

    let bound = bind(&cfg).await.context("binding listeners")?;
    let token = Arc::new(RwLock::new(
        cfg.metrics.token.as_ref().map(|t| t.expose().to_owned()),
    ));
    let token_reader = token.clone();
    let (reload_tx, reload_rx) = watch::channel(0u64);
    let reload_rx_egress = reload_rx.clone();
    let rt = Runtime {
        config: cfg.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
        http01,
        metrics_token: Arc::new(move || {
            token_reader
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }),
        acme_tls_alpn: cfg.tls.mode == TlsMode::Acme
            && cfg
                .acme
                .as_ref()
                .is_some_and(|a| a.challenge == Challenge::TlsAlpn01),
        reload: reload_rx,
    };
    tracing::info!(
        version = VERSION,
        https = %cfg.listen.https,
        http = ?cfg.listen.http,
        metrics = ?cfg.listen.metrics,
        upstream = %cfg.upstream.url,
        tls_mode = ?cfg.tls.mode,
        "clawveil listening"
    );

    // The bot's way out: model targets and the forward proxy, on loopback.
    let egress = match clawveil_egress::EgressSettings::from_config(&cfg) {
        Some(settings) => Some(
            clawveil_egress::start(settings, metrics.clone(), stop_rx.clone(), reload_rx_egress)
                .await
                .context("egress")?,
        ),
        None => None,
    };
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let server = tokio::spawn(serve(bound, rt, stop_rx.clone()));
    let acme_task = acme.map(|m| m.spawn(stop_rx));
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading certificates and secrets");
                if let Some(r) = &reloader {
                    let _ = r.reload("SIGHUP");
                }
                reload_secrets(&cfg, &token);
                reload_tx.send_modify(|generation| *generation += 1);
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(drain_timeout = ?cfg.limits.drain_timeout, "shutting down: no new connections, finishing in-flight requests");
    let _ = stop_tx.send(true);
    server.await.context("server task")??;
    if let Some(e) = egress {
        e.stopped().await;
    }
    if let Some(task) = acme_task {
        // Releases the storage lock.
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

fn source_of(mode: TlsMode) -> CertSource {
    match mode {
        TlsMode::Files => CertSource::Files,
        TlsMode::SelfSigned => CertSource::SelfSigned,
        TlsMode::Acme => CertSource::Acme,
    }
}

/// Re-reads `${env:..}`/`${file:..}` secrets that can change without a restart.
fn reload_secrets(cfg: &Config, token: &RwLock<Option<String>>) {
    if let Some(t) = &cfg.metrics.token {
        match t.reload() {
            Ok(fresh) => {
                *token.write().unwrap_or_else(|e| e.into_inner()) = Some(fresh.expose().to_owned())
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics.token could not be re-read; keeping the previous value")
            }
        }
    }
}
