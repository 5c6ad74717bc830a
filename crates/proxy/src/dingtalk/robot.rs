//! Robot callbacks (`verify = "dingtalk-robot"`).
//!
//! DingTalk sends two headers with every robot callback: `timestamp` (milliseconds
//! since the Unix epoch, decimal) and `sign` =
//! `Base64(HMAC-SHA256(key = appSecret, message = timestamp + "\n" + appSecret))`.
//!
//! The signature covers only the timestamp, not the body: a captured header pair
//! authenticates any body until it falls out of the skew window. Pair this check with
//! [`super::replay::ReplayCache::check_pair`] to refuse such replays.

use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::{parse_millis, percent_decode, within_skew};

/// Why a robot callback was refused.
///
/// The checks run in this order: [`Missing`](Self::Missing), then
/// [`BadTimestamp`](Self::BadTimestamp), then [`BadSignature`](Self::BadSignature),
/// then [`Skew`](Self::Skew). The signature is checked *before* the clock, so a forged
/// request is always reported as a bad signature, and only a genuine (correctly
/// signed) but stale or future request is reported as skew. Reporting skew first
/// would tell an unauthenticated client something about our clock and would make a
/// forgery look like a clock problem in the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RobotError {
    /// The `timestamp` or `sign` header is absent or not ASCII.
    #[error("dingtalk robot: timestamp or sign header missing or not ASCII")]
    Missing,
    /// `timestamp` is not a plain decimal millisecond count fitting a `u64`.
    #[error("dingtalk robot: timestamp is not a decimal millisecond count")]
    BadTimestamp,
    /// The request is correctly signed but its timestamp is farther than `max_skew`
    /// from now.
    #[error("dingtalk robot: timestamp outside the allowed clock skew")]
    Skew,
    /// `sign` matches none of the configured secrets.
    #[error("dingtalk robot: sign matches no configured secret")]
    BadSignature,
}

impl RobotError {
    /// True for the errors a caller should treat as an authentication failure (a
    /// forged or garbled request): [`BadSignature`](Self::BadSignature) and
    /// [`BadTimestamp`](Self::BadTimestamp). The variants stay distinct for logs and
    /// metrics.
    pub fn is_signature_failure(self) -> bool {
        matches!(self, Self::BadSignature | Self::BadTimestamp)
    }
}

/// The `sign` value DingTalk computes for `timestamp` with `secret`:
/// `Base64(HMAC-SHA256(secret, timestamp + "\n" + secret))`, standard alphabet with
/// padding (always 44 characters).
pub fn robot_sign(secret: &[u8], timestamp: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp);
    ctx.update(b"\n");
    ctx.update(secret);
    STANDARD.encode(ctx.sign().as_ref())
}

/// Verifies a robot callback's `timestamp` and `sign` headers (raw header bytes).
///
/// Returns `Ok(())` only when all of these hold:
/// * both headers are present and ASCII;
/// * `timestamp` is 1 to 20 ASCII digits fitting a `u64` (no sign, no spaces), and the
///   HMAC is computed over exactly that text;
/// * `sign` equals [`robot_sign`] for at least one of `secrets` (several secrets allow
///   an overlap while rotating). Every secret is tried and every comparison is
///   constant-time over equal-length (44-byte) values, so neither the timing nor an
///   early exit reveals which secret, if any, matched. An empty `secrets` list refuses
///   everything with [`RobotError::BadSignature`];
/// * `|now_ms - timestamp| <= max_skew`, inclusive, in both directions.
///
/// `sign` is compared as the exact Base64 text. If it contains a `%` (some gateways
/// deliver it URL-encoded, e.g. `%2B`, `%2F`, `%3D`), it is strictly percent-decoded
/// first and the decoded text is compared instead; a malformed escape is a bad
/// signature. This accepts nothing a direct comparison would not, because Base64 text
/// never contains `%`. A `+` is never turned into a space: headers are not
/// form-encoded.
///
/// See [`RobotError`] for the order of the checks.
pub fn verify_robot(
    timestamp: Option<&[u8]>,
    sign: Option<&[u8]>,
    secrets: &[&[u8]],
    now_ms: u64,
    max_skew: Duration,
) -> Result<(), RobotError> {
    let (Some(timestamp), Some(sign)) = (timestamp, sign) else {
        return Err(RobotError::Missing);
    };
    if !timestamp.is_ascii() || !sign.is_ascii() {
        return Err(RobotError::Missing);
    }
    let ts_ms = parse_millis(timestamp).ok_or(RobotError::BadTimestamp)?;

    let decoded;
    let presented: &[u8] = if sign.contains(&b'%') {
        decoded = percent_decode(sign, false).ok_or(RobotError::BadSignature)?;
        &decoded
    } else {
        sign
    };

    let mut matched = false;
    for secret in secrets {
        let expected = robot_sign(secret, timestamp);
        // No short-circuit: every candidate is computed and compared.
        matched |= verify_slices_are_equal(expected.as_bytes(), presented).is_ok();
    }
    if !matched {
        return Err(RobotError::BadSignature);
    }
    if !within_skew(ts_ms, now_ms, max_skew) {
        return Err(RobotError::Skew);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &[u8] = b"1700000000000";
    const NOW: u64 = 1_700_000_000_000;
    const SECRET: &[u8] = b"canarySecretNow01";
    /// Computed outside Rust with:
    /// `python3 -c "import hmac,hashlib,base64; ts='1700000000000'; s='canarySecretNow01';
    ///  print(base64.b64encode(hmac.new(s.encode(), (ts+'\n'+s).encode(),
    ///  hashlib.sha256).digest()).decode())"`
    const SIGN: &[u8] = b"pzoqtttnUsYaZqblbrqtJEdOhhV5Ck7wsSsrnmYnAqk=";
    const SKEW: Duration = Duration::from_secs(60);

    fn verify(ts: &[u8], sign: &[u8], secrets: &[&[u8]], now: u64) -> Result<(), RobotError> {
        verify_robot(Some(ts), Some(sign), secrets, now, SKEW)
    }

    #[test]
    fn fixed_vector_from_python() {
        assert_eq!(robot_sign(SECRET, TS).as_bytes(), SIGN);
        assert_eq!(verify(TS, SIGN, &[SECRET], NOW), Ok(()));
    }

    #[test]
    fn rotation_second_secret_matches() {
        let old: &[u8] = b"canarySecretOld00";
        assert_eq!(verify(TS, SIGN, &[old, SECRET], NOW), Ok(()));
        assert_eq!(verify(TS, SIGN, &[SECRET, old], NOW), Ok(()));
        let by_old = robot_sign(old, TS);
        assert_eq!(verify(TS, by_old.as_bytes(), &[old, SECRET], NOW), Ok(()));
        assert_eq!(
            verify(TS, by_old.as_bytes(), &[SECRET], NOW),
            Err(RobotError::BadSignature)
        );
    }

    #[test]
    fn wrong_secret_and_tampering_are_bad_signature() {
        let other: &[u8] = b"canarySecretNow02";
        assert_eq!(
            verify(TS, SIGN, &[other], NOW),
            Err(RobotError::BadSignature)
        );
        // Same secret, different timestamp text (the signature covers it).
        assert_eq!(
            verify(b"1700000000001", SIGN, &[SECRET], NOW),
            Err(RobotError::BadSignature)
        );
        let mut flipped = SIGN.to_vec();
        flipped[0] = b'q';
        assert_eq!(
            verify(TS, &flipped, &[SECRET], NOW),
            Err(RobotError::BadSignature)
        );
        assert_eq!(
            verify(TS, b"", &[SECRET], NOW),
            Err(RobotError::BadSignature)
        );
        assert_eq!(
            verify(TS, &SIGN[..43], &[SECRET], NOW),
            Err(RobotError::BadSignature)
        );
        // A forged request is a bad signature even when it is also stale.
        assert_eq!(
            verify(TS, &flipped, &[SECRET], NOW + 3_600_000),
            Err(RobotError::BadSignature)
        );
    }

    #[test]
    fn empty_secret_list_refuses() {
        assert_eq!(verify(TS, SIGN, &[], NOW), Err(RobotError::BadSignature));
    }

    #[test]
    fn missing_or_non_ascii_headers() {
        let s: &[&[u8]] = &[SECRET];
        assert_eq!(
            verify_robot(None, Some(SIGN), s, NOW, SKEW),
            Err(RobotError::Missing)
        );
        assert_eq!(
            verify_robot(Some(TS), None, s, NOW, SKEW),
            Err(RobotError::Missing)
        );
        assert_eq!(
            verify_robot(None, None, s, NOW, SKEW),
            Err(RobotError::Missing)
        );
        assert_eq!(
            verify(TS, "pzoq\u{e9}".as_bytes(), s, NOW),
            Err(RobotError::Missing)
        );
        assert_eq!(verify(b"17\xff", SIGN, s, NOW), Err(RobotError::Missing));
    }

    #[test]
    fn skew_both_directions() {
        let s: &[&[u8]] = &[SECRET];
        let skew_ms = 60_000;
        assert_eq!(verify(TS, SIGN, s, NOW + skew_ms), Ok(()));
        assert_eq!(verify(TS, SIGN, s, NOW - skew_ms), Ok(()));
        // Request too old (our clock is ahead).
        assert_eq!(
            verify(TS, SIGN, s, NOW + skew_ms + 1),
            Err(RobotError::Skew)
        );
        // Request from the future (our clock is behind).
        assert_eq!(
            verify(TS, SIGN, s, NOW - skew_ms - 1),
            Err(RobotError::Skew)
        );
        assert_eq!(
            verify_robot(Some(TS), Some(SIGN), s, NOW + 1, Duration::ZERO),
            Err(RobotError::Skew)
        );
        assert_eq!(
            verify_robot(Some(TS), Some(SIGN), s, NOW, Duration::ZERO),
            Ok(())
        );
    }

    #[test]
    fn garbage_timestamp() {
        let s: &[&[u8]] = &[SECRET];
        for ts in [
            &b""[..],
            b"abc",
            b"+1700000000000",
            b" 1700000000000",
            b"1.7e12",
        ] {
            // Even a sign computed over the garbage text does not help.
            let sign = robot_sign(SECRET, ts);
            let err = verify(ts, sign.as_bytes(), s, NOW).unwrap_err();
            assert_eq!(err, RobotError::BadTimestamp);
            assert!(err.is_signature_failure());
        }
        assert!(!RobotError::Skew.is_signature_failure());
        assert!(!RobotError::Missing.is_signature_failure());
    }

    #[test]
    fn percent_encoded_sign() {
        let s: &[&[u8]] = &[SECRET];
        let upper = b"pzoqtttnUsYaZqblbrqtJEdOhhV5Ck7wsSsrnmYnAqk%3D";
        let lower = b"pzoqtttnUsYaZqblbrqtJEdOhhV5Ck7wsSsrnmYnAqk%3d";
        assert_eq!(verify(TS, upper, s, NOW), Ok(()));
        assert_eq!(verify(TS, lower, s, NOW), Ok(()));
        // A sign containing '+' and '/' (also computed with the Python one-liner).
        let ts = b"1700000000002";
        let sign = b"FvNeYM4yPEcMY76GhnC1X+kq4Qd/AoxyIlv6hbL6hIU=";
        let encoded = b"FvNeYM4yPEcMY76GhnC1X%2Bkq4Qd%2FAoxyIlv6hbL6hIU%3D";
        assert_eq!(verify(ts, sign, s, NOW), Ok(()));
        assert_eq!(verify(ts, encoded, s, NOW), Ok(()));
        // '+' decoded as a space (form encoding) is not accepted.
        let spaced = b"FvNeYM4yPEcMY76GhnC1X kq4Qd/AoxyIlv6hbL6hIU=";
        assert_eq!(verify(ts, spaced, s, NOW), Err(RobotError::BadSignature));
        // Malformed escapes are bad signatures, not panics.
        assert_eq!(verify(TS, b"pzoq%", s, NOW), Err(RobotError::BadSignature));
        assert_eq!(
            verify(TS, b"pzoq%zz", s, NOW),
            Err(RobotError::BadSignature)
        );
    }
}
