//! `clawveil cert status`: what is stored, for which names, from which issuer, until
//! when, and when the next renewal will be tried (as the running manager last planned
//! it, or else as the fallback schedule computes it).

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::AcmeError;
use crate::schedule::fallback_renewal;
use crate::storage::{Storage, StoredCert, CERT};

/// One stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertStatus {
    /// The certificate chain file.
    pub path: PathBuf,
    /// subjectAltNames of the leaf.
    pub names: Vec<String>,
    pub issuer: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// When the next renewal will be tried.
    pub next_renewal: SystemTime,
    /// Why then: `ari-window`, `renew-before`, `backoff`, `min-renewal-interval`, ...
    pub next_renewal_reason: String,
    /// Failed attempts in a row (as the running manager last recorded).
    pub failures: u32,
    pub last_error: Option<String>,
    /// Why the stored certificate cannot be served as it is, if it cannot.
    pub problem: Option<String>,
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} (Unix seconds)"))
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "certificate   {}", self.path.display())?;
        writeln!(f, "  names       {}", self.names.join(", "))?;
        writeln!(f, "  issuer      {}", self.issuer)?;
        writeln!(f, "  not before  {}", rfc3339(self.not_before))?;
        writeln!(f, "  not after   {}", rfc3339(self.not_after))?;
        writeln!(
            f,
            "  renewal     {} ({})",
            rfc3339(self.next_renewal),
            self.next_renewal_reason
        )?;
        if self.failures > 0 {
            writeln!(f, "  failures    {} in a row", self.failures)?;
        }
        if let Some(e) = &self.last_error {
            writeln!(f, "  last error  {e}")?;
        }
        if let Some(p) = &self.problem {
            writeln!(f, "  PROBLEM     {p}")?;
        }
        Ok(())
    }
}

/// What is stored under `acme.storage` (empty when nothing is).
pub fn status(cfg: &clawveil_config::Acme) -> Result<Vec<CertStatus>, AcmeError> {
    let storage = Storage::new(cfg)?;
    let Some(info) = storage.read_cert_info()? else {
        return Ok(Vec::new());
    };
    let problem = match storage.load_cert(&cfg.domains) {
        Ok(StoredCert::Usable(_)) => None,
        Ok(StoredCert::Unusable(reason)) => Some(reason),
        Ok(StoredCert::Missing) => Some("the certificate disappeared while reading it".into()),
        Err(e) => Some(e.to_string()),
    };
    let planned = storage.read_schedule();
    let (next_renewal, reason, failures, last_error) = match planned {
        Some(s) => (
            UNIX_EPOCH + Duration::from_secs(s.next_renewal),
            s.reason,
            s.failures,
            s.last_error,
        ),
        None => (
            fallback_renewal(&info, cfg.renew_before),
            "renew-before".to_owned(),
            0,
            None,
        ),
    };
    Ok(vec![CertStatus {
        path: storage.path(CERT),
        names: info.names,
        issuer: info.issuer,
        not_before: info.not_before,
        not_after: info.not_after,
        next_renewal,
        next_renewal_reason: reason,
        failures,
        last_error,
        problem,
    }])
}
