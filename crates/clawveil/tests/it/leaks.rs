//! End to end: the real binary at log level trace with redacted bodies logged, driven
//! with planted identifiers through success, 4xx, 5xx, upstream-down, timeout, oversize
//! and TLS-error paths. Neither its stdout, its stderr nor /metrics may contain any
//! planted value, nor any 8-character piece of one.
//!
//! The same for every DingTalk callback type: the redact crate's fixtures and their
//! canaries (`crates/redact/tests/fixtures/dingtalk`), each POSTed through a signed
//! robot route, echoed back by the bot, and flattened into the query string and
//! headers, masked and with `log.hash_key`; the bot gets all of it unchanged.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use clawveil_redact::{Engine, EngineConfig, Report};

use crate::common::{eventually, metric_value, sha256_hex, Harness, Opts};
use crate::dingtalk::{fresh_ts, signed};
use crate::setup::start;

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

// Every DingTalk callback type, end to end: the redact crate's fixtures
// (`crates/redact/tests/fixtures/dingtalk`, see its README) sent through a signed
// robot route as bodies, echoed back by the bot as responses, and flattened into a
// query string and headers.

/// The robot route's app secret; it must never be logged either.
const ROBOT_SECRET: &str = "leakTestRobotSecret0042";
const HASH_KEY: &str = "0123456789abcdef0123456789abcdef";
/// Every built-in rule but `dingtalk`, for the run that shows the check can fail.
const WITHOUT_DINGTALK: &str =
    r#"["email", "phone", "id-card", "bank-card", "bearer", "api-key", "jwt", "url-secret"]"#;

/// One fixture: a callback and the canaries planted in it.
struct Fixture {
    name: String,
    body: String,
    canaries: Vec<String>,
    /// Every `(key, string value)` of the callback whose value holds a canary,
    /// also inside JSON carried in a string (a Stream frame's `data`, a card's
    /// `content`).
    fields: Vec<(String, String)>,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../redact/tests/fixtures/dingtalk")
}

/// Reads every `<name>.json` with its `<name>.canaries` (every non-empty line a
/// value), as the redact crate's fixture test does.
fn fixtures() -> Vec<Fixture> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    let all: Vec<Fixture> = names
        .into_iter()
        .map(|name| {
            let read = |ext: &str| {
                std::fs::read_to_string(fixture_dir().join(format!("{name}.{ext}")))
                    .unwrap_or_else(|e| panic!("{name}.{ext}: {e}"))
            };
            let body = read("json");
            let canaries: Vec<String> = read("canaries")
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            let mut fields = Vec::new();
            collect_fields(
                &serde_json::from_str(&body).unwrap(),
                &canaries,
                &mut fields,
            );
            for c in &canaries {
                assert!(
                    fields.iter().any(|(_, v)| v.contains(c.as_str())),
                    "{name}: canary `{c}` is in no string field"
                );
            }
            Fixture {
                name,
                body,
                canaries,
                fields,
            }
        })
        .collect();
    let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
    for want in [
        "text",
        "rich_text",
        "picture",
        "file",
        "audio",
        "video",
        "card_callback",
        "group_at",
        "stream_frame",
    ] {
        assert!(names.contains(&want), "fixture {want} missing: {names:?}");
    }
    all
}

fn collect_fields(v: &serde_json::Value, canaries: &[String], out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if let Some(s) = v.as_str() {
                    if canaries.iter().any(|c| s.contains(c.as_str())) {
                        out.push((k.clone(), s.to_owned()));
                    }
                    // a Stream frame's `data`, a card's `content`: JSON in a string
                    if let Ok(inner @ serde_json::Value::Object(_)) =
                        serde_json::from_str::<serde_json::Value>(s)
                    {
                        collect_fields(&inner, canaries, out);
                    }
                }
                collect_fields(v, canaries, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_fields(v, canaries, out);
            }
        }
        _ => {}
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Percent-decodes `s` leniently (a malformed escape stays as it is).
fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Fixture {
    /// The callback's canary-holding fields as a query string.
    fn query(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The same fields as `X-Callback-Context: key=value` headers, where the value
    /// can be a header value (ASCII without controls; user text is mostly not).
    fn headers(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(_, v)| v.bytes().all(|b| (b' '..=b'~').contains(&b)))
            .map(|(k, v)| format!("X-Callback-Context: {k}={v}"))
            .collect()
    }
}

/// POSTs `body` as JSON with `headers`: the status and the response body's bytes.
fn post_bytes(h: &Harness, url: &str, headers: &[String], body: &str) -> (u16, Vec<u8>) {
    let mut args = vec![
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/json",
    ];
    for x in headers {
        args.extend(["-H", x.as_str()]);
    }
    args.extend(["--data-binary", body, url]);
    let out = h.curl(&args);
    let nl = out
        .stdout
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap_or_else(|| panic!("no status from curl: {out:?}"));
    let code = String::from_utf8_lossy(&out.stdout[nl + 1..])
        .parse()
        .unwrap();
    (code, out.stdout[..nl].to_vec())
}

/// A proxy at trace level logging redacted bodies, with a signed robot route on
/// `/dingtalk/` (no replay memory: every fixture is sent twice), optionally with
/// `log.hash_key` and `redact.builtin`.
fn fixture_proxy(hash: bool, builtin: Option<&str>) -> Harness {
    let o = Opts {
        extra: "level = \"trace\"\nbodies = \"redacted\"",
        ..CONFIG
    };
    start(&o, None, &[("LEAK_DT_SECRET", ROBOT_SECRET)], |_, text| {
        let mut text = text;
        if hash {
            text = text.replacen("[log]\n", &format!("[log]\nhash_key = \"{HASH_KEY}\"\n"), 1);
        }
        if let Some(list) = builtin {
            text.push_str(&format!("[redact]\nbuiltin = {list}\n"));
        }
        text.push_str(
            "[[route]]\nname = \"dingtalk\"\npath_prefix = \"/dingtalk/\"\n\
             verify = \"dingtalk-robot\"\nreplay = false\n\
             app_secrets = [\"${env:LEAK_DT_SECRET}\"]\n",
        );
        text
    })
}

/// What one run produced: everything the proxy printed, its /metrics, and the
/// signatures it was sent (credentials too).
struct Run {
    out: String,
    metrics: String,
    signs: Vec<String>,
    dingtalk_redactions: f64,
}

/// Sends every fixture to `/dingtalk/<name>/sha` and `/dingtalk/<name>/echo`,
/// signed, with its fields in the query and in headers; checks the bot got the
/// body, query and headers unchanged and the client got the echo byte for byte.
fn drive_fixtures(h: &Harness, fixtures: &[Fixture]) -> Run {
    let series = "clawveil_redactions_total{rule=\"dingtalk\"}";
    let before = h.metric(series);
    let mut signs = Vec::new();
    for f in fixtures {
        let query = f.query();
        for route in ["sha", "echo"] {
            let path = format!("/dingtalk/{}/{route}", f.name);
            let target = format!("{path}?{query}");
            let mut headers: Vec<String> = signed(ROBOT_SECRET, fresh_ts())
                .into_iter()
                .map(|(k, v)| {
                    if k == "sign" {
                        signs.push(v.clone());
                    }
                    format!("{k}: {v}")
                })
                .collect();
            headers.extend(f.headers());
            let (code, got) = post_bytes(h, &h.url(&target), &headers, &f.body);
            assert_eq!(
                code,
                200,
                "{}: {route}: {}",
                f.name,
                String::from_utf8_lossy(&got)
            );
            let want = if route == "sha" {
                sha256_hex(f.body.as_bytes()).into_bytes()
            } else {
                f.body.clone().into_bytes()
            };
            assert!(got == want, "{}: {route}: the bot's answer changed", f.name);

            // The bot received everything as it was sent: redaction is for logs.
            let rec = h.upstream.requests_to(&path);
            assert_eq!(rec.len(), 1, "{}: {route}", f.name);
            assert_eq!(rec[0].target, target, "{}: the query changed", f.name);
            assert_eq!(rec[0].body_len, f.body.len(), "{}: body length", f.name);
            let sent = f.headers();
            let sent: Vec<&str> = sent
                .iter()
                .map(|x| &x["X-Callback-Context: ".len()..])
                .collect();
            assert_eq!(
                rec[0].header("x-callback-context"),
                sent,
                "{}: headers changed",
                f.name
            );
        }
    }
    let n = 2 * fixtures.len();
    assert!(
        eventually(10, || h
            .proxy
            .output()
            .matches("\"route\":\"dingtalk\"")
            .count()
            >= n),
        "{n} access events expected:\n{}",
        h.proxy.output()
    );
    let metrics = h.metrics_text();
    let dingtalk_redactions = metric_value(&metrics, series) - before;
    h.proxy.signal("TERM");
    assert!(
        eventually(10, || h.proxy.output().contains("\"stopped\"")),
        "{}",
        h.proxy.output()
    );
    Run {
        out: h.proxy.output(),
        metrics,
        signs,
        dingtalk_redactions,
    }
}

/// Every canary, or 8-character piece of one, found in `text` (and in `text` with
/// its JSON strings unescaped and its percent-escapes decoded). Like the redact
/// crate's fixture test, a piece that also occurs in a fixture outside its
/// canaries is not counted. The robot secret and the signatures sent are checked
/// the same way.
fn findings(fixtures: &[Fixture], signs: &[String], text: &str) -> Vec<String> {
    let mut skeletons = String::new();
    for f in fixtures {
        let mut s = f.body.clone();
        for c in &f.canaries {
            let escaped = serde_json::to_string(c).unwrap();
            s = s
                .replace(c.as_str(), " ")
                .replace(&escaped[1..escaped.len() - 1], " ");
        }
        skeletons.push_str(&s);
        skeletons.push('\n');
    }
    // the JSON strings of every log line, unescaped
    let mut unescaped = String::new();
    fn strings(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| {
                out.push_str(k);
                out.push('\n');
                strings(v, out);
            }),
            _ => {}
        }
    }
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            strings(&v, &mut unescaped);
        }
    }
    let decoded = pct_decode(&unescaped);

    let mut found = Vec::new();
    let planted = fixtures
        .iter()
        .flat_map(|f| {
            f.canaries
                .iter()
                .map(move |c| (f.name.as_str(), c.as_str()))
        })
        .chain(std::iter::once(("config", ROBOT_SECRET)))
        .chain(signs.iter().map(|s| ("sign header", s.as_str())));
    for (origin, c) in planted {
        for (how, hay) in [
            ("", text),
            (" (unescaped)", &unescaped),
            (" (decoded)", &decoded),
        ] {
            if hay.contains(c) {
                found.push(format!("{origin}: `{c}`{how}"));
                continue;
            }
            let chars: Vec<char> = c.chars().collect();
            for w in chars.windows(8) {
                let piece: String = w.iter().collect();
                if !skeletons.contains(&piece) && hay.contains(&piece) {
                    found.push(format!("{origin}: `{piece}` of `{c}`{how}"));
                    break;
                }
            }
        }
    }
    // The fixtures spell `canary` (or `金丝雀`) only inside canaries.
    for hay in [text, &decoded] {
        let lower = hay.to_lowercase();
        for word in ["canary", "金丝雀"] {
            if let Some(at) = lower.find(word) {
                let from = lower[..at]
                    .char_indices()
                    .rev()
                    .nth(40)
                    .map_or(0, |(i, _)| i);
                let to = lower[at..]
                    .char_indices()
                    .nth(60)
                    .map_or(lower.len(), |(i, _)| at + i);
                found.push(format!("`{word}` in …{}…", &lower[from..to]));
            }
        }
    }
    found.dedup();
    found
}

/// The access events of the callbacks, one per fixture and route, with their
/// bodies logged redacted (as JSON objects), so the absence above is not for want
/// of logging.
fn assert_logged(fixtures: &[Fixture], out: &str, hash: bool) {
    let access: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["target"] == "access")
        .collect();
    for f in fixtures {
        let input: serde_json::Value = serde_json::from_str(&f.body).unwrap();
        for route in ["sha", "echo"] {
            let path = format!("/dingtalk/{}/{route}", f.name);
            let ev = access
                .iter()
                .find(|v| v["path"] == path.as_str())
                .unwrap_or_else(|| panic!("no access event for {path}"));
            assert_eq!(ev["status"], 200, "{ev}");
            let logged = &ev["request_json"];
            assert!(logged.is_object(), "{path}: body not logged as JSON: {ev}");
            for kept in ["msgtype", "msgId", "type", "specVersion"] {
                assert_eq!(logged[kept], input[kept], "{path}: {kept}");
            }
            let query = ev["query"].as_str().unwrap_or_default();
            let token = if hash {
                "[dingtalk:"
            } else {
                "[REDACTED:dingtalk]"
            };
            assert!(query.contains(token), "{path}: query {query:?}");
            if !f.headers().is_empty() {
                let logged = ev["request_headers"]["x-callback-context"]
                    .as_str()
                    .unwrap_or_default();
                assert!(logged.contains(token), "{path}: headers {logged:?}");
            }
            if route == "echo" {
                assert!(ev["response_json"].is_object(), "{path}: {ev}");
            }
        }
    }
}

#[test]
fn no_canary_of_any_dingtalk_callback_type_reaches_any_output() {
    let fixtures = fixtures();
    for hash in [false, true] {
        let h = fixture_proxy(hash, None);
        let run = drive_fixtures(&h, &fixtures);
        let what = if hash { "with log.hash_key" } else { "masked" };
        for (name, text) in [("stdout/stderr", &run.out), ("/metrics", &run.metrics)] {
            let found = findings(&fixtures, &run.signs, text);
            assert!(
                found.is_empty(),
                "{what}: leaked into {name}:\n{}\n\n{}",
                found.join("\n"),
                run.out
            );
        }
        assert_logged(&fixtures, &run.out, hash);
        // at least what the engine finds in the three bodies logged per fixture
        // (the /sha request, the /echo request and response); the query and the
        // headers add more
        let engine = Engine::new(&EngineConfig::default()).unwrap();
        let in_bodies: u64 = fixtures
            .iter()
            .map(|f| {
                let mut report = Report::new();
                engine.redact_body(
                    f.body.as_bytes(),
                    Some("application/json"),
                    None,
                    1 << 20,
                    &mut report,
                );
                assert!(report.count("dingtalk") >= 3, "{}: {report:?}", f.name);
                3 * report.count("dingtalk")
            })
            .sum();
        assert!(
            run.dingtalk_redactions > in_bodies as f64,
            "{what}: clawveil_redactions_total{{rule=\"dingtalk\"}} moved by {}, \
             expected more than {in_bodies}",
            run.dingtalk_redactions
        );
    }
}

/// The check above can fail: with the `dingtalk` rule off, canaries reach the log.
#[test]
fn the_canary_check_catches_a_disabled_dingtalk_rule() {
    let fixtures = fixtures();
    let h = fixture_proxy(false, Some(WITHOUT_DINGTALK));
    let run = drive_fixtures(&h, &fixtures);
    let found = findings(&fixtures, &run.signs, &run.out);
    for f in &fixtures {
        assert!(
            found
                .iter()
                .any(|x| x.starts_with(&format!("{}: ", f.name))),
            "{}: no canary found without the dingtalk rule:\n{}",
            f.name,
            found.join("\n")
        );
    }
    assert_eq!(run.dingtalk_redactions, 0.0);
}
