//! Wiring: configuration → logging → metrics → certificates → listeners → signals.

use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use clawveil_config::{Challenge, Config, LoadOptions, LogFormat, Secret, TlsMode};
use clawveil_proxy::{bind, serve, Runtime};
use clawveil_telemetry::{init_logging, json_lines, stdout_is_terminal, Metrics, MetricsTokens};
use clawveil_tls::{
    ensure_self_signed, spawn_file_watcher, CertSource, CertStore, FileReloader, Http01Tokens,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::cli::ConfigArgs;

mod secret_watch;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exit status for an invalid configuration (before anything is bound), including
/// certificate files that cannot be read or used: what `clawveil check` reports.
const EXIT_CONFIG: u8 = 2;
/// Exit status when clawveil could not start: a port in use, ACME storage locked or
/// unwritable, no async runtime. Listed in `--help`.
const EXIT_STARTUP: u8 = 3;

/// Why `run` ended with an error; decides the exit status and where it is said.
#[derive(Debug)]
enum Stop {
    /// The configuration cannot work (exit 2).
    Config(anyhow::Error),
    /// Something outside the configuration prevented the start (exit 3).
    Startup(anyhow::Error),
    /// Failed after it was serving (exit 1).
    Failed(anyhow::Error),
}

/// An error and its causes in one line, each said once: error types that put their
/// source in their own message (`cannot listen on …: {source}`) are not repeated by
/// the cause that follows.
fn plain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    let in_use = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    });
    if in_use {
        out.push_str(" (another process listens there: `ss -ltnp` names it; stop it or change the address in the configuration)");
    }
    out
}

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
    let json = json_lines(
        cfg.log.format.map(|f| f == LogFormat::Json),
        stdout_is_terminal(),
    );
    let _log = match init_logging(json, &cfg.log.level) {
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
        eprintln!("clawveil: invalid configuration: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clawveil: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    // Start-up failures are said once, on stderr, in plain words; a failure while
    // serving goes to the log like everything else that happens then.
    match runtime.block_on(serve_until_signal(cfg, args.allow_insecure_permissions)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Config(e)) => {
            eprintln!("clawveil: invalid configuration: {}", plain(&e));
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Stop::Startup(e)) => {
            eprintln!("clawveil: cannot start: {}", plain(&e));
            ExitCode::from(EXIT_STARTUP)
        }
        Err(Stop::Failed(e)) => {
            tracing::error!(error = plain(&e), "clawveil stopped");
            ExitCode::FAILURE
        }
    }
}

async fn serve_until_signal(cfg: Config, allow_insecure: bool) -> Result<(), Stop> {
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
                    .context("self-signed certificate")
                    .map_err(Stop::Startup)?;
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
                // Read once before the reloader, whose failure message ("the previous
                // certificate keeps serving") is for reloads: at start there is none.
                clawveil_tls::LoadedCert::from_files(&cfg.tls.cert, &cfg.tls.key, allow_insecure)
                    .context("tls.cert/tls.key")
                    .map_err(Stop::Config)?;
                r.reload("startup")
                    .context("tls.cert/tls.key")
                    .map_err(Stop::Config)?;
                spawn_file_watcher(r.clone(), cfg.tls.watch_interval, stop_rx.clone());
            }
            Some(r)
        }
        TlsMode::Acme => None,
    };
    // ACME: refuse to start on what retrying cannot fix (storage key, lock, CA roots);
    // a stored valid certificate is served at once, issuance runs in the background.
    let http01 = Http01Tokens::default();
    let mut acme = match (&cfg.tls.mode, &cfg.acme) {
        (TlsMode::Acme, Some(acme)) => Some(
            clawveil_acme::AcmeManager::prepare(
                acme,
                store.clone(),
                http01.clone(),
                metrics.clone(),
                clawveil_acme::Options::from_env(),
            )
            .context("acme")
            .map_err(Stop::Startup)?,
        ),
        (TlsMode::Acme, None) => {
            return Err(Stop::Config(anyhow::anyhow!(
                "tls.mode = \"acme\" needs an [acme] section"
            )))
        }
        _ => None,
    };
    // A profile the CA does not offer can never be issued: refuse before binding.
    if let Some(m) = acme.as_mut() {
        m.check_profile()
            .await
            .context("acme")
            .map_err(Stop::Startup)?;
    }

    let bound = bind(&cfg).await.map_err(|e| Stop::Startup(e.into()))?;
    let token = Arc::new(RwLock::new(cfg.metrics.tokens.clone()));
    let token_reader = token.clone();
    let (reload_tx, reload_rx) = watch::channel(0u64);
    let reload_rx_egress = reload_rx.clone();
    let rt = Runtime {
        config: cfg.clone(),
        metrics: metrics.clone(),
        store: store.clone(),
        http01,
        metrics_token: Arc::new(move || {
            let tokens = token_reader.read().unwrap_or_else(|e| e.into_inner());
            (!tokens.is_empty()).then(|| MetricsTokens::new(tokens.iter().map(Secret::expose)))
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
        http = cfg.listen.http.map(tracing::field::display),
        metrics = cfg.listen.metrics.map(tracing::field::display),
        upstream = %cfg.upstream.url,
        tls_mode = %cfg.tls.mode,
        "clawveil listening"
    );

    // The bot's way out: model targets and the forward proxy, on loopback.
    let egress = match clawveil_egress::EgressSettings::from_config(&cfg) {
        Some(settings) => Some(
            clawveil_egress::start(settings, metrics.clone(), stop_rx.clone(), reload_rx_egress)
                .await
                .context("egress")
                .map_err(Stop::Startup)?,
        ),
        None => None,
    };
    let handler = |kind, name| signal(kind).context(name).map_err(Stop::Startup);
    let mut hup = handler(SignalKind::hangup(), "SIGHUP handler")?;
    let mut term = handler(SignalKind::terminate(), "SIGTERM handler")?;
    let mut int = handler(SignalKind::interrupt(), "SIGINT handler")?;
    // A changed `${file:..}` secret reloads as SIGHUP does (nobody sends one in Kubernetes).
    let mut secret_changes =
        secret_watch::spawn(cfg.secret_files(), cfg.tls.watch_interval, stop_rx.clone());
    let server = tokio::spawn(serve(bound, rt, stop_rx.clone()));
    let acme_task = acme.map(|m| m.spawn(stop_rx));
    let reload = |why: &str| {
        if let Some(r) = &reloader {
            let _ = r.reload(why);
        }
        reload_secrets(&cfg, &token);
        reload_tx.send_modify(|generation| *generation += 1);
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading certificates and secrets");
                reload("SIGHUP");
            }
            Some(paths) = secret_changes.recv() => {
                reload("secret file change");
                let paths: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
                tracing::info!(paths = ?paths, "secret file changed: reloaded certificates and secrets, as on SIGHUP");
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!(drain_timeout = ?cfg.limits.drain_timeout, "shutting down: no new connections, finishing in-flight requests");
    let _ = stop_tx.send(true);
    server
        .await
        .context("server task")
        .and_then(|served| served.map_err(anyhow::Error::from))
        .map_err(Stop::Failed)?;
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

/// Re-reads `${env:..}`/`${file:..}` secrets that can change without a restart: each
/// `metrics.token` entry that cannot be read keeps its previous value.
fn reload_secrets(cfg: &Config, token: &RwLock<Vec<Secret>>) {
    let previous = token.read().unwrap_or_else(|e| e.into_inner()).clone();
    let fresh = cfg
        .metrics
        .tokens
        .iter()
        .zip(previous)
        .map(|(configured, previous)| {
            configured.reload().unwrap_or_else(|e| {
                tracing::error!(error = %e, "metrics.token could not be re-read; keeping the previous value");
                previous
            })
        })
        .collect();
    *token.write().unwrap_or_else(|e| e.into_inner()) = fresh;
}
