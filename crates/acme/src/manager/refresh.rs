//! The manager's watching duties: fetching renewal information (ARI) for the served
//! certificate, and noticing a certificate that appeared in storage from elsewhere.

use std::time::SystemTime;

use instant_acme::CertificateIdentifier;

use super::{jitter, Ari, Manager};
use crate::ari;
use crate::error::{OrderError, Step};
use crate::storage::StoredCert;

impl Manager {
    pub(super) async fn refresh_ari(&mut self) {
        let now = SystemTime::now();
        let Some(leaf) = self.current.as_ref().map(|c| c.leaf.clone()) else {
            return;
        };
        let Ok(id) = CertificateIdentifier::try_from(&leaf) else {
            tracing::info!(domains = ?self.cfg.domains, "the certificate has no authority key identifier; renewing on the renew_before schedule");
            self.ari = Ari::Unsupported;
            return;
        };
        let retry_at = now + self.opts.ari_retry;
        let account = match self.account(false).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(domains = ?self.cfg.domains, step = %e.step, detail = %e.detail, "cannot fetch renewal information; using the renew_before schedule for now");
                self.ari = Ari::Unknown { retry_at };
                return;
            }
        };
        self.ari = match account.renewal_info(&id).await {
            Ok((info, retry_after)) => {
                let previous = match &self.ari {
                    Ari::Known(p) => Some(*p),
                    _ => None,
                };
                match ari::plan(&info, retry_after, previous.as_ref(), jitter(), now) {
                    Some(p) => {
                        tracing::info!(domains = ?self.cfg.domains, renew_at = %clawveil_telemetry::rfc3339(p.renew_at), window_start = %clawveil_telemetry::rfc3339(p.window.start), window_end = %clawveil_telemetry::rfc3339(p.window.end), recheck_at = %clawveil_telemetry::rfc3339(p.recheck_at), explanation = info.explanation_url.as_deref(), "renewal information from the CA");
                        Ari::Known(p)
                    }
                    None => {
                        tracing::warn!(domains = ?self.cfg.domains, "the CA suggested an invalid renewal window; using the renew_before schedule");
                        Ari::Unknown { retry_at }
                    }
                }
            }
            Err(instant_acme::Error::Unsupported(_)) => {
                tracing::info!(domains = ?self.cfg.domains, "the CA offers no renewal information (ARI); renewing when renew_before or a third of the lifetime remains");
                Ari::Unsupported
            }
            Err(e) => {
                let e = OrderError::from_acme(Step::Directory, &e);
                tracing::warn!(domains = ?self.cfg.domains, problem = e.problem_type.as_deref(), detail = %e.detail, "cannot fetch renewal information; using the renew_before schedule for now");
                self.account = None;
                Ari::Unknown { retry_at }
            }
        };
    }

    /// Picks up a certificate that appeared in storage without us (restored backup).
    pub(super) fn notice_replaced_files(&mut self) {
        let stamp = self.storage.cert_stamp();
        if stamp.is_none() || stamp == self.cert_stamp {
            return;
        }
        self.cert_stamp = stamp;
        match self.storage.load_cert(&self.cfg.domains) {
            Ok(StoredCert::Usable(cert)) => {
                let newer = self
                    .current
                    .as_ref()
                    .is_none_or(|c| cert.info.not_after > c.info.not_after);
                if newer {
                    tracing::info!(domains = ?self.cfg.domains, not_after = %clawveil_telemetry::rfc3339(cert.info.not_after), "a newer certificate appeared in storage; serving it");
                    self.install(*cert, None);
                    self.retry_at = None;
                    self.backoff.reset();
                }
            }
            Ok(StoredCert::Unusable(reason)) => {
                self.metrics
                    .cert_reloads
                    .with_label_values(&["acme", "failed"])
                    .inc();
                tracing::warn!(domains = ?self.cfg.domains, reason = %reason, "the certificate in storage changed but cannot be served; keeping the current one");
            }
            Ok(StoredCert::Missing) => {}
            Err(e) => {
                self.metrics
                    .cert_reloads
                    .with_label_values(&["acme", "failed"])
                    .inc();
                tracing::error!(error = %e, "cannot read the ACME storage");
            }
        }
    }
}
