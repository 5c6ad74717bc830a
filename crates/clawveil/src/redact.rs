//! `clawveil redact`: the configured rules over a file or stdin.

use std::io::{Read, Write};
use std::process::ExitCode;

use clawveil_config::LoadOptions;
use clawveil_redact::{BodySample, Engine, EngineConfig, Report};

use crate::cli::RedactArgs;

pub fn redact(args: &RedactArgs) -> ExitCode {
    let engine_cfg = if args.config.config.exists() {
        let opts = LoadOptions {
            allow_insecure_permissions: args.config.allow_insecure_permissions,
        };
        match clawveil_config::load(&args.config.config, &opts) {
            Ok(cfg) => clawveil_proxy::engine_config(&cfg),
            Err(e) => {
                eprintln!("clawveil: invalid configuration: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        eprintln!(
            "clawveil: {} not found; using the built-in rules",
            args.config.config.display()
        );
        EngineConfig::default()
    };
    let engine = match Engine::new(&engine_cfg) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("clawveil: [redact]: {e}");
            return ExitCode::from(2);
        }
    };
    let mut input = Vec::new();
    let read = match &args.file {
        Some(path) => std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut input)),
        None => std::io::stdin().read_to_end(&mut input),
    };
    if let Err(e) = read {
        eprintln!("clawveil: cannot read the input: {e}");
        return ExitCode::FAILURE;
    }
    let ctype = args.content_type.clone().unwrap_or_else(|| {
        if serde_json::from_slice::<serde_json::Value>(&input).is_ok() {
            "application/json".into()
        } else {
            "text/plain; charset=utf-8".into()
        }
    });
    let mut report = if args.explain {
        Report::with_matches()
    } else {
        Report::new()
    };
    let out = match engine.redact_body(&input, Some(&ctype), None, usize::MAX, &mut report) {
        BodySample::Empty => String::new(),
        BodySample::Redacted { text, .. } => text,
        BodySample::Omitted(reason) => {
            eprintln!(
                "clawveil: the input would be omitted from logs ({}): it cannot be redacted safely",
                reason.as_str()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    if !out.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
    if args.explain {
        for m in report.matches() {
            eprintln!("{:<12} offset {:>6} length {:>4}", m.rule, m.offset, m.len);
        }
        let counts: Vec<String> = report.iter().map(|(r, n)| format!("{r}={n}")).collect();
        eprintln!("replaced {} value(s): {}", report.total(), counts.join(" "));
    }
    ExitCode::SUCCESS
}
