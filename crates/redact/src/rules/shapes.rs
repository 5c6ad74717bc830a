//! Checks for values recognisable by their own shape: e-mail addresses, JWTs,
//! provider API keys, DingTalk ids, and passwords in URL userinfo. Each check is
//! called at a trigger literal and looks only at the bytes around it.

use super::{is_alnum, looks_random, run, Hit, API_KEY, DINGTALK, EMAIL, JWT, URL_SECRET};

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-')
}

/// Longest local part of an e-mail address (RFC 5321).
const MAX_LOCAL: usize = 64;

/// `local@domain.tld` around the `@` at `at`.
pub(crate) fn email(hay: &[u8], at: usize) -> Option<Hit> {
    let mut s = at;
    while s > 0 && at - s < MAX_LOCAL && is_local(hay[s - 1]) {
        s -= 1;
    }
    while s < at && hay[s] == b'.' {
        s += 1;
    }
    if s == at {
        return None;
    }
    let mut p = at + 1;
    let mut labels = 0;
    let mut last = (p, p);
    loop {
        let l = run(hay, p, |b| b.is_ascii_alphanumeric() || b == b'-');
        if l == 0 {
            break;
        }
        labels += 1;
        last = (p, p + l);
        p += l;
        if hay.get(p) == Some(&b'.') && hay.get(p + 1).is_some_and(|&b| is_alnum(b)) {
            p += 1;
        } else {
            break;
        }
    }
    let tld = &hay[last.0..last.1];
    let tld_ok =
        tld.len() >= 2 && (tld.iter().all(u8::is_ascii_alphabetic) || tld.starts_with(b"xn--"));
    (labels >= 2 && tld_ok).then(|| Hit::new(s, last.1, EMAIL, true))
}

/// A JWT (`eyJ…` `.` payload `.` signature) or a long bare `eyJ…` base64 JSON.
pub(crate) fn jwt(hay: &[u8], s: usize) -> Option<Hit> {
    if &hay[s..s + 3] != b"eyJ" || (s > 0 && is_b64url(hay[s - 1])) {
        return None;
    }
    let l1 = run(hay, s, is_b64url);
    let mut end = s + l1;
    let mut segments = 1;
    while segments < 3 && hay.get(end) == Some(&b'.') {
        let l = run(hay, end + 1, is_b64url);
        if l < 2 && segments == 1 {
            break;
        }
        end += 1 + l;
        segments += 1;
    }
    ((segments > 1 && l1 >= 10) || l1 >= 20).then(|| Hit::new(s, end, JWT, false))
}

/// What the body of a provider key is made of: bits of [`BODY`].
#[derive(Debug, Clone, Copy)]
struct Body(u8);

const ALNUM: Body = Body(1);
const UPPER_DIGIT: Body = Body(2);
const B64URL: Body = Body(4);
const ALNUM_UNDERSCORE: Body = Body(8);
const ALNUM_DASH: Body = Body(16);

/// Per byte, the [`Body`] kinds it belongs to: one lookup per byte of a key
/// body instead of a call through a function pointer.
static BODY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let (upper, lower, digit) = (
            c.is_ascii_uppercase(),
            c.is_ascii_lowercase(),
            c.is_ascii_digit(),
        );
        let alnum = upper || lower || digit;
        let mut k = 0;
        if alnum {
            k |= ALNUM.0 | B64URL.0 | ALNUM_UNDERSCORE.0 | ALNUM_DASH.0;
        }
        if upper || digit {
            k |= UPPER_DIGIT.0;
        }
        if c == b'_' {
            k |= B64URL.0 | ALNUM_UNDERSCORE.0;
        }
        if c == b'-' {
            k |= B64URL.0 | ALNUM_DASH.0;
        }
        t[b] = k;
        b += 1;
    }
    t
};

impl Body {
    fn has(self, b: u8) -> bool {
        BODY[usize::from(b)] & self.0 != 0
    }
}

/// A provider key prefix, the bytes its key body is made of, and the shortest body.
type Provider = (&'static [u8], Body, usize);

/// Provider key prefixes (exact case) and what follows them.
const PROVIDERS: &[Provider] = &[
    (b"sk-", B64URL, 20),
    (b"AKID", ALNUM, 13),
    (b"LTAI", ALNUM, 12),
    (b"AKIA", UPPER_DIGIT, 16),
    (b"ASIA", UPPER_DIGIT, 16),
    (b"ghp_", ALNUM, 30),
    (b"gho_", ALNUM, 30),
    (b"ghu_", ALNUM, 30),
    (b"ghs_", ALNUM, 30),
    (b"ghr_", ALNUM, 30),
    (b"github_pat_", ALNUM_UNDERSCORE, 30),
    (b"xoxa-", ALNUM_DASH, 10),
    (b"xoxb-", ALNUM_DASH, 10),
    (b"xoxp-", ALNUM_DASH, 10),
    (b"xoxr-", ALNUM_DASH, 10),
    (b"AIza", B64URL, 30),
    (b"glpat-", B64URL, 20),
];

/// `sk-…`, `AKID…`, `LTAI…`, `AKIA…`/`ASIA…`, `ghp_…`, `github_pat_…`, `xoxb-…`, …
pub(crate) fn provider(hay: &[u8], s: usize, e: usize) -> Option<Hit> {
    let lit = &hay[s..e];
    let &(_, body, min) = PROVIDERS.iter().find(|(p, _, _)| *p == lit)?;
    // glued to what comes before (also `sk-sk-…`: no re-scan of the same run)
    if s > 0 && (body.has(hay[s - 1]) || is_b64url(hay[s - 1])) {
        return None;
    }
    let l = run(hay, e, |b| body.has(b));
    let v = &hay[e..e + l];
    // cloud access key ids are distinctive enough by prefix and length; the
    // others must look random (`sk-`: contain a digit)
    let random = matches!(lit, b"AKID" | b"LTAI" | b"AKIA" | b"ASIA")
        || v.iter().any(u8::is_ascii_digit)
        || (lit != b"sk-" && looks_random(v));
    (l >= min && random).then(|| Hit::new(s, e + l, API_KEY, false))
}

/// DingTalk `$:LWCP_v1:$<base64>` staff/sender ids, starting at `s`.
pub(crate) fn lwcp(hay: &[u8], s: usize) -> Option<Hit> {
    const PREFIX: &[u8] = b"$:LWCP_v1:$";
    if !hay[s..].starts_with(PREFIX) {
        return None;
    }
    let e = s + PREFIX.len();
    let l = run(hay, e, is_b64);
    (l >= 8).then(|| Hit::new(s, e + l, DINGTALK, true))
}

/// DingTalk conversation ids: `cid` + at least 16 base64 characters with an
/// upper-case letter and a digit or base64 punctuation (so `cider` or
/// `cidr_blocks_for_production` are left alone).
pub(crate) fn cid(hay: &[u8], s: usize) -> Option<Hit> {
    if &hay[s..s + 3] != b"cid" || (s > 0 && is_b64(hay[s - 1])) {
        return None;
    }
    let l = run(hay, s + 3, is_b64);
    let v = &hay[s + 3..s + 3 + l];
    let upper = v.iter().any(u8::is_ascii_uppercase);
    let mixed = v
        .iter()
        .any(|&b| b.is_ascii_digit() || matches!(b, b'+' | b'/' | b'='));
    (l >= 16 && upper && mixed).then(|| Hit::new(s, s + 3 + l, DINGTALK, true))
}

/// DingTalk corp ids: `ding` + 16 to 32 lower-case hex digits.
pub(crate) fn corp_id(hay: &[u8], s: usize, e: usize) -> Option<Hit> {
    if &hay[s..e] != b"ding" || (s > 0 && is_alnum(hay[s - 1])) {
        return None;
    }
    let l = run(hay, e, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let glued = hay.get(e + l).is_some_and(|&b| is_alnum(b));
    ((16..=32).contains(&l) && !glued).then(|| Hit::new(s, e + l, DINGTALK, true))
}

/// `scheme://user:password@host`: the whole userinfo is masked.
pub(crate) fn userinfo(hay: &[u8], e: usize) -> Option<Hit> {
    let l = run(hay, e, |b| {
        !matches!(
            b,
            b'/' | b'?' | b'#' | b'@' | b'"' | b'\'' | b'<' | b'>' | b'\\'
        ) && b > b' '
    });
    let info = &hay[e..e + l];
    (l > 0 && l <= 512 && hay.get(e + l) == Some(&b'@') && info.contains(&b':'))
        .then(|| Hit::new(e, e + l, URL_SECRET, false))
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_kinds_are_the_byte_classes_they_name() {
        for b in 0..=255u8 {
            let alnum = b.is_ascii_alphanumeric();
            assert_eq!(super::ALNUM.has(b), alnum);
            assert_eq!(
                super::UPPER_DIGIT.has(b),
                b.is_ascii_uppercase() || b.is_ascii_digit()
            );
            assert_eq!(super::B64URL.has(b), super::is_b64url(b));
            assert_eq!(super::ALNUM_UNDERSCORE.has(b), alnum || b == b'_');
            assert_eq!(super::ALNUM_DASH.has(b), alnum || b == b'-');
        }
    }

    use super::*;

    fn at(s: &str, lit: &str) -> usize {
        s.find(lit).unwrap()
    }

    fn span(s: &str, h: Option<Hit>) -> Option<&str> {
        h.map(|h| &s[h.start..h.end])
    }

    #[test]
    fn emails() {
        let s = "mail zhang.san+tag@mail.example.com.cn, ok";
        assert_eq!(
            span(s, email(s.as_bytes(), at(s, "@"))),
            Some("zhang.san+tag@mail.example.com.cn")
        );
        let s = "end: a@b.io.";
        assert_eq!(span(s, email(s.as_bytes(), at(s, "@"))), Some("a@b.io"));
        for s in [
            "@张三 hi",
            "user@localhost",
            "x@1.2",
            "a@b.c",
            "@@",
            "npm i @scope/pkg",
        ] {
            let p = at(s, "@");
            assert_eq!(email(s.as_bytes(), p), None, "{s}");
        }
    }

    #[test]
    fn jwts() {
        let t =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let s = format!("token {t} end");
        assert_eq!(span(&s, jwt(s.as_bytes(), at(&s, "eyJ"))), Some(t));
        let s = "eyJ.x and xeyJhbGciOiJIUzI1NiJ9.a.b";
        assert_eq!(jwt(s.as_bytes(), 0), None);
        assert_eq!(jwt(s.as_bytes(), at(s, "eyJh")), None);
    }

    #[test]
    fn providers() {
        for k in [
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
            "sk-ant-api03-abcdefghijklmnop1234567890",
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA",
            "LTAI5tFzHs6oQkHvzG3DxyZ2",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
            "glpat-xXyYzZ0123456789abcd",
        ] {
            let s = format!("key: {k}.");
            let lit_len = if k.starts_with("github_pat_") {
                11
            } else if k.starts_with("xox") {
                5
            } else if k.starts_with("glpat") {
                6
            } else if k.starts_with("sk-") {
                3
            } else {
                4
            };
            let p = at(&s, &k[..lit_len]);
            assert_eq!(
                span(&s, provider(s.as_bytes(), p, p + lit_len)),
                Some(k),
                "{k}"
            );
        }
        for s in [
            "task-management-system-for-teams",
            "sk-short1",
            "Asia/Shanghai",
            "akid",
            "xAKIAIOSFODNN7EXAMPLE",
        ] {
            let b = s.as_bytes();
            let lower = s.to_ascii_lowercase();
            for lit in ["sk-", "asia", "akid", "akia"] {
                if let Some(p) = lower.find(lit) {
                    assert_eq!(provider(b, p, p + lit.len()), None, "{s}");
                }
            }
        }
    }

    #[test]
    fn dingtalk_ids() {
        let s = "from $:LWCP_v1:$Aa1Bb2Cc3Dd4== ok";
        assert_eq!(
            span(s, lwcp(s.as_bytes(), 5)),
            Some("$:LWCP_v1:$Aa1Bb2Cc3Dd4==")
        );
        let s = "in cidAbCdEfGh12345678+/IjKl== now";
        assert_eq!(
            span(s, cid(s.as_bytes(), 3)),
            Some("cidAbCdEfGh12345678+/IjKl==")
        );
        for s in ["cider", "cidr_blocks_for_production", "decide"] {
            let p = at(s, "cid");
            assert_eq!(cid(s.as_bytes(), p), None, "{s}");
        }
        let s = "corp dingd8e1123006514592 x";
        assert_eq!(
            span(s, corp_id(s.as_bytes(), 5, 9)),
            Some("dingd8e1123006514592")
        );
        let s = "dingtalk and dingding";
        assert_eq!(corp_id(s.as_bytes(), 0, 4), None);
    }

    #[test]
    fn userinfo_passwords() {
        let s = "redis://admin:hunter2@10.0.0.1:6379/0";
        let e = at(s, "://") + 3;
        assert_eq!(span(s, userinfo(s.as_bytes(), e)), Some("admin:hunter2"));
        let s = "https://example.com/a@b";
        assert_eq!(userinfo(s.as_bytes(), at(s, "://") + 3), None);
        let s = "https://user@example.com/";
        assert_eq!(userinfo(s.as_bytes(), at(s, "://") + 3), None);
    }
}
