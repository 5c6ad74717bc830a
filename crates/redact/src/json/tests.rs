use super::strings::{decode, encode};
use super::*;
use crate::EngineConfig;

fn eng() -> Engine {
    Engine::new(&EngineConfig::default()).unwrap()
}

fn red(src: &str) -> String {
    redact(&eng(), src, false, &mut Report::new())
        .unwrap()
        .into_owned()
}

fn red_prefix(src: &str) -> String {
    redact(&eng(), src, true, &mut Report::new())
        .unwrap()
        .into_owned()
}

#[test]
fn sensitive_keys_are_replaced_whole() {
    assert_eq!(
        red(r#"{"senderNick":"张三","senderStaffId":"manager4220","msgId":"msgABC"}"#),
        r#"{"senderNick":"[REDACTED:dingtalk]","senderStaffId":"[REDACTED:dingtalk]","msgId":"msgABC"}"#
    );
    assert_eq!(
        red(
            r#"{"ACCESS_TOKEN": 12345, "Mobile": ["1"], "email": null, "x": {"appSecret": {"a": [1, "}"]}}}"#
        ),
        r#"{"ACCESS_TOKEN": "[REDACTED:dingtalk]", "Mobile": "[REDACTED:dingtalk]", "email": null, "x": {"appSecret": "[REDACTED:api-key]"}}"#
    );
}

#[test]
fn strings_keys_and_numbers_go_through_patterns() {
    assert_eq!(
        red(
            r#"{"content":"call 13812345678","li@example.com":1,"n":13912345678,"t":1700000000000}"#
        ),
        r#"{"content":"call [REDACTED:phone]","[REDACTED:email]":1,"n":"[REDACTED:phone]","t":1700000000000}"#
    );
    assert_eq!(red(r#"  "13812345678"  "#), r#"  "[REDACTED:phone]"  "#);
    assert_eq!(
        red("[1.5, -2, true, false, null, {}, []]"),
        "[1.5, -2, true, false, null, {}, []]"
    );
}

#[test]
fn escaped_strings_are_decoded_then_re_encoded() {
    // \u0040 is '@', \u0031 is '1'
    let out = red(r#"{"c":"mail li\u0040example.com \"quoted\" \u4e2d\n \u00313812345678"}"#);
    assert_eq!(
        out,
        r#"{"c":"mail [REDACTED:email] \"quoted\" 中\n [REDACTED:phone]"}"#
    );
    serde_json::from_str::<serde_json::Value>(&out).unwrap();
    // nothing matched: the original escapes are kept
    let src = r#"{"c":"a\u0041\n"}"#;
    assert_eq!(red(src), src);
    // a lone surrogate does not stop the walk
    let out = red(r#"["\ud800 13812345678"]"#);
    assert_eq!(
        out,
        r#"["\ufffd [REDACTED:phone]"]"#.replace("\\ufffd", "\u{fffd}")
    );
}

#[test]
fn invalid_json_is_refused() {
    for s in [
        "{",
        "{\"a\":}",
        "[1,]",
        "{'a':1}",
        "nul",
        "1 2",
        "{\"a\":1}}",
        "\"\u{1}\"",
    ] {
        assert_eq!(
            redact(&eng(), s, false, &mut Report::new()),
            Err(OmitReason::InvalidJson),
            "{s}"
        );
    }
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert_eq!(
        redact(&eng(), &deep, false, &mut Report::new()),
        Err(OmitReason::InvalidJson)
    );
    let ok = "[".repeat(100) + &"]".repeat(100);
    assert_eq!(red(&ok), ok);
}

#[test]
fn prefixes_are_redacted_as_far_as_they_go() {
    assert_eq!(
        red_prefix(r#"{"a":"call 13812345678 and 139"#),
        r#"{"a":"call [REDACTED:phone] and "#
    );
    assert_eq!(
        red_prefix(r#"{"senderNick":"张"#),
        r#"{"senderNick":"[REDACTED:dingtalk]""#
    );
    assert_eq!(red_prefix(r#"{"a":[1,2,13812"#), r#"{"a":[1,2,"#);
    assert_eq!(red_prefix(r#"{"a":tr"#), r#"{"a":"#);
    assert_eq!(red_prefix(r#"{"a":1,"sender"#), r#"{"a":1,"#);
    assert_eq!(red_prefix(r#"{"a":"x \u00"#), r#"{"a":"x "#);
    assert_eq!(
        red_prefix(r#"{"senderStaffId":{"x":["#),
        r#"{"senderStaffId":"[REDACTED:dingtalk]""#
    );
    // still refuses what is broken before the end
    assert_eq!(
        redact(&eng(), "{]", true, &mut Report::new()),
        Err(OmitReason::InvalidJson)
    );
}

#[test]
fn offsets_point_into_the_input() {
    let mut r = Report::with_matches();
    let src = r#"{"userid":"u1","c":"to li@example.com","e":"\u0040 13812345678"}"#;
    redact(&eng(), src, false, &mut r).unwrap();
    let m: Vec<_> = r
        .matches()
        .iter()
        .map(|m| (&*m.rule, &src[m.offset..m.offset + m.len]))
        .collect();
    assert_eq!(
        m,
        [
            ("dingtalk", r#""u1""#),
            ("email", "li@example.com"),
            ("phone", r#"\u0040 13812345678"#)
        ]
    );
}

#[test]
fn decode_and_encode_round_trip() {
    for s in ["plain", "q\"b\\s\n\t\r\u{1}\u{1f}", "中文😀"] {
        let mut enc = String::new();
        encode(&mut enc, s);
        assert_eq!(decode(&enc, false), s);
        assert_eq!(
            serde_json::from_str::<String>(&format!("\"{enc}\"")).unwrap(),
            s
        );
    }
    assert_eq!(decode(r"\ud83d\ude00", false), "😀");
    assert_eq!(decode(r"\ud83d", false), "\u{fffd}");
    assert_eq!(decode(r"a\ud83d", true), "a");
    assert_eq!(decode(r"a\ud83dx", true), "a\u{fffd}x");
}
