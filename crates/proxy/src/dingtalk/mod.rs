//! DingTalk callback verification, as pure functions: no I/O, no async, no clock.
//!
//! Every function here takes the current time from its caller (`now_ms` as
//! milliseconds since the Unix epoch, or an [`std::time::Instant`] for the replay
//! cache), so the results are deterministic and testable.
//!
//! * [`robot`]: robot (bot) callbacks, `verify = "dingtalk-robot"`: the `timestamp`
//!   and `sign` headers, HMAC-SHA256 over `timestamp + "\n" + appSecret`.
//! * [`event`]: event-subscription pushes, `verify = "dingtalk-event"`: a SHA-1
//!   signature over the sorted `token`, `timestamp`, `nonce` and `encrypt`, plus the
//!   AES-256-CBC envelope of the body.
//! * [`replay`]: a bounded, thread-safe memory of `(timestamp, sign)` pairs and of
//!   delivered `msgId`s, `replay = true`.
//!
//! Secret comparisons go through `aws_lc_rs::constant_time::verify_slices_are_equal`.

pub mod event;
pub mod replay;
pub mod robot;

use std::time::Duration;

pub use event::{aes_key_bytes, event_signature, verify_event, EventError, EventParams};
pub use replay::{digest, msg_id, PairCheck, ReplayCache};
pub use robot::{robot_sign, verify_robot, RobotError};

/// Parses a DingTalk millisecond timestamp: 1 to 20 ASCII digits that fit a `u64`.
///
/// Unlike `u64::from_str` this refuses a leading `+`, whitespace and the empty string,
/// so the text the signature covers is exactly the number that is checked.
fn parse_millis(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// True when `|now_ms - ts_ms| <= max_skew` (both directions, millisecond precision).
fn within_skew(ts_ms: u64, now_ms: u64, max_skew: Duration) -> bool {
    u128::from(ts_ms.abs_diff(now_ms)) <= max_skew.as_millis()
}

/// Strict percent-decoding: every `%` must be followed by two hex digits (either
/// case). With `plus_as_space` a `+` becomes a space, as in
/// `application/x-www-form-urlencoded` query strings. `None` on a malformed escape.
fn percent_decode(input: &[u8], plus_as_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hi = hex_value(*input.get(i + 1)?)?;
                let lo = hex_value(*input.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// The value of one hex digit, either case.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod helper_tests {
    use super::*;

    #[test]
    fn millis_accepts_only_plain_digits() {
        assert_eq!(parse_millis(b"1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_millis(b"0"), Some(0));
        assert_eq!(parse_millis(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"+1700000000000",
            b"-1",
            b" 1",
            b"1 ",
            b"17e11",
            b"0x10",
            b"18446744073709551616",
            b"000000000000000000001",
        ] {
            assert_eq!(
                parse_millis(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn skew_is_inclusive_and_symmetric() {
        let s = Duration::from_secs(1);
        assert!(within_skew(10_000, 11_000, s));
        assert!(within_skew(11_000, 10_000, s));
        assert!(!within_skew(10_000, 11_001, s));
        assert!(!within_skew(11_001, 10_000, s));
        assert!(within_skew(u64::MAX, u64::MAX, Duration::ZERO));
        assert!(within_skew(0, u64::MAX, Duration::MAX));
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(
            percent_decode(b"a%2Bb%2fc%3D", false).as_deref(),
            Some(&b"a+b/c="[..])
        );
        assert_eq!(percent_decode(b"a+b", false).as_deref(), Some(&b"a+b"[..]));
        assert_eq!(percent_decode(b"a+b", true).as_deref(), Some(&b"a b"[..]));
        assert_eq!(percent_decode(b"%", false), None);
        assert_eq!(percent_decode(b"%2", false), None);
        assert_eq!(percent_decode(b"%zz", false), None);
        assert_eq!(percent_decode(b"", false).as_deref(), Some(&b""[..]));
    }
}
