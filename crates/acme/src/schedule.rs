//! Timing derived from the certificate's own lifetime, so that a 160-hour certificate
//! is handled as safely as a 90-day one. Without ARI: renew when a third of the
//! lifetime (or `renew_before`, when set and larger) remains. After a failure: an
//! exponentially growing, jittered delay, capped at a 48th of the lifetime (and at the
//! configured maximum), never shorter than the CA's `Retry-After` — itself honoured
//! only up to a 16th of the lifetime (and a day), so that a CA's long `Retry-After`
//! cannot use up a short certificate's margin.

use std::time::{Duration, SystemTime};

use clawveil_tls::CertInfo;

/// The longest `Retry-After` honoured (a CA asking for more is asked again after a day).
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The certificate's validity period (zero for a malformed one).
pub(crate) fn lifetime(info: &CertInfo) -> Duration {
    info.not_after
        .duration_since(info.not_before)
        .unwrap_or_default()
}

/// When to renew a certificate when the CA offers no renewal information: when a third
/// of its lifetime remains, or `renew_before` if that is larger (never before issuance).
pub(crate) fn fallback_renewal(info: &CertInfo, renew_before: Option<Duration>) -> SystemTime {
    let third = lifetime(info) / 3;
    let margin = renew_before.map_or(third, |r| r.max(third));
    info.not_after
        .checked_sub(margin)
        .unwrap_or(info.not_before)
        .max(info.not_before)
}

/// The manager's delays for one certificate, scaled to its lifetime: see [`Options::paced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paced {
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub min_renewal_interval: Duration,
    pub max_retry_after: Duration,
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
    /// The delays for a certificate valid for `lifetime`: the backoff maximum at most a
    /// 48th of it (a 160-hour certificate keeps the 1 h maximum and is retried about 50
    /// times in the last third of its life; a 1-hour one is retried every 75 s at most),
    /// the base scaled down with it; the shortest interval between two successful
    /// orders at most a quarter of it; a CA's `Retry-After` honoured up to a 16th of it.
    /// A 90-day certificate gets the configured values.
    pub(crate) fn paced(&self, lifetime: Duration) -> Paced {
        let floor = Duration::from_millis(100);
        let backoff_max = self.backoff_max.min(lifetime / 48).max(floor);
        let ratio = self.backoff_max.as_secs_f64() / self.backoff_base.as_secs_f64().max(1e-3);
        let backoff_base = self
            .backoff_base
            .min(backoff_max.div_f64(ratio.max(1.0)))
            .max(floor.min(self.backoff_base));
        Paced {
            backoff_base,
            backoff_max,
            min_renewal_interval: self.min_renewal_interval.min(lifetime / 4),
            max_retry_after: MAX_RETRY_AFTER.min(lifetime / 16),
        }
    }

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
    /// and never before `retry_after` (itself capped at `max_retry_after`).
    pub(crate) fn fail(
        &mut self,
        base: Duration,
        max: Duration,
        fraction: f64,
        retry_after: Option<SystemTime>,
        max_retry_after: Duration,
        now: SystemTime,
    ) -> Duration {
        let exp = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let full = base.saturating_mul(1u32 << exp).min(max);
        let jittered = full.mul_f64(0.5 + 0.5 * fraction.clamp(0.0, 1.0));
        let asked = retry_after
            .and_then(|t| t.duration_since(now).ok())
            .map(|d| d.min(max_retry_after))
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

    fn lasting(secs: u64) -> CertInfo {
        let nb = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        CertInfo {
            names: vec!["a".into()],
            issuer: "x".into(),
            not_before: nb,
            not_after: nb + Duration::from_secs(secs),
        }
    }

    const HOUR: u64 = 3600;
    const DAY: u64 = 86400;

    #[test]
    fn fallback_renews_when_a_third_of_the_lifetime_remains() {
        let s = Duration::from_secs;
        for (lifetime, renew_at) in [
            (90 * DAY, 60 * DAY),
            (45 * DAY, 30 * DAY),
            (6 * DAY, 4 * DAY),
            (160 * HOUR, 320 * HOUR / 3),
            (HOUR, 40 * 60),
        ] {
            let i = lasting(lifetime);
            assert_eq!(
                fallback_renewal(&i, None),
                i.not_before + s(renew_at),
                "{lifetime} s"
            );
        }
        // renew_before counts when larger than a third
        let i = info(90);
        assert_eq!(
            fallback_renewal(&i, Some(s(45 * DAY))),
            i.not_before + s(45 * DAY)
        );
        let short = info(6);
        assert_eq!(
            fallback_renewal(&short, Some(s(DAY))),
            short.not_before + s(4 * DAY)
        );
        // renew_before longer than the lifetime: due at once (never before issuance)
        assert_eq!(
            fallback_renewal(&short, Some(s(365 * DAY))),
            short.not_before
        );
    }

    #[test]
    fn delays_scale_with_the_lifetime() {
        let o = Options::default();
        let s = Duration::from_secs;
        let long = Paced {
            backoff_base: s(60),
            backoff_max: s(HOUR),
            min_renewal_interval: s(HOUR),
            max_retry_after: MAX_RETRY_AFTER,
        };
        assert_eq!(o.paced(s(90 * DAY)), long);
        assert_eq!(o.paced(s(45 * DAY)), long);
        // 6 days and 160 hours: the 1 h maximum holds (a 48th is more), Retry-After is
        // honoured up to 9 h / 10 h
        let six = o.paced(s(6 * DAY));
        assert_eq!((six.backoff_base, six.backoff_max), (s(60), s(HOUR)));
        assert_eq!(six.max_retry_after, s(9 * HOUR));
        assert_eq!(o.paced(s(160 * HOUR)).max_retry_after, s(10 * HOUR));
        // 1 hour: at most 75 s between tries, a fresh certificate may be replaced after
        // 15 minutes, Retry-After up to 225 s
        let hour = o.paced(s(HOUR));
        assert_eq!(hour.backoff_max, s(75));
        assert_eq!(hour.backoff_base, Duration::from_millis(1250));
        assert_eq!(hour.min_renewal_interval, s(15 * 60));
        assert_eq!(hour.max_retry_after, s(225));
    }

    /// Tries made while the CA fails every order, from the fallback renewal time until
    /// expiry, with the longest jitter; `retry_after` is what the CA asks each time.
    fn tries_before_expiry(lifetime: u64, retry_after: Option<Duration>) -> u32 {
        let i = lasting(lifetime);
        let p = Options::default().paced(i.not_after.duration_since(i.not_before).unwrap());
        let mut t = fallback_renewal(&i, None);
        let mut b = Backoff::default();
        let mut tries = 0;
        while t < i.not_after {
            tries += 1;
            let asked = retry_after.map(|d| t + d);
            t += b.fail(
                p.backoff_base,
                p.backoff_max,
                0.999_999,
                asked,
                p.max_retry_after,
                t,
            );
        }
        tries
    }

    #[test]
    fn a_ca_outage_meets_many_retries_before_expiry() {
        assert!(tries_before_expiry(90 * DAY, None) > 700);
        assert!(tries_before_expiry(45 * DAY, None) > 350);
        let six = tries_before_expiry(6 * DAY, None);
        assert!(six >= 45, "6-day certificate: {six} tries");
        let shortlived = tries_before_expiry(160 * HOUR, None);
        assert!(shortlived >= 50, "160-hour certificate: {shortlived} tries");
        let hour = tries_before_expiry(HOUR, None);
        assert!(hour >= 20, "1-hour certificate: {hour} tries");
        // a CA answering every order with Retry-After: one day
        let day = Some(Duration::from_secs(DAY));
        assert!(tries_before_expiry(6 * DAY, day) >= 5);
        assert!(tries_before_expiry(90 * DAY, day) >= 30);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_cap() {
        let now = SystemTime::now();
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(3600));
        let mut b = Backoff::default();
        let d: Vec<Duration> = (0..8)
            .map(|_| b.fail(base, max, 0.999_999, None, MAX_RETRY_AFTER, now))
            .collect();
        assert!(d[0] <= base && d[0] >= base / 2);
        assert!(d[1] > d[0] && d[2] > d[1]);
        assert!(d.iter().all(|x| *x <= max));
        assert!(d[7] > max / 2, "capped at max: {:?}", d[7]);
        assert_eq!(b.failures(), 8);
        let mut low = Backoff::default();
        assert_eq!(
            low.fail(base, max, 0.0, None, MAX_RETRY_AFTER, now),
            base / 2
        );
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
            MAX_RETRY_AFTER,
            now,
        );
        assert_eq!(d, Duration::from_secs(600));
        let far = b.fail(
            Duration::from_secs(2),
            Duration::from_secs(30),
            0.0,
            Some(now + Duration::from_secs(9_999_999)),
            MAX_RETRY_AFTER,
            now,
        );
        assert_eq!(far, MAX_RETRY_AFTER);
        // a Retry-After in the past changes nothing
        let d = b.fail(
            Duration::from_secs(2),
            Duration::from_secs(30),
            0.0,
            Some(now - Duration::from_secs(5)),
            MAX_RETRY_AFTER,
            now,
        );
        assert_eq!(d, Duration::from_secs(4));
    }
}
