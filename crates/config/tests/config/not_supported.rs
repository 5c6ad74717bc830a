//! Enforce or refuse: documented keys the running binary does not enforce yet
//! (`[egress]`, `upstream.fallback`) are refused with "not supported yet", never accepted
//! and ignored. The `[egress]` tests follow its switch ([`egress_supported`]): once it is
//! enforced, the same files must load instead.

use clawveil_config::{load, supported_keys, unsupported_keys, ErrorKind, LoadOptions};

use crate::errors::{refused, with};
use crate::{egress_supported, err, parse, tmp_path, EGRESS, HTTPS};

const EGRESS_REFUSED: &str = "egress: not supported yet: the egress listener is not implemented in this version; remove [egress] (the bot keeps calling its model gateway directly)";
const FALLBACK_REFUSED: &str = "upstream.fallback: not supported yet: a fallback upstream is not implemented in this version; remove upstream.fallback (requests go to upstream.url only)";

#[test]
fn egress_is_refused_at_its_table_header() {
    for (src, at) in [
        (with("[egress]\nlisten = \"127.0.0.1:8089\"\n"), "3:2"),
        (
            with("\n[[egress.target]]\nname = \"m\"\nurl = \"https://a.example\"\n"),
            "4:3",
        ),
        (format!("egress = {{}}\n{HTTPS}"), "1:1"),
        (format!("egress.listen = \"127.0.0.1:8089\"\n{HTTPS}"), "1:1"),
        (with("[egress]\nports = [443, 8443]\nplain_http = true\nallow_cidrs = [\"10.20.0.0/16\"]\ntoken = \"0123456789abcdef\"\n"), "3:2"),
    ] {
        if egress_supported() {
            let c = parse(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
            assert!(c.egress.is_some(), "{src}");
        } else {
            assert_eq!(err(&src), format!("proxy.toml:{at}: {EGRESS_REFUSED}"));
        }
    }
}

#[test]
fn fallback_is_refused_at_its_key() {
    assert_eq!(
        err(&with(
            "[upstream]\nurl = \"http://127.0.0.1:8080\"\nfallback = \"http://127.0.0.1:8082\"\n"
        )),
        format!("proxy.toml:5:1: {FALLBACK_REFUSED}")
    );
    assert_eq!(
        err(&format!(
            "upstream.fallback = \"http://127.0.0.1:8082\"\n{HTTPS}"
        )),
        format!("proxy.toml:1:10: {FALLBACK_REFUSED}")
    );
    assert_eq!(
        err(&format!("upstream = {{ fallback = \"x\" }}\n{HTTPS}")),
        format!("proxy.toml:1:14: {FALLBACK_REFUSED}")
    );
}

#[test]
fn refusal_comes_before_any_other_check_of_the_table() {
    // Unknown keys, bad values, unset secrets and wrong types inside [egress] all get
    // "not supported yet", not "unknown key" or a validation error.
    for body in [
        "portz = [443]",
        "ports = [0]",
        "plain_http = \"no\"",
        "allow_cidrs = [\"0.0.0.0/0\"]",
        "token = \"${env:CLAWVEIL_TEST_EGRESS_TOKEN_NEVER_SET}\"",
        "token = \"short\"",
        "listen = \"0.0.0.0:8089\"",
        "listen = 8089",
        "allow = [\"https://api.dingtalk.com\"]",
        "[[egress.target]]\nname = \"m\"\nurl = \"http://a.example\"\nclient_token = \"x\"",
    ] {
        let src = with(&format!("[egress]\n{body}\n"));
        if egress_supported() {
            assert!(!err(&src).contains("not supported yet"), "{src}");
        } else {
            refused(&src, &format!("proxy.toml:3:2: {EGRESS_REFUSED}"), &[]);
        }
    }
    refused(
        &with("[upstream]\nfallback = 3\n"),
        &format!("proxy.toml:4:1: {FALLBACK_REFUSED}"),
        &[],
    );
    // Even with an error earlier in the file, the unsupported key is what is reported:
    // fixing anything else first would be wasted work.
    refused(
        &with("[limits]\nmax_body = \"lots\"\n[upstream]\nfallback = \"x\"\n"),
        &format!("proxy.toml:6:1: {FALLBACK_REFUSED}"),
        &[],
    );
    if !egress_supported() {
        refused(
            &with("[limits]\nmax_body = \"lots\"\n[egress]\n"),
            &format!("proxy.toml:5:2: {EGRESS_REFUSED}"),
            &[],
        );
    }
}

#[test]
fn the_first_in_the_file_is_reported() {
    let both = with("[egress]\n[upstream]\nfallback = \"http://127.0.0.1:8082\"\n");
    let first = if egress_supported() {
        "proxy.toml:5:1: upstream.fallback:"
    } else {
        "proxy.toml:3:2: egress:"
    };
    assert!(err(&both).starts_with(first));
    let both = with("[upstream]\nfallback = \"http://127.0.0.1:8082\"\n[egress]\n");
    assert!(err(&both).starts_with("proxy.toml:4:1: upstream.fallback:"));
}

#[test]
fn the_error_is_structured_and_exits_2() {
    let e = parse(&with("[upstream]\nfallback = \"http://127.0.0.1:8082\"\n")).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (Some(4), Some(1), "upstream.fallback")
    );
    assert!(
        matches!(e.kind(), ErrorKind::NotSupported { what, .. } if what.starts_with("a fallback upstream")),
        "{e:?}"
    );
    if egress_supported() {
        return;
    }
    let e = parse(&with("[egress]\n")).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (Some(3), Some(2), "egress")
    );
    match e.kind() {
        ErrorKind::NotSupported { what, hint } => {
            assert_eq!(
                what,
                "the egress listener is not implemented in this version"
            );
            assert!(hint.starts_with("remove [egress]"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_with_them_never_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = tmp_path(&dir, "proxy.toml");
    std::fs::write(&path, EGRESS.replace("@DIR@", "/nonexistent")).unwrap();
    let e = load(&path, &LoadOptions::default()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let line = EGRESS
        .lines()
        .position(|l| l.starts_with("fallback"))
        .unwrap()
        + 1;
    assert_eq!(
        e.to_string(),
        format!("{}:{line}:1: {FALLBACK_REFUSED}", path.display())
    );
    let lax = LoadOptions {
        allow_insecure_permissions: true,
    };
    assert!(load(&path, &lax).is_err());
}

#[test]
fn every_unsupported_key_is_refused_as_not_supported() {
    let keys = unsupported_keys();
    assert!(keys.iter().any(|k| k == "upstream.fallback"), "{keys:?}");
    if !egress_supported() {
        assert!(keys.len() >= 17, "{keys:?}");
    }
    for key in &keys {
        let (section, name) = key.rsplit_once('.').unwrap();
        let msg = err(&with(&format!("[{section}]\n{name} = \"x\"\n")));
        assert!(msg.contains(": not supported yet: "), "{key}: {msg}");
        assert!(!supported_keys().contains(key), "{key}");
    }
}

#[test]
fn unknown_keys_do_not_suggest_unsupported_ones() {
    refused(
        &with("[upstream]\nfallbak = \"http://127.0.0.1:8082\"\n"),
        "proxy.toml:4:1: upstream.fallbak: unknown key; valid keys in [upstream]: url, connect_timeout, response_timeout",
        &[],
    );
    assert!(!err(&with("[upstream]\nfallbak = \"x\"\n")).contains("did you mean"));
    let msg = err(&with("[egres]\n"));
    assert!(msg.starts_with("proxy.toml:3:2: egres: unknown key; valid keys in the top level: trusted_proxies, listen, upstream, tls, acme, limits, log, redact, metrics, route"), "{msg}");
    assert_eq!(
        msg.contains("did you mean `egress`?"),
        egress_supported(),
        "{msg}"
    );
}
