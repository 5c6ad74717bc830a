//! Cutting samples safely.
//!
//! Redaction always runs before cutting, so an identifier straddling the cut is
//! already a mask; [`cut`] then only has to avoid leaving half a mask token.
//! When the *input* is itself only a prefix, the identifier at its end may be
//! too short to recognise: [`safe_end`] drops that unfinished last token.

use crate::Engine;

/// Characters that can continue an identifier, a credential or a URL.
fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._-+/=@:%~$?&#()\\*!,;".contains(&b)
}

/// Where a text that was cut short (at its end) can be ended safely: before the
/// last run of identifier characters, and before digit groups joined to it by
/// single spaces or dashes (`138 1234 56…`).
pub(crate) fn safe_end(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = b.len();
    loop {
        while i > 0 && is_id_char(b[i - 1]) {
            i -= 1;
        }
        if i >= 2 && matches!(b[i - 1], b' ' | b'\t') && b[i - 2].is_ascii_digit() {
            i -= 1;
        } else {
            break;
        }
    }
    i
}

/// Longest mask token: `[REDACTED:` + a 40-byte rule name + `]`.
const MAX_TOKEN: usize = 64;

/// Cuts `s` to at most `max` bytes at a char boundary, dropping a mask token the
/// cut would split. Returns whether anything was cut.
pub(crate) fn cut(s: &mut String, max: usize, eng: &Engine) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let b = s.as_bytes();
    let from = end.saturating_sub(MAX_TOKEN);
    if let Some(lb) = b[from..end]
        .iter()
        .rposition(|&c| c == b'[')
        .map(|i| from + i)
    {
        if !b[lb..end].contains(&b']') && is_token(&s[lb..], eng) {
            end = lb;
        }
    }
    s.truncate(end);
    true
}

/// Does `t` start with a mask token of `eng`?
fn is_token(t: &str, eng: &Engine) -> bool {
    let Some(close) = t.as_bytes().iter().take(MAX_TOKEN).position(|&c| c == b']') else {
        return false;
    };
    let inner = &t[1..close];
    if let Some(rule) = inner.strip_prefix("REDACTED:") {
        return eng.has_rule(rule);
    }
    match inner.rsplit_once(':') {
        Some((rule, hex)) => {
            hex.len() == 10 && hex.bytes().all(|c| c.is_ascii_hexdigit()) && eng.has_rule(rule)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;

    #[test]
    fn safe_end_drops_the_unfinished_token() {
        assert_eq!(safe_end("hello wor"), 6);
        assert_eq!(safe_end("call 138 1234 56"), 5);
        assert_eq!(safe_end("call 138 1234 "), 5);
        assert_eq!(safe_end("token=abc"), 0);
        assert_eq!(safe_end("done.\n"), 6);
        assert_eq!(safe_end("中文13812"), "中文".len());
        assert_eq!(safe_end(""), 0);
    }

    #[test]
    fn cut_drops_split_tokens() {
        let eng = Engine::new(&EngineConfig::default()).unwrap();
        let full = "ab [REDACTED:phone] cd";
        for max in 0..full.len() {
            let mut s = full.to_owned();
            assert!(cut(&mut s, max, &eng));
            assert!(s.len() <= max);
            assert!(
                s.len() <= 3 || s.starts_with("ab [REDACTED:phone]"),
                "max {max}: {s:?}"
            );
        }
        let mut s = full.to_owned();
        assert!(!cut(&mut s, full.len(), &eng));
        // a bracket that is not a token is kept
        let mut s = "see [note] and [more text here".to_owned();
        cut(&mut s, 20, &eng);
        assert_eq!(s, "see [note] and [more");
        // char boundaries
        let mut s = "中文中文".to_owned();
        cut(&mut s, 4, &eng);
        assert_eq!(s, "中");
    }

    #[test]
    fn hashed_tokens_are_recognised() {
        let cfg = EngineConfig {
            hash_key: Some(b"0123456789abcdef".to_vec()),
            ..EngineConfig::default()
        };
        let eng = Engine::new(&cfg).unwrap();
        assert!(is_token("[phone:0123456789]", &eng));
        assert!(!is_token("[phone:01234]", &eng));
        assert!(!is_token("[nope:0123456789]", &eng));
    }
}
