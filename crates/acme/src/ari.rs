//! ACME Renewal Information (RFC 9773): when the CA suggests a renewal window, renew
//! at a uniformly random moment inside it (at once if that moment has passed), and ask
//! again after the `Retry-After` the CA sent, clamped to between one minute and one day.
//! A window whose end does not come after its start is treated as no answer at all.

use std::time::{Duration, SystemTime};

use instant_acme::RenewalInfo;

/// Lower and upper bounds on how often renewal information is fetched (§4.3).
pub(crate) const MIN_RECHECK: Duration = Duration::from_secs(60);
pub(crate) const MAX_RECHECK: Duration = Duration::from_secs(24 * 3600);

/// A valid suggested window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub start: SystemTime,
    pub end: SystemTime,
}

/// What to do after one renewalInfo answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub window: Window,
    /// When to renew.
    pub renew_at: SystemTime,
    /// When to fetch the renewal information again.
    pub recheck_at: SystemTime,
}

/// The suggested window, or `None` when it is invalid (end not after start).
pub(crate) fn window(info: &RenewalInfo) -> Option<Window> {
    let start = SystemTime::from(info.suggested_window.start);
    let end = SystemTime::from(info.suggested_window.end);
    (end > start).then_some(Window { start, end })
}

/// A moment in `[start, end)` chosen by `fraction` (uniform in `[0, 1)`); when it has
/// already passed, `now` (renew at once).
pub(crate) fn choose(w: &Window, fraction: f64, now: SystemTime) -> SystemTime {
    let span = w.end.duration_since(w.start).unwrap_or_default();
    let at = w.start + span.mul_f64(fraction.clamp(0.0, 1.0));
    at.max(now)
}

/// `Retry-After` clamped to [one minute, one day].
pub(crate) fn recheck_after(retry_after: Duration) -> Duration {
    retry_after.clamp(MIN_RECHECK, MAX_RECHECK)
}

/// Decides from one answer. The moment chosen for a window is kept while the CA keeps
/// suggesting the same window, so that repeated checks do not drift toward its start.
pub(crate) fn plan(
    info: &RenewalInfo,
    retry_after: Duration,
    previous: Option<&Plan>,
    fraction: f64,
    now: SystemTime,
) -> Option<Plan> {
    let w = window(info)?;
    let renew_at = match previous {
        Some(p) if p.window == w => p.renew_at,
        _ => choose(&w, fraction, now),
    };
    Some(Plan {
        window: w,
        renew_at,
        recheck_at: now + recheck_after(retry_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The renewalInfo example of RFC 9773 §4.2 (served with `Retry-After: 21600`).
    const RFC_EXAMPLE: &str = r#"{
      "suggestedWindow": {
        "start": "2025-01-02T04:00:00Z",
        "end": "2025-01-03T04:00:00Z"
      },
      "explanationURL": "https://acme.example.com/docs/ari"
    }"#;

    /// Parses a renewalInfo response body, as instant-acme does.
    fn parse(body: &[u8]) -> Result<RenewalInfo, serde_json::Error> {
        serde_json::from_slice(body)
    }

    fn ts(s: &str) -> SystemTime {
        SystemTime::from(
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap(),
        )
    }

    #[test]
    fn parses_the_rfc_example() {
        let info = parse(RFC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            info.explanation_url.as_deref(),
            Some("https://acme.example.com/docs/ari")
        );
        let w = window(&info).unwrap();
        assert_eq!(w.start, ts("2025-01-02T04:00:00Z"));
        assert_eq!(w.end, ts("2025-01-03T04:00:00Z"));
        assert!(parse(b"{\"suggestedWindow\":{\"start\":\"yesterday\"}}").is_err());
    }

    #[test]
    fn chooses_inside_the_window() {
        let info = parse(RFC_EXAMPLE.as_bytes()).unwrap();
        let w = window(&info).unwrap();
        let before = ts("2025-01-01T00:00:00Z");
        assert_eq!(choose(&w, 0.0, before), w.start);
        assert_eq!(choose(&w, 0.5, before), ts("2025-01-02T16:00:00Z"));
        for i in 0..100 {
            let at = choose(&w, f64::from(i) / 100.0, before);
            assert!(at >= w.start && at < w.end, "{at:?}");
        }
        // a chosen moment in the past means: renew now
        let during = ts("2025-01-02T10:00:00Z");
        assert_eq!(choose(&w, 0.0, during), during);
        let after = ts("2025-01-05T00:00:00Z");
        assert_eq!(choose(&w, 0.9, after), after);
    }

    #[test]
    fn invalid_window_is_no_answer() {
        let info = parse(
            br#"{"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!(window(&info), None);
        assert_eq!(
            plan(
                &info,
                Duration::from_secs(21600),
                None,
                0.5,
                SystemTime::now()
            ),
            None
        );
        let same = parse(
            br#"{"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-03T04:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!(window(&same), None);
    }

    #[test]
    fn retry_after_is_respected_and_clamped() {
        let info = parse(RFC_EXAMPLE.as_bytes()).unwrap();
        let now = ts("2025-01-01T00:00:00Z");
        let p = plan(&info, Duration::from_secs(21600), None, 0.25, now).unwrap();
        assert_eq!(p.recheck_at, ts("2025-01-01T06:00:00Z"));
        assert_eq!(p.renew_at, ts("2025-01-02T10:00:00Z"));
        assert_eq!(recheck_after(Duration::from_secs(1)), MIN_RECHECK);
        assert_eq!(recheck_after(Duration::from_secs(7 * 86400)), MAX_RECHECK);
        // the same window again keeps the chosen moment; a new window picks anew
        let again = plan(
            &info,
            Duration::from_secs(21600),
            Some(&p),
            0.99,
            p.recheck_at,
        )
        .unwrap();
        assert_eq!(again.renew_at, p.renew_at);
        assert_eq!(again.recheck_at, ts("2025-01-01T12:00:00Z"));
        let moved = parse(
            br#"{"suggestedWindow":{"start":"2025-01-01T08:00:00Z","end":"2025-01-01T09:00:00Z"}}"#,
        )
        .unwrap();
        let urgent = plan(
            &moved,
            Duration::from_secs(21600),
            Some(&p),
            0.5,
            p.recheck_at,
        )
        .unwrap();
        assert_eq!(urgent.renew_at, ts("2025-01-01T08:30:00Z"));
    }
}
