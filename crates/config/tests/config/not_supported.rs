//! Enforce or refuse: documented keys the running binary does not enforce yet
//! (`[egress]`, `upstream.fallback`) are refused with "not supported yet", never accepted
//! and ignored.

use clawveil_config::{load, supported_keys, unsupported_keys, ErrorKind, LoadOptions};

use crate::errors::{refused, with};
use crate::{err, parse, tmp_path, EGRESS, HTTPS};

const EGRESS_REFUSED: &str = "egress: not supported yet: the egress listener is not implemented in this version; remove [egress] (the bot keeps calling its model gateway directly)";
const FALLBACK_REFUSED: &str = "upstream.fallback: not supported yet: a fallback upstream is not implemented in this version; remove upstream.fallback (requests go to upstream.url only)";

#[test]
fn egress_is_refused_at_its_table_header() {
    assert_eq!(
        err(&with("[egress]\nlisten = \"127.0.0.1:8089\"\n")),
        format!("proxy.toml:3:2: {EGRESS_REFUSED}")
    );
    assert_eq!(
        err(&with(
            "\n[[egress.target]]\nname = \"m\"\nurl = \"https://a.example\"\n"
        )),
        format!("proxy.toml:4:3: {EGRESS_REFUSED}")
    );
    assert_eq!(
        err(&format!("egress = {{}}\n{HTTPS}")),
        format!("proxy.toml:1:1: {EGRESS_REFUSED}")
    );
    assert_eq!(
        err(&format!("egress.listen = \"127.0.0.1:8089\"\n{HTTPS}")),
        format!("proxy.toml:1:1: {EGRESS_REFUSED}")
    );
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
    // Keys of the design's contract that were never parsed, bad values and wrong types
    // inside [egress] all get "not supported yet", not "unknown key" or a validation error.
    for body in [
        "ports = [443]",
        "plain_http = false",
        "token = \"${env:CLAWVEIL_EGRESS_TOKEN}\"",
        "listen = \"0.0.0.0:8089\"",
        "listen = 8089",
        "allow = [\"https://api.dingtalk.com\"]",
    ] {
        refused(
            &with(&format!("[egress]\n{body}\n")),
            &format!("proxy.toml:3:2: {EGRESS_REFUSED}"),
            &[],
        );
    }
    refused(
        &with("[egress]\n[[egress.target]]\nname = \"m\"\nurl = \"http://a.example\"\nclient_token = \"x\"\n"),
        &format!("proxy.toml:3:2: {EGRESS_REFUSED}"),
        &[],
    );
    refused(
        &with("[upstream]\nfallback = 3\n"),
        &format!("proxy.toml:4:1: {FALLBACK_REFUSED}"),
        &[],
    );
    // Even with an error earlier in the file, the unsupported key is what is reported:
    // fixing anything else first would be wasted work.
    refused(
        &with("[limits]\nmax_body = \"lots\"\n[egress]\n"),
        &format!("proxy.toml:5:2: {EGRESS_REFUSED}"),
        &[],
    );
}

#[test]
fn the_first_in_the_file_is_reported() {
    let both = with("[egress]\n[upstream]\nfallback = \"http://127.0.0.1:8082\"\n");
    assert!(err(&both).starts_with("proxy.toml:3:2: egress:"));
    let both = with("[upstream]\nfallback = \"http://127.0.0.1:8082\"\n[egress]\n");
    assert!(err(&both).starts_with("proxy.toml:4:1: upstream.fallback:"));
}

#[test]
fn the_error_is_structured_and_exits_2() {
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
    assert!(keys.len() >= 12, "{keys:?}");
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
    assert!(!msg.contains("egress"), "{msg}");
}
