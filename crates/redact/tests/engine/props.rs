//! Property tests: no panics on anything, planted identifiers never survive,
//! JSON stays JSON, and the JSON grammar check agrees with serde_json.

use proptest::prelude::*;
use proptest::sample::select;

use clawveil_redact::{BodySample, OmitReason, Report};

use crate::engine;
use crate::support::{id_card, luhn_complete, pieces};

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/problem+json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "text/html; charset=UTF-8",
    "text/event-stream",
    "application/xml",
    "application/octet-stream",
    "image/png",
    "multipart/form-data; boundary=x",
    "text/plain; charset=gbk",
    "",
    ";;;",
    "text/",
    "/json",
];

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        select(CONTENT_TYPES).prop_map(|s| Some(s.to_owned())),
        ".{0,30}".prop_map(Some),
    ]
}

/// `(text to insert, the secret part that must disappear)`.
fn planted() -> impl Strategy<Value = (String, String)> {
    fn same(s: String) -> (String, String) {
        (s.clone(), s)
    }
    prop_oneof![
        "1[3-9][0-9]{9}".prop_map(same),
        "1[3-9][0-9]{9}".prop_map(|p| {
            let s = format!("+86 {} {} {}", &p[..3], &p[3..7], &p[7..]);
            (s.clone(), s)
        }),
        "1[3-9][0-9]{9}".prop_map(|p| same(format!("{}-{}-{}", &p[..3], &p[3..7], &p[7..]))),
        "\\+[1-9][0-9]{9,12}".prop_map(same),
        "[a-z][a-z0-9._]{0,10}[a-z0-9]@[a-z]{2,10}\\.(com|cn|org|net)".prop_map(same),
        (
            "[1-6][0-9]{5}",
            1950u32..2020,
            1u32..13,
            1u32..29,
            "[0-9]{3}"
        )
            .prop_map(|(a, y, m, d, s)| same(id_card(&format!("{a}{y}{m:02}{d:02}{s}")))),
        "(4[0-9]|5[1-5]|62)[0-9]{13}".prop_map(|p| same(luhn_complete(&p))),
        "62[0-9]{16}".prop_map(|p| same(luhn_complete(&p))),
        "sk-(proj-)?[A-Za-z]{8}[0-9][A-Za-z0-9]{24}".prop_map(same),
        "AKIA[A-Z0-9]{16}".prop_map(same),
        "ghp_[A-Za-z0-9]{36}".prop_map(same),
        "eyJ[A-Za-z0-9_-]{12,30}\\.eyJ[A-Za-z0-9_-]{12,30}\\.[A-Za-z0-9_-]{16,40}".prop_map(same),
        "[a-f0-9]{32}".prop_map(|t| (
            format!("https://oapi.dingtalk.com/robot/send?access_token={t}"),
            t
        )),
        "[A-Za-z0-9]{12}".prop_map(|t| (format!("https://x.cn/cb?timestamp=1&sign={t}"), t)),
        "[A-Za-z0-9+/]{20,30}".prop_map(|t| same(format!("$:LWCP_v1:${t}"))),
        "[A-Za-z]{6}[0-9][A-Za-z0-9._-]{12}".prop_map(|t| (format!("Bearer {t}"), t)),
        "[A-Za-z0-9!@#%^*]{6,16}".prop_map(|t| (format!("password={t}"), t)),
        named_id(),
    ]
}

/// Names that label user ids and download codes in free text, in the case
/// and separator styles logs use.
const ID_NAMES: &[&str] = &[
    "user",
    "User",
    "uid",
    "UID",
    "userId",
    "user_id",
    "staffId",
    "senderStaffId",
    "unionid",
    "openid",
    "openId",
    "corpId",
    "chatbotUserId",
    "conversationId",
    "downloadCode",
    "pictureDownloadCode",
    "outTrackId",
    "spaceId",
    "mobile",
];

/// `name<sep>value` with an identifier-like value (see the `identifier` rule: at
/// least 4 characters, with a digit or a DingTalk id prefix): `(text, value)`.
fn named_id() -> impl Strategy<Value = (String, String)> {
    let value = prop_oneof![
        "[a-z]{3,8}[0-9]{1,6}",
        "0[0-9]{6,17}",
        "[A-Za-z0-9]{3,10}[0-9][A-Za-z0-9+/]{0,12}={0,2}",
        "ding[0-9a-f]{16}",
        "\\$:LWCP_v1:\\$[A-Za-z0-9+/]{10,20}",
        "DLCODE-canary-[A-Za-z0-9]{3,11}[0-9]",
    ];
    let sep = select(&["=", ":", ": ", " = ", ":=", "=\"", ": '", "\":\"", "\": \""][..]);
    (select(ID_NAMES), sep, value).prop_map(|(name, sep, value)| {
        let close = match sep.chars().last() {
            Some(q @ ('"' | '\'')) => q.to_string(),
            _ => String::new(),
        };
        (format!("{name}{sep}{value}{close}"), value)
    })
}

/// Text around the planted values: words, CJK, punctuation, digits.
fn filler() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.:;!?\u{4e00}-\u{4e20}@=&/_-]{0,30}"
}

fn separator() -> impl Strategy<Value = &'static str> {
    select(&[" ", "\n", "，", "。", " (", ") ", "\t", "; ", ": ", " = "][..])
}

/// Random text with identifiers planted in it; also the text without them.
fn document() -> impl Strategy<Value = (String, String, Vec<String>)> {
    (
        filler(),
        prop::collection::vec((separator(), planted(), separator(), filler()), 1..5),
    )
        .prop_map(|(head, parts)| {
            let (mut text, mut skeleton, mut secrets) = (head.clone(), head, Vec::new());
            for (a, (insert, secret), b, tail) in parts {
                text.push_str(&format!("{a}{insert}{b}{tail}"));
                skeleton.push_str(&format!("{a}{b}{tail}"));
                secrets.push(secret);
            }
            (text, skeleton, secrets)
        })
}

#[track_caller]
fn assert_gone(out: &str, skeleton: &str, secrets: &[String]) {
    for s in secrets {
        for p in pieces(s, 8) {
            if !skeleton.contains(&p) {
                assert!(!out.contains(&p), "`{p}` of `{s}` survived in {out:?}");
            }
        }
    }
}

fn sample_text(s: BodySample) -> String {
    match s {
        BodySample::Redacted { text, .. } => text,
        BodySample::Empty => String::new(),
        other => panic!("{other:?}"),
    }
}

/// A JSON value holding planted identifiers in strings, numbers and keys.
fn json_value() -> impl Strategy<Value = (serde_json::Value, Vec<String>)> {
    let leaf = prop_oneof![
        Just((serde_json::Value::Null, vec![])),
        any::<bool>().prop_map(|b| (b.into(), vec![])),
        any::<i64>().prop_map(|n| (n.into(), vec![])),
        (-1e9f64..1e9).prop_map(|f| (f.into(), vec![])),
        "1[3-9][0-9]{9}".prop_map(|p| (p.parse::<u64>().unwrap().into(), vec![p])),
        filler().prop_map(|s| (s.into(), vec![])),
        (filler(), planted(), filler())
            .prop_map(|(a, (p, s), b)| (format!("{a} {p} {b}").into(), vec![s])),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            "[a-zA-Z_]{1,12}",
            select(
                &[
                    "senderStaffId",
                    "senderNick",
                    "user",
                    "uid",
                    "downloadCode",
                    "mobile",
                    "access_token",
                    "appSecret",
                    "max_tokens",
                    "conversationId",
                    "text"
                ][..]
            )
            .prop_map(str::to_owned),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| {
                let secrets = v.iter().flat_map(|(_, s)| s.clone()).collect();
                (
                    serde_json::Value::Array(v.into_iter().map(|(j, _)| j).collect()),
                    secrets,
                )
            }),
            prop::collection::vec((key, inner), 0..5).prop_map(|v| {
                let secrets = v.iter().flat_map(|(_, (_, s))| s.clone()).collect();
                let map = v.into_iter().map(|(k, (j, _))| (k, j)).collect();
                (serde_json::Value::Object(map), secrets)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn never_panics_on_arbitrary_bytes(
        body in prop::collection::vec(any::<u8>(), 0..400),
        ct in content_type(),
        ce in prop::option::of(select(&["gzip", "identity", "", "br"][..])),
        max_len in 0usize..500,
        prefix in any::<bool>(),
    ) {
        let eng = engine();
        let mut r = Report::with_matches();
        let s = if prefix {
            eng.redact_body_prefix(&body, ct.as_deref(), ce, max_len, &mut r)
        } else {
            eng.redact_body(&body, ct.as_deref(), ce, max_len, &mut r)
        };
        if let BodySample::Redacted { text, .. } = s {
            prop_assert!(text.len() <= max_len);
        }
        for m in r.matches() {
            prop_assert!(m.offset + m.len <= body.len());
        }
        let text = String::from_utf8_lossy(&body);
        eng.redact_text(&text, &mut r);
        eng.redact_query(&text, &mut r);
        eng.redact_header("Authorization", &text, &mut r);
        eng.redact_header(ct.as_deref().unwrap_or("x-any"), &text, &mut r);
    }

    #[test]
    fn never_panics_on_json_like_text(s in r#"[\[\]{}":,\\ 0-9a-z.+eE\-tfn\u{4e00}]{0,200}"#, prefix in any::<bool>()) {
        let eng = engine();
        let mut r = Report::new();
        if prefix {
            eng.redact_body_prefix(s.as_bytes(), Some("application/json"), None, 300, &mut r);
        } else {
            eng.redact_body(s.as_bytes(), Some("application/json"), None, 300, &mut r);
        }
    }

    #[test]
    fn planted_identifiers_never_survive((text, skeleton, secrets) in document(), max_len in 0usize..400) {
        let eng = engine();
        let out = eng.redact_text(&text, &mut Report::new());
        assert_gone(&out, &skeleton, &secrets);
        let sample = sample_text(eng.redact_body(text.as_bytes(), Some("text/plain"), None, max_len, &mut Report::new()));
        assert_gone(&sample, &skeleton, &secrets);
        // inside a JSON string, and in a form body
        let json = serde_json::to_string(&serde_json::json!({ "content": text })).unwrap();
        let out = sample_text(eng.redact_body(json.as_bytes(), Some("application/json"), None, 1 << 16, &mut Report::new()));
        assert_gone(&out, &skeleton, &secrets);
        // and cut off anywhere
        let cut = max_len.min(text.len());
        let cut = (0..=cut).rev().find(|&c| text.is_char_boundary(c)).unwrap();
        let out = sample_text(eng.redact_body_prefix(&text.as_bytes()[..cut], Some("text/plain"), None, 1 << 16, &mut Report::new()));
        assert_gone(&out, &skeleton, &secrets);
    }

    /// Names, separators, id prefixes, terminators and CJK densely mixed: the
    /// identifier rule never panics, reports spans inside the input, and
    /// JSON stays JSON.
    #[test]
    fn identifier_names_in_noise(
        s in "((user|uid|UID|userId|downloadCode|senderStaffId|openid|spaceId)|[=: \"',;&)\\]}\\\\.$/+_-]|[a-z0-9]{1,6}|ding|cid|\\$:LWCP_v1:\\$|[\u{4e00}-\u{4e05}]){0,60}",
        max_len in 0usize..300,
    ) {
        let eng = engine();
        let mut r = Report::with_matches();
        eng.redact_text(&s, &mut r);
        for m in r.matches() {
            prop_assert!(m.offset + m.len <= s.len());
        }
        eng.redact_query(&s, &mut Report::new());
        let json = serde_json::to_string(&serde_json::json!({ "content": s, "user": s, "uid": s })).unwrap();
        let out = sample_text(eng.redact_body(json.as_bytes(), Some("application/json"), None, 1 << 16, &mut Report::new()));
        prop_assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "not JSON: {}", out);
        let cut = (0..=max_len.min(json.len())).rev().find(|&c| json.is_char_boundary(c)).unwrap();
        eng.redact_body_prefix(&json.as_bytes()[..cut], Some("application/json"), None, 1 << 16, &mut Report::new());
    }

    /// An identifier after one of the names survives in no form: free text,
    /// a JSON string, a JSON value under the name, a query parameter.
    #[test]
    fn named_identifiers_never_survive(
        head in filler(),
        (planted, value) in named_id(),
        tail_sep in separator(),
        tail in filler(),
    ) {
        let eng = engine();
        let text = format!("{head} {planted}{tail_sep}{tail}");
        let skeleton = format!("{head} {tail_sep}{tail}");
        let secrets = [value.clone()];
        let out = eng.redact_text(&text, &mut Report::new());
        assert_gone(&out, &skeleton, &secrets);
        let json = serde_json::to_string(&serde_json::json!({ "content": text })).unwrap();
        let out = sample_text(eng.redact_body(json.as_bytes(), Some("application/json"), None, 1 << 16, &mut Report::new()));
        assert_gone(&out, &skeleton, &secrets);
        let name = planted.split([':', '=', ' ', '"']).next().unwrap();
        let json = serde_json::to_string(&serde_json::json!({ name: value, "msgtype": "text" })).unwrap();
        let out = sample_text(eng.redact_body(json.as_bytes(), Some("application/json"), None, 1 << 16, &mut Report::new()));
        assert_gone(&out, "", &secrets);
        prop_assert!(out.contains(r#""msgtype":"text""#), "{}", out);
        let query = format!("a=1&{name}={value}&b=2");
        let out = eng.redact_query(&query, &mut Report::new());
        assert_gone(&out, "a=1&b=2", &secrets);
    }

    #[test]
    fn json_stays_json((value, secrets) in json_value(), pretty in any::<bool>()) {
        let eng = engine();
        let src = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
        let out = sample_text(eng.redact_body(src.as_bytes(), Some("application/json"), None, 1 << 20, &mut Report::new()));
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&out);
        prop_assert!(parsed.is_ok(), "not JSON: {}", out);
        assert_gone(&out, "", &secrets);
    }

    #[test]
    fn json_verdicts_match_serde_json(
        (value, _) in json_value(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), select(&["", "\"", "\\", ",", ":", "]", "}", "[", "{", "0", "-", "e", ".", " ", "\u{1}", "tru", "\\u12", "\\ud800"][..])), 0..3),
    ) {
        let mut src = serde_json::to_string(&value).unwrap();
        for (at, ins) in edits {
            let mut i = at.index(src.len() + 1);
            while !src.is_char_boundary(i) { i -= 1; }
            if ins.is_empty() {
                if i < src.len() {
                    let c = src[i..].chars().next().unwrap();
                    src.replace_range(i..i + c.len_utf8(), "");
                }
            } else {
                src.insert_str(i, ins);
            }
        }
        prop_assume!(!src.is_empty());
        let serde_ok = serde_json::from_str::<serde::de::IgnoredAny>(&src).is_ok();
        let ours = engine().redact_body(src.as_bytes(), Some("application/json"), None, 1 << 20, &mut Report::new());
        let ours_ok = !matches!(ours, BodySample::Omitted(OmitReason::InvalidJson));
        prop_assert_eq!(ours_ok, serde_ok, "input: {}", src);
        if let BodySample::Redacted { text, json, .. } = ours {
            prop_assert!(json, "complete JSON not marked as such: {}", text);
            prop_assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(), "output not JSON: {}", text);
        }
    }
}
