//! Section-specific validation: acme, files mode, log, redaction, routes, server names,
//! origins. (The egress rules are unit tests beside their code: `[egress]` is refused.)

use crate::errors::{refused, with};
use crate::{err, parse, HTTPS};

#[test]
fn acme_requirements() {
    refused(
        &with("[tls]\nmode = \"acme\"\n"),
        "proxy.toml:4:1: tls.mode: tls.mode = \"acme\" needs an [acme] section",
        &["domains = [\"bot.example.com\"]"],
    );
    refused(
        &with("[tls]\nmode = \"acme\"\n[acme]\ndomains = []\n"),
        "proxy.toml:6:1: acme.domains: must not be empty",
        &["domains = [\"bot.example.com\"]"],
    );
    refused(
        &with("[acme]\ncontact = []\n"),
        "proxy.toml:3:2: acme.domains: required key is missing",
        &[],
    );
    refused(&with("[tls]\nmode = \"acme\"\n[acme]\ndomains = [\"a.example\"]\n"), "proxy.toml:5:2: acme.challenge: challenge \"http-01\" is answered on listen.http, which is not set", &["http = \"0.0.0.0:80\"", "tls-alpn-01"]);
    refused(
        &with("[acme]\ndomains = [\"*.example.com\"]\n"),
        "proxy.toml:4:12: acme.domains[0]:",
        &["wildcard"],
    );
    refused(
        &with("[acme]\ndomains = [\"a.example\"]\ncontact = [\"ops@example.com\"]\n"),
        "proxy.toml:5:12: acme.contact[0]:",
        &["mailto:"],
    );
    std::env::set_var("CLAWVEIL_TEST_ERRORS_SHORT_KEY", "abcd");
    refused(&with("[acme]\ndomains = [\"a.example\"]\nstorage_key = \"${env:CLAWVEIL_TEST_ERRORS_SHORT_KEY}\"\n"), "proxy.toml:5:1: acme.storage_key: the secret has 4 characters; expected 32 bytes as 64 hex characters", &["openssl rand -hex 32"]);
    let msg = err(&with("[acme]\ndomains = [\"a.example\"]\nstorage_key = \"${env:CLAWVEIL_TEST_ERRORS_SHORT_KEY}\"\n"));
    assert!(!msg.contains("abcd"), "the value must not be shown");
    refused(
        &with("[acme]\ndomains = [\"a.example\"]\neab_kid = \"kid\"\n"),
        "proxy.toml:3:2: acme.eab_hmac: acme.eab_kid is set but acme.eab_hmac is not",
        &["both"],
    );
}

#[test]
fn acme_ip_addresses_and_profiles() {
    // Let's Encrypt (the default directory) issues IP certificates only with `shortlived`
    refused(
        &with("[acme]\ndomains = [\"203.0.113.7\"]\n"),
        "proxy.toml:4:12: acme.domains[0]: Let's Encrypt issues IP-address certificates (203.0.113.7) only with the \"shortlived\" profile (160 hours), and acme.profile is not set",
        &["profile = \"shortlived\""],
    );
    refused(
        &with("[acme]\ndomains = [\"bot.example.com\", \"2001:db8::7\"]\nprofile = \"tlsserver\"\n"),
        "proxy.toml:5:1: acme.profile: Let's Encrypt issues IP-address certificates (2001:db8::7) only with the \"shortlived\" profile (160 hours), not \"tlsserver\"",
        &["profile = \"shortlived\""],
    );
    let staging = "directory = \"https://acme-staging-v02.api.letsencrypt.org/directory\"\n";
    refused(
        &with(&format!("[acme]\ndomains = [\"203.0.113.7\"]\n{staging}")),
        "proxy.toml:4:12: acme.domains[0]: Let's Encrypt issues",
        &[],
    );
    // with shortlived: IPv4 and IPv6, kept in canonical form
    let cfg = parse(&with(
        "[acme]\ndomains = [\"203.0.113.7\", \"2001:DB8:0:0::7\"]\nprofile = \"shortlived\"\n",
    ))
    .unwrap();
    let acme = cfg.acme.unwrap();
    assert_eq!(acme.domains, ["203.0.113.7", "2001:db8::7"]);
    assert_eq!(acme.profile.as_deref(), Some("shortlived"));
    // another CA decides for itself (checked against its directory at start)
    let private = "directory = \"https://ca.internal/acme/directory\"\n";
    let cfg = parse(&with(&format!(
        "[acme]\ndomains = [\"10.0.0.7\", \"::1\"]\n{private}"
    )))
    .unwrap();
    assert_eq!(cfg.acme.unwrap().profile, None);
    // the same address twice, once in another spelling
    refused(
        &with(&format!(
            "[acme]\ndomains = [\"::1\", \"0:0::1\"]\n{private}"
        )),
        "proxy.toml:4:19: acme.domains[1]: \"::1\" is used twice",
        &[],
    );
    refused(
        &with(&format!("[acme]\ndomains = [\"[2001:db8::7]\"]\n{private}")),
        "proxy.toml:4:12: acme.domains[0]: \"[2001:db8::7]\" has brackets",
        &["\"2001:db8::7\""],
    );
    refused(
        &with(&format!("[acme]\ndomains = [\"203.0.113.999\"]\n{private}")),
        "proxy.toml:4:12: acme.domains[0]: \"203.0.113.999\" is neither a DNS name nor an IP address",
        &["203.0.113.7"],
    );
    refused(
        &with("[acme]\ndomains = [\"a.example\"]\nprofile = \"short lived\"\n"),
        "proxy.toml:5:1: acme.profile: \"short lived\" is not a profile name",
        &["shortlived"],
    );
}

#[test]
fn files_mode_needs_the_files() {
    refused(
        &with("[tls]\nmode = \"files\"\ncert = \"/nonexistent/fullchain.pem\"\n"),
        "proxy.toml:5:1: tls.cert: /nonexistent/fullchain.pem does not exist",
        &["PEM"],
    );
}

#[test]
fn log_level() {
    refused(
        &with("[log]\nlevel = \"verbose\"\n"),
        "proxy.toml:4:1: log.level: \"verbose\" is not a log level",
        &[
            "\"error\", \"warn\", \"info\", \"debug\", \"trace\"",
            "info,hyper=warn",
        ],
    );
    assert_eq!(
        parse(&with("[log]\nlevel = \"DEBUG\"\n"))
            .unwrap()
            .log
            .level,
        "debug"
    );
    assert!(parse(&with("[log]\nlevel = \"clawveil=trace\"\n")).is_ok());
}

#[test]
fn redaction_rules() {
    refused(&with("[[redact.rule]]\nname = \"x\"\npattern = \"ORD-[0-9\"\n"), "proxy.toml:5:1: redact.rule[0].pattern: pattern \"ORD-[0-9\" is not a valid regular expression", &["unclosed"]);
    refused(
        &with("[[redact.rule]]\nname = \"x\"\npattern = \"[0-9]*\"\n"),
        "proxy.toml:5:1: redact.rule[0].pattern:",
        &["empty string"],
    );
    refused(&with("[[redact.rule]]\nname = \"x\"\npattern = \"a\"\n[[redact.rule]]\nname = \"x\"\npattern = \"b\"\n"), "proxy.toml:7:1: redact.rule[1].name: \"x\" is used twice (first at redact.rule[0].name)", &["unique"]);
    refused(
        &with("[[redact.rule]]\nname = \"\"\npattern = \"a\"\n"),
        "proxy.toml:4:1: redact.rule[0].name: must not be empty",
        &[],
    );
    refused(
        &with("[[redact.rule]]\npattern = \"a\"\n"),
        "proxy.toml:3:1: redact.rule[0].name: required key is missing",
        &[],
    );
    refused(
        &with("[[redact.rule]]\nname = \"email\"\npattern = \"a\"\n"),
        "proxy.toml:4:1: redact.rule[0].name:",
        &["built-in"],
    );
    refused(
        &with("[redact]\nbuiltin = [\"email\", \"email\"]\n"),
        "proxy.toml:4:21: redact.builtin[1]: \"email\" is used twice",
        &[],
    );
    refused(
        &with("[redact]\nheaders = [\"X Bad\"]\n"),
        "proxy.toml:4:12: redact.headers[0]:",
        &["header name"],
    );
}

#[test]
fn route_rules() {
    let route = |body: &str| with(&format!("[[route]]\n{body}"));
    refused(&route("name = \"a\"\npath_prefix = \"/a\"\n[[route]]\nname = \"a\"\npath_prefix = \"/b\"\n"), "proxy.toml:7:1: route[1].name: \"a\" is used twice (first at route[0].name); route names must be unique", &[]);
    refused(
        &route(
            "name = \"a\"\npath_prefix = \"/a\"\n[[route]]\nname = \"b\"\npath_prefix = \"/a\"\n",
        ),
        "proxy.toml:8:1: route[1].path_prefix: \"/a\" is used twice",
        &[],
    );
    refused(
        &route("name = \"a\"\npath_prefix = \"dingtalk/\"\n"),
        "proxy.toml:5:1: route[0].path_prefix: \"dingtalk/\" is not a path prefix",
        &["starting with /"],
    );
    refused(
        &route("path_prefix = \"/\"\n"),
        "proxy.toml:3:1: route[0].name: required key is missing",
        &["name = \"dingtalk\""],
    );
    refused(
        &route("name = \"a b\"\npath_prefix = \"/\"\n"),
        "proxy.toml:4:1: route[0].name:",
        &["letters, digits"],
    );
    refused(
        &route("name = \"a\"\npath_prefix = \"/\"\nverify = \"dingtalk-robot\"\n"),
        "proxy.toml:3:1: route[0].app_secrets: must not be empty",
        &["app_secrets = [\"${env:DINGTALK_APP_SECRET}\"]"],
    );
    refused(
        &route("name = \"a\"\npath_prefix = \"/\"\nverify = \"dingtalk-event\"\n"),
        "proxy.toml:3:1: route[0].event_token: required key is missing",
        &["event_token = \"${env:DINGTALK_EVENT_TOKEN}\""],
    );
    refused(
        &route("name = \"a\"\npath_prefix = \"/\"\napp_secrets = [\"s3cr3t\"]\n"),
        "proxy.toml:6:1: route[0].app_secrets: app_secrets is set but verify is \"none\"",
        &["verify = \"dingtalk-robot\""],
    );
    refused(&route("name = \"a\"\npath_prefix = \"/\"\nverify = \"dingtalk-event\"\nevent_token = \"t\"\nevent_aes_key = \"short\"\n"), "proxy.toml:8:1: route[0].event_aes_key: the secret has 5 characters; expected the 43-character EncodingAESKey", &[]);
    refused(
        &route("name = \"a\"\npath_prefix = \"/\"\nallow_cidrs = [\"10.0.0.0/33\"]\n"),
        "proxy.toml:6:16: route[0].allow_cidrs[0]: \"10.0.0.0/33\" is not an IP network",
        &["10.0.0.0/8"],
    );
    refused(
        &format!("trusted_proxies = [\"nope\"]\n{HTTPS}"),
        "proxy.toml:1:20: trusted_proxies[0]:",
        &["CIDR"],
    );
}

#[test]
fn server_names() {
    let src = |list: &str| format!("[listen]\nhttps = \"127.0.0.1:8443\"\nserver_names = {list}\n");
    let c = parse(&src(
        "[\"Bot.Example.com\", \"*.example.org\", \"192.0.2.7\", \"[2001:db8::1]\"]",
    ))
    .unwrap();
    assert_eq!(
        c.listen.server_names,
        [
            "bot.example.com",
            "*.example.org",
            "192.0.2.7",
            "2001:db8::1"
        ]
    );
    assert!(parse(&src("[]")).unwrap().listen.server_names.is_empty());
    let expected = "expected a host name such as \"bot.example.com\" or \"*.example.org\", or an IP address (no scheme, port or path)";
    refused(
        &src("[\"bot.example.com:443\"]"),
        "proxy.toml:3:17: listen.server_names[0]: \"bot.example.com:443\" has a port; ",
        &[expected],
    );
    refused(
        &src("[\"a.example\", \"https://bot.example.com\"]"),
        "proxy.toml:3:30: listen.server_names[1]: \"https://bot.example.com\" has a scheme",
        &[expected],
    );
    refused(
        &src("[\"*\"]"),
        "proxy.toml:3:17: listen.server_names[0]: \"*\" matches everything; leave server_names empty",
        &[],
    );
    refused(
        &src("[\"bot.example.com\", \"BOT.example.com\"]"),
        "proxy.toml:3:36: listen.server_names[1]: \"bot.example.com\" is used twice (first at listen.server_names[0]); server names must be unique",
        &[],
    );
    refused(
        &src("[\"bot example\"]"),
        "proxy.toml:3:17: listen.server_names[0]:",
        &["is not a DNS name"],
    );
}

#[test]
fn allowed_origins_and_trace() {
    let route = |body: &str| {
        with(&format!(
            "[[route]]\nname = \"ui\"\npath_prefix = \"/ui/\"\n{body}"
        ))
    };
    let c = parse(&route(
        "allowed_origins = [\"HTTPS://Bot.Example.com:443\", \"http://localhost:8080\"]\nallow_trace = true\n",
    ))
    .unwrap();
    assert_eq!(
        c.routes[0].allowed_origins,
        ["https://bot.example.com", "http://localhost:8080"]
    );
    assert!(c.routes[0].allow_trace);
    let c = parse(&route("")).unwrap();
    assert!(c.routes[0].allowed_origins.is_empty() && !c.routes[0].allow_trace);
    let expected = "expected a web origin such as \"https://bot.example.com\" or \"http://127.0.0.1:8080\": scheme, host and optional port, without path, query, user info or trailing slash";
    for (origin, reason) in [
        (
            "https://bot.example.com/",
            "ends with a slash, which browsers do not send",
        ),
        ("https://bot.example.com/ui", "has a path"),
        ("https://bot.example.com?x=1", "has a query"),
        ("https://user@bot.example.com", "has user info"),
        ("bot.example.com", "has no scheme"),
        (
            "wss://bot.example.com",
            "is not an https:// or http:// origin",
        ),
        (
            "https://bot.example.com:99999",
            "has a port that is not a number from 1 to 65535",
        ),
    ] {
        refused(
            &route(&format!("allowed_origins = [\"{origin}\"]\n")),
            &format!(
                "proxy.toml:6:20: route[0].allowed_origins[0]: \"{origin}\" {reason}; {expected}"
            ),
            &[],
        );
    }
    refused(
        &route("allowed_origins = [\"https://a.example\", \"https://A.example:443\"]\n"),
        "proxy.toml:6:41: route[0].allowed_origins[1]: \"https://a.example\" is used twice (first at route[0].allowed_origins[0]); allowed origins must be unique",
        &[],
    );
    refused(
        &route("allow_trace = \"yes\"\n"),
        "proxy.toml:6:15: route[0].allow_trace: wrong type",
        &["true or false"],
    );
}

#[test]
fn idle_timeouts() {
    let c = parse(&with(
        "[limits]\nidle_timeout = \"5s\"\ntunnel_idle_timeout = \"1h\"\n",
    ))
    .unwrap();
    assert_eq!(c.limits.idle_timeout, std::time::Duration::from_secs(5));
    assert_eq!(
        c.limits.tunnel_idle_timeout,
        std::time::Duration::from_secs(3600)
    );
    refused(
        &with("[limits]\nidle_timeout = \"soon\"\n"),
        "proxy.toml:4:1: limits.idle_timeout: \"soon\" is not a valid duration",
        &[],
    );
    refused(
        &with("[limits]\ntunnel_idle_timeout = \"0s\"\n"),
        "proxy.toml:4:1: limits.tunnel_idle_timeout: \"0s\" is not a valid duration (it must be longer than zero)",
        &[],
    );
}

#[test]
fn require_loopback_follows_the_upstream_host() {
    let upstream = |keys: &str| with(&format!("[upstream]\n{keys}\n"));
    let required = |keys: &str| {
        parse(&upstream(keys))
            .unwrap_or_else(|e| panic!("{keys}: {e}"))
            .upstream
            .require_loopback
    };
    // The default: required on loopback (either family, or localhost), not elsewhere,
    // nor with the check off.
    assert!(parse(HTTPS).unwrap().upstream.require_loopback);
    for url in [
        "http://127.0.0.1:8080",
        "http://127.0.0.2:8080",
        "http://[::1]:8080",
        "http://[::ffff:127.0.0.1]:8080",
        "http://localhost:8080/bot",
        "https://LOCALHOST",
    ] {
        assert!(required(&format!("url = \"{url}\"")), "{url}");
    }
    for url in [
        "http://10.0.0.5:8080",
        "http://[2001:db8::1]:8080",
        "http://bot.internal:8080",
        "http://0.0.0.0:8080",
    ] {
        assert!(!required(&format!("url = \"{url}\"")), "{url}");
    }
    assert!(!required("exposure_check = \"0s\""));
    assert!(!required("require_loopback = false"));
    assert!(required("require_loopback = true"));

    // Explicitly true where it cannot hold: refused, saying why and what to do.
    refused(
        &upstream("url = \"http://10.0.0.5:8080\"\nrequire_loopback = true"),
        "proxy.toml:5:1: upstream.require_loopback: upstream.url \"http://10.0.0.5:8080\" is not on a loopback address",
        &["reaches the bot without clawveil", "127.0.0.1", "require_loopback = false"],
    );
    refused(
        &upstream("url = \"http://bot.internal:8080\"\nrequire_loopback = true"),
        "proxy.toml:5:1: upstream.require_loopback: upstream.url \"http://bot.internal:8080\" is not on a loopback address",
        &[],
    );
    refused(
        &upstream("exposure_check = \"0s\"\nrequire_loopback = true"),
        "proxy.toml:5:1: upstream.require_loopback: require_loopback = true needs the exposure check",
        &["exposure_check = \"0s\" turns it off", "require_loopback = false"],
    );
}
