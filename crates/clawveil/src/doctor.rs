//! `clawveil doctor`: the checks live in clawveil-doctor; this plugs in what needs the
//! crates above it (proxy and egress validation, the configured redaction rules, the
//! ACME store) and prints the result.

use std::process::ExitCode;

use clawveil_doctor::{Hooks, LogLimits, Options};

use crate::cli::DoctorArgs;

pub fn doctor(args: &DoctorArgs) -> ExitCode {
    let dirs = if args.openclaw_dirs.is_empty() {
        clawveil_doctor::default_openclaw_dirs(
            std::env::var_os("HOME")
                .map(std::path::PathBuf::from)
                .as_deref(),
        )
    } else {
        args.openclaw_dirs.clone()
    };
    let mut opts = Options::new(dirs, args.config.clone());
    opts.openclaw_config = args.openclaw_config.clone();
    opts.log_paths = args.log_paths.clone();
    opts.log_limits = LogLimits {
        max_files: args.log_max_files,
        max_bytes: args.log_max_mib.saturating_mul(1 << 20),
    };
    opts.fix_perms = args.fix_perms;
    let hooks = Hooks {
        validate: |cfg| {
            clawveil_proxy::validate(cfg)?;
            clawveil_egress::check(cfg)?;
            Ok(())
        },
        engine_config: clawveil_proxy::engine_config,
        acme_not_after: Some(|acme| {
            Ok(clawveil_acme::status(acme)?
                .into_iter()
                .map(|c| c.not_after)
                .min())
        }),
    };
    match clawveil_doctor::run(&opts, &hooks) {
        Ok(outcome) => {
            if args.json {
                print!("{}", outcome.to_json());
            } else {
                print!("{}", outcome.to_text());
            }
            if outcome.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("clawveil doctor: {e}");
            ExitCode::FAILURE
        }
    }
}
