//! Reloading `files`-mode certificates: on SIGHUP and when the files change on disk.
//! A reload that fails keeps the old certificate serving, logs why, and counts
//! `clawveil_certificate_reloads_total{result="failed"}`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clawveil_telemetry::Metrics;
use tokio::sync::watch;

use crate::load::{CertError, LoadedCert};
use crate::store::{CertSource, CertStore};

/// Identifies a version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Option<(SystemTime, u64, u64)>);

fn fingerprint(path: &std::path::Path) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    // metadata() follows symlinks, so Kubernetes' ..data symlink swaps are seen too.
    Fingerprint(std::fs::metadata(path).ok().map(|m| {
        (
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            m.len(),
            m.ino(),
        )
    }))
}

/// Loads a certificate/key pair from disk into the store, now and whenever asked.
#[derive(Debug)]
pub struct FileReloader {
    cert: PathBuf,
    key: PathBuf,
    allow_insecure: bool,
    source: CertSource,
    store: Arc<CertStore>,
    metrics: Arc<Metrics>,
    seen: Mutex<(Fingerprint, Fingerprint)>,
}

impl FileReloader {
    pub fn new(
        cert: PathBuf,
        key: PathBuf,
        allow_insecure: bool,
        source: CertSource,
        store: Arc<CertStore>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let seen = Mutex::new((fingerprint(&cert), fingerprint(&key)));
        Arc::new(FileReloader {
            cert,
            key,
            allow_insecure,
            source,
            store,
            metrics,
            seen,
        })
    }

    /// Reads the files and swaps the certificate in; on failure the old one stays.
    pub fn reload(&self, why: &str) -> Result<(), CertError> {
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) =
            (fingerprint(&self.cert), fingerprint(&self.key));
        let label = self.source.label();
        match LoadedCert::from_files(&self.cert, &self.key, self.allow_insecure) {
            Ok(cert) => {
                tracing::info!(
                    cert = %self.cert.display(),
                    names = ?cert.info.names,
                    not_after = %clawveil_telemetry::rfc3339(cert.info.not_after),
                    trigger = why,
                    "certificate loaded"
                );
                self.store.install(cert, self.source);
                self.metrics
                    .cert_reloads
                    .with_label_values(&[label, "ok"])
                    .inc();
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    cert = %self.cert.display(),
                    error = %e,
                    trigger = why,
                    "certificate reload failed; the previous certificate keeps serving"
                );
                self.metrics
                    .cert_reloads
                    .with_label_values(&[label, "failed"])
                    .inc();
                Err(e)
            }
        }
    }

    fn changed(&self) -> bool {
        let now = (fingerprint(&self.cert), fingerprint(&self.key));
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) != now
    }
}

/// Polls the files every `interval` and reloads when either changes. Polling (rather
/// than inotify) also sees atomic renames and Kubernetes secret symlink swaps.
pub fn spawn_file_watcher(
    reloader: Arc<FileReloader>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if reloader.changed() {
                // Writers often replace the chain and the key one after the other.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = reloader.reload("file change");
            }
        }
    })
}
