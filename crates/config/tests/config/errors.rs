//! Every error class: file, line, key and what would be valid.

use crate::{err, parse, HTTPS};

/// Asserts that `src` is refused with a message that starts with `prefix`
/// (`file:line:col: key`) and contains every hint.
#[track_caller]
pub fn refused(src: &str, prefix: &str, hints: &[&str]) {
    let msg = err(src);
    assert!(
        msg.starts_with(prefix),
        "expected prefix {prefix:?}\n     got {msg:?}"
    );
    for hint in hints {
        assert!(msg.contains(hint), "expected {hint:?} in\n{msg}");
    }
}

pub fn with(extra: &str) -> String {
    format!("{HTTPS}{extra}")
}

#[test]
fn unknown_key_names_line_key_and_valid_keys() {
    let msg = err("[listen]\nhttps = \"0.0.0.0:443\"\nhttpz = \"0.0.0.0:80\"\n");
    assert_eq!(
        msg,
        "proxy.toml:3:1: listen.httpz: unknown key; valid keys in [listen]: https, http, metrics, server_names (did you mean `https`?)"
    );
}

#[test]
fn unknown_keys_in_arrays_and_at_top_level() {
    refused(
        &with("[[route]]\nname = \"a\"\npath_prefix = \"/a\"\n[[route]]\nname = \"b\"\nverifyy = \"none\"\n"),
        "proxy.toml:8:1: route[1].verifyy: unknown key; valid keys in [[route]]: name, path_prefix, verify",
        &["did you mean `verify`?"],
    );
    refused(
        &with("[listn]\n"),
        "proxy.toml:3:2: listn: unknown key; valid keys in the top level: trusted_proxies, listen",
        &["did you mean `listen`?"],
    );
    refused(
        &with("[[route]]\nname = \"a\"\npath_prefix = \"/\"\nallowed_origin = []\n"),
        "proxy.toml:6:1: route[0].allowed_origin: unknown key; valid keys in [[route]]",
        &[
            "allowed_origins, allow_trace",
            "did you mean `allowed_origins`?",
        ],
    );
    refused(&with("[redact]\n[[redact.rule]]\nname = \"x\"\nregex = \"y\"\n"), "proxy.toml:6:1: redact.rule[0].regex: unknown key; valid keys in [[redact.rule]]: name, pattern, replace", &[]);
    refused(
        "listen.https = \"0.0.0.0:443\"\nlisten.zz = 1\n",
        "proxy.toml:2:8: listen.zz: unknown key",
        &[],
    );
    refused(
        &with("listen = 1\n"),
        "proxy.toml:3:1: listen.listen: unknown key",
        &[],
    );
}

#[test]
fn wrong_types_say_what_is_expected() {
    refused(
        "[listen]\nhttps = 443\n",
        "proxy.toml:2:9: listen.https: wrong type: integer `443`; expected a string \"ip:port\"",
        &["0.0.0.0:443"],
    );
    refused(
        &with("[upstream]\nconnect_timeout = 2\n"),
        "proxy.toml:4:19: upstream.connect_timeout: wrong type: integer `2`",
        &["\"30s\""],
    );
    refused(
        &with("[[route]]\nname = \"a\"\npath_prefix = \"/\"\nreplay = \"yes\"\n"),
        "proxy.toml:6:10: route[0].replay: wrong type",
        &["true or false"],
    );
    refused(
        &with("[redact]\nbuiltin = [\"email\", 3]\n"),
        "proxy.toml:4:21: redact.builtin[1]: wrong type",
        &["array of strings"],
    );
    refused(
        &format!("route = 3\n{HTTPS}"),
        "proxy.toml:1:9: route: wrong type",
        &["[[route]] tables"],
    );
    refused(
        "listen = 3\n",
        "proxy.toml:1:10: listen: wrong type",
        &["a table [listen]"],
    );
    refused(
        &with("[limits]\nmax_connections = \"many\"\n"),
        "proxy.toml:4:19: limits.max_connections: wrong type",
        &["an integer"],
    );
}

#[test]
fn syntax_errors_have_line_and_column() {
    refused(
        "[listen]\nhttps = \n",
        "proxy.toml:2:9: TOML syntax error",
        &[],
    );
    refused(
        "[listen]\nhttps = \"a\"\n[listen]\n",
        "proxy.toml:3:2: TOML syntax error: duplicate key",
        &["`listen`"],
    );
    refused("[listen\n", "proxy.toml:1:", &["TOML syntax error"]);
}

#[test]
fn addresses_suggest_the_form() {
    refused("[listen]\nhttps = \"8443\"\n", "proxy.toml:2:1: listen.https: \"8443\" is not an ip:port address (no IP address); expected e.g. \"0.0.0.0:8443\"", &[]);
    refused(
        "[listen]\nhttps = \"localhost:443\"\n",
        "proxy.toml:2:1: listen.https:",
        &["\"127.0.0.1:443\""],
    );
    refused(
        "[listen]\nhttps = \"0.0.0.0:443\"\nhttp = \":80\"\n",
        "proxy.toml:3:1: listen.http:",
        &["\"0.0.0.0:80\""],
    );
}

#[test]
fn metrics_beyond_loopback_need_a_token() {
    refused(
        "[listen]\nhttps = \"0.0.0.0:443\"\nmetrics = \"0.0.0.0:9464\"\n",
        "proxy.toml:3:1: listen.metrics: 0.0.0.0:9464 is not a loopback address, so metrics.token is required",
        &["token = \"${env:CLAWVEIL_METRICS_TOKEN}\"", "127.0.0.1:9464"],
    );
    std::env::set_var("CLAWVEIL_TEST_ERRORS_METRICS_TOKEN", "t0k3n");
    let c = parse("[listen]\nhttps = \"0.0.0.0:443\"\nmetrics = \"0.0.0.0:9464\"\n[metrics]\ntoken = \"${env:CLAWVEIL_TEST_ERRORS_METRICS_TOKEN}\"\n").unwrap();
    assert_eq!(c.metrics.tokens.len(), 1);
    assert!(parse("[listen]\nhttps = \"0.0.0.0:443\"\nmetrics = \"[::1]:9464\"\n").is_ok());
}

#[test]
fn listeners_need_their_own_ports() {
    refused(
        "[listen]\nhttps = \"0.0.0.0:443\"\nmetrics = \"127.0.0.1:443\"\n",
        "proxy.toml:3:1: listen.metrics: 127.0.0.1:443 overlaps listen.https = 0.0.0.0:443",
        &["own port"],
    );
}

#[test]
fn durations_and_sizes_show_the_form() {
    refused(
        &with("[upstream]\nresponse_timeout = \"30\"\n"),
        "proxy.toml:4:1: upstream.response_timeout: \"30\" is not a valid duration",
        &["\"500ms\", \"30s\", \"1h\", \"30d\""],
    );
    refused(
        &with("[[route]]\nname = \"a\"\npath_prefix = \"/\"\nmax_skew = \"0s\"\n"),
        "proxy.toml:6:1: route[0].max_skew:",
        &["longer than zero"],
    );
    refused(
        &with("[limits]\nmax_body = \"10 parsecs\"\n"),
        "proxy.toml:4:1: limits.max_body: \"10 parsecs\" is not a valid size",
        &["\"16KiB\", \"10MiB\" or an integer number of bytes"],
    );
    refused(
        &with("[log]\nbody_max = -1\n"),
        "proxy.toml:4:1: log.body_max: \"-1\" is not a valid size (it is negative)",
        &[],
    );
    refused(
        &with("[limits]\nmax_connections = 0\n"),
        "proxy.toml:4:1: limits.max_connections: \"0\" is not a positive number",
        &["at least 1"],
    );
}

#[test]
fn enums_list_the_valid_values() {
    let cases: &[(&str, &str, &str)] = &[
        ("[tls]\nmode = \"manual\"\n", "tls.mode", "\"acme\", \"files\", \"self-signed\""),
        ("[tls]\nmin_version = \"1.1\"\n", "tls.min_version", "\"1.2\", \"1.3\""),
        ("[acme]\ndomains = [\"a.example\"]\nchallenge = \"dns-01\"\n", "acme.challenge", "\"http-01\", \"tls-alpn-01\""),
        ("[log]\nformat = \"text\"\n", "log.format", "\"json\", \"pretty\""),
        ("[log]\nbodies = \"on\"\n", "log.bodies", "\"off\", \"redacted\""),
        ("[[route]]\nname = \"a\"\npath_prefix = \"/\"\nverify = \"hmac\"\n", "route[0].verify", "\"none\", \"dingtalk-robot\", \"dingtalk-event\""),
        ("[[redact.rule]]\nname = \"a\"\npattern = \"x\"\nreplace = \"drop\"\n", "redact.rule[0].replace", "\"mask\", \"hash\""),
        ("[redact]\nbuiltin = [\"emails\"]\n", "redact.builtin[0]", "\"email\", \"phone\", \"id-card\", \"bank-card\", \"bearer\", \"api-key\", \"jwt\", \"url-secret\", \"dingtalk\""),
    ];
    for (extra, key, valid) in cases {
        let msg = err(&with(extra));
        assert!(msg.contains(&format!(": {key}: ")), "{key}: {msg}");
        assert!(
            msg.contains(&format!("expected one of: {valid}")),
            "{key}: {msg}"
        );
        assert!(
            msg.starts_with("proxy.toml:")
                && msg.split(':').nth(1).unwrap().parse::<u32>().unwrap() >= 3,
            "{msg}"
        );
    }
}

#[test]
fn urls_are_checked() {
    refused(
        &with("[upstream]\nurl = \"127.0.0.1:8080\"\n"),
        "proxy.toml:4:1: upstream.url: \"127.0.0.1:8080\" is not a valid URL (no scheme)",
        &["http://127.0.0.1:8080"],
    );
    refused(
        &with("[acme]\ndomains = [\"a.example\"]\ndirectory = \"http://ca.example/dir\"\n"),
        "proxy.toml:5:1: acme.directory:",
        &["https://"],
    );
}

#[test]
fn fields_are_structured() {
    let e = parse("[listen]\nhttps = \"0.0.0.0:443\"\nhttpz = 1\n").unwrap_err();
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (Some(3), Some(1), "listen.httpz")
    );
    match e.kind() {
        clawveil_config::ErrorKind::UnknownKey { valid, .. } => {
            assert_eq!(valid, &["https", "http", "metrics", "server_names"])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.exit_code(), 2);
}
