//! clawveil itself: the result of `check`, the certificate's days left, and whether
//! ACME storage is sealed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use clawveil_config::{Config, LoadOptions, TlsMode};
use clawveil_redact::{Engine, EngineConfig, Report};
use clawveil_tls::CertInfo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::check::{shell_quote, Check, Section, Status};
use crate::Hooks;

/// Fewer days left than this warns (ACME renews 30 days ahead).
const WARN_DAYS: i64 = 14;

/// Loads clawveil's configuration. Too-open secret files do not stop the doctor: they
/// come back as failed checks, so every other check still runs.
pub fn load(path: &Path, hooks: &Hooks) -> (Option<Config>, Vec<Check>) {
    let c = |status, msg: String| Check::new(Section::Clawveil, "config", status, msg).path(path);
    if !path.exists() {
        return (
            None,
            vec![c(
                Status::Skipped,
                format!(
                    "{} not found: clawveil's own checks skipped (pass --config)",
                    path.display()
                ),
            )],
        );
    }
    let opts = LoadOptions {
        allow_insecure_permissions: true,
    };
    let cfg = match clawveil_config::load(path, &opts) {
        Ok(cfg) => cfg,
        Err(e) => {
            return (
                None,
                vec![c(Status::Fail, scrub(&format!("`clawveil check`: {e}")))
                    .fix("run `clawveil check --config <file>` and fix what it names")],
            )
        }
    };
    let mut out = Vec::new();
    for w in &cfg.warnings {
        out.push(
            Check::new(
                Section::Clawveil,
                "config.perms",
                Status::Fail,
                format!(
                    "{} ({}) has mode {:04o}: clawveil refuses to start with it",
                    w.path.display(),
                    w.what,
                    w.mode
                ),
            )
            .fix(format!("chmod 600 {}", shell_quote(&w.path)))
            .path(&w.path),
        );
    }
    out.push(match (hooks.validate)(&cfg) {
        Ok(()) if cfg.warnings.is_empty() => c(
            Status::Pass,
            format!("{}: `clawveil check` passes", path.display()),
        ),
        Ok(()) => c(
            Status::Fail,
            format!(
                "{}: `clawveil check` fails on the file modes above",
                path.display()
            ),
        ),
        Err(e) => c(Status::Fail, scrub(&format!("`clawveil check`: {e}")))
            .fix("run `clawveil check --config <file>` and fix what it names"),
    });
    (Some(cfg), out)
}

/// An error text with anything secret-looking masked: a configuration error may quote
/// a value.
fn scrub(text: &str) -> String {
    match Engine::new(&EngineConfig::default()) {
        Ok(e) => e.redact_text(text, &mut Report::new()).into_owned(),
        Err(_) => "the configuration is invalid (run `clawveil check`)".into(),
    }
}

/// Whole days from `now` to `t` (negative once past).
fn days_until(t: SystemTime, now: SystemTime) -> i64 {
    match t.duration_since(now) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -(e.duration().as_secs().div_ceil(86_400) as i64),
    }
}

/// The serving certificate: days left, and the key file's mode.
pub fn check_cert(cfg: &Config, hooks: &Hooks, now: SystemTime) -> Vec<Check> {
    let c = |status, msg: String| Check::new(Section::Clawveil, "cert", status, msg);
    let days_check = |not_after: SystemTime, what: String, self_signed: bool| {
        let days = days_until(not_after, now);
        if days < 0 {
            c(Status::Fail, format!("{what} expired {} day(s) ago", -days))
                .fix("renew or replace the certificate (`clawveil cert renew` with ACME)")
        } else if self_signed {
            c(
                Status::Warn,
                format!("{what} is self-signed (development only), {days} day(s) left"),
            )
            .fix("use tls.mode = \"acme\" or \"files\" in production")
        } else if days < WARN_DAYS {
            c(Status::Warn, format!("{what} expires in {days} day(s)"))
                .fix("renew or replace the certificate (`clawveil cert status` says why not yet)")
        } else {
            c(Status::Pass, format!("{what}: {days} day(s) left"))
        }
    };
    let mut out = Vec::new();
    match cfg.tls.mode {
        TlsMode::Acme => {
            let storage = cfg.acme.as_ref().map(|a| a.storage.display().to_string());
            let what = format!(
                "the ACME certificate in {}",
                storage.unwrap_or_else(|| "ACME storage".into())
            );
            out.push(match (cfg.acme.as_ref(), hooks.acme_not_after) {
                (Some(acme), Some(read)) => match read(acme) {
                    Ok(Some(t)) => days_check(t, what, false),
                    Ok(None) => c(Status::Skipped, format!("{what}: none stored yet")),
                    Err(e) => c(Status::Warn, scrub(&format!("{what}: {e}")))
                        .fix("run `clawveil cert status`"),
                },
                _ => c(
                    Status::Skipped,
                    format!("{what}: run `clawveil cert status`"),
                ),
            });
        }
        TlsMode::Files | TlsMode::SelfSigned => {
            let self_signed = cfg.tls.mode == TlsMode::SelfSigned;
            let cert = &cfg.tls.cert;
            let what = format!("{} (tls.mode = \"{}\")", cert.display(), cfg.tls.mode);
            out.push(match read_leaf(cert) {
                Ok(info) => days_check(info.not_after, what, self_signed),
                Err(_) if self_signed && !cert.exists() => c(
                    Status::Skipped,
                    format!("{what}: not generated yet (clawveil makes it on first start)"),
                ),
                Err(e) => c(Status::Fail, format!("{what}: {e}"))
                    .fix("run `clawveil check` and fix tls.cert"),
            });
            if let Ok(meta) = std::fs::metadata(&cfg.tls.key) {
                let mode = meta.permissions().mode() & 0o7777;
                if mode & 0o077 != 0 {
                    out.push(
                        Check::new(
                            Section::Clawveil,
                            "cert.key_perms",
                            Status::Fail,
                            format!(
                                "{} (tls.key) has mode {mode:04o}: clawveil refuses to load it",
                                cfg.tls.key.display()
                            ),
                        )
                        .fix(format!("chmod 600 {}", shell_quote(&cfg.tls.key)))
                        .path(&cfg.tls.key),
                    );
                }
            }
        }
    }
    out
}

/// Why a certificate file could not be read, for a message.
#[derive(Debug, thiserror::Error)]
enum LeafError {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("no PEM certificate in it")]
    NoCertificate,
    #[error("{0}")]
    Parse(#[from] clawveil_tls::CertError),
}

/// The first certificate of a PEM chain, parsed the way clawveil parses it.
fn read_leaf(path: &Path) -> Result<CertInfo, LeafError> {
    let pem = std::fs::read(path)?;
    let leaf = CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .ok_or(LeafError::NoCertificate)?;
    Ok(CertInfo::parse(leaf.as_ref())?)
}

/// Whether ACME storage is sealed (`acme.storage_key`).
pub fn check_sealed(cfg: &Config) -> Check {
    let c = |status, msg: String| Check::new(Section::Clawveil, "acme.sealed", status, msg);
    match &cfg.acme {
        None => c(Status::Skipped, "ACME is not configured: no storage to seal".into()),
        Some(a) if a.storage_key.is_some() => c(
            Status::Pass,
            format!("ACME storage {} is sealed (acme.storage_key)", a.storage.display()),
        ),
        Some(a) => c(
            Status::Warn,
            format!(
                "ACME storage {} holds the account and certificate keys unsealed (mode 0600 only)",
                a.storage.display()
            ),
        )
        .fix("set acme.storage_key = \"${file:/run/secrets/acme_storage_key}\" (openssl rand -hex 32)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn days() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            days_until(now + Duration::from_secs(86_400 * 3 + 5), now),
            3
        );
        assert_eq!(days_until(now - Duration::from_secs(10), now), -1);
    }

    #[test]
    fn scrubs_values() {
        assert_eq!(
            scrub("bad value sk-abcd1234efgh5678ijkl9012"),
            "bad value [REDACTED:api-key]"
        );
    }
}
