//! The clawveil side of the harness: the real listeners and the ACME manager running
//! in this process, their configuration, and helpers to observe them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawveil_acme::{AcmeError, Options};
use clawveil_config::{Config, LoadOptions};
use clawveil_telemetry::Metrics;
use clawveil_testkit::free_port;
use clawveil_tls::{CertStore, Http01Tokens};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::support::{https_get, Pebble, DOMAIN};

/// Ports of one clawveil instance.
#[derive(Clone, Copy)]
pub struct Ports {
    pub https: u16,
    pub http: u16,
    pub metrics: u16,
}

impl Ports {
    pub fn new() -> Ports {
        Ports {
            https: free_port(),
            http: free_port(),
            metrics: free_port(),
        }
    }
    pub fn https_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.https).into()
    }
    pub fn metrics_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.metrics).into()
    }
}

/// A parsed configuration for the real listeners and the manager.
pub fn config(
    dir: &Path,
    ports: Ports,
    upstream: SocketAddr,
    pebble: &Pebble,
    challenge: &str,
) -> Config {
    config_for(
        dir,
        ports,
        upstream,
        &pebble.directory(),
        &pebble.tls_cert(),
        challenge,
    )
}

/// The same for any ACME directory whose TLS certificate is in `ca_roots`.
pub fn config_for(
    dir: &Path,
    ports: Ports,
    upstream: SocketAddr,
    directory: &str,
    ca_roots: &Path,
    challenge: &str,
) -> Config {
    let src = format!(
        r#"
[listen]
https = "127.0.0.1:{https}"
http = "127.0.0.1:{http}"
metrics = "127.0.0.1:{metrics}"
[upstream]
url = "http://{upstream}"
[tls]
mode = "acme"
[acme]
domains = ["{DOMAIN}"]
contact = ["mailto:ops@clawveil.test"]
directory = "{directory}"
challenge = "{challenge}"
storage = "{storage}"
ca_roots = "{roots}"
"#,
        https = ports.https,
        http = ports.http,
        metrics = ports.metrics,
        storage = dir.join("store").display(),
        roots = ca_roots.display(),
    );
    clawveil_config::parse(&src, Path::new("test.toml"), &LoadOptions::default())
        .expect("valid test config")
}

/// The real listeners plus (optionally) the ACME manager, in this process.
pub struct Node {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub store: Arc<CertStore>,
    pub ports: Ports,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    pub acme: Option<JoinHandle<()>>,
}

impl Node {
    /// Binds and serves `config`; then starts the manager and returns its result.
    pub async fn start(
        config: Config,
        ports: Ports,
        opts: Options,
    ) -> (Node, Result<(), AcmeError>) {
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new("test"));
        let store = CertStore::new(metrics.clone());
        let http01 = Http01Tokens::default();
        let (stop, stop_rx) = watch::channel(false);
        let acme = config.acme.clone().expect("[acme]");
        // A port just released can stay taken for a moment when a parallel test forks a
        // process (the child holds copies of every descriptor until it execs).
        let mut tries = 0;
        let bound = loop {
            match clawveil_proxy::bind(&config).await {
                Ok(b) => break b,
                Err(e) if tries < 20 => {
                    tries += 1;
                    eprintln!("bind: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("bind: {e}"),
            }
        };
        let rt = clawveil_proxy::Runtime {
            config: config.clone(),
            metrics: metrics.clone(),
            store: store.clone(),
            http01: http01.clone(),
            metrics_token: Arc::new(|| None),
            acme_tls_alpn: acme.challenge == clawveil_config::Challenge::TlsAlpn01,
            reload: tokio::sync::watch::channel(0).1,
        };
        let server = tokio::spawn(async move {
            let _ = clawveil_proxy::serve(bound, rt, stop_rx).await;
        });
        let started = clawveil_acme::start_with(
            &acme,
            store.clone(),
            http01,
            metrics.clone(),
            stop.subscribe(),
            opts,
        )
        .await;
        let (acme_task, result) = match started {
            Ok(h) => (Some(h), Ok(())),
            Err(e) => (None, Err(e)),
        };
        (
            Node {
                config,
                metrics,
                store,
                ports,
                stop,
                server,
                acme: acme_task,
            },
            result,
        )
    }

    /// Stops the listeners and the manager and waits for both (releasing the lock).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(a) = self.acme {
            let _ = tokio::time::timeout(Duration::from_secs(10), a).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(40), self.server).await;
    }

    /// Waits until the store serves a certificate.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.store.readiness().is_err() {
            assert!(
                Instant::now() < deadline,
                "no certificate within {within:?}:\n{}",
                self.metrics.encode()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A request through the real https listener, trusting `roots`.
    pub async fn get(
        &self,
        roots: &[CertificateDer<'static>],
        path: &str,
    ) -> Result<(u16, Vec<u8>, Vec<u8>), String> {
        https_get(
            self.ports.https_addr(),
            ServerName::try_from(DOMAIN).unwrap(),
            roots,
            path,
        )
        .await
    }

    /// `orders` (acme_orders), `reloads` (certificate reloads) or `fail_closed`.
    pub fn counter(&self, family: &str, labels: &[&str]) -> u64 {
        let m = &self.metrics;
        match family {
            "orders" => m.acme_orders.with_label_values(labels).get(),
            "reloads" => m.cert_reloads.with_label_values(labels).get(),
            "fail_closed" => m.fail_closed.with_label_values(labels).get(),
            other => panic!("unknown family {other}"),
        }
    }

    pub fn next_renewal(&self) -> f64 {
        self.metrics
            .acme_next_renewal
            .with_label_values(&[DOMAIN])
            .get()
    }
}

/// Polls `cond` every 100 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every file under `dir` with its permission bits.
pub fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        out.push((e.path(), e.metadata().unwrap().permissions().mode() & 0o777));
    }
    out
}

/// Log lines written on this thread while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures what is logged on the current thread (the future given to `block_on`).
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
