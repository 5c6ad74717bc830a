//! Timing without ARI, and backoff: renew when less than `renew_before` or one third
//! of the lifetime (whichever is larger) remains; after a failure wait an exponentially
//! growing, jittered delay, never shorter than the CA's `Retry-After`.

use std::time::{Duration, SystemTime};

use clawveil_tls::CertInfo;

/// The longest `Retry-After` honoured (a CA asking for more is asked again after a day).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// When to renew a certificate when the CA offers no renewal information.
pub(crate) fn fallback_renewal(info: &CertInfo, renew_before: Duration) -> SystemTime {
    let lifetime = info
        .not_after
        .duration_since(info.not_before)
        .unwrap_or_default();
    let margin = renew_before.max(lifetime / 3);
    info.not_after
        .checked_sub(margin)
        .unwrap_or(info.not_before)
        .max(info.not_before)
}

/// Timing knobs of the manager. [`Options::default`] is what production uses;
/// [`Options::from_env`] lets tests and operators shorten the backoff.
#[derive(Debug, Clone)]
pub struct Options {
    /// First retry delay after a failed attempt while a certificate is served;
    /// doubles per failure up to `backoff_max`. Default 1 min → 1 h.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The same while no certificate is held (nothing is served). Default 2 s → 30 s.
    pub initial_backoff_base: Duration,
    pub initial_backoff_max: Duration,
    /// How often the storage is checked for `cert renew` requests and replaced
    /// certificate files. Default 2 s.
    pub poll_interval: Duration,
    /// Upper bound on one whole attempt (account, order, challenges, download). Default 3 min.
    pub attempt_timeout: Duration,
    /// How long the CA may take to validate, and to issue. Default 60 s each.
    pub validation_timeout: Duration,
    /// Shortest time between two successful orders, for configurations in which a new
    /// certificate is due for renewal at once (`renew_before` longer than its lifetime).
    /// Default 1 h.
    pub min_renewal_interval: Duration,
    /// When fetching renewal information failed, ask again after this long. Default 1 h.
    pub ari_retry: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(3600),
            initial_backoff_base: Duration::from_secs(2),
            initial_backoff_max: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(180),
            validation_timeout: Duration::from_secs(60),
            min_renewal_interval: Duration::from_secs(3600),
            ari_retry: Duration::from_secs(3600),
        }
    }
}

/// Environment variable: the backoff base (e.g. `500ms`, `10s`); maxima scale with it
/// (60× while serving, 15× while not, never above the defaults' maxima).
pub const BACKOFF_ENV: &str = "CLAWVEIL_ACME_BACKOFF_BASE";
/// Environment variable: the shortest time between two successful orders (e.g. `5s`).
pub const MIN_RENEWAL_ENV: &str = "CLAWVEIL_ACME_MIN_RENEWAL_INTERVAL";

impl Options {
    /// Scales the backoff: `base` while serving (maximum 60× base, at most 1 h), and
    /// at most `base` while nothing is served (maximum 15× base, at most 30 s).
    pub fn with_backoff_base(mut self, base: Duration) -> Options {
        let d = Options::default();
        self.backoff_base = base;
        self.backoff_max = (base * 60).min(d.backoff_max).max(base);
        self.initial_backoff_base = base.min(d.initial_backoff_base);
        self.initial_backoff_max = (base * 15)
            .min(d.initial_backoff_max)
            .max(self.initial_backoff_base);
        self
    }

    /// The defaults, adjusted by [`BACKOFF_ENV`] and [`MIN_RENEWAL_ENV`] when set.
    pub fn from_env() -> Options {
        let mut o = Options::default();
        let read = |name: &str| {
            let v = std::env::var(name).ok()?;
            match humantime::parse_duration(v.trim()) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => {
                    tracing::warn!(variable = name, value = %v, "ignoring an invalid duration");
                    None
                }
            }
        };
        if let Some(base) = read(BACKOFF_ENV) {
            o = o.with_backoff_base(base);
        }
        if let Some(min) = read(MIN_RENEWAL_ENV) {
            o.min_renewal_interval = min;
        }
        o
    }
}

/// Failed attempts in a row and the delay they earn.
#[derive(Debug, Clone, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Records a failure and returns how long to wait: `base · 2^(failures-1)` capped
    /// at `max`, scaled by a jitter factor in [0.5, 1) (`fraction` uniform in [0, 1)),
    /// and never before `retry_after` (itself capped at [`MAX_RETRY_AFTER`]).
    pub(crate) fn fail(
        &mut self,
        base: Duration,
        max: Duration,
        fraction: f64,
        retry_after: Option<SystemTime>,
        now: SystemTime,
    ) -> Duration {
        let exp = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let full = base.saturating_mul(1u32 << exp).min(max);
        let jittered = full.mul_f64(0.5 + 0.5 * fraction.clamp(0.0, 1.0));
        let asked = retry_after
            .and_then(|t| t.duration_since(now).ok())
            .map(|d| d.min(MAX_RETRY_AFTER))
            .unwrap_or_default();
        jittered.max(asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn info(days: u64) -> CertInfo {
        let nb = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        CertInfo {
            names: vec!["a".into()],
            issuer: "x".into(),
            not_before: nb,
            not_after: nb + Duration::from_secs(days * 86400),
        }
    }

    #[test]
    fn fallback_uses_the_larger_margin() {
        let day = Duration::from_secs(86400);
        // 90 days: a third (30 d) vs renew_before 30 d → 60 days after issuance
        let i = info(90);
        assert_eq!(fallback_renewal(&i, 30 * day), i.not_before + 60 * day);
        // 6-day certificate: a third is 2 days, larger than 1 day
        let short = info(6);
        assert_eq!(fallback_renewal(&short, day), short.not_before + 4 * day);
        // renew_before longer than the lifetime: due at once (never before issuance)
        assert_eq!(fallback_renewal(&short, 365 * day), short.not_before);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_cap() {
        let now = SystemTime::now();
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(3600));
        let mut b = Backoff::default();
        let d: Vec<Duration> = (0..8)
            .map(|_| b.fail(base, max, 0.999_999, None, now))
            .collect();
        assert!(d[0] <= base && d[0] >= base / 2);
        assert!(d[1] > d[0] && d[2] > d[1]);
        assert!(d.iter().all(|x| *x <= max));
        assert!(d[7] > max / 2, "capped at max: {:?}", d[7]);
        assert_eq!(b.failures(), 8);
        let mut low = Backoff::default();
        assert_eq!(low.fail(base, max, 0.0, None, now), base / 2);
        b.reset();
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn backoff_base_scales_the_maxima() {
        let o = Options::default().with_backoff_base(Duration::from_millis(500));
        assert_eq!(o.backoff_max, Duration::from_secs(30));
        assert_eq!(o.initial_backoff_base, Duration::from_millis(500));
        assert_eq!(o.initial_backoff_max, Duration::from_millis(7500));
        let slow = Options::default().with_backoff_base(Duration::from_secs(600));
        assert_eq!(slow.backoff_max, Duration::from_secs(3600));
        assert_eq!(slow.initial_backoff_base, Duration::from_secs(2));
        assert_eq!(slow.initial_backoff_max, Duration::from_secs(30));
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let now = SystemTime::now();
        let mut b = Backoff::default();
        let d = b.fail(
            Duration::from_secs(2),
            Duration::from_secs(30),
            0.0,
            Some(now + Duration::from_secs(600)),
            now,
        );
        assert_eq!(d, Duration::from_secs(600));
        let far = b.fail(
            Duration::from_secs(2),
            Duration::from_secs(30),
            0.0,
            Some(now + Duration::from_secs(9_999_999)),
            now,
        );
        assert_eq!(far, MAX_RETRY_AFTER);
        // a Retry-After in the past changes nothing
        let d = b.fail(
            Duration::from_secs(2),
            Duration::from_secs(30),
            0.0,
            Some(now - Duration::from_secs(5)),
            now,
        );
        assert_eq!(d, Duration::from_secs(4));
    }
}
