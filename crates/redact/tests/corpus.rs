//! Realistic bodies (DingTalk robot callbacks, OpenAI-compatible model-gateway
//! requests and responses, error pages) planted with known identifiers: after
//! redaction none of them, nor any 8-character piece of them, may remain, and
//! the look-alikes around them must survive.
//!
//! Fixtures under `tests/corpus/` hold `{{NAME}}` placeholders; the values are
//! made here: synthetic ID numbers with valid check characters and
//! Luhn-valid card numbers, computed, not copied from anyone.

use clawveil_redact::{BodySample, Engine, EngineConfig, Report};

mod support;

use support::{grouped, id_card, id_check, luhn_complete};

/// Placeholder → planted value.
fn planted() -> Vec<(&'static str, String)> {
    let id_x = (0..1000)
        .map(|s| format!("44030519851120{s:03}"))
        .find(|p| id_check(p) == 'X')
        .map(|p| id_card(&p))
        .unwrap();
    let v = |s: &str| s.to_owned();
    vec![
        ("CONV_ID", v("cidQ3mZ8vN2kT7xR1pL5wB9yH4jF6sD0aG+==")),
        ("CHATBOT_ID", v("$:LWCP_v1:$Zx8Kq2Lm5Np7Rs1Tv4Wy6Ab9Cd3Ef0Gh")),
        ("AT_USER_ID", v("$:LWCP_v1:$Hq1Jw3Ke5Lr7Mt9Ny2Pu4Qi6Ro8Sa0Td")),
        ("AT_STAFF_ID", v("0125381846791066")),
        ("SENDER_ID", v("$:LWCP_v1:$Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9")),
        ("CORP_ID", v("ding9f50b15bccd16741")),
        ("NICK", v("王小明")),
        ("STAFF_ID", v("manager4220")),
        ("SESSION", v("d5a1f0c3b2e94f8a7b6c5d4e3f2a1b0c")),
        ("PHONE_CN", v("13912345678")),
        ("PHONE_CN_SPACED", v("+86 139 8765 4321")),
        ("PHONE_INTL", v("+1 415 555 2671")),
        ("EMAIL", v("wang.xiaoming@example.com.cn")),
        ("EMAIL2", v("ops-team+alerts@corp.example.org")),
        ("EMAIL_ENCODED", v("li.lei%40example.net")),
        ("ID_CARD", id_card("11010519900307123")),
        ("ID_CARD_X", id_x),
        ("CARD", luhn_complete("621700012345678901")),
        ("CARD_SPACED", grouped(&luhn_complete("411111222233334"), " ")),
        ("OPENAI_KEY", v("sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7cD0eF")),
        ("ANTHROPIC_KEY", v("sk-ant-api03-Zy9xW8vU7tS6rQ5pO4nM3lK2jI1hG0fE-dC_bA")),
        ("AWS_KEY", v("AKIAIOSFODNN7EXAMPLE")),
        ("AWS_SECRET", v("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")),
        ("ROBOT_TOKEN", v("4f1a9c0b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a")),
        ("SIGN", v("Xy3%2BAbCdEfGhIjKlMnOpQrStUvWxYz0123456789%3D")),
        ("JWT", v("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYW5hZ2VyNDIyMCIsIm5hbWUiOiLnjovlsI_mmI4iLCJpYXQiOjE3MDAwMDAwMDB9.Qm9ndXNTaWduYXR1cmVGb3JUZXN0c09ubHkxMjM0NTY")),
        ("DB_PASSWORD", v("S3cr3t-Pa55word")),
        ("GATEWAY_KEY", v("gw_live_8Jk2Lm4Np6Qr8St0Uv2Wx4Yz6Ab8Cd0Ef")),
        ("TENCENT_ID", v("AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA")),
        ("TENCENT_SECRET", v("Gu5t9xGARNpq86cd98joQYCN3Cozk1qA")),
        ("ALIYUN_ID", v("LTAI5tFzHs6oQkHvzG3DxyZ2")),
        ("ALIYUN_SECRET", v("Xo9Lq2Wn4Er6Ty8Ui0Op1As3Df5Gh7")),
        ("GITHUB_TOKEN", v("ghp_16C7e42F292c6912E7710c838347Ae178B4a")),
        ("SLACK_TOKEN", v("xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")),
        ("APP_SECRET", v("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg")),
    ]
}

/// Look-alikes that must come through untouched wherever a fixture has them.
const SURVIVORS: &[&str] = &[
    "1700000000000",
    "1700005400000",
    "ORD-20240101",
    "550e8400-e29b-41d4-a716-446655440000",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "1.2.3.4",
    "qwen-max",
    "msgDm2q3tNyJ0oV7nqvBqkzxg==",
    "dingqnoygjz0wzb7lf6h",
    "\"prompt_tokens\": 187",
    "\"max_tokens\": 1024",
    "fp_44709d6fcb",
    "invalid_api_key",
    "203.0.113.7",
    "\"errcode\": 40014",
    "chatcmpl-9pX2rM4kL7qN1sT8vW3yZ6",
];

const FIXTURES: &[(&str, &str)] = &[
    (
        "dingtalk_group_text.json",
        "application/json; charset=utf-8",
    ),
    ("dingtalk_single_chat.json", "application/json"),
    ("dingtalk_rich_text.json", "application/json"),
    ("model_request.json", "application/json"),
    ("model_response.json", "application/json"),
    ("model_stream.sse", "text/event-stream"),
    ("error_upstream.html", "text/html"),
    ("error_gateway.json", "application/json"),
    ("oauth_form.txt", "application/x-www-form-urlencoded"),
];

struct Fixture {
    name: &'static str,
    content_type: &'static str,
    /// The template with every placeholder removed (what may legitimately remain).
    skeleton: String,
    body: String,
    planted: Vec<String>,
}

fn fixtures() -> Vec<Fixture> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/");
    let values = planted();
    FIXTURES
        .iter()
        .map(|&(name, content_type)| {
            let template = std::fs::read_to_string(format!("{dir}{name}")).unwrap();
            let mut body = template.clone();
            let mut skeleton = template.clone();
            let mut planted = Vec::new();
            for (key, value) in &values {
                let ph = format!("{{{{{key}}}}}");
                if template.contains(&ph) {
                    body = body.replace(&ph, value);
                    skeleton = skeleton.replace(&ph, " ");
                    planted.push(value.clone());
                    if let Some(decoded) = value.strip_prefix("li.lei%40") {
                        planted.push(format!("li.lei@{decoded}"));
                    }
                }
            }
            assert!(!body.contains("{{"), "{name}: unknown placeholder");
            Fixture {
                name,
                content_type,
                skeleton,
                body,
                planted,
            }
        })
        .collect()
}

fn engine(hash: bool) -> Engine {
    Engine::new(&EngineConfig {
        // OpenAI's `user` field carries the DingTalk staff id in these fixtures
        json_keys: vec!["user".into()],
        hash_key: hash.then(|| b"corpus-test-hash-key-0123456789".to_vec()),
        ..EngineConfig::default()
    })
    .unwrap()
}

/// Every planted value, and every 8-character piece of one, is gone.
fn assert_clean(f: &Fixture, out: &str, what: &str) {
    for value in &f.planted {
        assert!(
            !out.contains(value.as_str()),
            "{}: {what}: `{value}` survived in:\n{out}",
            f.name
        );
        let chars: Vec<char> = value.chars().collect();
        for w in chars.windows(8) {
            let piece: String = w.iter().collect();
            if !f.skeleton.contains(&piece) {
                assert!(
                    !out.contains(&piece),
                    "{}: {what}: `{piece}` of `{value}` survived in:\n{out}",
                    f.name
                );
            }
        }
    }
}

fn sample(s: BodySample) -> (String, bool) {
    match s {
        BodySample::Redacted {
            text, truncated, ..
        } => (text, truncated),
        other => panic!("expected a redacted sample, got {other:?}"),
    }
}

#[test]
fn planted_identifiers_never_survive() {
    for hash in [false, true] {
        let eng = engine(hash);
        for f in fixtures() {
            let mut report = Report::new();
            let (out, truncated) = sample(eng.redact_body(
                f.body.as_bytes(),
                Some(f.content_type),
                None,
                1 << 20,
                &mut report,
            ));
            assert!(!truncated);
            assert_clean(&f, &out, "whole body");
            assert!(
                report.total() as usize >= f.planted.len().min(3),
                "{}: {report:?}",
                f.name
            );
            for s in SURVIVORS {
                if f.body.contains(s) {
                    assert!(
                        out.contains(s),
                        "{}: look-alike `{s}` was redacted:\n{out}",
                        f.name
                    );
                }
            }
            if f.content_type.starts_with("application/json") {
                serde_json::from_str::<serde_json::Value>(&out)
                    .unwrap_or_else(|e| panic!("{}: output is not JSON ({e}):\n{out}", f.name));
            }
        }
    }
}

#[test]
fn hashed_identifiers_correlate_across_fixtures() {
    let eng = engine(true);
    let mut tags = Vec::new();
    for f in fixtures().iter().filter(|f| f.name.starts_with("dingtalk")) {
        let (out, _) = sample(eng.redact_body(
            f.body.as_bytes(),
            Some(f.content_type),
            None,
            1 << 20,
            &mut Report::new(),
        ));
        let at = out.find("\"senderStaffId\"").unwrap();
        tags.push(out[at..].split('"').nth(3).unwrap().to_owned());
    }
    assert_eq!(tags.len(), 3);
    assert!(
        tags[0].starts_with("[dingtalk:") && tags.iter().all(|t| *t == tags[0]),
        "{tags:?}"
    );
}

#[test]
fn cut_samples_leave_no_fragments() {
    let eng = engine(false);
    for f in fixtures() {
        for max in (0..f.body.len() + 40).step_by(5) {
            let (out, truncated) = sample(eng.redact_body(
                f.body.as_bytes(),
                Some(f.content_type),
                None,
                max,
                &mut Report::new(),
            ));
            assert!(out.len() <= max);
            assert!(!out.ends_with("[REDACTED") && !out.ends_with("[REDACTED:"));
            assert_clean(&f, &out, &format!("max_len {max} (truncated {truncated})"));
        }
    }
}

#[test]
fn captured_prefixes_leave_no_fragments() {
    let eng = engine(false);
    for f in fixtures() {
        let b = f.body.as_bytes();
        for end in (1..=b.len()).step_by(3) {
            let (out, truncated) = sample(eng.redact_body_prefix(
                &b[..end],
                Some(f.content_type),
                None,
                1 << 20,
                &mut Report::new(),
            ));
            assert!(truncated);
            assert_clean(&f, &out, &format!("prefix of {end} bytes"));
        }
    }
}

#[test]
fn explain_reports_spans_of_planted_values() {
    let eng = engine(false);
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == "model_stream.sse")
        .unwrap();
    let mut report = Report::with_matches();
    eng.redact_body(
        f.body.as_bytes(),
        Some(f.content_type),
        None,
        1 << 20,
        &mut report,
    );
    let spans: Vec<(&str, &str)> = report
        .matches()
        .iter()
        .map(|m| (&*m.rule, &f.body[m.offset..m.offset + m.len]))
        .collect();
    assert_eq!(
        spans,
        [
            ("email", "wang.xiaoming@example.com.cn"),
            ("phone", "13912345678"),
            ("dingtalk", "manager4220")
        ]
    );
}
