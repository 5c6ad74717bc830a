//! `[egress]` and `[[egress.target]]`: bot → model gateway.

use std::net::Ipv6Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::server::{bad, secs};
use super::{is_plain_name, Ctx};
use crate::error::{ConfigError, ErrorKind};
use crate::raw::{RawEgress, RawTarget};
use crate::secret::Secret;
use crate::values::{is_header_name, is_header_value, is_host_name, Schemes};
use crate::{Egress, EgressTarget, FallbackCause};

/// The shortest `egress.token` and `egress.target.client_token` accepted.
const MIN_TOKEN_CHARS: usize = 16;

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
    let ports = ports(cx, raw.ports.as_deref())?;
    let allow_cidrs = cx.cidrs("egress.allow_cidrs", raw.allow_cidrs.as_deref())?;
    refuse_catch_all(
        cx,
        raw.allow_cidrs.as_deref().unwrap_or_default(),
        &allow_cidrs,
    )?;
    let token = token(cx, "egress.token", raw.token.as_deref())?;
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
        ports,
        plain_http: raw.plain_http.unwrap_or(false),
        allow_cidrs,
        token,
        targets,
    })
}

/// `egress.ports`: default `[443]`; non-empty, each 1..=65535, unique.
fn ports(cx: &Ctx<'_>, list: Option<&[i64]>) -> Result<Vec<u16>, ConfigError> {
    let Some(list) = list else {
        return Ok(vec![443]);
    };
    if list.is_empty() {
        return Err(cx.err(
            "egress.ports",
            ErrorKind::Empty {
                hint: "list the ports CONNECT may reach, e.g. ports = [443], or remove the key for the default [443]".into(),
            },
        ));
    }
    let mut ports = Vec::with_capacity(list.len());
    for (i, &port) in list.iter().enumerate() {
        let key = format!("egress.ports[{i}]");
        let port = cx.in_range(&key, &port.to_string(), port, (1, 65535), |n| n.to_string())?;
        let port = u16::try_from(port)
            .map_err(|_| cx.err(&key, bad(&port.to_string(), "is not a port", "1 to 65535")))?;
        ports.push(port);
    }
    let shown: Vec<String> = ports.iter().map(u16::to_string).collect();
    cx.unique(
        shown.iter().map(String::as_str),
        |i| format!("egress.ports[{i}]"),
        "ports",
    )?;
    Ok(ports)
}

/// Refuses `egress.allow_cidrs` whose entries together cover every IPv4 address, every
/// IPv6 address, or every IPv4-mapped IPv6 address (the egress listener also matches a
/// mapped destination's IPv4 against the exceptions): any of those switches the
/// destination address checks off. Points at the entry that completes the cover.
fn refuse_catch_all(cx: &Ctx<'_>, written: &[String], nets: &[IpNet]) -> Result<(), ConfigError> {
    for i in 0..nets.len() {
        let Some(covered) = covers_everything(&nets[..=i]) else {
            continue;
        };
        let reason = if covers_everything(&nets[i..=i]) == Some(covered) {
            format!("covers {covered}")
        } else {
            format!("together with the entries before it covers {covered}")
        };
        return Err(cx.err(
            &format!("egress.allow_cidrs[{i}]"),
            bad(
                written.get(i).map_or("", String::as_str),
                &format!("{reason}, which would switch the destination address checks off (loopback, private, link-local and cloud metadata addresses would all be reachable)"),
                "only the ranges an internal service needs, e.g. \"10.20.0.0/16\" (public addresses need no exception)",
            ),
        ));
    }
    Ok(())
}

/// What `nets` cover all of, if anything: every IPv4 address, every IPv6 address, or
/// every IPv4 address reached as IPv4-mapped IPv6 (by the IPv4 entries and the entries
/// inside `::ffff:0:0/96` together).
fn covers_everything(nets: &[IpNet]) -> Option<&'static str> {
    let mapped = Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96).ok()?;
    let all_v4 = Ipv4Net::default();
    let mut v4: Vec<Ipv4Net> = Vec::new();
    let mut v6: Vec<Ipv6Net> = Vec::new();
    let mut via_mapped: Vec<Ipv4Net> = Vec::new();
    for net in nets {
        match net.trunc() {
            IpNet::V4(n) => {
                v4.push(n);
                via_mapped.push(n);
            }
            IpNet::V6(n) => {
                v6.push(n);
                if n.contains(&mapped) {
                    via_mapped.push(all_v4);
                } else if let (true, Some(ip)) = (mapped.contains(&n), n.network().to_ipv4_mapped())
                {
                    via_mapped.extend(Ipv4Net::new(ip, n.prefix_len() - 96));
                }
            }
        }
    }
    if Ipv4Net::aggregate(&v4).contains(&all_v4) {
        Some("every IPv4 address")
    } else if Ipv6Net::aggregate(&v6).contains(&Ipv6Net::default()) {
        Some("every IPv6 address")
    } else if Ipv4Net::aggregate(&via_mapped).contains(&all_v4) {
        Some("every IPv4-mapped IPv6 address (::ffff:0:0/96)")
    } else {
        None
    }
}

/// A bearer token the client presents (`egress.token`, `egress.target.client_token`): at
/// least [`MIN_TOKEN_CHARS`] characters that can be sent as a header value unchanged.
fn token(
    cx: &mut Ctx<'_>,
    key: &str,
    template: Option<&str>,
) -> Result<Option<Secret>, ConfigError> {
    let Some(secret) = cx.opt_secret(key, template)? else {
        return Ok(None);
    };
    let value = secret.expose();
    let chars = value.chars().count();
    let reason = if !is_header_value(value) || value.contains('\t') {
        "contains a control character (such as a line break), which cannot be sent in a header"
            .to_owned()
    } else if value.trim() != value {
        "starts or ends with whitespace, which HTTP strips from header values".to_owned()
    } else if chars < MIN_TOKEN_CHARS {
        format!("has {chars} characters, fewer than {MIN_TOKEN_CHARS}")
    } else {
        return Ok(Some(secret));
    };
    Err(cx.err(
        key,
        ErrorKind::BadSecret {
            reason,
            expected: format!("at least {MIN_TOKEN_CHARS} random characters on one line (generate with: openssl rand -hex 32)"),
        },
    ))
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
    let client_token = token(cx, &key("client_token"), t.client_token.as_deref())?;
    if let Some(ct) = &client_token {
        if let Some((header, _)) = inject_headers
            .iter()
            .find(|(_, v)| v.expose().contains(ct.expose()))
        {
            return Err(cx.err(
                &key("client_token"),
                ErrorKind::BadSecret {
                    reason: format!(
                        "is (part of) {}.{header}, so the bot would hold the key that is injected for it",
                        key("inject_headers")
                    ),
                    expected: "a token of the bot's own, different from the injected key (generate with: openssl rand -hex 32)".into(),
                },
            ));
        }
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
        client_token,
        ca_roots: t.ca_roots.as_deref().map(Into::into),
    })
}

/// `[egress]` and `upstream.fallback` are refused by `parse` as "not supported yet"; their
/// validation is tested here through `parse_unsupported`, which skips that refusal.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::reference::EGRESS_SUPPORTED;
    use crate::{parse_unsupported, FallbackCause};

    const EGRESS: &str = include_str!("../../tests/egress.toml");
    /// The `[egress]` section of the design contract, every optional key set.
    const EXAMPLE: &str = include_str!("../../tests/egress_example.toml");
    const EGRESS_TOKEN: (&str, &str) = ("CLAWVEIL_EGRESS_TOKEN", "egress-token-value-0123456789");
    const BOT_TOKEN: (&str, &str) = ("CLAWVEIL_BOT_TOKEN", "bot-token-value-0123456789");
    const MODEL_KEY: &str = "model-key-file-value";
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

    /// The contract example with its environment and its 0600 key file.
    #[cfg(unix)]
    fn example() -> (tempfile::TempDir, String) {
        use std::os::unix::fs::PermissionsExt;
        for (var, value) in [EGRESS_TOKEN, BOT_TOKEN] {
            std::env::set_var(var, value);
        }
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("model_key");
        std::fs::write(&key, format!("{MODEL_KEY}\n")).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let src = EXAMPLE.replace("@DIR@", &dir.path().display().to_string());
        (dir, src)
    }

    #[cfg(unix)]
    #[test]
    fn the_contract_example_parses_with_every_key() {
        let (_dir, src) = example();
        let c = parse_unsupported(&src).unwrap_or_else(|e| panic!("{e}"));
        let egress = c.egress.as_ref().unwrap();
        assert_eq!(egress.listen.to_string(), "127.0.0.1:8089");
        assert_eq!(egress.allow, ["api.dingtalk.com", "*.dingtalk.com"]);
        assert_eq!(egress.ports, [443]);
        assert!(!egress.plain_http);
        assert_eq!(egress.allow_cidrs, ["10.20.0.0/16".parse().unwrap()]);
        assert_eq!(egress.token.as_ref().unwrap().expose(), EGRESS_TOKEN.1);
        let t = &egress.targets[0];
        assert_eq!(t.name, "models");
        assert_eq!(
            t.fallback.as_deref(),
            Some("https://backup.example-model-gateway.com")
        );
        assert_eq!(t.models, ["qwen-max", "gpt-4o"]);
        assert_eq!(
            t.inject_headers[0].1.expose(),
            format!("Bearer {MODEL_KEY}")
        );
        assert_eq!(t.client_token.as_ref().unwrap().expose(), BOT_TOKEN.1);
        assert_eq!(
            t.ca_roots.as_deref(),
            Some("certs/internal-ca.pem".as_ref())
        );

        let out = c.effective_toml();
        for line in [
            "ports = [443]",
            "plain_http = false",
            "allow_cidrs = [\"10.20.0.0/16\"]",
            "token = \"${env:CLAWVEIL_EGRESS_TOKEN}\"",
            "client_token = \"${env:CLAWVEIL_BOT_TOKEN}\"",
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
        let debug = format!("{c:?}");
        for value in [EGRESS_TOKEN.1, BOT_TOKEN.1, MODEL_KEY] {
            assert!(!out.contains(value) && !debug.contains(value), "{value}");
        }
        let again = parse_unsupported(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(again.effective_toml(), out);
    }

    /// `parse` follows the one switch: refused at `[egress]` until the listener lands.
    #[cfg(unix)]
    #[test]
    fn the_contract_example_follows_the_switch() {
        let (_dir, src) = example();
        let parsed = crate::parse(&src, "proxy.toml".as_ref(), &Default::default());
        if EGRESS_SUPPORTED {
            let c = parsed.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.egress.unwrap().targets[0].name, "models");
        } else {
            let e = parsed.unwrap_err();
            assert_eq!(
                (e.line, e.column, e.key.as_str()),
                (Some(9), Some(2), "egress")
            );
            assert!(
                matches!(e.kind(), crate::ErrorKind::NotSupported { .. }),
                "{e}"
            );
        }
    }

    #[test]
    fn forward_proxy_defaults() {
        let egress = parse_unsupported(&target("")).unwrap().egress.unwrap();
        assert_eq!(egress.ports, [443]);
        assert!(!egress.plain_http);
        assert!(egress.allow_cidrs.is_empty() && egress.token.is_none());
        assert!(egress.targets[0].client_token.is_none());
    }

    #[test]
    fn ports_and_plain_http() {
        let egress = parse_unsupported(&with("[egress]\nports = [8443, 443]\nplain_http = true\n"))
            .unwrap()
            .egress
            .unwrap();
        assert_eq!(egress.ports, [8443, 443]);
        assert!(egress.plain_http);
        let out = parse_unsupported(&with("[egress]\nports = [1, 65535]\n"))
            .unwrap()
            .effective_toml();
        assert!(out.contains("ports = [1, 65535]"), "{out}");

        refused(
            &with("[egress]\nports = []\n"),
            "proxy.toml:4:1: egress.ports: must not be empty;",
            &["ports = [443]", "default [443]"],
        );
        for (port, col) in [("0", 10), ("65536", 10), ("-443", 10)] {
            refused(
                &with(&format!("[egress]\nports = [{port}]\n")),
                &format!("proxy.toml:4:{col}: egress.ports[0]: \"{port}\" is out of range; expected 1 to 65535"),
                &[],
            );
        }
        refused(
            &with("[egress]\nports = [443, 8443, 443]\n"),
            "proxy.toml:4:21: egress.ports[2]: \"443\" is used twice (first at egress.ports[0]); ports must be unique",
            &[],
        );
        refused(
            &with("[egress]\nports = [\"443\"]\n"),
            "proxy.toml:4:10: egress.ports[0]: wrong type: string \"443\"; expected an array of integers, e.g. [443]",
            &[],
        );
        refused(
            &with("[egress]\nports = 443\n"),
            "proxy.toml:4:9: egress.ports: wrong type:",
            &["an array of integers, e.g. [443]"],
        );
        refused(
            &with("[egress]\nplain_http = \"yes\"\n"),
            "proxy.toml:4:14: egress.plain_http: wrong type:",
            &["true or false"],
        );
    }

    #[test]
    fn allow_cidrs_may_not_switch_the_address_checks_off() {
        let egress = parse_unsupported(&with(
            "[egress]\nallow_cidrs = [\"10.20.0.0/16\", \"169.254.169.254\", \"fd00::/8\", \"0.0.0.0/1\", \"::ffff:10.0.0.0/104\"]\n",
        ))
        .unwrap()
        .egress
        .unwrap();
        assert_eq!(egress.allow_cidrs.len(), 5);
        assert_eq!(egress.allow_cidrs[1].to_string(), "169.254.169.254/32");

        let off = "which would switch the destination address checks off";
        let hint = "expected only the ranges an internal service needs, e.g. \"10.20.0.0/16\"";
        for (list, at, what) in [
            ("\"0.0.0.0/0\"", "[0]", "\"0.0.0.0/0\" covers every IPv4 address"),
            ("\"10.0.0.0/8\", \"::/0\"", "[1]", "\"::/0\" covers every IPv6 address"),
            ("\"1.2.3.4/0\"", "[0]", "\"1.2.3.4/0\" covers every IPv4 address"),
            (
                "\"::ffff:0:0/96\"",
                "[0]",
                "\"::ffff:0:0/96\" covers every IPv4-mapped IPv6 address (::ffff:0:0/96)",
            ),
            (
                "\"::/64\"",
                "[0]",
                "\"::/64\" covers every IPv4-mapped IPv6 address (::ffff:0:0/96)",
            ),
            (
                "\"0.0.0.0/1\", \"10.0.0.0/8\", \"128.0.0.0/1\"",
                "[2]",
                "\"128.0.0.0/1\" together with the entries before it covers every IPv4 address",
            ),
            (
                "\"0.0.0.0/1\", \"::ffff:128.0.0.0/97\"",
                "[1]",
                "\"::ffff:128.0.0.0/97\" together with the entries before it covers every IPv4-mapped IPv6 address (::ffff:0:0/96)",
            ),
            (
                "\"8000::/1\", \"::/1\"",
                "[1]",
                "\"::/1\" together with the entries before it covers every IPv6 address",
            ),
        ] {
            let src = with(&format!("[egress]\nallow_cidrs = [{list}]\n"));
            let msg = parse_unsupported(&src).unwrap_err().to_string();
            assert!(
                msg.starts_with("proxy.toml:4:") && msg.contains(&format!("egress.allow_cidrs{at}: {what}, {off}")),
                "{list}: {msg}"
            );
            assert!(msg.contains(hint), "{msg}");
        }
        refused(
            &with("[egress]\nallow_cidrs = [\"10.0.0.0/33\"]\n"),
            "proxy.toml:4:16: egress.allow_cidrs[0]: \"10.0.0.0/33\" is not an IP network",
            &[],
        );
    }

    #[test]
    fn tokens_are_long_single_line_secrets() {
        let egress = parse_unsupported(&target("client_token = \"bot-literal-token-16\"\n"))
            .unwrap()
            .egress
            .unwrap();
        let out = parse_unsupported(&with("[egress]\ntoken = \"sixteen-chars-ok\"\n"))
            .unwrap()
            .effective_toml();
        assert!(
            out.contains("token = \"<literal, masked>\"") && !out.contains("sixteen"),
            "{out}"
        );
        assert_eq!(
            egress.targets[0].client_token.as_ref().unwrap().expose(),
            "bot-literal-token-16"
        );

        let hint = "expected at least 16 random characters on one line (generate with: openssl rand -hex 32)";
        refused(
            &with("[egress]\ntoken = \"short-token\"\n"),
            &format!(
                "proxy.toml:4:1: egress.token: the secret has 11 characters, fewer than 16; {hint}"
            ),
            &[],
        );
        refused(
            &target("client_token = \"fifteen-chars-x\"\n"),
            &format!("proxy.toml:7:1: egress.target[0].client_token: the secret has 15 characters, fewer than 16; {hint}"),
            &[],
        );
        refused(
            &with("[egress]\ntoken = \" sixteen-chars-ok\"\n"),
            "proxy.toml:4:1: egress.token: the secret starts or ends with whitespace",
            &["openssl rand -hex 32"],
        );
        std::env::set_var(
            "CLAWVEIL_TEST_EGRESS_TOKEN_CRLF",
            "0123456789abcdef\r\nX-Evil: 1",
        );
        let msg = parse_unsupported(&with(
            "[egress]\ntoken = \"${env:CLAWVEIL_TEST_EGRESS_TOKEN_CRLF}\"\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            msg.starts_with(
                "proxy.toml:4:1: egress.token: the secret contains a control character"
            ) && !msg.contains("X-Evil")
                && !msg.contains("0123456789abcdef"),
            "{msg}"
        );
        std::env::remove_var("CLAWVEIL_TEST_EGRESS_TOKEN_UNSET");
        refused(
            &with("[egress]\ntoken = \"${env:CLAWVEIL_TEST_EGRESS_TOKEN_UNSET}\"\n"),
            "proxy.toml:4:1: egress.token: environment variable CLAWVEIL_TEST_EGRESS_TOKEN_UNSET is not set",
            &[],
        );
    }

    #[test]
    fn the_client_token_is_not_the_injected_key() {
        let msg = parse_unsupported(&target(
            "inject_headers = { x-api-key = \"model-key-0123456789\" }\nclient_token = \"model-key-0123456789\"\n",
        ))
        .unwrap_err()
        .to_string();
        assert_eq!(
            msg,
            "proxy.toml:8:1: egress.target[0].client_token: the secret is (part of) egress.target[0].inject_headers.x-api-key, so the bot would hold the key that is injected for it; expected a token of the bot's own, different from the injected key (generate with: openssl rand -hex 32)"
        );
        assert!(!msg.contains("model-key-0123456789"));
        refused(
            &target(
                "inject_headers = { Authorization = \"Bearer model-key-0123456789\" }\nclient_token = \"model-key-0123456789\"\n",
            ),
            "proxy.toml:8:1: egress.target[0].client_token:",
            &["inject_headers.Authorization"],
        );
        parse_unsupported(&target(
            "inject_headers = { Authorization = \"Bearer model-key-0123456789\" }\nclient_token = \"bot-token-0123456789\"\n",
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn targets_may_be_internal_gateways() {
        for url in [
            "https://10.0.0.5:8443",
            "https://127.0.0.1/v1",
            "https://192.168.1.20",
            "https://[fd00::1]:8443/v1",
            "https://[::1]",
        ] {
            let src = with(&format!(
                "[egress]\n[[egress.target]]\nname = \"m\"\nurl = \"{url}\"\nfallback = \"{url}\"\n"
            ));
            let c = parse_unsupported(&src).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(c.egress.unwrap().targets[0].url, url);
        }
    }
}
