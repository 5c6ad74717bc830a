//! Values next to sensitive names in free text, found from the separator after
//! the name: `?access_token=…` (url-secret), `password: …`, `"api_key": "…"`,
//! `<secret>…</secret>` (api-key), `senderStaffId=…`, `downloadCode: …`,
//! `user=manager4711` (dingtalk); and credentials after an authorization scheme:
//! `Bearer …`, `Basic …`, `Token …` (bearer).
//!
//! No search of its own: every `:` and `=` is already found by `memchr` (see
//! `anchors`), and the name before it is classified by one backward walk of the
//! name trie (`names`), which leaves at the first byte no listed name has there.
//!
//! What counts as the value depends on the name:
//!
//! * after a password name or a DingTalk field name (`senderStaffId`, `userId`,
//!   `unionId`, `openId`, `corpId`, `conversationId`, `…DownloadCode`,
//!   `sessionWebhook`, `mobile`, …): anything up to the closing quote, or,
//!   unquoted, up to a blank, `,`, `;`, `&`, `"`, `'`, `<`, `>`, `)`, `]`, `}`
//!   or `\`, whatever it looks like (the name says what it is);
//! * after a credential name (`token`, `secret`, `api_key`, …): a run of
//!   base64/hex characters of at least 16 that looks random;
//! * after the generic names `user` and `uid`: an [`identifier`] only, so that
//!   `user=manager4711` and `uid: 0123456` are masked but `user: please help`
//!   is not.

use super::names::{self, Class};
use super::{
    is_alnum, is_secret_char, looks_random, run, Enabled, Hit, RuleId, Scan, API_KEY, BEARER,
    DINGTALK, URL_SECRET,
};

fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Length of the run of bytes before `end` satisfying `f`, looking back at most
/// `max + 1` bytes (so that a result above `max` means "too long").
fn back_run(hay: &[u8], end: usize, max: usize, f: impl Fn(u8) -> bool) -> usize {
    let from = end.saturating_sub(max + 1);
    hay[from..end]
        .iter()
        .rev()
        .position(|&b| !f(b))
        .unwrap_or(end - from)
}

fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Longest name looked at before a separator.
const NAME_MAX: usize = 64;
/// Shortest credential value accepted next to a credential name in free text.
const MIN_SECRET: usize = 16;
/// Shortest [`identifier`].
const MIN_ID: usize = 4;

/// What a value after a sensitive name must look like to be masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// Anything (a password, a DingTalk field).
    Any,
    /// A random-looking run of at least [`MIN_SECRET`] secret characters.
    Secret,
    /// An [`identifier`].
    Id,
}

/// Characters of an [`identifier`]: `A-Z a-z 0-9 _ $ : + / = . -`.
fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b':' | b'+' | b'/' | b'=' | b'.' | b'-')
}

/// Length of the identifier `v` starts with, or 0: the run of at least
/// [`MIN_ID`] characters of `A-Z a-z 0-9 _ $ : + / = . -` (without a trailing
/// `.` or `:`, sentence punctuation) that holds a digit or starts with a
/// DingTalk id prefix and goes on after it (`ding…`, `cid…`, `$:LWCP…`).
/// `manager4711`, `0123456`, `abc123`, `dingd8e1123006514592` are
/// identifiers; `please`, `admin`, `ding`, `王小明` are not.
pub(crate) fn identifier(v: &[u8]) -> usize {
    let mut l = run(v, 0, is_id_char);
    while l > 0 && matches!(v[l - 1], b'.' | b':') {
        l -= 1;
    }
    let id = &v[..l];
    let prefixed = [&b"ding"[..], b"cid", b"$:LWCP"]
        .iter()
        .any(|p| id.len() > p.len() && id.starts_with(p));
    let ok = l >= MIN_ID && (prefixed || id.iter().any(u8::is_ascii_digit));
    if ok {
        l
    } else {
        0
    }
}

/// A `:` or `=` at `p`: is there a sensitive name before it, and a value after?
pub(crate) fn separator(hay: &[u8], p: usize, en: Enabled, mode: Scan) -> Option<Hit> {
    let mut e = p - back_run(hay, p, 8, blank);
    if p - e > 8 {
        return None;
    }
    e -= back_run(hay, e, 2, |b| matches!(b, b'"' | b'\'' | b'\\')).min(2);
    // a name ends in a letter some listed name ends in (so the name is not
    // empty): test that before measuring the name
    if e == 0 || !names::may_be_sensitive(hay[e - 1]) {
        return None;
    }
    let len = back_run(hay, e, NAME_MAX, is_name);
    if len > NAME_MAX {
        return None;
    }
    let s = e - len;
    if hay[p] == b'=' && e == p && en.has(URL_SECRET) {
        if let Some(h) = url_param(hay, s, e) {
            return Some(h);
        }
    }
    let (rule, hashable, kind) = class(Class::of(&hay[s..e]), en)?;
    let mut v = p + 1;
    if matches!(hay.get(v), Some(b'=' | b'>')) {
        v += 1; // `:=`, `=>`
    }
    v += run(hay, v, blank).min(8);
    let bs = usize::from(hay.get(v) == Some(&b'\\'));
    let (v, quote) = match hay.get(v + bs) {
        // in JSON text a bare `"` ends the string the separator is in: what
        // follows is another token, not this name's value
        Some(b'"') if mode == Scan::Json && bs == 0 => return None,
        Some(&q @ (b'"' | b'\'')) => (v + bs + 1, Some(q)),
        _ => (v, None),
    };
    value(hay, v, quote, rule, hashable, kind, mode)
}

/// A `>` at `p` closing `<name`: an XML element with a sensitive name.
pub(crate) fn xml_element(hay: &[u8], p: usize, en: Enabled, mode: Scan) -> Option<Hit> {
    let len = back_run(hay, p, NAME_MAX, is_name);
    if len == 0 || len > NAME_MAX || p - len == 0 || hay[p - len - 1] != b'<' {
        return None;
    }
    if !names::may_be_sensitive(hay[p - 1]) {
        return None;
    }
    let (rule, hashable, kind) = class(Class::of(&hay[p - len..p]), en)?;
    value(hay, p + 1, Some(b'<'), rule, hashable, kind, mode)
}

/// What a value after this name is: `(rule, hashable, what it must look like)`.
fn class(c: Class, en: Enabled) -> Option<(RuleId, bool, Value)> {
    if let Some(hashable) = c.dingtalk_id().filter(|_| en.has(DINGTALK)) {
        Some((DINGTALK, hashable, Value::Any))
    } else if en.has(API_KEY) && c.password() {
        Some((API_KEY, false, Value::Any))
    } else if en.has(API_KEY) && c.credential() {
        Some((API_KEY, false, Value::Secret))
    } else if en.has(DINGTALK) && c.dingtalk_if_id() {
        Some((DINGTALK, true, Value::Id))
    } else {
        None
    }
}

/// The value starting at `v` (inside `quote` if given).
fn value(
    hay: &[u8],
    v: usize,
    quote: Option<u8>,
    rule: RuleId,
    hashable: bool,
    kind: Value,
    mode: Scan,
) -> Option<Hit> {
    if kind == Value::Id {
        // stops at any quote, blank or bracket: the same inside quotes or not
        let l = identifier(&hay[v..]);
        return (l > 0).then(|| Hit::new(v, v + l, rule, hashable));
    }
    let any_value = kind == Value::Any;
    let json = mode == Scan::Json;
    let mut l = if !any_value {
        run(hay, v, is_secret_char)
    } else if let Some(q) = quote {
        run(hay, v, |b| {
            b != q && b != b'\\' && b != b'\n' && b != b'\r' && !(json && b == b'"')
        })
    } else {
        let l = run(hay, v, |b| {
            b > b' '
                && !matches!(
                    b,
                    b',' | b';' | b'&' | b'"' | b'\'' | b'<' | b'>' | b')' | b'}' | b']' | b'\\'
                )
        });
        cjk_punctuation(&hay[v..v + l]).unwrap_or(l)
    };
    if !any_value {
        l -= hay[v..v + l]
            .iter()
            .rev()
            .take_while(|&&b| b == b'.')
            .count();
    }
    let val = &hay[v..v + l];
    let ok = if any_value {
        l > 0 && !matches!(val.first(), Some(b'{' | b'['))
    } else {
        l >= MIN_SECRET && looks_random(val)
    };
    ok.then(|| Hit::new(v, v + l, rule, hashable))
}

/// Where the first full-width comma, stop, semicolon or colon (or the ideographic
/// comma) is in `s`: Chinese text separates `password=x，user: y` with them, and a
/// value never contains one.
fn cjk_punctuation(s: &[u8]) -> Option<usize> {
    const MARKS: [[u8; 3]; 5] = [
        [0xEF, 0xBC, 0x8C], // ，
        [0xEF, 0xBC, 0x9B], // ；
        [0xEF, 0xBC, 0x9A], // ：
        [0xE3, 0x80, 0x82], // 。
        [0xE3, 0x80, 0x81], // 、
    ];
    s.windows(3).position(|w| MARKS.iter().any(|m| m == w))
}

/// `?name=value` / `&name=value` (also after `;`, `#`, a JSON-escaped `\u0026`
/// or a percent-encoded `%26`/`%3F`) with a sensitive name: the value.
fn url_param(hay: &[u8], mut s: usize, e: usize) -> Option<Hit> {
    let name = &hay[s..e];
    let prev = s.checked_sub(1).map(|i| hay[i]);
    let ok = match prev {
        Some(b'?' | b'&' | b';' | b'#') => true,
        Some(b'\\') if name.len() > 5 && name[..5].eq_ignore_ascii_case(b"u0026") => {
            s += 5;
            true
        }
        Some(b'%')
            if name.len() > 2
                && (name[..2].eq_ignore_ascii_case(b"26")
                    || name[..2].eq_ignore_ascii_case(b"3f")) =>
        {
            s += 2;
            true
        }
        _ => false,
    };
    if !ok || !Class::of(&hay[s..e]).url_param() {
        return None;
    }
    let v = e + 1;
    let l = run(hay, v, |b| {
        !matches!(b, b'&' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\') && b > b' '
    });
    let l = cjk_punctuation(&hay[v..v + l]).unwrap_or(l);
    (l > 0).then(|| Hit::new(v, v + l, URL_SECRET, false))
}

/// An authorization scheme word at `[s, e)` followed by a credential.
pub(crate) fn scheme(hay: &[u8], s: usize, e: usize, mode: Scan) -> Option<Hit> {
    if s > 0 && (is_alnum(hay[s - 1]) || matches!(hay[s - 1], b'-' | b'_')) {
        return None;
    }
    let sp = run(hay, e, blank);
    if sp == 0 || sp > 4 {
        return None;
    }
    let v = e + sp;
    let word = &hay[s..e];
    let json = mode == Scan::Json;
    let whole_line = word.eq_ignore_ascii_case(b"digest") || word.starts_with(b"AWS4");
    let (l, ok) = if whole_line {
        let l = run(hay, v, |b| b != b'\n' && b != b'\r' && !(json && b == b'"'));
        (l, l >= 8)
    } else {
        let l = run(hay, v, is_secret_char);
        let l = l - hay[v..v + l]
            .iter()
            .rev()
            .take_while(|&&b| b == b'.')
            .count();
        (l, l >= 6 && looks_random(&hay[v..v + l]))
    };
    ok.then(|| Hit::new(v, v + l, BEARER, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::BUILTIN;

    fn all() -> Enabled {
        (0..9).fold(Enabled::default(), |e, i| e.with(i))
    }

    /// Runs `separator` at the first `:` or `=` at or after `from`.
    fn sep(s: &str) -> Option<(&str, &'static str)> {
        let p = s.find([':', '=']).unwrap();
        separator(s.as_bytes(), p, all(), Scan::Text)
            .map(|h| (&s[h.start..h.end], BUILTIN[h.rule as usize]))
    }

    fn sep_at<'s>(s: &'s str, marker: &str) -> Option<(&'s str, &'static str)> {
        let p = s.find(marker).unwrap() + marker.len() - 1;
        separator(s.as_bytes(), p, all(), Scan::Text)
            .map(|h| (&s[h.start..h.end], BUILTIN[h.rule as usize]))
    }

    #[test]
    fn url_params() {
        let s = "GET https://oapi.dingtalk.com/robot/send?access_token=4f1a9c0b8d&x=1";
        assert_eq!(sep_at(s, "token="), Some(("4f1a9c0b8d", "url-secret")));
        let s = "/cb?timestamp=1700000000000&sign=abcDEF%2B123%3D HTTP/1.1";
        assert_eq!(sep_at(s, "sign="), Some(("abcDEF%2B123%3D", "url-secret")));
        let s = r#"{"url":"https://x.cn/p?a=1\u0026session=s3ss10n"}"#;
        assert_eq!(sep_at(s, "session="), Some(("s3ss10n", "url-secret")));
        let s = "https://x.cn/p?a=1%26code=abc";
        assert_eq!(sep_at(s, "code="), Some(("abc", "url-secret")));
        assert_eq!(sep("?monkey=banana"), None);
        assert_eq!(sep("?errcode=0"), None);
    }

    #[test]
    fn key_values() {
        assert_eq!(sep("password=hunter2 next"), Some(("hunter2", "api-key")));
        assert_eq!(
            sep(r#""db_password": "p@ss w0rd","#),
            Some(("p@ss w0rd", "api-key"))
        );
        let sha = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        assert_eq!(sep(&format!("token: {sha}.")), Some((sha, "api-key")));
        assert_eq!(
            sep(&format!(r#"\"secret\":\"{sha}\""#)),
            Some((sha, "api-key"))
        );
        assert_eq!(
            sep("senderStaffId=manager4220;"),
            Some(("manager4220", "dingtalk"))
        );
        assert_eq!(
            sep("API-KEY := AbCdEf0123456789xyz"),
            Some(("AbCdEf0123456789xyz", "api-key"))
        );
        // short or word-like values next to credential names are left alone
        assert_eq!(sep("token: expired"), None);
        assert_eq!(sep("secret: this_is_not_a_secret_value"), None);
        assert_eq!(sep("max_tokens: 1024"), None);
        assert_eq!(sep("note: the token is gone"), None);
        assert_eq!(sep("x=1"), None);
    }

    #[test]
    fn identifiers() {
        fn id(s: &str) -> &str {
            &s[..identifier(s.as_bytes())]
        }
        for s in [
            "manager4711",
            "0123456",
            "abc123",
            "1000",
            "dingd8e1123006514592",
            "dingxyz",
            "cidAbCdEf",
            "$:LWCP_v1:$Aa1Bb2Cc3Dd4==",
            "IJQ1kZ+Ab/cd==",
            "user_01",
            "a-b.c-9",
        ] {
            assert_eq!(id(s), s, "{s}");
        }
        // a trailing `.` or `:` is punctuation; the run stops at anything else
        assert_eq!(id("manager4711."), "manager4711");
        assert_eq!(id("uid42: failed"), "uid42");
        assert_eq!(id("abc123,def"), "abc123");
        assert_eq!(id("abc123&x=1"), "abc123");
        assert_eq!(id("abc123\"x"), "abc123");
        assert_eq!(id("abc123)"), "abc123");
        assert_eq!(id("abc123张三"), "abc123");
        for s in [
            "please help",
            "admin",
            "ding",
            "cid",
            "$:LWCP",
            "Zhang_San",
            "王小明",
            "123",
            "a1",
            "...",
            "::::",
            "",
            " abc123",
            "\"abc123\"",
        ] {
            assert_eq!(identifier(s.as_bytes()), 0, "{s}");
        }
    }

    /// Every DingTalk identifier name, with every separator: the value, whole.
    #[test]
    fn dingtalk_names_and_separators() {
        let names = [
            "senderStaffId",
            "staffId",
            "staff_id",
            "userId",
            "USERID",
            "user_id",
            "chatbotUserId",
            "unionid",
            "unionId",
            "openid",
            "openId",
            "corpId",
            "chatbotCorpId",
            "senderId",
            "conversationId",
            "openConversationId",
            "dingtalkId",
            "downloadCode",
            "pictureDownloadCode",
            "outTrackId",
            "openSpaceId",
            "spaceId",
            "openThreadId",
            "mobile",
            "user",
            "User",
            "uid",
            "UID",
        ];
        let values = [
            "manager4711",
            "0123456",
            "$:LWCP_v1:$Aa1Bb2Cc3Dd4==",
            "dingd8e1123006514592",
            "cidAbCdEfGh12345678+/IjKl==",
            "IJQ1kZAbcd9iEiE",
        ];
        // (separator, closing quote)
        let seps = [
            ("=", ""),
            (":", ""),
            (": ", ""),
            (" : ", ""),
            (" = ", ""),
            (":=", ""),
            ("=>", ""),
            (":\t", ""),
            ("=\"", "\""),
            (": \"", "\""),
            (":'", "'"),
            ("\":\"", "\""),
            ("\": \"", "\""),
            ("\\\":\\\"", "\\\""),
        ];
        // the separator after the name
        fn after<'s>(s: &'s str, name: &str) -> Option<(&'s str, &'static str)> {
            let at = s.find(name).unwrap() + name.len();
            let p = at + s[at..].find([':', '=']).unwrap();
            separator(s.as_bytes(), p, all(), Scan::Text)
                .map(|h| (&s[h.start..h.end], BUILTIN[h.rule as usize]))
        }
        for name in names {
            for v in values {
                for (sep, close) in seps {
                    let s = format!("at X.y({name}{sep}{v}{close}) failed");
                    assert_eq!(after(&s, name), Some((v, "dingtalk")), "{s}");
                    // and every end of the value
                    for end in ["", ",", ";", "&", "\"", "'", ")", "]", "}", " x", "\n"] {
                        let s = format!("{name}{sep}{v}{close}{end}");
                        assert_eq!(after(&s, name), Some((v, "dingtalk")), "{s}");
                    }
                }
            }
        }
    }

    #[test]
    fn generic_names_need_an_identifier() {
        for s in [
            "user: please help",
            "User: hello there",
            "user=admin",
            "uid: none",
            "user: 王小明",
            "user: ding",
            "user: \"please help\"",
            "uid=7",
            "user = ",
            "user:",
            "users: abc123",
            "username: abc123",
            "uuid: 550e8400",
            "guid=abc123",
        ] {
            let p = s.find([':', '=']).unwrap();
            assert_eq!(separator(s.as_bytes(), p, all(), Scan::Text), None, "{s}");
        }
        assert_eq!(sep("user: abc123 logged in"), Some(("abc123", "dingtalk")));
        assert_eq!(sep("user=manager4711."), Some(("manager4711", "dingtalk")));
        assert_eq!(
            sep("user: dingd8e1123006514592"),
            Some(("dingd8e1123006514592", "dingtalk"))
        );
        // the name decides for the DingTalk field names, not the value
        assert_eq!(sep("userId: please"), Some(("please", "dingtalk")));
        assert_eq!(sep("senderNick: 王小明"), Some(("王小明", "dingtalk")));
    }

    #[test]
    fn download_codes_are_credentials() {
        let en = all();
        for s in [
            "downloadCode=mIofN681YE3f/+m+NntqpXXW1vfAkmM=",
            "\"pictureDownloadCode\":\"9hSK+hQyEBYg/EqGy==\"",
        ] {
            let p = s.find([':', '=']).unwrap();
            let h = separator(s.as_bytes(), p, en, Scan::Text).unwrap();
            assert!(!h.hashable && h.rule == DINGTALK, "{s}");
        }
        let h = separator(b"userId=abc123", 6, en, Scan::Text).unwrap();
        assert!(h.hashable);
    }

    #[test]
    fn off_with_the_dingtalk_rule() {
        let en = Enabled::default().with(API_KEY).with(URL_SECRET);
        for s in ["user=abc123", "downloadCode: abc123", "userId=x1"] {
            let p = s.find([':', '=']).unwrap();
            assert_eq!(separator(s.as_bytes(), p, en, Scan::Text), None, "{s}");
        }
    }

    #[test]
    fn xml_elements() {
        let s = "<req><password>hunter2</password><name>li</name></req>";
        let p = s.find("password>").unwrap() + 8;
        let h = xml_element(s.as_bytes(), p, all(), Scan::Text).unwrap();
        assert_eq!(&s[h.start..h.end], "hunter2");
        let p = s.find("name>").unwrap() + 4;
        assert_eq!(xml_element(s.as_bytes(), p, all(), Scan::Text), None);
        let p = s.find("/password>").unwrap() + 9;
        assert_eq!(xml_element(s.as_bytes(), p, all(), Scan::Text), None);
    }

    #[test]
    fn schemes() {
        let at = |s: &str, w: &str| {
            let p = s.find(w).unwrap();
            scheme(s.as_bytes(), p, p + w.len(), Scan::Text).map(|h| s[h.start..h.end].to_owned())
        };
        assert_eq!(
            at("Authorization: Bearer abc.DEF-123_xyz", "Bearer").as_deref(),
            Some("abc.DEF-123_xyz")
        );
        assert_eq!(
            at("Token 9f8e7d6c5b4a3210.", "Token").as_deref(),
            Some("9f8e7d6c5b4a3210")
        );
        assert_eq!(
            at("Digest username=\"a\", response=\"x\"", "Digest").as_deref(),
            Some("username=\"a\", response=\"x\"")
        );
        for (s, w) in [
            ("Basic authentication", "Basic"),
            ("a Bearer token", "Bearer"),
            ("Basic plan", "Basic"),
            ("max_token 1234567", "token"),
        ] {
            assert_eq!(at(s, w), None, "{s}");
        }
        // in JSON, a whole-line scheme value stops at the end of its string
        let s = r#"{"a":"Digest abcdefgh","b":"x"}"#;
        let p = s.find("Digest").unwrap();
        let h = scheme(s.as_bytes(), p, p + 6, Scan::Json).unwrap();
        assert_eq!(&s[h.start..h.end], "abcdefgh");
    }
}
