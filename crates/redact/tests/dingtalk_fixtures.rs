//! Every kind of DingTalk robot callback, as HTTP and Stream mode deliver it,
//! planted with canaries: none of them may survive redaction, the output stays
//! JSON of the same shape, and what is not sensitive (`msgtype`, `createAt`,
//! `msgId`, `robotCode`, …) comes through unchanged.
//!
//! The fixtures are `tests/fixtures/dingtalk/<name>.json`; beside each, a
//! `<name>.canaries` lists its planted values, one per line (every non-empty
//! line is a value, verbatim, with no comments). The values are made up: ids
//! spelled with `canary`/`Canary` in them, download codes `DLCODE-canary-…`,
//! mobiles `13812345678`, resident ID numbers with a valid check character.
//! An end-to-end test can use the same files: send a `.json`, and grep the
//! logs for every line of its `.canaries`.

use std::path::{Path, PathBuf};

use clawveil_redact::{BodySample, Engine, EngineConfig, Report};
use serde_json::Value;

struct Fixture {
    name: String,
    body: String,
    canaries: Vec<String>,
    /// The body with every canary removed: what may legitimately remain.
    skeleton: String,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dingtalk")
}

fn fixtures() -> Vec<Fixture> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let body = std::fs::read_to_string(dir().join(format!("{name}.json"))).unwrap();
            let list = std::fs::read_to_string(dir().join(format!("{name}.canaries")))
                .unwrap_or_else(|e| panic!("{name}.canaries: {e}"));
            let canaries: Vec<String> = list
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            let mut skeleton = body.clone();
            for c in &canaries {
                // planted verbatim, or JSON-escaped inside a string (Stream mode)
                let escaped = serde_json::to_string(c).unwrap();
                let escaped = &escaped[1..escaped.len() - 1];
                assert!(
                    body.contains(c.as_str()) || body.contains(escaped),
                    "{name}: canary `{c}` is not in the fixture"
                );
                skeleton = skeleton.replace(c.as_str(), " ").replace(escaped, " ");
            }
            Fixture {
                name,
                body,
                canaries,
                skeleton,
            }
        })
        .collect()
}

/// No canary, and no 8-character piece of one that the skeleton lacks.
#[track_caller]
fn assert_clean(f: &Fixture, out: &str, what: &str) {
    for c in &f.canaries {
        assert!(
            !out.contains(c.as_str()),
            "{}: {what}: canary `{c}` survived in:\n{out}",
            f.name
        );
        let chars: Vec<char> = c.chars().collect();
        for w in chars.windows(8) {
            let piece: String = w.iter().collect();
            if !f.skeleton.contains(&piece) {
                assert!(
                    !out.contains(&piece),
                    "{}: {what}: `{piece}` of `{c}` survived in:\n{out}",
                    f.name
                );
            }
        }
    }
}

fn sample(s: BodySample) -> (String, bool) {
    match s {
        BodySample::Redacted { text, json, .. } => (text, json),
        other => panic!("expected a redacted sample, got {other:?}"),
    }
}

fn is_mask(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with('[') && s.ends_with(']') && s.contains(':'))
}

/// `out` has the shape of `input`: the same keys and array lengths, the same
/// numbers and booleans, wherever a value was not replaced whole by a mask.
fn same_shape(input: &Value, out: &Value, path: &str) -> Result<(), String> {
    match (input, out) {
        // replaced whole (a sensitive key's value, or an integer that is a
        // phone, ID or card number)
        (_, o) if is_mask(o) => Ok(()),
        (Value::Object(a), Value::Object(b)) => {
            let (ka, kb): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
            if ka != kb {
                return Err(format!("{path}: keys {ka:?} became {kb:?}"));
            }
            a.iter()
                .try_for_each(|(k, v)| same_shape(v, &b[k], &format!("{path}.{k}")))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (x, y))| same_shape(x, y, &format!("{path}[{i}]"))),
        (Value::String(_), Value::String(_)) => Ok(()),
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{path}: {a} became {b}")),
    }
}

/// Fields that are not sensitive and must come through as they are.
const KEPT: &[&str] = &[
    "msgtype",
    "createAt",
    "msgId",
    "robotCode",
    "conversationType",
    "sessionWebhookExpiredTime",
    "isAdmin",
    "isInAtList",
    "senderPlatform",
    "type",
    "spaceType",
    "specVersion",
    "duration",
    "videoType",
    "fileId",
];

/// Fields replaced whole, wherever they are in a callback.
const MASKED: &[&str] = &[
    "conversationId",
    "chatbotCorpId",
    "chatbotUserId",
    "senderNick",
    "senderStaffId",
    "senderCorpId",
    "senderId",
    "sessionWebhook",
    "downloadCode",
    "pictureDownloadCode",
    "dingtalkId",
    "staffId",
    "userId",
    "unionId",
    "corpId",
    "outTrackId",
    "openConversationId",
    "openThreadId",
    "spaceId",
];

fn check_fields(name: &str, input: &Value, out: &Value) {
    match (input, out) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if KEPT.contains(&k.as_str()) {
                    assert_eq!(&b[k], v, "{name}: `{k}` changed");
                } else if MASKED.contains(&k.as_str()) {
                    assert!(is_mask(&b[k]), "{name}: `{k}` not masked: {}", b[k]);
                }
                check_fields(name, v, &b[k]);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (x, y) in a.iter().zip(b) {
                check_fields(name, x, y);
            }
        }
        _ => {}
    }
}

fn engine(hash: bool) -> Engine {
    Engine::new(&EngineConfig {
        hash_key: hash.then(|| b"fixture-test-hash-key-0123456789".to_vec()),
        ..EngineConfig::default()
    })
    .unwrap()
}

#[test]
fn there_is_a_fixture_per_message_type() {
    let names: Vec<String> = fixtures().into_iter().map(|f| f.name).collect();
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
        assert!(names.iter().any(|n| n == want), "missing {want}: {names:?}");
    }
}

#[test]
fn the_word_canary_marks_only_canaries() {
    for f in fixtures() {
        let lower = f.skeleton.to_lowercase();
        assert!(
            !lower.contains("canary") && !lower.contains("金丝雀"),
            "{}: `canary` outside the listed canaries:\n{}",
            f.name,
            f.skeleton
        );
    }
}

#[test]
fn no_canary_survives_and_the_structure_stays() {
    for hash in [false, true] {
        let eng = engine(hash);
        for f in fixtures() {
            let mut report = Report::new();
            let (out, json) = sample(eng.redact_body(
                f.body.as_bytes(),
                Some("application/json; charset=utf-8"),
                None,
                1 << 20,
                &mut report,
            ));
            assert!(json, "{}: not marked JSON", f.name);
            assert_clean(&f, &out, if hash { "hashed" } else { "masked" });
            let input: Value = serde_json::from_str(&f.body).unwrap();
            let output: Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("{}: output is not JSON ({e}):\n{out}", f.name));
            same_shape(&input, &output, "$").unwrap_or_else(|e| panic!("{}: {e}", f.name));
            check_fields(&f.name, &input, &output);
            assert!(report.count("dingtalk") >= 3, "{}: {report:?}", f.name);
            // a Stream frame carries the callback as a JSON string: redacted
            // as text, and still the same JSON inside
            if let Some(data) = input["data"].as_str() {
                let data_in: Value = serde_json::from_str(data).unwrap();
                let data_out: Value = serde_json::from_str(output["data"].as_str().unwrap())
                    .unwrap_or_else(|e| panic!("{}: data is not JSON ({e}):\n{out}", f.name));
                same_shape(&data_in, &data_out, "$.data")
                    .unwrap_or_else(|e| panic!("{}: {e}", f.name));
                check_fields(&f.name, &data_in, &data_out);
            }
        }
    }
}

/// With a hash key, one user's ids get one tag in every fixture; download
/// codes, credentials, are masked, never hashed.
#[test]
fn hashed_ids_and_masked_download_codes() {
    let eng = engine(true);
    for f in fixtures() {
        let (out, _) = sample(eng.redact_body(
            f.body.as_bytes(),
            Some("application/json"),
            None,
            1 << 20,
            &mut Report::new(),
        ));
        let output: Value = serde_json::from_str(&out).unwrap();
        if let Some(id) = output["senderStaffId"].as_str() {
            assert!(id.starts_with("[dingtalk:"), "{}: {id}", f.name);
        }
        for code in ["downloadCode", "pictureDownloadCode"] {
            for v in [
                &output["content"][code],
                &output["content"]["richText"][1][code],
            ] {
                if !v.is_null() {
                    assert_eq!(v, "[REDACTED:dingtalk]", "{}: {code}", f.name);
                }
            }
        }
    }
}

/// Samples cut to any length, and captured prefixes of any length, leave no
/// piece of a canary.
#[test]
fn cut_and_captured_prefixes_leave_no_fragments() {
    let eng = engine(false);
    for f in fixtures() {
        let b = f.body.as_bytes();
        for n in (0..b.len() + 8).step_by(7) {
            let (out, _) =
                sample(eng.redact_body(b, Some("application/json"), None, n, &mut Report::new()));
            assert!(out.len() <= n);
            assert_clean(&f, &out, &format!("max_len {n}"));
            if n == 0 || n > b.len() {
                continue;
            }
            let s = eng.redact_body_prefix(
                &b[..n],
                Some("application/json"),
                None,
                1 << 20,
                &mut Report::new(),
            );
            if let BodySample::Redacted { text, .. } = s {
                assert_clean(&f, &text, &format!("prefix of {n} bytes"));
            }
        }
    }
}
