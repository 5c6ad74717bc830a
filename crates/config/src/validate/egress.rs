//! `[egress]` and `[[egress.target]]`: bot → model gateway.

use super::server::{bad, secs};
use super::{is_plain_name, Ctx};
use crate::error::{ConfigError, ErrorKind};
use crate::raw::{RawEgress, RawTarget};
use crate::values::{is_header_name, is_header_value, is_host_name, Schemes};
use crate::{Egress, EgressTarget, FallbackCause};

/// Headers that frame or route the request; injecting them would break forwarding.
const NOT_INJECTABLE: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

pub(super) fn egress(cx: &mut Ctx<'_>, raw: &RawEgress) -> Result<Egress, ConfigError> {
    let listen = cx.addr(
        "egress.listen",
        raw.listen.as_deref().unwrap_or("127.0.0.1:8089"),
        8089,
    )?;
    if !listen.ip().is_loopback() {
        return Err(cx.err("egress.listen", ErrorKind::NotLoopback { addr: listen, why: "the egress listener takes plain HTTP and must only be reachable from this host" }));
    }
    let allow: Vec<String> = raw.allow.clone().unwrap_or_default();
    for (i, pattern) in allow.iter().enumerate() {
        let host = pattern.strip_prefix("*.").unwrap_or(pattern);
        if !is_host_name(host) {
            return Err(cx.err(&format!("egress.allow[{i}]"), bad(pattern, "is not a host pattern", "a host such as \"api.dingtalk.com\" or \"*.dingtalk.com\" (no scheme or port; port 443 is implied)")));
        }
    }
    let allow = allow.iter().map(|a| a.to_ascii_lowercase()).collect();
    let mut targets = Vec::new();
    for (i, t) in raw.target.as_deref().unwrap_or_default().iter().enumerate() {
        targets.push(target(cx, i, t)?);
    }
    cx.unique(
        targets.iter().map(|t| t.name.as_str()),
        |i| format!("egress.target[{i}].name"),
        "target names",
    )?;
    Ok(Egress {
        listen,
        allow,
        targets,
    })
}

fn target(cx: &mut Ctx<'_>, i: usize, t: &RawTarget) -> Result<EgressTarget, ConfigError> {
    let key = |k: &str| format!("egress.target[{i}].{k}");
    let name = cx.required(
        &key("name"),
        t.name.as_ref(),
        "add name = \"models\" (requests to /models/... go to this target)",
    )?;
    if !is_plain_name(name) {
        return Err(cx.err(
            &key("name"),
            bad(
                name,
                "has characters other than letters, digits, -, _ and .",
                "a path segment such as \"models\"",
            ),
        ));
    }
    let url = cx.required(
        &key("url"),
        t.url.as_ref(),
        "add url = \"https://api.example.com\"",
    )?;
    let url = cx.url(&key("url"), url, Schemes::HttpsOnly)?;
    let fallback = t
        .fallback
        .as_deref()
        .map(|f| cx.url(&key("fallback"), f, Schemes::HttpsOnly))
        .transpose()?;
    let mut fallback_on = Vec::new();
    match &t.fallback_on {
        None => fallback_on.extend([FallbackCause::Connect, FallbackCause::Timeout]),
        Some(list) => {
            for (j, cause) in list.iter().enumerate() {
                let cause = cx.choice(
                    &format!("{}[{j}]", key("fallback_on")),
                    Some(cause),
                    FallbackCause::Connect,
                    FallbackCause::NAMES,
                    FallbackCause::from_name,
                )?;
                if !fallback_on.contains(&cause) {
                    fallback_on.push(cause);
                }
            }
        }
    }
    let models: Vec<String> = t.models.clone().unwrap_or_default();
    if let Some(j) = models
        .iter()
        .position(|m| m.trim().is_empty() || m.chars().any(char::is_control) || m.len() > 128)
    {
        return Err(cx.err(
            &format!("{}[{j}]", key("models")),
            bad(
                &models[j],
                "is not a model name",
                "a name such as \"qwen-max\" (1 to 128 printable characters)",
            ),
        ));
    }
    let mut inject_headers = Vec::new();
    for (header, template) in t.inject_headers.iter().flatten() {
        let hkey = format!("{}.{header}", key("inject_headers"));
        if !is_header_name(header) || NOT_INJECTABLE.contains(&header.to_ascii_lowercase().as_str())
        {
            let reason = if is_header_name(header) {
                "frames or routes the request and cannot be injected"
            } else {
                "is not a header name"
            };
            return Err(cx.err(
                &hkey,
                bad(
                    header,
                    reason,
                    "a header name such as \"Authorization\" or \"X-Api-Key\"",
                ),
            ));
        }
        let secret = cx.secret(&hkey, template)?;
        if !is_header_value(secret.expose()) {
            return Err(cx.err(
                &hkey,
                ErrorKind::BadSecret {
                    reason: "contains a control character (such as a line break)".into(),
                    expected: "a single-line header value".into(),
                },
            ));
        }
        inject_headers.push((header.clone(), secret));
    }
    Ok(EgressTarget {
        name: name.to_owned(),
        url,
        fallback,
        fallback_on,
        connect_timeout: cx.duration(
            &key("connect_timeout"),
            t.connect_timeout.as_deref(),
            secs(2),
        )?,
        response_timeout: cx.duration(
            &key("response_timeout"),
            t.response_timeout.as_deref(),
            secs(120),
        )?,
        models,
        inject_headers,
        ca_roots: t.ca_roots.as_deref().map(Into::into),
    })
}
