//! `[redact]` and `[[route]]`.

use super::server::{bad, secs};
use super::{is_plain_name, range, Ctx};
use crate::error::{ConfigError, ErrorKind};
use crate::raw::{RawRedact, RawRoute};
use crate::values::{self, is_header_name};
use crate::{Redact, RedactRule, Replace, Route, Verify, BUILTIN_RULES};

pub(super) fn redact(cx: &Ctx<'_>, raw: &RawRedact) -> Result<Redact, ConfigError> {
    let builtin = raw
        .builtin
        .clone()
        .unwrap_or_else(|| BUILTIN_RULES.iter().map(|s| s.to_string()).collect());
    for (i, name) in builtin.iter().enumerate() {
        if !BUILTIN_RULES.contains(&name.as_str()) {
            return Err(cx.err(
                &format!("redact.builtin[{i}]"),
                ErrorKind::BadEnum {
                    value: name.clone(),
                    valid: BUILTIN_RULES,
                },
            ));
        }
    }
    cx.unique(
        builtin.iter().map(String::as_str),
        |i| format!("redact.builtin[{i}]"),
        "built-in rule names",
    )?;
    let json_keys = raw.json_keys.clone().unwrap_or_default();
    if let Some(i) = json_keys.iter().position(|k| k.is_empty()) {
        return Err(cx.err(
            &format!("redact.json_keys[{i}]"),
            ErrorKind::Empty {
                hint: "give a JSON key such as \"password\"".into(),
            },
        ));
    }
    let headers: Vec<String> = raw.headers.clone().unwrap_or_default();
    if let Some(i) = headers.iter().position(|h| !is_header_name(h)) {
        return Err(cx.err(
            &format!("redact.headers[{i}]"),
            bad(
                &headers[i],
                "is not a header name",
                "a name such as \"X-Api-Key\"",
            ),
        ));
    }
    let headers = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    let mut rules = Vec::new();
    for (i, r) in raw.rule.as_deref().unwrap_or_default().iter().enumerate() {
        let key = |k: &str| format!("redact.rule[{i}].{k}");
        let name = cx.required(
            &key("name"),
            r.name.as_ref(),
            "add name = \"order-id\" (shown in place of what the rule redacts)",
        )?;
        if BUILTIN_RULES.contains(&name) {
            return Err(cx.err(
                &key("name"),
                ErrorKind::Conflict {
                    reason: format!("\"{name}\" is the name of a built-in rule"),
                    hint: "choose another name (built-in rules are enabled in redact.builtin)"
                        .into(),
                },
            ));
        }
        let pattern = cx.required(
            &key("pattern"),
            r.pattern.as_ref(),
            "add pattern = 'ORD-[0-9]{8}' (a regular expression)",
        )?;
        check_pattern(pattern).map_err(|reason| {
            cx.err(
                &key("pattern"),
                ErrorKind::BadRegex {
                    pattern: pattern.to_owned(),
                    reason,
                },
            )
        })?;
        let replace = cx.choice(
            &key("replace"),
            r.replace.as_deref(),
            Replace::Mask,
            Replace::NAMES,
            Replace::from_name,
        )?;
        rules.push(RedactRule {
            name: name.to_owned(),
            pattern: pattern.to_owned(),
            replace,
        });
    }
    cx.unique(
        rules.iter().map(|r| r.name.as_str()),
        |i| format!("redact.rule[{i}].name"),
        "rule names",
    )?;
    Ok(Redact {
        builtin,
        json_keys,
        headers,
        rules,
    })
}

/// Compiles `pattern` and refuses one that can match nothing at all (it would match at
/// every position).
fn check_pattern(pattern: &str) -> Result<(), String> {
    let re = regex::Regex::new(pattern).map_err(|e| {
        let text = e.to_string();
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .unwrap_or(text.lines().last().unwrap_or(""));
        format!(
            "is not a valid regular expression ({})",
            line.trim_start_matches("error:").trim()
        )
    })?;
    if ["", "a", "a b", "0-9", "x\ny"]
        .iter()
        .any(|s| re.find_iter(s).any(|m| m.is_empty()))
    {
        return Err("can match the empty string, so it would match everywhere; make it require at least one character".into());
    }
    Ok(())
}

pub(super) fn routes(
    cx: &mut Ctx<'_>,
    raw: Option<&[RawRoute]>,
) -> Result<Vec<Route>, ConfigError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(vec![Route {
            name: "default".into(),
            path_prefix: "/".into(),
            verify: Verify::None,
            app_secrets: Vec::new(),
            max_skew: secs(3600),
            replay: true,
            allow_cidrs: Vec::new(),
            event_token: None,
            event_aes_key: None,
            event_owner_key: None,
            allowed_origins: Vec::new(),
            allow_trace: false,
        }]);
    };
    let mut routes = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        routes.push(route(cx, i, r)?);
    }
    cx.unique(
        routes.iter().map(|r| r.name.as_str()),
        |i| format!("route[{i}].name"),
        "route names",
    )?;
    cx.unique(
        routes.iter().map(|r| r.path_prefix.as_str()),
        |i| format!("route[{i}].path_prefix"),
        "path prefixes",
    )?;
    routes.sort_by_key(|r| std::cmp::Reverse(r.path_prefix.len()));
    Ok(routes)
}

fn route(cx: &mut Ctx<'_>, i: usize, r: &RawRoute) -> Result<Route, ConfigError> {
    let key = |k: &str| format!("route[{i}].{k}");
    let name = cx.required(
        &key("name"),
        r.name.as_ref(),
        "add name = \"dingtalk\" (the label used in logs and metrics)",
    )?;
    if !is_plain_name(name) {
        return Err(cx.err(
            &key("name"),
            bad(
                name,
                "has characters other than letters, digits, -, _ and .",
                "a label such as \"dingtalk\"",
            ),
        ));
    }
    let prefix = cx.required(
        &key("path_prefix"),
        r.path_prefix.as_ref(),
        "add path_prefix = \"/dingtalk/\"",
    )?;
    if !prefix.starts_with('/')
        || prefix.contains(['?', '#'])
        || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(cx.err(
            &key("path_prefix"),
            bad(
                prefix,
                "is not a path prefix",
                "a path starting with /, e.g. \"/dingtalk/\" (no spaces, query or fragment)",
            ),
        ));
    }
    let verify = cx.choice(
        &key("verify"),
        r.verify.as_deref(),
        Verify::None,
        Verify::NAMES,
        Verify::from_name,
    )?;
    let mut app_secrets = Vec::new();
    for (j, t) in r
        .app_secrets
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        app_secrets.push(cx.secret(&format!("route[{i}].app_secrets[{j}]"), t)?);
    }
    let event_token = cx.opt_secret(&key("event_token"), r.event_token.as_deref())?;
    let event_aes_key = cx.opt_secret(&key("event_aes_key"), r.event_aes_key.as_deref())?;
    let unused = |k: &str, needs: &str| {
        cx.err(
            &key(k),
            ErrorKind::Conflict {
                reason: format!(
                    "{k} is set but verify is \"{verify}\", so it would not be checked"
                ),
                hint: format!("set verify = \"{needs}\", or remove {k}"),
            },
        )
    };
    match verify {
        Verify::DingtalkRobot if app_secrets.is_empty() => {
            return Err(cx.err(&key("app_secrets"), ErrorKind::Empty { hint: "verify = \"dingtalk-robot\" needs app_secrets = [\"${env:DINGTALK_APP_SECRET}\"]".into() }));
        }
        Verify::DingtalkEvent if event_token.is_none() => {
            return Err(cx.err(&key("event_token"), ErrorKind::Missing { hint: "verify = \"dingtalk-event\" needs event_token = \"${env:DINGTALK_EVENT_TOKEN}\"".into() }));
        }
        _ => {}
    }
    if verify != Verify::DingtalkRobot && !app_secrets.is_empty() {
        return Err(unused("app_secrets", "dingtalk-robot"));
    }
    if verify != Verify::DingtalkEvent {
        for (k, set) in [
            ("event_token", event_token.is_some()),
            ("event_aes_key", event_aes_key.is_some()),
            ("event_owner_key", r.event_owner_key.is_some()),
        ] {
            if set {
                return Err(unused(k, "dingtalk-event"));
            }
        }
    }
    if let Some(aes) = &event_aes_key {
        let v = aes.expose();
        if v.chars().count() != 43
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        {
            let reason = if v.chars().count() != 43 {
                format!("has {} characters", v.chars().count())
            } else {
                "has characters outside base64".into()
            };
            return Err(cx.err(
                &key("event_aes_key"),
                ErrorKind::BadSecret {
                    reason,
                    expected: "the 43-character EncodingAESKey from the DingTalk developer console"
                        .into(),
                },
            ));
        }
    }
    if r.event_owner_key
        .as_deref()
        .is_some_and(|o| o.trim().is_empty())
    {
        return Err(cx.err(
            &key("event_owner_key"),
            ErrorKind::Empty {
                hint: "give the corpId, appKey or suiteKey, or remove the key".into(),
            },
        ));
    }
    let mut allowed_origins = Vec::new();
    for (j, origin) in r.allowed_origins.iter().flatten().enumerate() {
        let at = format!("route[{i}].allowed_origins[{j}]");
        allowed_origins.push(values::parse_origin(origin).map_err(|k| cx.err(&at, k))?);
    }
    cx.unique(
        allowed_origins.iter().map(String::as_str),
        |j| format!("route[{i}].allowed_origins[{j}]"),
        "allowed origins",
    )?;
    Ok(Route {
        name: name.to_owned(),
        path_prefix: prefix.to_owned(),
        verify,
        app_secrets,
        max_skew: cx.duration_in(
            &key("max_skew"),
            r.max_skew.as_deref(),
            secs(3600),
            range::UP_TO_A_DAY,
        )?,
        replay: r.replay.unwrap_or(true),
        allow_cidrs: cx.cidrs(&key("allow_cidrs"), r.allow_cidrs.as_deref())?,
        event_token,
        event_aes_key,
        event_owner_key: r.event_owner_key.clone(),
        allowed_origins,
        allow_trace: r.allow_trace.unwrap_or(false),
    })
}
