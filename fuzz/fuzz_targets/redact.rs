//! Fuzzes the redaction engine with arbitrary bytes under every kind of content
//! type, as a whole body and as a captured prefix, and as text, query strings and
//! header values.
//!
//! Run: `cargo +nightly fuzz run redact -- -max_total_time=30` (from the repo root).
//!
//! The first input byte picks the content type, the engine (masks or keyed
//! hashes with a custom rule) and whether the body is a prefix; the second the
//! maximum sample length.

#![no_main]

use std::sync::LazyLock;

use clawveil_redact::{BodySample, CustomRule, Engine, EngineConfig, Replace, Report};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("text/html; charset=UTF-8"),
    Some("text/event-stream"),
    Some("application/xml"),
    Some("application/octet-stream"),
    Some("text/plain; charset=utf-16"),
    None,
];

static MASKS: LazyLock<Engine> = LazyLock::new(|| Engine::new(&EngineConfig::default()).unwrap());

static HASHES: LazyLock<Engine> = LazyLock::new(|| {
    Engine::new(&EngineConfig {
        json_keys: vec!["user".into()],
        custom: vec![CustomRule {
            name: "order-id".into(),
            pattern: r"ORD-[0-9]{8}".into(),
            replace: Replace::Hash,
        }],
        hash_key: Some(b"fuzzing-hash-key-0123456789abcdef".to_vec()),
        ..EngineConfig::default()
    })
    .unwrap()
});

fuzz_target!(|data: &[u8]| {
    let [sel, len, body @ ..] = data else {
        return;
    };
    let ct = CONTENT_TYPES[usize::from(*sel) % CONTENT_TYPES.len()];
    let eng: &Engine = if sel & 0x40 != 0 { &HASHES } else { &MASKS };
    let max_len = usize::from(*len) * 4;
    let mut report = Report::with_matches();
    let sample = if sel & 0x80 != 0 {
        eng.redact_body_prefix(body, ct, None, max_len, &mut report)
    } else {
        eng.redact_body(body, ct, None, max_len, &mut report)
    };
    if let BodySample::Redacted { text, .. } = &sample {
        assert!(text.len() <= max_len);
        // a mask token is never left half at the end of a sample (when the
        // input has no brackets, every `[` in the output opens a token)
        if !body.contains(&b'[') {
            if let Some(open) = text.rfind('[') {
                assert!(text[open..].contains(']'), "{:?}", &text[open..]);
            }
        }
    }
    for m in report.matches() {
        assert!(m.offset + m.len <= body.len());
    }

    let text = String::from_utf8_lossy(body);
    let mut report = Report::new();
    eng.redact_text(&text, &mut report);
    eng.redact_query(&text, &mut report);
    eng.redact_header("Authorization", &text, &mut report);
    eng.redact_header("X-Custom", &text, &mut report);
});
