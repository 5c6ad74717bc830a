//! Redacts the three DingTalk callbacks of the corpus N times (default 1000),
//! all built-in rules on: a fixed amount of work whose instruction count, read
//! under callgrind, does not move with the machine's load.
//!
//! ```sh
//! cargo build --release -p clawveil-benches --example redact-count
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out target/release/examples/redact-count 1000
//! ```

use std::hint::black_box;

use clawveil_benches::{load, CALLBACKS};
use clawveil_redact::{Engine, EngineConfig, Report};

fn main() {
    let n: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 1000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("redact-count: the count must be a number: {e}");
            std::process::exit(2);
        }
    };
    let bodies = load(&CALLBACKS);
    let engine = Engine::new(&EngineConfig::default()).expect("default config");
    let mut report = Report::new();
    for _ in 0..n {
        for body in &bodies {
            black_box(engine.redact_body(
                body.as_bytes(),
                Some("application/json"),
                None,
                16 * 1024,
                &mut report,
            ));
        }
    }
    let bytes: usize = bodies.iter().map(String::len).sum();
    println!(
        "redacted {n} x {} callbacks ({} bytes), {} replacements",
        bodies.len(),
        n * bytes,
        report.total()
    );
}
