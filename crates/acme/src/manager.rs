//! The background task: decides when to order (ARI, else the fallback schedule, else
//! backoff), orders, stores and swaps the certificate in, answers `cert renew`
//! requests, and publishes the next renewal time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clawveil_telemetry::Metrics;
use clawveil_tls::{CertInfo, CertSource, CertStore, LoadedCert};
use instant_acme::{Account, CertificateIdentifier};
use rustls_pki_types::CertificateDer;
use tokio::sync::watch;

use crate::account::AcmeClient;
use crate::ari;
use crate::challenge::Responder;
use crate::error::{OrderError, Step, ALREADY_REPLACED};
use crate::order::{self, Issued};
use crate::renew::{self, RenewResult};
use crate::schedule::{fallback_renewal, lifetime, Backoff, Options, MAX_RETRY_AFTER};
use crate::storage::{ScheduleFile, Storage, StorageLock, StoredCert};

mod profile;
mod refresh;

/// What the CA said about renewal information.
#[derive(Debug, Clone)]
enum Ari {
    /// Not asked yet for this certificate, or asking failed; ask at `retry_at`.
    Unknown {
        retry_at: SystemTime,
    },
    /// The directory has no `renewalInfo` (or the certificate has no AKI).
    Unsupported,
    Known(ari::Plan),
}

struct Current {
    info: CertInfo,
    leaf: CertificateDer<'static>,
    issued_here_at: Option<SystemTime>,
}

pub(crate) struct Manager {
    pub cfg: clawveil_config::Acme,
    pub storage: Storage,
    /// Held for the manager's lifetime: one process per storage.
    _lock: StorageLock,
    pub client: AcmeClient,
    pub responder: Responder,
    pub store: Arc<CertStore>,
    pub metrics: Arc<Metrics>,
    pub opts: Options,
    account: Option<Account>,
    current: Option<Current>,
    ari: Ari,
    backoff: Backoff,
    retry_at: Option<SystemTime>,
    last_error: Option<String>,
    use_replaces: bool,
    cert_stamp: Option<(SystemTime, u64)>,
    published: Option<ScheduleFile>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn jitter() -> f64 {
    rand::random::<f64>()
}

impl Manager {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: clawveil_config::Acme,
        storage: Storage,
        lock: StorageLock,
        client: AcmeClient,
        responder: Responder,
        store: Arc<CertStore>,
        metrics: Arc<Metrics>,
        opts: Options,
    ) -> Manager {
        Manager {
            cfg,
            storage,
            _lock: lock,
            client,
            responder,
            store,
            metrics,
            opts,
            account: None,
            current: None,
            ari: Ari::Unknown {
                retry_at: SystemTime::now(),
            },
            backoff: Backoff::default(),
            retry_at: None,
            last_error: None,
            use_replaces: true,
            cert_stamp: None,
            published: None,
        }
    }

    fn name(&self) -> &str {
        self.cfg
            .domains
            .first()
            .map(String::as_str)
            .unwrap_or("unnamed")
    }

    /// Serves the stored certificate if it is usable. Errors only for problems that a
    /// new certificate would not fix (wrong storage key).
    pub(crate) fn load_stored(&mut self) -> Result<(), crate::AcmeError> {
        self.cert_stamp = self.storage.cert_stamp();
        match self.storage.load_cert(&self.cfg.domains)? {
            StoredCert::Usable(cert) => {
                tracing::info!(domains = ?self.cfg.domains, not_after = %clawveil_telemetry::rfc3339(cert.info.not_after), issuer = %cert.info.issuer, "serving the stored ACME certificate");
                self.install(*cert, None);
            }
            StoredCert::Unusable(reason) => {
                self.metrics
                    .cert_reloads
                    .with_label_values(&["acme", "failed"])
                    .inc();
                tracing::warn!(domains = ?self.cfg.domains, reason = %reason, "the stored certificate cannot be served; ordering a new one");
            }
            StoredCert::Missing => {
                tracing::info!(domains = ?self.cfg.domains, "no stored certificate yet: TLS handshakes are refused until one is issued");
            }
        }
        Ok(())
    }

    fn install(&mut self, cert: LoadedCert, issued_here_at: Option<SystemTime>) {
        let leaf = cert
            .key
            .cert
            .first()
            .cloned()
            .map(CertificateDer::into_owned);
        let info = cert.info.clone();
        self.store.install(cert, CertSource::Acme);
        self.metrics
            .cert_reloads
            .with_label_values(&["acme", "ok"])
            .inc();
        if let Some(leaf) = leaf {
            self.current = Some(Current {
                info,
                leaf,
                issued_here_at,
            });
        }
        if !matches!(self.ari, Ari::Unsupported) {
            self.ari = Ari::Unknown {
                retry_at: SystemTime::now(),
            };
        }
    }

    /// The task body: runs until `shutdown` turns true.
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Some(id) = renew::take_request(&self.storage) {
                tracing::info!(domains = ?self.cfg.domains, "renewal requested by `clawveil cert renew`");
                let outcome = tokio::select! {
                    r = self.attempt() => r,
                    _ = shutdown.changed() => break,
                };
                let result = match outcome {
                    Ok(()) => {
                        RenewResult::ok(&id, self.current.as_ref().map(|c| unix(c.info.not_after)))
                    }
                    Err(e) => RenewResult::failed(&id, &e.to_string()),
                };
                renew::write_result(&self.storage, &result);
                continue;
            }
            self.notice_replaced_files();
            let now = SystemTime::now();
            let (order_at, ari_check_at) = self.plan(now);
            if order_at <= now {
                tokio::select! {
                    _ = self.attempt() => {},
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            if ari_check_at.is_some_and(|t| t <= now) {
                tokio::select! {
                    _ = self.refresh_ari() => {},
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            let wake = ari_check_at.map_or(order_at, |t| t.min(order_at));
            let nap = wake
                .duration_since(now)
                .unwrap_or_default()
                .min(self.opts.poll_interval);
            tokio::select! {
                _ = tokio::time::sleep(nap) => {},
                _ = shutdown.changed() => {},
            }
        }
        tracing::debug!(dir = %self.storage.dir().display(), "ACME manager stopped; releasing the storage lock");
    }

    /// When to order next and when to ask for renewal information; publishes the
    /// former (gauge and `schedule.json`).
    fn plan(&mut self, now: SystemTime) -> (SystemTime, Option<SystemTime>) {
        let (order_at, ari_at, reason) = match (&self.current, self.retry_at) {
            (_, Some(retry)) => (
                retry,
                None,
                if self.backoff.failures() > 0 {
                    "backoff"
                } else {
                    "retry"
                },
            ),
            (None, None) => (now, None, "no-certificate"),
            (Some(cur), None) => {
                let fallback = fallback_renewal(&cur.info, self.cfg.renew_before);
                let (at, ari_at, reason) = match &self.ari {
                    Ari::Known(p) => (p.renew_at, Some(p.recheck_at), "ari-window"),
                    Ari::Unsupported => (fallback, None, "renew-before"),
                    Ari::Unknown { retry_at } => (fallback, Some(*retry_at), "renew-before"),
                };
                // A certificate due at once after issuance: do not hammer the CA.
                let min_interval = self.opts.paced(lifetime(&cur.info)).min_renewal_interval;
                match cur.issued_here_at {
                    Some(t) if at < t + min_interval => {
                        (t + min_interval, ari_at, "min-renewal-interval")
                    }
                    _ => (at, ari_at, reason),
                }
            }
        };
        let file = ScheduleFile {
            next_renewal: unix(order_at),
            reason: reason.to_owned(),
            failures: self.backoff.failures(),
            last_error: self.last_error.clone(),
        };
        if self.published.as_ref() != Some(&file) {
            self.metrics
                .acme_next_renewal
                .with_label_values(&[self.name()])
                .set(file.next_renewal as f64);
            if self.published.as_ref().map(|p| (p.next_renewal, &p.reason))
                != Some((file.next_renewal, &file.reason))
            {
                tracing::info!(domains = ?self.cfg.domains, next_renewal = %clawveil_telemetry::rfc3339(order_at), reason, "ACME renewal scheduled");
            }
            self.storage.write_schedule(&file);
            self.published = Some(file);
        }
        (order_at, ari_at)
    }

    /// One attempt at a new certificate; on success it is stored and served.
    pub(crate) async fn attempt(&mut self) -> Result<(), OrderError> {
        // A Retry-After left over from an earlier, unrelated response does not count.
        let _ = self.client.http.take_retry_after();
        let replaces = match (&self.current, &self.ari) {
            (Some(cur), Ari::Known(_)) if self.use_replaces => {
                CertificateIdentifier::try_from(&cur.leaf)
                    .ok()
                    .map(CertificateIdentifier::into_owned)
            }
            _ => None,
        };
        let replaces_used = replaces.is_some();
        let timeout = self.opts.attempt_timeout;
        let result = match tokio::time::timeout(timeout, self.order_once(replaces)).await {
            Ok(r) => r,
            Err(_) => Err(OrderError::new(
                Step::NewOrder,
                format!("the attempt did not finish within {timeout:?}"),
            )),
        };
        let now = SystemTime::now();
        match result {
            Ok(issued) => {
                self.metrics.acme_orders.with_label_values(&["ok"]).inc();
                tracing::info!(domains = ?self.cfg.domains, not_after = %clawveil_telemetry::rfc3339(issued.cert.info.not_after), issuer = %issued.cert.info.issuer, profile = issued.profile.as_deref(), "ACME certificate issued; serving it from the next handshake on");
                self.warn_renew_before(&issued.cert.info);
                if let Err(e) = self.storage.save_cert(
                    issued.chain_pem.as_bytes(),
                    issued.key_pem.as_bytes(),
                    issued.profile.as_deref(),
                ) {
                    tracing::error!(domains = ?self.cfg.domains, step = "store", error = %e, "cannot store the new certificate; serving it anyway, it will be ordered again after a restart");
                }
                self.cert_stamp = self.storage.cert_stamp();
                self.install(issued.cert, Some(now));
                self.backoff.reset();
                self.retry_at = None;
                self.last_error = None;
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .acme_orders
                    .with_label_values(&["failed"])
                    .inc();
                // A CA that refuses the `replaces` field for anything but a rate limit
                // (already replaced, issued by another CA, ...) gets plain orders.
                let refused_replaces = replaces_used
                    && e.step == Step::NewOrder
                    && e.problem_type.is_some()
                    && !e.is_rate_limited();
                if refused_replaces || e.problem_type.as_deref() == Some(ALREADY_REPLACED) {
                    self.use_replaces = false;
                }
                // Nothing (valid) is served: retry fast, the service is down.
                let serving = self.current.as_ref().filter(|c| c.info.not_after > now);
                // While serving, the delays scale with the certificate's lifetime.
                let (base, max, max_retry_after) = match serving {
                    Some(c) => {
                        let p = self.opts.paced(lifetime(&c.info));
                        (p.backoff_base, p.backoff_max, p.max_retry_after)
                    }
                    None => (
                        self.opts.initial_backoff_base,
                        self.opts.initial_backoff_max,
                        MAX_RETRY_AFTER,
                    ),
                };
                let serving = serving.is_some();
                let delay =
                    self.backoff
                        .fail(base, max, jitter(), e.retry_after, max_retry_after, now);
                self.retry_at = Some(now + delay);
                self.last_error = Some(e.to_string());
                tracing::warn!(
                    domains = ?self.cfg.domains,
                    domain = e.domain.as_deref(),
                    step = %e.step,
                    problem = e.problem_type.as_deref(),
                    rate_limited = e.is_rate_limited(),
                    detail = %e.detail,
                    failures = self.backoff.failures(),
                    retry_in_ms = delay.as_millis() as u64,
                    serving,
                    "ACME order failed"
                );
                Err(e)
            }
        }
    }

    async fn account(&mut self, fresh: bool) -> Result<Account, OrderError> {
        if !fresh {
            if let Some(a) = &self.account {
                return Ok(a.clone());
            }
        }
        let a = self.client.account(&self.storage, fresh).await?;
        self.account = Some(a.clone());
        Ok(a)
    }

    async fn order_once(
        &mut self,
        replaces: Option<CertificateIdentifier<'static>>,
    ) -> Result<Issued, OrderError> {
        let account = self.account(false).await?;
        let poll = self.opts.validation_timeout;
        let (domains, client) = (&self.cfg.domains, &self.client);
        let profile = self.cfg.profile.as_deref();
        let first = order::issue(
            &account,
            client,
            domains,
            profile,
            &self.responder,
            replaces.clone(),
            poll,
        )
        .await;
        match first {
            Err(e) if e.is_account_missing() => {
                tracing::warn!(directory = %self.client.directory, "the CA does not know the stored account; creating a new one");
                let account = self.account(true).await?;
                let (domains, client) = (&self.cfg.domains, &self.client);
                let profile = self.cfg.profile.as_deref();
                order::issue(
                    &account,
                    client,
                    domains,
                    profile,
                    &self.responder,
                    replaces,
                    poll,
                )
                .await
            }
            Err(e) => {
                // Fetch the directory afresh next time (the CA may have been restarted).
                self.account = None;
                Err(e)
            }
            ok => ok,
        }
    }
}
