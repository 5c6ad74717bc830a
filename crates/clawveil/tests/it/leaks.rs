//! End to end: the real binary at log level trace with redacted bodies logged, driven
//! with planted identifiers through success, 4xx, 5xx, upstream-down, timeout, oversize
//! and TLS-error paths. Neither its stdout, its stderr nor /metrics may contain any
//! planted value, nor any 8-character piece of one.

use std::io::Write;
use std::net::TcpStream;

use crate::common::{eventually, metric_value, Harness, Opts};

/// A synthetic 18-digit resident ID with a valid ISO 7064 MOD 11-2 check digit.
fn id_card(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    format!("{first17}{}", C[(sum % 11) as usize])
}

/// A Luhn-valid card number from its first digits.
fn card(prefix: &str) -> String {
    for check in 0..10 {
        let n = format!("{prefix}{check}");
        let sum: u32 = n
            .chars()
            .rev()
            .enumerate()
            .map(|(i, c)| {
                let d = c.to_digit(10).unwrap();
                if i % 2 == 1 {
                    if d * 2 > 9 {
                        d * 2 - 9
                    } else {
                        d * 2
                    }
                } else {
                    d
                }
            })
            .sum();
        if sum % 10 == 0 {
            return n;
        }
    }
    unreachable!()
}

struct Planted {
    values: Vec<String>,
}

impl Planted {
    fn new() -> Self {
        Planted {
            values: vec![
                "li.lei.planted@example-corp.cn".into(),
                "13912345678".into(),
                id_card("11010519880605123"),
                card("622202123456789012"),
                "sk-proj-PlantedKey9f8e7d6c5b4a3210ZZ".into(),
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLXVzZXIifQ.UGxhbnRlZFNpZ25hdHVyZVZhbHVl"
                    .into(),
                "plantedAccessTok777".into(),
                "plantedSessionXyz123".into(),
                "manager9921planted".into(),
                "plantedCookie5551".into(),
                "AKIDPlantedTencentKey0123456789".into(),
                "ORD-20261124".into(),
            ],
        }
    }

    fn v(&self, i: usize) -> &str {
        &self.values[i]
    }

    /// A DingTalk robot callback carrying most of the planted values.
    fn callback(&self) -> String {
        format!(
            r#"{{"msgtype":"text","text":{{"content":"call me at {} or {}, card {}, id {}, order {}"}},"senderStaffId":"{}","senderNick":"Li Lei","sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session={}","conversationId":"cidPlantedConv","apiKey":"{}","note":"Bearer {}"}}"#,
            self.v(1),
            self.v(0),
            self.v(3),
            self.v(2),
            self.v(11),
            self.v(8),
            self.v(7),
            self.v(4),
            self.v(5)
        )
    }

    fn assert_absent(&self, what: &str, text: &str) {
        for v in &self.values {
            assert!(!text.contains(v.as_str()), "{v} leaked into {what}");
            for i in 0..=v.len().saturating_sub(8) {
                let piece = &v[i..i + 8];
                assert!(
                    !text.contains(piece),
                    "{piece:?} (from {v}) leaked into {what}"
                );
            }
        }
    }
}

const CONFIG: Opts = Opts {
    upstream: "",
    tls: "",
    limits: "max_body = \"64KiB\"",
    extra: "level = \"trace\"\nbodies = \"redacted\"\nhash_key = \"0123456789abcdef0123456789abcdef\"\n[[redact.rule]]\nname = \"order-id\"\npattern = 'ORD-[0-9]{8}'",
    dead_upstream: false,
};

fn drive(h: &Harness, p: &Planted) {
    let body = p.callback();
    let auth = format!("Authorization: Bearer {}", p.v(5));
    let cookie = format!("Cookie: session={}", p.v(9));
    let key = format!("X-Api-Key: {}", p.v(10));
    let q = format!("?access_token={}&email={}&phone={}", p.v(6), p.v(0), p.v(1));
    let common = [
        "-H",
        "Content-Type: application/json",
        "-H",
        auth.as_str(),
        "-H",
        cookie.as_str(),
        "-H",
        key.as_str(),
        "--data-binary",
        body.as_str(),
    ];
    for path in ["/dingtalk/echo", "/status/404", "/status/500", "/slow"] {
        let url = h.url(&format!("{path}{q}"));
        let mut args: Vec<&str> = common.to_vec();
        args.push(&url);
        h.curl(&args);
    }
    // Oversize body (413), a form body and a text body.
    let big = format!(
        "{{\"pad\":\"{}\",\"mobile\":\"{}\"}}",
        "x".repeat(70_000),
        p.v(1)
    );
    h.curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &big,
        &h.url(&format!("/echo{q}")),
    ]);
    let form = format!("access_token={}&email={}&text=hello", p.v(6), p.v(0));
    h.curl(&[
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-binary",
        &form,
        &h.url("/echo"),
    ]);
    let text = format!("reach {} or {} key {}", p.v(0), p.v(1), p.v(4));
    h.curl(&[
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        &text,
        &h.url("/echo"),
    ]);
    // Plain HTTP with secrets in the query: redirected, never proxied, never logged raw.
    let _ = std::process::Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/dingtalk{q}", h.http)])
        .output();
    // Garbage on the TLS port carrying identifiers.
    let mut s = TcpStream::connect(("127.0.0.1", h.https)).unwrap();
    let _ = s.write_all(
        format!(
            "POST /{q} HTTP/1.1\r\nAuthorization: Bearer {}\r\n\r\n{body}",
            p.v(5)
        )
        .as_bytes(),
    );
    drop(s);
}

#[test]
fn no_planted_identifier_reaches_any_output_at_trace_level() {
    let p = Planted::new();
    let h = Harness::with(CONFIG);
    drive(&h, &p);
    assert!(
        eventually(10, || h
            .proxy
            .output()
            .matches("\"target\":\"access\"")
            .count()
            >= 7),
        "{}",
        h.proxy.output()
    );

    // And with the upstream down.
    let down = Harness::with(Opts {
        dead_upstream: true,
        ..CONFIG
    });
    drive(&down, &p);
    assert!(eventually(10, || down
        .proxy
        .output()
        .contains("\"status\":502")));

    // every replacement is counted per rule (built-in and custom alike)
    let counted = h.metrics_text();
    for rule in [
        "email",
        "phone",
        "id-card",
        "bank-card",
        "api-key",
        "dingtalk",
        "order-id",
    ] {
        let series = format!("clawveil_redactions_total{{rule=\"{rule}\"}}");
        assert!(
            metric_value(&counted, &series) >= 1.0,
            "{series} in\n{counted}"
        );
    }

    for (name, h) in [("proxy", &h), ("proxy with the upstream down", &down)] {
        let metrics = h.metrics_text();
        h.proxy.signal("TERM");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let out = h.proxy.output();
        p.assert_absent(&format!("{name} stdout/stderr"), &out);
        p.assert_absent(&format!("{name} /metrics"), &metrics);
    }

    // The redaction was real: bodies were logged, masked, counted.
    let out = h.proxy.output();
    assert!(out.contains("\"request_body\":"), "bodies logged");
    // Every line is one JSON object; complete JSON bodies and headers are logged as
    // objects, everything else as strings.
    let access: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &serde_json::Value| v["target"] == "access")
        .collect();
    let echoed = access
        .iter()
        .find(|v| v["path"] == "/dingtalk/echo")
        .expect("the callback's access event");
    assert!(echoed["request_json"].is_object(), "{echoed}");
    assert!(
        echoed["request_json"]["senderStaffId"].is_string(),
        "{echoed}"
    );
    assert!(echoed["request_headers"].is_object(), "{echoed}");
    assert!(echoed.get("request_body").is_none(), "{echoed}");
    for v in &access {
        for k in ["request_body", "response_body"] {
            assert!(
                v.get(k).is_none_or(serde_json::Value::is_string),
                "{k}: {v}"
            );
        }
        for k in ["request_json", "response_json"] {
            assert!(
                v.get(k).is_none_or(serde_json::Value::is_object),
                "{k}: {v}"
            );
        }
    }
    assert!(
        out.contains("[REDACTED:") || out.contains("[email:"),
        "{out}"
    );
    assert!(
        out.contains("[order-id:") || out.contains("[REDACTED:order-id]"),
        "custom rule applied"
    );
    assert!(
        out.contains("[client:"),
        "client address hashed under hash_key"
    );
}
