//! Throughput of the redaction engine (all built-in rules on).
//!
//! Run: `cargo bench -p clawveil-benches --bench redact -- --warm-up-time 1 --measurement-time 3`
//!
//! * `callbacks`: the DingTalk robot callback fixtures of `crates/redact/tests/corpus`
//!   (placeholders filled with synthetic identifiers), each redacted as a JSON body;
//! * `model_json`: the model-gateway request/response fixtures, as JSON bodies;
//! * `text`: a chat transcript with identifiers on most lines, as free text;
//! * `no_match`: prose without anything to redact, as free text;
//! * `callbacks_serde_json_parse_only`: a yardstick, not redaction: the same
//!   callbacks merely parsed by serde_json, measured in the same run.

use std::hint::black_box;

use clawveil_redact::{Engine, EngineConfig, Report};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/redact/tests/corpus/"
);

fn id_card(first17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{first17}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

fn luhn(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|n| {
            let s: u32 = n
                .bytes()
                .rev()
                .enumerate()
                .map(|(i, b)| {
                    let d = u32::from(b - b'0') * if i % 2 == 1 { 2 } else { 1 };
                    if d > 9 {
                        d - 9
                    } else {
                        d
                    }
                })
                .sum();
            s % 10 == 0
        })
        .unwrap()
}

/// Fills every `{{NAME}}` placeholder with a synthetic value of the right shape.
fn fill(template: &str) -> String {
    let values = [
        (
            "CONV_ID",
            "cidQ3mZ8vN2kT7xR1pL5wB9yH4jF6sD0aG+==".to_owned(),
        ),
        (
            "CHATBOT_ID",
            "$:LWCP_v1:$Zx8Kq2Lm5Np7Rs1Tv4Wy6Ab9Cd3Ef0Gh".into(),
        ),
        (
            "AT_USER_ID",
            "$:LWCP_v1:$Hq1Jw3Ke5Lr7Mt9Ny2Pu4Qi6Ro8Sa0Td".into(),
        ),
        ("AT_STAFF_ID", "0125381846791066".into()),
        ("SENDER_ID", "$:LWCP_v1:$Ab3Cd5Ef7Gh9Ij1Kl3Mn5Op7Qr9".into()),
        ("CORP_ID", "ding9f50b15bccd16741".into()),
        ("NICK", "王小明".into()),
        ("STAFF_ID", "manager4220".into()),
        ("SESSION", "d5a1f0c3b2e94f8a7b6c5d4e3f2a1b0c".into()),
        ("PHONE_CN_SPACED", "+86 139 8765 4321".into()),
        ("PHONE_CN", "13912345678".into()),
        ("PHONE_INTL", "+1 415 555 2671".into()),
        ("EMAIL2", "ops-team+alerts@corp.example.org".into()),
        ("EMAIL", "wang.xiaoming@example.com.cn".into()),
        ("ID_CARD_X", id_card("44030519851120001")),
        ("ID_CARD", id_card("11010519900307123")),
        ("CARD_SPACED", luhn("411111222233334")),
        ("CARD", luhn("621700012345678901")),
        (
            "OPENAI_KEY",
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7cD0eF".into(),
        ),
        (
            "ANTHROPIC_KEY",
            "sk-ant-api03-Zy9xW8vU7tS6rQ5pO4nM3lK2jI1hG0fE-dC_bA".into(),
        ),
        ("AWS_KEY", "AKIAIOSFODNN7EXAMPLE".into()),
        (
            "AWS_SECRET",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        ),
    ];
    let mut out = template.to_owned();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), &v);
    }
    out
}

fn load(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|n| fill(&std::fs::read_to_string(format!("{CORPUS}{n}")).expect("fixture")))
        .collect()
}

fn transcript() -> String {
    let lines = [
        "[10:01] 王小明: 我的手机是 13912345678，麻烦回电",
        "[10:02] bot: 好的，已记录。请问还有什么可以帮您？",
        "[10:03] 王小明: 邮箱 wang.xiaoming@example.com.cn，订单 ORD-20240101",
        "[10:04] bot: 订单 ORD-20240101 状态：已发货，预计 2024-01-03 送达。",
        "[10:05] ops: deploy 1.2.3.4 done, commit da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "[10:06] ops: callback https://oapi.dingtalk.com/robot/send?access_token=4f1a9c0b8d7e6f5a4b3c2d1e0f9a8b7c",
        "[10:07] 李雷: The meeting moved to 3pm; please bring the quarterly numbers.",
        "[10:08] bot: Authorization failed for Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlMTIz",
    ];
    let mut s = String::new();
    while s.len() < 64 * 1024 {
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

fn prose() -> String {
    let p = "The quick brown fox jumps over the lazy dog while the committee reviews \
             the quarterly plan. 会议改到下午三点，请大家准时参加并带上季度报告。 Nothing \
             in this paragraph needs to be hidden from the operators who read the logs.\n";
    p.repeat(64 * 1024 / p.len() + 1)
}

fn bench(c: &mut Criterion) {
    let engine = Engine::new(&EngineConfig::default()).expect("default config");
    let mut g = c.benchmark_group("redact");

    let callbacks = load(&[
        "dingtalk_group_text.json",
        "dingtalk_single_chat.json",
        "dingtalk_rich_text.json",
    ]);
    let model = load(&["model_request.json", "model_response.json"]);
    for (name, bodies) in [("callbacks", &callbacks), ("model_json", &model)] {
        g.throughput(Throughput::Bytes(
            bodies.iter().map(|b| b.len() as u64).sum(),
        ));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut report = Report::new();
                for body in bodies {
                    black_box(engine.redact_body(
                        body.as_bytes(),
                        Some("application/json"),
                        None,
                        16 * 1024,
                        &mut report,
                    ));
                }
                report
            })
        });
    }

    // a yardstick measured in the same run, for a figure that does not move
    // with the machine: only parsing the same callbacks into a serde_json
    // value, which redaction (a full grammar check, matching and rewriting)
    // should not be much slower than
    g.throughput(Throughput::Bytes(
        callbacks.iter().map(|b| b.len() as u64).sum(),
    ));
    g.bench_function("callbacks_serde_json_parse_only", |b| {
        b.iter(|| {
            for body in &callbacks {
                let v: serde_json::Value = serde_json::from_str(black_box(body)).expect("JSON");
                black_box(v);
            }
        })
    });

    for (name, text) in [("text", transcript()), ("no_match", prose())] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut report = Report::new();
                black_box(engine.redact_text(black_box(&text), &mut report).len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
