//! `clawveil cert status` and `clawveil cert renew`.

use std::process::ExitCode;

use clawveil_acme::RenewOutcome;
use clawveil_config::{LoadOptions, TlsMode};

use crate::cli::{CertCommand, ConfigArgs};

pub fn cert(cmd: CertCommand) -> ExitCode {
    match cmd {
        CertCommand::Status(args) => status(&args),
        CertCommand::Renew { config, timeout } => renew(&config, timeout),
    }
}

fn load(args: &ConfigArgs) -> Result<clawveil_config::Config, ExitCode> {
    let opts = LoadOptions {
        allow_insecure_permissions: args.allow_insecure_permissions,
    };
    let cfg = clawveil_config::load(&args.config, &opts).map_err(|e| {
        eprintln!("clawveil: invalid configuration: {e}");
        ExitCode::from(2)
    })?;
    Ok(cfg)
}

fn status(args: &ConfigArgs) -> ExitCode {
    let cfg = match load(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match (cfg.tls.mode, &cfg.acme) {
        (TlsMode::Acme, Some(acme)) => match clawveil_acme::status(acme) {
            Ok(list) if list.is_empty() => {
                println!("no certificate stored in {} yet", acme.storage.display());
                ExitCode::SUCCESS
            }
            Ok(list) => {
                for c in list {
                    println!("{c}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("clawveil: {e}");
                ExitCode::FAILURE
            }
        },
        _ => match clawveil_tls::LoadedCert::from_files(
            &cfg.tls.cert,
            &cfg.tls.key,
            args.allow_insecure_permissions,
        ) {
            Ok(c) => {
                let now = std::time::SystemTime::now();
                println!(
                    "certificate   {} (tls.mode = \"{}\")",
                    cfg.tls.cert.display(),
                    cfg.tls.mode
                );
                println!("  names       {}", c.info.names.join(", "));
                println!("  issuer      {}", c.info.issuer);
                println!(
                    "  not before  {}",
                    clawveil_acme::when(c.info.not_before, now)
                );
                println!(
                    "  not after   {}",
                    clawveil_acme::when(c.info.not_after, now)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("clawveil: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn renew(args: &ConfigArgs, timeout: std::time::Duration) -> ExitCode {
    let cfg = match load(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cfg.tls.mode != TlsMode::Acme {
        eprintln!("clawveil: cert renew needs tls.mode = \"acme\"");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clawveil: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(clawveil_acme::renew_now(&cfg, timeout)) {
        Ok(outcome) => {
            let (who, list) = match outcome {
                RenewOutcome::ByRunningProcess(l) => ("renewed by the running clawveil", l),
                RenewOutcome::Here(l) => ("renewed", l),
            };
            println!("{who}:");
            for c in list {
                println!("{c}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("clawveil: renewal failed: {e}");
            ExitCode::FAILURE
        }
    }
}
