//! Replacement tokens: the fixed mask `[REDACTED:<rule>]`, or with a hash key the
//! keyed tag `[<rule>:<10 hex of HMAC-SHA256>]`, and the copy-on-write splicer
//! that builds an output only when something is replaced.

use std::borrow::Cow;

use aws_lc_rs::hmac;

use crate::error::RedactError;

/// Shortest accepted `log.hash_key`, in bytes.
pub(crate) const MIN_HASH_KEY: usize = 16;

/// How a value is normalised before hashing, so that the same identifier written
/// two ways (`138 1234 5678`, `+86 13812345678`) gets the same tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Canon {
    /// The value as found.
    Raw,
    /// ASCII-lowercased (e-mail addresses).
    Lower,
    /// Digits only, `x` upper-cased (ID and card numbers).
    Digits,
    /// Digits only, without a leading `86`/`0086` country code (phone numbers).
    Phone,
}

pub(crate) struct Masker {
    key: Option<hmac::Key>,
}

impl Masker {
    pub(crate) fn new(key: Option<&[u8]>) -> Result<Self, RedactError> {
        let key = match key {
            None => None,
            Some([]) => {
                return Err(RedactError::BadHashKey {
                    reason: "it is empty",
                })
            }
            Some(k) if k.len() < MIN_HASH_KEY => {
                return Err(RedactError::BadHashKey {
                    reason: "it must be at least 16 bytes long",
                })
            }
            Some(k) => Some(hmac::Key::new(hmac::HMAC_SHA256, k)),
        };
        Ok(Masker { key })
    }

    /// Whether identifiers become keyed hashes.
    pub(crate) fn hashing(&self) -> bool {
        self.key.is_some()
    }

    /// Appends the replacement token for `value` found by `rule`. `hashable` is
    /// false for credentials, which are always masked.
    pub(crate) fn write(
        &self,
        out: &mut String,
        rule: &str,
        value: &str,
        hashable: bool,
        canon: Canon,
    ) {
        match (&self.key, hashable) {
            (Some(key), true) => {
                out.push('[');
                out.push_str(rule);
                out.push(':');
                let tag = tag(key, value, canon);
                for b in &tag.as_ref()[..5] {
                    out.push(hex(b >> 4));
                    out.push(hex(b & 0xf));
                }
                out.push(']');
            }
            _ => {
                out.push_str("[REDACTED:");
                out.push_str(rule);
                out.push(']');
            }
        }
    }
}

fn hex(n: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(n & 0xf)])
}

fn tag(key: &hmac::Key, value: &str, canon: Canon) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    let v = value.as_bytes();
    match canon {
        Canon::Raw => ctx.update(v),
        Canon::Lower => {
            for chunk in v.chunks(64) {
                let mut buf = [0u8; 64];
                for (d, s) in buf.iter_mut().zip(chunk) {
                    *d = s.to_ascii_lowercase();
                }
                ctx.update(&buf[..chunk.len()]);
            }
        }
        Canon::Digits | Canon::Phone => {
            let mut buf = [0u8; 32];
            let mut n = 0;
            for &b in v {
                if (b.is_ascii_digit() || b == b'x' || b == b'X') && n < buf.len() {
                    buf[n] = b.to_ascii_uppercase();
                    n += 1;
                }
            }
            let mut d = &buf[..n];
            if canon == Canon::Phone {
                if n == 15 && d.starts_with(b"0086") {
                    d = &d[4..];
                } else if n == 13 && d.starts_with(b"86") {
                    d = &d[2..];
                }
            }
            ctx.update(d);
        }
    }
    ctx.sign()
}

/// Copy-on-write output: spans of `src` are copied only once a replacement happens.
pub(crate) struct Splice<'a> {
    src: &'a str,
    out: String,
    last: usize,
    changed: bool,
}

impl<'a> Splice<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Splice {
            src,
            out: String::new(),
            last: 0,
            changed: false,
        }
    }

    /// Replaces `src[start..end]` by what `f` writes. Calls must come in input order.
    pub(crate) fn replace(&mut self, start: usize, end: usize, f: impl FnOnce(&mut String)) {
        debug_assert!(self.last <= start && start <= end);
        if !self.changed {
            self.out.reserve(self.src.len() + 32);
            self.changed = true;
        }
        self.out.push_str(&self.src[self.last..start]);
        f(&mut self.out);
        self.last = end;
    }

    /// The output, with `src[end..]` dropped (`end` is `src.len()` for all of it).
    pub(crate) fn finish_at(mut self, end: usize) -> Cow<'a, str> {
        let end = end.max(self.last);
        if !self.changed {
            return Cow::Borrowed(&self.src[..end]);
        }
        self.out.push_str(&self.src[self.last..end]);
        Cow::Owned(self.out)
    }

    pub(crate) fn finish(self) -> Cow<'a, str> {
        let end = self.src.len();
        self.finish_at(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn token(m: &Masker, rule: &str, v: &str, hashable: bool, canon: Canon) -> String {
        let mut s = String::new();
        m.write(&mut s, rule, v, hashable, canon);
        s
    }

    #[test]
    fn mask_and_hash_tokens() {
        let plain = Masker::new(None).unwrap();
        assert_eq!(
            token(&plain, "email", "a@b.cn", true, Canon::Lower),
            "[REDACTED:email]"
        );
        let keyed = Masker::new(Some(KEY)).unwrap();
        let t = token(&keyed, "email", "A@B.cn", true, Canon::Lower);
        assert_eq!(t.len(), "[email:]".len() + 10);
        assert_eq!(t, token(&keyed, "email", "a@b.cn", true, Canon::Lower));
        assert_ne!(t, token(&keyed, "email", "c@b.cn", true, Canon::Lower));
        // credentials are never hashed
        assert_eq!(
            token(&keyed, "jwt", "eyJ", false, Canon::Raw),
            "[REDACTED:jwt]"
        );
    }

    #[test]
    fn same_phone_written_differently_correlates() {
        let keyed = Masker::new(Some(KEY)).unwrap();
        let a = token(&keyed, "phone", "13812345678", true, Canon::Phone);
        assert_eq!(
            a,
            token(&keyed, "phone", "+86 138-1234-5678", true, Canon::Phone)
        );
        assert_eq!(
            a,
            token(&keyed, "phone", "0086 138 1234 5678", true, Canon::Phone)
        );
    }

    #[test]
    fn hmac_matches_reference() {
        // RFC 4231 test case 2: key "Jefe" is too short for us, so check the
        // primitive directly against the known tag prefix.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let t = tag(&key, "what do ya want for nothing?", Canon::Raw);
        assert_eq!(&t.as_ref()[..5], &[0x5b, 0xdc, 0xc1, 0x46, 0xbf]);
    }

    #[test]
    fn bad_keys() {
        assert!(matches!(
            Masker::new(Some(b"")),
            Err(RedactError::BadHashKey { .. })
        ));
        assert!(matches!(
            Masker::new(Some(b"short")),
            Err(RedactError::BadHashKey { .. })
        ));
    }

    #[test]
    fn splice_borrows_until_changed() {
        let s = Splice::new("hello world");
        assert!(matches!(s.finish(), Cow::Borrowed("hello world")));
        let mut s = Splice::new("hello world");
        s.replace(6, 11, |o| o.push_str("there"));
        assert_eq!(s.finish(), "hello there");
        let mut s = Splice::new("a b c");
        s.replace(0, 1, |o| o.push('x'));
        assert_eq!(s.finish_at(3), "x b");
    }
}
