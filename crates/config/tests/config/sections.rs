//! Section-specific validation errors: acme, files mode, log, redaction, routes, egress.

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
fn egress_rules() {
    let target = |body: &str| {
        with(&format!(
            "[egress]\n[[egress.target]]\nname = \"m\"\nurl = \"https://a.example\"\n{body}"
        ))
    };
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
