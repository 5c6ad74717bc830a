//! `[listen]`, `[upstream]`, `[limits]`, `[log]`, and the checks that span sections.

use std::net::SocketAddr;
use std::time::Duration;

use super::{range, Ctx};
use crate::error::{ConfigError, ErrorKind};
use crate::raw::{RawLimits, RawListen, RawLog, RawUpstream};
use crate::values::{self, Schemes};
use crate::{BodyLog, Challenge, Config, Limits, Listen, Log, LogFormat, TlsMode, Upstream};

pub(crate) const DEFAULT_METRICS: &str = "127.0.0.1:9464";
const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

pub(super) fn listen(cx: &Ctx<'_>, raw: &RawListen) -> Result<Listen, ConfigError> {
    let https = cx.required(
        "listen.https",
        raw.https.as_ref(),
        "add under [listen]: https = \"0.0.0.0:443\"",
    )?;
    let https = cx.addr("listen.https", https, 443)?;
    let http = raw
        .http
        .as_deref()
        .map(|v| cx.addr("listen.http", v, 80))
        .transpose()?;
    let metrics = match raw.metrics.as_deref().unwrap_or(DEFAULT_METRICS) {
        "" => None,
        v => Some(cx.addr("listen.metrics", v, 9464)?),
    };
    let mut server_names = Vec::new();
    for (i, name) in raw.server_names.iter().flatten().enumerate() {
        let key = format!("listen.server_names[{i}]");
        server_names.push(values::parse_server_name(name).map_err(|k| cx.err(&key, k))?);
    }
    cx.unique(
        server_names.iter().map(String::as_str),
        |i| format!("listen.server_names[{i}]"),
        "server names",
    )?;
    Ok(Listen {
        https,
        http,
        metrics,
        server_names,
    })
}

pub(super) fn upstream(cx: &Ctx<'_>, raw: &RawUpstream) -> Result<Upstream, ConfigError> {
    let url = raw.url.as_deref().unwrap_or("http://127.0.0.1:8080");
    let url = cx.url("upstream.url", url, Schemes::HttpOrHttps)?;
    let exposure_check = match raw.exposure_check.as_deref() {
        None => Some(secs(30)),
        Some(v) => match values::parse_duration_or_zero(v) {
            Ok(d) if d.is_zero() => None,
            _ => Some(cx.duration_in(
                "upstream.exposure_check",
                Some(v),
                secs(30),
                range::EXPOSURE_CHECK,
            )?),
        },
    };
    let loopback = host_is_loopback(&url);
    let require_loopback = match raw.require_loopback {
        None => loopback && exposure_check.is_some(),
        Some(false) => false,
        Some(true) if !loopback => {
            return Err(cx.err("upstream.require_loopback", ErrorKind::Conflict {
                reason: format!("upstream.url {url:?} is not on a loopback address: clawveil reaches the bot there, so anyone who can reach that address reaches the bot without clawveil, and the bot could never be ready"),
                hint: "bind the bot to 127.0.0.1 and set upstream.url = \"http://127.0.0.1:<port>\", or set require_loopback = false".into(),
            }))
        }
        Some(true) if exposure_check.is_none() => {
            return Err(cx.err("upstream.require_loopback", ErrorKind::Conflict {
                reason: "require_loopback = true needs the exposure check, and upstream.exposure_check = \"0s\" turns it off".into(),
                hint: "remove exposure_check = \"0s\" (the default checks every 30s), or set require_loopback = false".into(),
            }))
        }
        Some(true) => true,
    };
    Ok(Upstream {
        url,
        exposure_check,
        require_loopback,
        connect_timeout: cx.duration_in(
            "upstream.connect_timeout",
            raw.connect_timeout.as_deref(),
            secs(2),
            range::CONNECT_TIMEOUT,
        )?,
        response_timeout: cx.duration_in(
            "upstream.response_timeout",
            raw.response_timeout.as_deref(),
            secs(30),
            range::UP_TO_A_DAY,
        )?,
        fallback: raw
            .fallback
            .as_deref()
            .map(|f| cx.url("upstream.fallback", f, Schemes::HttpOrHttps))
            .transpose()?,
    })
}

pub(super) fn limits(cx: &Ctx<'_>, raw: &RawLimits) -> Result<Limits, ConfigError> {
    let max_connections = match raw.max_connections {
        None => 10_000,
        Some(n) => {
            let positive = usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                cx.err(
                    "limits.max_connections",
                    bad(
                        &n.to_string(),
                        "is not a positive number",
                        "an integer of at least 1, e.g. 10000",
                    ),
                )
            })?;
            cx.in_range(
                "limits.max_connections",
                &n.to_string(),
                positive,
                range::MAX_CONNECTIONS,
                |n| n.to_string(),
            )?
        }
    };
    let timeout = |key: &str, value: &Option<String>, default, range| {
        cx.duration_in(&format!("limits.{key}"), value.as_deref(), default, range)
    };
    Ok(Limits {
        max_body: cx.size_in(
            "limits.max_body",
            raw.max_body.as_ref(),
            10 << 20,
            range::MAX_BODY,
        )?,
        max_header_bytes: cx.size_in(
            "limits.max_header_bytes",
            raw.max_header_bytes.as_ref(),
            64 << 10,
            range::MAX_HEADER_BYTES,
        )?,
        header_read_timeout: timeout(
            "header_read_timeout",
            &raw.header_read_timeout,
            secs(10),
            range::HEADER_READ_TIMEOUT,
        )?,
        request_timeout: timeout(
            "request_timeout",
            &raw.request_timeout,
            secs(60),
            range::UP_TO_A_DAY,
        )?,
        max_connections,
        drain_timeout: timeout(
            "drain_timeout",
            &raw.drain_timeout,
            secs(30),
            range::DRAIN_TIMEOUT,
        )?,
        idle_timeout: timeout(
            "idle_timeout",
            &raw.idle_timeout,
            secs(60),
            range::UP_TO_A_DAY,
        )?,
        tunnel_idle_timeout: timeout(
            "tunnel_idle_timeout",
            &raw.tunnel_idle_timeout,
            secs(600),
            range::UP_TO_A_DAY,
        )?,
    })
}

pub(super) fn log(cx: &mut Ctx<'_>, raw: &RawLog) -> Result<Log, ConfigError> {
    let level = raw.level.as_deref().unwrap_or("info").trim();
    let level = if LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
        level.to_ascii_lowercase()
    } else if level.contains('=') && !level.contains(char::is_whitespace) {
        level.to_owned()
    } else {
        return Err(cx.err("log.level", bad(level, "is not a log level", "one of \"error\", \"warn\", \"info\", \"debug\", \"trace\", or a directive such as \"info,hyper=warn\"")));
    };
    Ok(Log {
        format: cx.choice(
            "log.format",
            raw.format.as_deref(),
            None,
            LogFormat::NAMES,
            |name| LogFormat::from_name(name).map(Some),
        )?,
        level,
        bodies: cx.choice(
            "log.bodies",
            raw.bodies.as_deref(),
            BodyLog::Off,
            BodyLog::NAMES,
            BodyLog::from_name,
        )?,
        body_max: cx.size_in(
            "log.body_max",
            raw.body_max.as_ref(),
            16 << 10,
            range::BODY_MAX,
        )?,
        hash_key: cx.opt_secret("log.hash_key", raw.hash_key.as_deref())?,
    })
}

/// Checks that need more than one section.
pub(super) fn cross_checks(cx: &Ctx<'_>, c: &Config) -> Result<(), ConfigError> {
    if c.tls.mode == TlsMode::Acme {
        let Some(acme) = &c.acme else {
            return Err(cx.err("tls.mode", ErrorKind::Conflict {
                reason: "tls.mode = \"acme\" needs an [acme] section".into(),
                hint: "add [acme] with domains = [\"bot.example.com\"], or use tls.mode = \"files\" or \"self-signed\"".into(),
            }));
        };
        if acme.challenge == Challenge::Http01 && c.listen.http.is_none() {
            return Err(cx.err("acme.challenge", ErrorKind::Conflict {
                reason: "challenge \"http-01\" is answered on listen.http, which is not set".into(),
                hint: "add http = \"0.0.0.0:80\" under [listen], or use challenge = \"tls-alpn-01\"".into(),
            }));
        }
    }
    if let Some(addr) = c.listen.metrics {
        if !addr.ip().is_loopback() && c.metrics.tokens.is_empty() {
            return Err(cx.err("listen.metrics", ErrorKind::MetricsNeedsToken { addr }));
        }
    }
    let mut listeners: Vec<(&str, SocketAddr)> = vec![("listen.https", c.listen.https)];
    listeners.extend(c.listen.http.map(|a| ("listen.http", a)));
    listeners.extend(c.listen.metrics.map(|a| ("listen.metrics", a)));
    listeners.extend(c.egress.as_ref().map(|e| ("egress.listen", e.listen)));
    for (i, (key, addr)) in listeners.iter().enumerate() {
        if let Some((other, _)) = listeners[..i].iter().find(|(_, o)| clash(*o, *addr)) {
            return Err(cx.err(
                key,
                ErrorKind::Conflict {
                    reason: format!(
                        "{addr} overlaps {other} = {}",
                        listeners
                            .iter()
                            .find(|(k, _)| k == other)
                            .map_or(*addr, |l| l.1)
                    ),
                    hint: "every listener needs its own port".into(),
                },
            ));
        }
    }
    Ok(())
}

fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Whether the host of a URL (already checked by `values::parse_url`) is a loopback
/// address or `localhost`; a host name is not looked up.
fn host_is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

pub(super) fn bad(value: &str, reason: &str, expected: &str) -> ErrorKind {
    ErrorKind::BadValue {
        value: value.to_owned(),
        reason: reason.to_owned(),
        expected: expected.to_owned(),
    }
}

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
