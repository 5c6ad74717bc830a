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

/// `[egress]` and `upstream.fallback` are refused by `parse` as "not supported yet"; their
/// validation is tested here through `parse_unsupported`, which skips that refusal.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{parse_unsupported, FallbackCause};

    const EGRESS: &str = include_str!("../../tests/egress.toml");
    const HTTPS: &str = "[listen]\nhttps = \"127.0.0.1:8443\"\n";

    fn with(extra: &str) -> String {
        format!("{HTTPS}{extra}")
    }

    fn target(body: &str) -> String {
        with(&format!(
            "[egress]\n[[egress.target]]\nname = \"m\"\nurl = \"https://a.example\"\n{body}"
        ))
    }

    #[track_caller]
    fn refused(src: &str, prefix: &str, hints: &[&str]) {
        let msg = match parse_unsupported(src) {
            Ok(c) => panic!("expected an error for:\n{src}\ngot {c:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.starts_with(prefix),
            "expected prefix {prefix:?}\n     got {msg:?}"
        );
        for hint in hints {
            assert!(msg.contains(hint), "expected {hint:?} in\n{msg}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_example_validates_and_masks_the_injected_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("model_key");
        std::fs::write(&key, "model-key-file-value\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let src = EGRESS.replace("@DIR@", &dir.path().display().to_string());
        let c = parse_unsupported(&src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.upstream.fallback.as_deref(),
            Some("http://127.0.0.1:8082")
        );
        let egress = c.egress.as_ref().unwrap();
        assert_eq!(egress.listen.port(), 8089);
        assert_eq!(egress.allow, ["api.dingtalk.com", "*.dingtalk.com"]);
        let t = &egress.targets[0];
        assert_eq!(
            t.fallback_on,
            [
                FallbackCause::Connect,
                FallbackCause::Timeout,
                FallbackCause::Status5xx
            ]
        );
        assert_eq!(t.connect_timeout, Duration::from_secs(3));
        assert_eq!(t.inject_headers[0].0, "Authorization");
        assert_eq!(
            t.inject_headers[0].1.expose(),
            "Bearer model-key-file-value"
        );

        let out = c.effective_toml();
        assert!(!out.contains("model-key-file-value"), "{out}");
        assert!(
            out.contains("Bearer ${file:") && out.contains("fallback = "),
            "{out}"
        );
        let again = parse_unsupported(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(again.effective_toml(), out);
        assert!(!format!("{c:?}").contains("model-key-file-value"));
        assert!(crate::parse(&src, "proxy.toml".as_ref(), &Default::default()).is_err());
    }

    #[test]
    fn defaults() {
        let c = parse_unsupported(&target("")).unwrap();
        let egress = c.egress.unwrap();
        assert_eq!(egress.listen.to_string(), "127.0.0.1:8089");
        let t = &egress.targets[0];
        assert_eq!(
            t.fallback_on,
            [FallbackCause::Connect, FallbackCause::Timeout]
        );
        assert_eq!(t.connect_timeout, Duration::from_secs(2));
        assert_eq!(t.response_timeout, Duration::from_secs(120));
    }

    #[test]
    fn listen_must_be_loopback_and_have_its_own_port() {
        refused(
            &with("[egress]\nlisten = \"0.0.0.0:8089\"\n"),
            "proxy.toml:4:1: egress.listen: 0.0.0.0:8089 is not a loopback address",
            &["127.0.0.1:8089"],
        );
        refused(
            &with("[egress]\nlisten = \"127.0.0.1:9464\"\n"),
            "proxy.toml:4:1: egress.listen: 127.0.0.1:9464 overlaps listen.metrics",
            &["own port"],
        );
    }

    #[test]
    fn targets_and_allow_list() {
        refused(
            &target("[[egress.target]]\nname = \"m\"\nurl = \"https://b.example\"\n"),
            "proxy.toml:8:1: egress.target[1].name: \"m\" is used twice",
            &["target names must be unique"],
        );
        refused(
            &target("inject_headers = { \"Bad Header\" = \"x\" }\n"),
            "proxy.toml:7:20: egress.target[0].inject_headers.Bad Header:",
            &["not a header name"],
        );
        refused(
            &target("inject_headers = { Host = \"x\" }\n"),
            "proxy.toml:7:20: egress.target[0].inject_headers.Host:",
            &["cannot be injected"],
        );
        refused(
            &with("[egress]\nallow = [\"https://api.dingtalk.com\"]\n"),
            "proxy.toml:4:10: egress.allow[0]:",
            &["*.dingtalk.com"],
        );
        refused(
            &with("[egress]\n[[egress.target]]\nurl = \"https://a.example\"\n"),
            "proxy.toml:4:1: egress.target[0].name: required key is missing",
            &[],
        );
        refused(
            &target("models = [\"\"]\n"),
            "proxy.toml:7:11: egress.target[0].models[0]:",
            &["qwen-max"],
        );
    }

    #[test]
    fn urls_and_fallback_causes() {
        refused(
            &with("[egress]\n[[egress.target]]\nname = \"m\"\nurl = \"http://a.example\"\n"),
            "proxy.toml:6:1: egress.target[0].url:",
            &["plain http is not allowed", "https://"],
        );
        refused(
            &target("fallback = \"http://b.example\"\n"),
            "proxy.toml:7:1: egress.target[0].fallback:",
            &["https://"],
        );
        refused(
            &target("fallback_on = [\"404\"]\n"),
            "proxy.toml:7:16: egress.target[0].fallback_on[0]:",
            &["expected one of: \"connect\", \"timeout\", \"5xx\""],
        );
        refused(
            &with("[upstream]\nfallback = \"127.0.0.1:8082\"\n"),
            "proxy.toml:4:1: upstream.fallback: \"127.0.0.1:8082\" is not a valid URL (no scheme)",
            &[],
        );
    }

    #[test]
    fn injected_headers_must_be_single_line() {
        std::env::set_var("CLAWVEIL_TEST_EGRESS_CRLF", "a\r\nX-Evil: 1");
        let msg = parse_unsupported(&target(
            "inject_headers = { Authorization = \"${env:CLAWVEIL_TEST_EGRESS_CRLF}\" }\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("control character") && !msg.contains("X-Evil"),
            "{msg}"
        );
    }
}
