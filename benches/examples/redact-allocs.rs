//! Heap allocations per redaction call, counted by a wrapping global allocator:
//! the two bodies of `benches/log-bodies.sh` as the proxy redacts them per logged
//! request (a fresh `Report`, the request body, the response body, then the
//! report's counts read), and the three DingTalk callbacks of the corpus.
//! Counts, unlike times, do not move with the machine's load.
//!
//! ```sh
//! cargo run --release -p clawveil-benches --example redact-allocs
//! # only the per-request work, N times (default 10000), for callgrind:
//! cargo build --release -p clawveil-benches --example redact-allocs
//! valgrind --tool=callgrind target/release/examples/redact-allocs requests 10000
//! # the redacted samples themselves (plain and hashed), to diff engine versions:
//! target/release/examples/redact-allocs print
//! ```

// A global allocator cannot be written without `unsafe`; this one only forwards
// to `System` and counts, and lives in an example, never in the engine.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use clawveil_benches::{load, CALLBACKS, CORPUS};
use clawveil_redact::{Engine, EngineConfig, Report};

/// Counts calls to `alloc`/`realloc` and the bytes they ask for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments; the
// counters are the only addition.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size.saturating_sub(layout.size()) as u64, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The request body of `benches/log-bodies.sh`.
const REQUEST: &str = r#"{"msgtype":"text","text":{"content":"please call 13912345678 or mail li.lei@example.com about card 6222021234567890128"},"msgId":"msgABC123","createAt":1732450000000,"conversationType":"1","conversationId":"cidPlanted123456==","senderId":"$:LWCP_v1:$abcdef","senderNick":"Li Lei","senderCorpId":"ding1234567890","senderStaffId":"manager4220","chatbotUserId":"$:LWCP_v1:$bot","sessionWebhook":"https://oapi.dingtalk.com/robot/sendBySession?session=abcdef0123456789","sessionWebhookExpiredTime":1732457200000,"isAdmin":false}"#;
/// The response body nginx returns there.
const RESPONSE: &str =
    r#"{"msgtype":"text","text":{"content":"reply to 13912345678 at li.lei@example.com"}}"#;

const MAX: usize = 16 * 1024;
const JSON: Option<&str> = Some("application/json");

/// `(allocs, reallocs, bytes)` so far.
fn now() -> [u64; 3] {
    [
        ALLOCS.load(Relaxed),
        REALLOCS.load(Relaxed),
        BYTES.load(Relaxed),
    ]
}

/// Average `(allocs, reallocs, bytes)` of one run of `f`, over `n` runs after one
/// warm-up run.
fn per_call(n: u64, mut f: impl FnMut()) -> [f64; 3] {
    f();
    let a = now();
    for _ in 0..n {
        f();
    }
    let b = now();
    [0, 1, 2].map(|i| (b[i] - a[i]) as f64 / n as f64)
}

/// One logged request as `ContentLog::body` and `ContentLog::count` do it.
fn request(engine: &Engine) -> u64 {
    let mut report = Report::new();
    let req = engine.redact_body(REQUEST.as_bytes(), JSON, None, MAX, &mut report);
    let resp = engine.redact_body(RESPONSE.as_bytes(), JSON, None, MAX, &mut report);
    black_box((req, resp));
    report.iter().map(|(rule, n)| rule.len() as u64 + n).sum()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let engine = Engine::new(&EngineConfig::default()).expect("default config");
    match args.next().as_deref() {
        None => {}
        Some("requests") => {
            let n: u64 = args.next().map_or(10_000, |s| s.parse().expect("a count"));
            let mut sum = 0;
            for _ in 0..n {
                sum += black_box(request(&engine));
            }
            println!("{n} requests, checksum {sum}");
            return;
        }
        Some("print") => {
            print_samples();
            return;
        }
        Some(other) => {
            eprintln!("redact-allocs: unknown mode {other:?} (requests [N] | print)");
            std::process::exit(2);
        }
    }

    const N: u64 = 1000;
    let show = |what: &str, [a, r, b]: [f64; 3]| {
        println!("{what:<34} {a:>6.1} allocs {r:>5.1} reallocs {b:>8.0} bytes");
    };
    show(
        "per request (req + resp + report)",
        per_call(N, || {
            black_box(request(&engine));
        }),
    );
    for (name, body) in [("request body", REQUEST), ("response body", RESPONSE)] {
        let mut report = Report::new();
        show(
            name,
            per_call(N, || {
                black_box(engine.redact_body(body.as_bytes(), JSON, None, MAX, &mut report));
            }),
        );
    }
    show(
        "Report::new + one record",
        per_call(N, || {
            let mut report = Report::new();
            black_box(engine.redact_body(b"{\"p\":13912345678}", JSON, None, MAX, &mut report));
        }),
    );
    let callbacks = load(&CALLBACKS);
    for (name, body) in CALLBACKS.iter().zip(&callbacks) {
        let mut report = Report::new();
        show(
            name,
            per_call(N, || {
                black_box(engine.redact_body(body.as_bytes(), JSON, None, MAX, &mut report));
            }),
        );
    }
}

/// Every JSON, form and text fixture, the two bodies above and a few cut
/// variants, redacted plainly and with a hash key, with their reports: a
/// transcript to diff between engine versions.
fn print_samples() {
    let mut bodies: Vec<(String, &str, String)> = vec![
        ("request".into(), "application/json", REQUEST.into()),
        ("response".into(), "application/json", RESPONSE.into()),
    ];
    let mut names: Vec<_> = std::fs::read_dir(CORPUS)
        .expect("corpus")
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .collect();
    names.sort();
    for name in names {
        let ctype = match name.rsplit('.').next() {
            Some("json") => "application/json",
            Some("html") => "text/html",
            Some("sse") => "text/event-stream",
            _ => "application/x-www-form-urlencoded",
        };
        let body = load(&[name.as_str()]).remove(0);
        bodies.push((name, ctype, body));
    }
    let hashed = EngineConfig {
        hash_key: Some(b"0123456789abcdef0123456789abcdef".to_vec()),
        ..EngineConfig::default()
    };
    for cfg in [EngineConfig::default(), hashed] {
        let engine = Engine::new(&cfg).expect("config");
        for (name, ctype, body) in &bodies {
            for max in [MAX, 100, 37] {
                for prefix in [false, true] {
                    let mut report = Report::with_matches();
                    let b = body.as_bytes();
                    let cut = &b[..if prefix { b.len() * 2 / 3 } else { b.len() }];
                    let sample = if prefix {
                        engine.redact_body_prefix(cut, Some(ctype), None, max, &mut report)
                    } else {
                        engine.redact_body(cut, Some(ctype), None, max, &mut report)
                    };
                    println!("== {name} max={max} prefix={prefix}\n{sample:?}");
                    println!(
                        "{:?}\n{:?}",
                        report.iter().collect::<Vec<_>>(),
                        report.matches()
                    );
                }
            }
        }
    }
}
