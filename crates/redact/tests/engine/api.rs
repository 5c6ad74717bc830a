//! Configuration, bodies, headers, query strings and reports.

use clawveil_redact::{
    BodySample, CustomRule, Engine, EngineConfig, OmitReason, RedactError, Replace, Report,
};

use crate::engine;

const KEY: &[u8] = b"an-operator-hash-key-0123456789";

fn with(f: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut cfg = EngineConfig::default();
    f(&mut cfg);
    Engine::new(&cfg).unwrap()
}

fn text(eng: &Engine, s: &str) -> String {
    eng.redact_text(s, &mut Report::new()).into_owned()
}

fn body(eng: &Engine, b: &str, ct: &str) -> BodySample {
    eng.redact_body(b.as_bytes(), Some(ct), None, 1 << 20, &mut Report::new())
}

fn redacted(s: BodySample) -> String {
    match s {
        BodySample::Redacted { text, .. } => text,
        other => panic!("not redacted: {other:?}"),
    }
}

#[test]
fn engine_is_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
    let eng = std::sync::Arc::new(engine());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let eng = eng.clone();
            std::thread::spawn(move || text(&eng, &format!("n{i} 1381234567{i}")))
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().ends_with("[REDACTED:phone]"));
    }
}

#[test]
fn builtin_rules_are_selectable() {
    let only_email = with(|c| c.builtin = vec!["email".into()]);
    assert_eq!(
        text(
            &only_email,
            "a@b.cn 13812345678 sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"
        ),
        "[REDACTED:email] 13812345678 sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t"
    );
    assert_eq!(only_email.rule_names().collect::<Vec<_>>(), ["email"]);
    let none = with(|c| c.builtin.clear());
    let s = r#"{"senderStaffId":"m1","c":"a@b.cn"}"#;
    assert_eq!(redacted(body(&none, s, "application/json")), s);
    let err = Engine::new(&EngineConfig {
        builtin: vec!["phone".into(), "ssn".into()],
        ..EngineConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, RedactError::UnknownBuiltin { ref name, .. } if name == "ssn"));
    assert!(err.to_string().contains("email, phone, id-card"), "{err}");
}

#[test]
fn hashing_correlates_identifiers_but_never_credentials() {
    let eng = with(|c| c.hash_key = Some(KEY.to_vec()));
    let a = text(&eng, "call 13812345678 or li@example.com");
    let b = text(&eng, "again +86 138-1234-5678, LI@EXAMPLE.COM");
    let tags = |s: &str| {
        s.split('[')
            .skip(1)
            .map(|t| t.split(']').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (ta, tb) = (tags(&a), tags(&b));
    assert_eq!(ta, tb, "{a} / {b}");
    assert!(
        ta[0].starts_with("phone:") && ta[0].len() == "phone:".len() + 10,
        "{ta:?}"
    );
    assert!(ta[1].starts_with("email:"));
    let other = with(|c| c.hash_key = Some(b"another-key-another-key-1234".to_vec()));
    assert_ne!(
        tags(&text(&other, "13812345678")),
        tags(&text(&eng, "13812345678"))
    );
    assert_eq!(
        text(&eng, "Bearer abcdef123456"),
        "Bearer [REDACTED:bearer]"
    );
    assert_eq!(
        redacted(body(
            &eng,
            r#"{"access_token":"x","userid":"u1"}"#,
            "application/json"
        ))[..35],
        *r#"{"access_token":"[REDACTED:dingtalk"#
    );
    let short = Engine::new(&EngineConfig {
        hash_key: Some(b"short".to_vec()),
        ..EngineConfig::default()
    });
    assert!(matches!(short, Err(RedactError::BadHashKey { .. })));
}

#[test]
fn custom_rules() {
    let rules = vec![
        CustomRule {
            name: "order-id".into(),
            pattern: r"ORD-[0-9]{8}".into(),
            replace: Replace::Mask,
        },
        CustomRule {
            name: "member".into(),
            pattern: r"\bM[0-9]{6}\b".into(),
            replace: Replace::Hash,
        },
    ];
    let plain = with(|c| c.custom = rules.clone());
    let mut r = Report::new();
    assert_eq!(
        plain.redact_text("ORD-20240101 by M123456 (13812345678)", &mut r),
        "[REDACTED:order-id] by [REDACTED:member] ([REDACTED:phone])"
    );
    assert_eq!(
        r.iter().collect::<Vec<_>>(),
        [("order-id", 1), ("member", 1), ("phone", 1)]
    );
    let hashed = with(|c| {
        c.custom = rules.clone();
        c.hash_key = Some(KEY.to_vec());
    });
    let out = text(&hashed, "ORD-20240101 by M123456");
    assert!(out.starts_with("[REDACTED:order-id] by [member:"), "{out}");
    // custom rules apply inside JSON strings too
    let out = redacted(body(
        &plain,
        r#"{"note":"see ORD-20240101"}"#,
        "application/json",
    ));
    assert_eq!(out, r#"{"note":"see [REDACTED:order-id]"}"#);
    // ... even in strings with no separator, digit or literal, which the JSON
    // walker otherwise skips without scanning
    let letters = with(|c| {
        c.custom = vec![CustomRule {
            name: "codename".into(),
            pattern: r"Bluebird".into(),
            replace: Replace::Mask,
        }]
    });
    let out = redacted(body(
        &letters,
        r#"{"Bluebird":"a Bluebird","plain":"text"}"#,
        "application/json",
    ));
    assert_eq!(
        out,
        r#"{"[REDACTED:codename]":"a [REDACTED:codename]","plain":"text"}"#
    );
    assert!(plain.rule_names().any(|n| n == "order-id"));
    let bad = Engine::new(&EngineConfig {
        custom: vec![CustomRule {
            name: "broken".into(),
            pattern: "(".into(),
            replace: Replace::Mask,
        }],
        ..EngineConfig::default()
    })
    .unwrap_err();
    assert!(
        bad.to_string().starts_with("redaction rule `broken`"),
        "{bad}"
    );
}

#[test]
fn extra_json_keys() {
    let eng = with(|c| c.json_keys = vec!["customerNo".into(), "user".into()]);
    let out = redacted(body(
        &eng,
        r#"{"customer_no":"C-1","user":"u","users":1}"#,
        "application/json",
    ));
    assert_eq!(
        out,
        r#"{"customer_no":"[REDACTED:json-key]","user":"[REDACTED:json-key]","users":1}"#
    );
    assert_eq!(
        eng.redact_query("CustomerNo=C-1&x=2", &mut Report::new()),
        "CustomerNo=[REDACTED:json-key]&x=2"
    );
}

/// `user` and `uid`: masked whole in JSON and forms when the value looks like
/// an identifier, left to the patterns otherwise; configured `json_keys` win.
#[test]
fn generic_id_names() {
    let eng = engine();
    let json = |s: &str| redacted(body(&eng, s, "application/json"));
    assert_eq!(
        json(r#"{"user":"manager4711","uid":123456,"role":"user"}"#),
        r#"{"user":"[REDACTED:dingtalk]","uid":"[REDACTED:dingtalk]","role":"user"}"#
    );
    assert_eq!(
        json(r#"{"user":"please help 13812345678","uid":7,"User":{"name":"Li"}}"#),
        r#"{"user":"please help [REDACTED:phone]","uid":7,"User":{"name":"Li"}}"#
    );
    assert_eq!(
        json(r#"{"user":"abc\u0031","uid":"\u0064ingxyz","user ":"abc123"}"#),
        r#"{"user":"[REDACTED:dingtalk]","uid":"[REDACTED:dingtalk]","user ":"abc123"}"#
    );
    assert_eq!(
        json(r#"{"user":null,"uid":true}"#),
        r#"{"user":null,"uid":true}"#
    );
    // a captured prefix that ends inside the value: masked
    match eng.redact_body_prefix(
        br#"{"user":"manag"#,
        Some("application/json"),
        None,
        1024,
        &mut Report::new(),
    ) {
        BodySample::Redacted { text, .. } => {
            assert_eq!(text, r#"{"user":"[REDACTED:dingtalk]""#)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        eng.redact_query("user=abc123&uid=me&q=1", &mut Report::new()),
        "user=[REDACTED:dingtalk]&uid=me&q=1"
    );
    // a configured key masks any value, as `json-key`
    let keyed = with(|c| c.json_keys = vec!["user".into()]);
    assert_eq!(
        redacted(body(
            &keyed,
            r#"{"user":"u","uid":"u1234"}"#,
            "application/json"
        )),
        r#"{"user":"[REDACTED:json-key]","uid":"[REDACTED:dingtalk]"}"#
    );
    // hashed like other user ids; download codes are credentials, never hashed
    let hashed = with(|c| c.hash_key = Some(KEY.to_vec()));
    let out = redacted(body(
        &hashed,
        r#"{"user":"manager4711","downloadCode":"DLCODE-1/+="}"#,
        "application/json",
    ));
    assert!(out.starts_with(r#"{"user":"[dingtalk:"#), "{out}");
    assert!(
        out.ends_with(r#""downloadCode":"[REDACTED:dingtalk]"}"#),
        "{out}"
    );
    let text = hashed.redact_text(
        "user=manager4711 senderStaffId=manager4711",
        &mut Report::new(),
    );
    let tags: Vec<&str> = text
        .split(['=', ' '])
        .filter(|t| t.starts_with('['))
        .collect();
    assert!(tags.len() == 2 && tags[0] == tags[1], "{text}");
    // off with the dingtalk rule
    let off = with(|c| c.builtin.retain(|b| b != "dingtalk"));
    assert_eq!(
        redacted(body(&off, r#"{"user":"manager4711"}"#, "application/json")),
        r#"{"user":"manager4711"}"#
    );
}

#[test]
fn bodies_by_content_type() {
    let eng = engine();
    let mut r = Report::new();
    let omit = |b: &[u8], ct: Option<&str>, ce: Option<&str>| {
        eng.redact_body(b, ct, ce, 1024, &mut Report::new())
    };
    assert_eq!(omit(b"", Some("application/json"), None), BodySample::Empty);
    assert_eq!(
        omit(b"\x89PNG", Some("image/png"), None),
        BodySample::Omitted(OmitReason::Binary)
    );
    assert_eq!(
        omit(b"abc", None, None),
        BodySample::Omitted(OmitReason::Binary)
    );
    assert_eq!(
        omit(b"{}", Some("application/json"), Some("gzip")),
        BodySample::Omitted(OmitReason::Encoded)
    );
    assert_eq!(
        omit(b"{}", Some("application/json"), Some("identity")),
        BodySample::Redacted {
            text: "{}".into(),
            truncated: false,
            json: true,
        }
    );
    assert_eq!(
        omit(b"\xff\xfe", Some("text/plain"), None),
        BodySample::Omitted(OmitReason::InvalidUtf8)
    );
    assert_eq!(
        omit(b"a\0b", Some("text/plain"), None),
        BodySample::Omitted(OmitReason::InvalidUtf8)
    );
    assert_eq!(
        omit(b"{\"a\":", Some("application/json"), None),
        BodySample::Omitted(OmitReason::InvalidJson)
    );
    assert_eq!(
        omit(b"hi", Some("text/plain; charset=utf-16"), None),
        BodySample::Omitted(OmitReason::Charset)
    );
    assert_eq!(OmitReason::InvalidJson.as_str(), "invalid_json");
    let form = eng.redact_body(
        b"mobile=13812345678&msg=hi",
        Some("application/x-www-form-urlencoded"),
        None,
        1024,
        &mut r,
    );
    assert_eq!(redacted(form), "mobile=[REDACTED:dingtalk]&msg=hi");
    let xml = eng.redact_body(
        b"<x><mobile>13812345678</mobile></x>",
        Some("application/xml"),
        None,
        1024,
        &mut r,
    );
    assert_eq!(redacted(xml), "<x><mobile>[REDACTED:phone]</mobile></x>");
    let html = eng.redact_body(
        "<p>电话 13812345678</p>".as_bytes(),
        Some("text/html; charset=UTF-8"),
        None,
        1024,
        &mut r,
    );
    assert_eq!(redacted(html), "<p>电话 [REDACTED:phone]</p>");
    assert_eq!(r.total(), 3);
}

#[test]
fn headers_and_queries() {
    let eng = engine();
    let mut r = Report::new();
    assert_eq!(
        eng.redact_header("Authorization", "Bearer eyJabc.def.ghi", &mut r),
        "Bearer [REDACTED:bearer]"
    );
    assert_eq!(
        eng.redact_header("Cookie", "SESSION=abc; lang=zh", &mut r),
        "[REDACTED:bearer]"
    );
    assert_eq!(
        eng.redact_header("X-Api-Key", "k-123", &mut r),
        "[REDACTED:api-key]"
    );
    assert_eq!(
        eng.redact_header("Accept", "application/json", &mut r),
        "application/json"
    );
    assert_eq!(
        eng.redact_query("?access_token=abc&timestamp=1700000000000&sign=xyz", &mut r),
        "?access_token=[REDACTED:url-secret]&timestamp=1700000000000&sign=[REDACTED:url-secret]"
    );
    assert_eq!(r.count("url-secret"), 2);
    assert_eq!(r.count("bearer"), 2);
}

#[test]
fn explain_reports_rule_offset_and_length() {
    let eng = engine();
    let s = "id 13812345678, mail li@example.com";
    let mut r = Report::with_matches();
    eng.redact_text(s, &mut r);
    let m: Vec<_> = r
        .matches()
        .iter()
        .map(|m| (&*m.rule, &s[m.offset..m.offset + m.len]))
        .collect();
    assert_eq!(m, [("phone", "13812345678"), ("email", "li@example.com")]);
    let b = br#"{"senderNick":"Li","t":"13812345678"}"#;
    let mut r = Report::with_matches();
    eng.redact_body(b, Some("application/json"), None, 1024, &mut r);
    let m: Vec<_> = r
        .matches()
        .iter()
        .map(|m| (&*m.rule, &b[m.offset..m.offset + m.len]))
        .collect();
    assert_eq!(
        m,
        [("dingtalk", &br#""Li""#[..]), ("phone", b"13812345678")]
    );
}

#[test]
fn nothing_to_redact_borrows() {
    let eng = engine();
    let s = "nothing to see here, order ORD-20240101";
    assert!(matches!(
        eng.redact_text(s, &mut Report::new()),
        std::borrow::Cow::Borrowed(_)
    ));
    assert!(matches!(
        eng.redact_query("a=1&b=2", &mut Report::new()),
        std::borrow::Cow::Borrowed(_)
    ));
}

/// Hostile input costs time linear in its length: no check re-scans what the
/// previous one already covered.
#[test]
fn pathological_inputs_stay_linear() {
    let eng = engine();
    for unit in [
        "sk-",
        "password:",
        "token=",
        "secret=",
        "a@",
        "@a.",
        "1 ",
        "1-",
        "+1 ",
        "eyJ",
        "eyJa.",
        "$:LWCP_v1:$",
        "://",
        "?token=",
        "&sign=",
        "Bearer ",
        "Digest ",
        "<password>",
        "\"",
        "\\u0026token=",
        "cid",
        "ding",
        "senderStaffId=",
        "x=",
        ":",
        "=",
        "(",
        "AKIA",
        "ghp_",
    ] {
        let text = unit.repeat(96 * 1024 / unit.len());
        let json = format!(
            "{{\"k\":\"{}\"}}",
            text.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let t = std::time::Instant::now();
        let mut r = Report::new();
        eng.redact_text(&text, &mut r);
        eng.redact_query(&text, &mut r);
        eng.redact_body(
            json.as_bytes(),
            Some("application/json"),
            None,
            1 << 20,
            &mut r,
        );
        eng.redact_body_prefix(text.as_bytes(), Some("text/plain"), None, 1 << 20, &mut r);
        let took = t.elapsed();
        assert!(
            took < std::time::Duration::from_secs(2),
            "`{unit}` x {}: {took:?}",
            text.len() / unit.len()
        );
    }
}

#[test]
fn only_complete_json_bodies_are_marked_json() {
    let eng = &engine();
    let json = |s: BodySample| match s {
        BodySample::Redacted { json, .. } => json,
        other => panic!("not redacted: {other:?}"),
    };
    let doc = r#"{"senderStaffId":"manager4220","text":{"content":"hello there"}}"#;
    assert!(json(body(eng, doc, "application/json")));
    assert!(json(body(eng, "[1, 2]", "application/problem+json")));
    // text that happens to look like JSON is still text
    assert!(!json(body(eng, doc, "text/plain")));
    assert!(!json(body(
        eng,
        "a=1&b=2",
        "application/x-www-form-urlencoded"
    )));
    // cut to the maximum length: no longer a document
    let cut = eng.redact_body(
        doc.as_bytes(),
        Some("application/json"),
        None,
        20,
        &mut Report::new(),
    );
    assert!(
        matches!(
            cut,
            BodySample::Redacted {
                truncated: true,
                json: false,
                ..
            }
        ),
        "{cut:?}"
    );
    // only a prefix was captured
    let prefix = eng.redact_body_prefix(
        doc.as_bytes(),
        Some("application/json"),
        None,
        1 << 20,
        &mut Report::new(),
    );
    assert!(
        matches!(
            prefix,
            BodySample::Redacted {
                truncated: true,
                json: false,
                ..
            }
        ),
        "{prefix:?}"
    );
}
