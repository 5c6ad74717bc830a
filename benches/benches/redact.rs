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

use clawveil_benches::{load, CALLBACKS};
use clawveil_redact::{Engine, EngineConfig, Report};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

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

    let callbacks = load(&CALLBACKS);
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
