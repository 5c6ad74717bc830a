//! `[tls]` and `[acme]`: where the certificate comes from.

use std::net::IpAddr;
use std::time::Duration;

use super::server::{bad, secs};
use super::{range, Ctx};
use crate::error::{ConfigError, ErrorKind};
use crate::perms::check_private_file;
use crate::raw::{RawAcme, RawTls};
use crate::values::{is_header_value, is_host_name, Schemes};
use crate::{Acme, Challenge, Tls, TlsMode, TlsVersion};

/// `tls.hsts` when the key is absent.
pub(crate) const DEFAULT_HSTS: &str = "max-age=31536000; includeSubDomains";

pub(super) fn tls(cx: &mut Ctx<'_>, raw: &RawTls) -> Result<Tls, ConfigError> {
    let mode = cx.choice(
        "tls.mode",
        raw.mode.as_deref(),
        TlsMode::SelfSigned,
        TlsMode::NAMES,
        TlsMode::from_name,
    )?;
    let min_version = cx.choice(
        "tls.min_version",
        raw.min_version.as_deref(),
        TlsVersion::V1_2,
        TlsVersion::NAMES,
        TlsVersion::from_name,
    )?;
    let hsts = match raw.hsts.as_deref() {
        None => Some(DEFAULT_HSTS.to_owned()),
        Some("") => None,
        Some(v) if !is_header_value(v) => {
            return Err(cx.err(
                "tls.hsts",
                bad(
                    v,
                    "contains a control character",
                    "a header value such as \"max-age=31536000\", or \"\" to disable",
                ),
            ));
        }
        Some(v) => Some(v.to_owned()),
    };
    let (cert_default, key_default) = match mode {
        TlsMode::SelfSigned => ("certs/selfsigned.pem", "certs/selfsigned.key"),
        _ => ("certs/fullchain.pem", "certs/privkey.pem"),
    };
    let cert = Ctx::path(raw.cert.as_deref(), cert_default);
    let key = Ctx::path(raw.key.as_deref(), key_default);
    let names = raw
        .names
        .clone()
        .unwrap_or_else(|| vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]);
    if names.is_empty() {
        return Err(cx.err(
            "tls.names",
            ErrorKind::Empty {
                hint: "list at least one name, e.g. [\"localhost\"]".into(),
            },
        ));
    }
    if let Some(i) = names
        .iter()
        .position(|n| n.trim().is_empty() || n.contains(char::is_whitespace))
    {
        let value = &names[i];
        return Err(cx.err(
            &format!("tls.names[{i}]"),
            bad(value, "is not a name", "a DNS name or IP address"),
        ));
    }
    let watch_interval = cx.duration_in(
        "tls.watch_interval",
        raw.watch_interval.as_deref(),
        secs(2),
        range::WATCH_INTERVAL,
    )?;
    if mode == TlsMode::Files {
        let hint = "tls.mode = \"files\" needs a PEM certificate chain there (or set tls.cert)";
        match std::fs::metadata(&cert) {
            Err(source) => {
                return Err(cx.err(
                    "tls.cert",
                    ErrorKind::FileNotFound {
                        path: cert.clone(),
                        hint: hint.into(),
                        source,
                    },
                ));
            }
            Ok(m) if !m.is_file() => {
                return Err(cx.err(
                    "tls.cert",
                    bad(
                        &cert.display().to_string(),
                        "is not a regular file",
                        "a PEM file",
                    ),
                ));
            }
            Ok(_) => {}
        }
        let warning = check_private_file(&key, "tls.key", cx.allow_insecure())
            .map_err(|e| cx.err("tls.key", e.into()))?;
        cx.warn(warning);
    }
    Ok(Tls {
        mode,
        min_version,
        hsts,
        cert,
        key,
        names,
        watch_interval,
    })
}

pub(super) fn acme(cx: &mut Ctx<'_>, raw: &RawAcme) -> Result<Acme, ConfigError> {
    let hint = "list the names to certify, e.g. domains = [\"bot.example.com\"]";
    let domains = raw.domains.clone().unwrap_or_default();
    if domains.is_empty() {
        let kind = if raw.domains.is_none() {
            ErrorKind::Missing { hint: hint.into() }
        } else {
            ErrorKind::Empty { hint: hint.into() }
        };
        return Err(cx.err("acme.domains", kind));
    }
    let mut domains = domains;
    for (i, d) in domains.iter_mut().enumerate() {
        let key = format!("acme.domains[{i}]");
        // An IP address (RFC 8738), kept in its canonical text form, which is how the
        // issued certificate's iPAddress names read back.
        if let Ok(ip) = d.parse::<IpAddr>() {
            *d = ip.to_string();
            continue;
        }
        if let Some(inner) = d.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            if inner.parse::<IpAddr>().is_ok() {
                return Err(cx.err(
                    &key,
                    bad(d, "has brackets", &format!("the bare address, \"{inner}\"")),
                ));
            }
        }
        if d.starts_with("*.") {
            return Err(cx.err(
                &key,
                bad(
                    d,
                    "is a wildcard, which needs the DNS-01 challenge (not supported)",
                    "plain names such as \"bot.example.com\"",
                ),
            ));
        }
        let numeric_tld = d
            .rsplit('.')
            .next()
            .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()));
        if !is_host_name(d) || numeric_tld {
            return Err(cx.err(
                &key,
                bad(
                    d,
                    "is neither a DNS name nor an IP address",
                    "a name such as \"bot.example.com\" or an address such as \"203.0.113.7\" or \"2001:db8::7\" (no scheme, port or path)",
                ),
            ));
        }
    }
    cx.unique(
        domains.iter().map(String::as_str),
        |i| format!("acme.domains[{i}]"),
        "domains",
    )?;
    let contact = raw.contact.clone().unwrap_or_default();
    if let Some(i) = contact
        .iter()
        .position(|c| c.strip_prefix("mailto:").is_none_or(|m| !m.contains('@')))
    {
        return Err(cx.err(
            &format!("acme.contact[{i}]"),
            bad(
                &contact[i],
                "is not a mailto: URL",
                "\"mailto:ops@example.com\"",
            ),
        ));
    }
    let directory = raw
        .directory
        .as_deref()
        .unwrap_or("https://acme-v02.api.letsencrypt.org/directory");
    let directory = cx.url("acme.directory", directory, Schemes::HttpsOnly)?;
    let challenge = cx.choice(
        "acme.challenge",
        raw.challenge.as_deref(),
        Challenge::Http01,
        Challenge::NAMES,
        Challenge::from_name,
    )?;
    let eab_kid = cx.opt_secret("acme.eab_kid", raw.eab_kid.as_deref())?;
    let eab_hmac = cx.opt_secret("acme.eab_hmac", raw.eab_hmac.as_deref())?;
    if eab_kid.is_some() != eab_hmac.is_some() {
        let (set, missing) = if eab_kid.is_some() {
            ("eab_kid", "eab_hmac")
        } else {
            ("eab_hmac", "eab_kid")
        };
        return Err(cx.err(
            &format!("acme.{missing}"),
            ErrorKind::Conflict {
                reason: format!("acme.{set} is set but acme.{missing} is not"),
                hint: "external account binding needs both (or neither)".into(),
            },
        ));
    }
    let storage_key = cx.opt_secret("acme.storage_key", raw.storage_key.as_deref())?;
    if let Some(k) = &storage_key {
        let v = k.expose();
        if v.len() != 64 || !v.chars().all(|c| c.is_ascii_hexdigit()) {
            let reason = if v.len() != 64 {
                format!("has {} characters", v.chars().count())
            } else {
                "has non-hex characters".to_owned()
            };
            return Err(cx.err(
                "acme.storage_key",
                ErrorKind::BadSecret {
                    reason,
                    expected: "32 bytes as 64 hex characters (generate with: openssl rand -hex 32)"
                        .into(),
                },
            ));
        }
    }
    let profile = raw.profile.clone();
    if let Some(p) = &profile {
        let token = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if p.is_empty() || p.len() > 64 || !p.chars().all(token) {
            return Err(cx.err(
                "acme.profile",
                bad(
                    p,
                    "is not a profile name",
                    "a name the CA advertises, such as \"shortlived\" or \"tlsserver\"",
                ),
            ));
        }
    }
    lets_encrypt_ip_needs_shortlived(cx, &domains, &directory, profile.as_deref())?;
    Ok(Acme {
        domains,
        contact,
        directory,
        challenge,
        storage: Ctx::path(raw.storage.as_deref(), "certs/acme"),
        renew_before: raw
            .renew_before
            .as_deref()
            .map(|v| cx.duration("acme.renew_before", Some(v), Duration::ZERO))
            .transpose()?,
        ca_roots: raw.ca_roots.as_deref().map(Into::into),
        eab_kid,
        eab_hmac,
        storage_key,
        profile,
    })
}

/// Let's Encrypt issues IP-address certificates only with the `shortlived` profile and
/// refuses every other order for them; such a configuration could never get a
/// certificate, so it is refused here rather than started without one.
fn lets_encrypt_ip_needs_shortlived(
    cx: &Ctx<'_>,
    domains: &[String],
    directory: &str,
    profile: Option<&str>,
) -> Result<(), ConfigError> {
    let host = directory
        .split_once("://")
        .map_or("", |(_, rest)| rest.split(['/', ':']).next().unwrap_or(""));
    let lets_encrypt = host.eq_ignore_ascii_case("letsencrypt.org")
        || host.to_ascii_lowercase().ends_with(".letsencrypt.org");
    let Some(i) = domains.iter().position(|d| d.parse::<IpAddr>().is_ok()) else {
        return Ok(());
    };
    if !lets_encrypt || profile == Some("shortlived") {
        return Ok(());
    }
    let reason = match profile {
        Some(p) => format!(
            "Let's Encrypt issues IP-address certificates ({}) only with the \"shortlived\" profile (160 hours), not {p:?}",
            domains[i]
        ),
        None => format!(
            "Let's Encrypt issues IP-address certificates ({}) only with the \"shortlived\" profile (160 hours), and acme.profile is not set",
            domains[i]
        ),
    };
    let key = match profile {
        Some(_) => "acme.profile".to_owned(),
        None => format!("acme.domains[{i}]"),
    };
    Err(cx.err(
        &key,
        ErrorKind::Conflict {
            reason,
            hint: "set profile = \"shortlived\" in [acme] (renewed every few days, automatically), or certify a DNS name instead".into(),
        },
    ))
}
