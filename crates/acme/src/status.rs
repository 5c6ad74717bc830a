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
    /// The profile the certificate was ordered with (`shortlived`, ...), when recorded.
    pub profile: Option<String>,
}

/// `2026-12-31T00:00:00Z (in 29 days)`: a time as RFC 3339 (UTC) and how far it is
/// from `now`, for people reading `clawveil cert status`.
pub fn when(t: SystemTime, now: SystemTime) -> String {
    let date = clawveil_telemetry::rfc3339(t);
    match t.duration_since(now) {
        Ok(ahead) if ahead.as_secs() > 0 => format!("{date} (in {})", span(ahead)),
        Ok(_) => format!("{date} (now)"),
        Err(past) => match past.duration().as_secs() {
            0 => format!("{date} (now)"),
            _ => format!("{date} ({} ago)", span(past.duration())),
        },
    }
}

/// A distance, rounded, in seconds below a minute and a half, minutes below an hour and
/// a half, hours below two days, days above: `45 seconds`, `2 minutes`, `36 hours`,
/// `29 days`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..=89 => (s, "second"),
        90..=5_399 => ((s + 30) / 60, "minute"),
        5_400..=172_799 => ((s + 1_800) / 3_600, "hour"),
        _ => ((s + 43_200) / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = SystemTime::now();
        writeln!(f, "certificate   {}", self.path.display())?;
        writeln!(f, "  names       {}", self.names.join(", "))?;
        writeln!(f, "  issuer      {}", self.issuer)?;
        if let Some(p) = &self.profile {
            writeln!(f, "  profile     {p}")?;
        }
        writeln!(f, "  not before  {}", when(self.not_before, now))?;
        writeln!(f, "  not after   {}", when(self.not_after, now))?;
        writeln!(
            f,
            "  renewal     {}, {}",
            when(self.next_renewal, now),
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
    let Some((info, meta)) = storage.read_cert_info()? else {
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
        profile: meta.and_then(|m| m.profile),
    }])
}

#[cfg(test)]
mod tests {
    use super::when;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_read_as_rfc3339_and_a_distance() {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_169_600); // 2026-12-02T00:00:00Z
        let at = |secs: i64| {
            let d = Duration::from_secs(secs.unsigned_abs());
            if secs >= 0 {
                now + d
            } else {
                now - d
            }
        };
        for (offset, want) in [
            (29 * 86_400, "2026-12-31T00:00:00Z (in 29 days)"),
            (-3 * 86_400, "2026-11-29T00:00:00Z (3 days ago)"),
            (36 * 3_600, "2026-12-03T12:00:00Z (in 36 hours)"),
            (2 * 60, "2026-12-02T00:02:00Z (in 2 minutes)"),
            (1, "2026-12-02T00:00:01Z (in 1 second)"),
            (0, "2026-12-02T00:00:00Z (now)"),
        ] {
            assert_eq!(when(at(offset), now), want);
        }
    }
}
