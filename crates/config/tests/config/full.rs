//! The full example, defaults, and the effective config.

use std::time::Duration;

use clawveil_config::*;

use crate::{
    egress_supported, err, full_in_tempdir, parse, private_file, tmp_path, EGRESS, EGRESS_EXAMPLE,
    FILE_SECRET, FULL, HTTPS, SECRET_VALUES,
};

#[test]
fn full_example_parses() {
    let (_dir, src) = full_in_tempdir();
    let c = parse(&src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.trusted_proxies.len(), 2);
    assert_eq!(c.listen.https.to_string(), "0.0.0.0:443");
    assert_eq!(c.listen.http.unwrap().port(), 80);
    assert_eq!(c.listen.server_names, ["bot.example.com", "*.example.org"]);
    assert_eq!(c.upstream.fallback, None);
    assert_eq!(c.upstream.exposure_check, Some(Duration::from_secs(10)));
    assert!(c.upstream.require_loopback);
    assert_eq!(c.tls.mode, TlsMode::Acme);
    assert_eq!(c.tls.watch_interval, Duration::from_secs(5));
    let acme = c.acme.as_ref().unwrap();
    assert_eq!(acme.domains, ["bot.example.com"]);
    assert_eq!(acme.challenge, Challenge::Http01);
    assert_eq!(acme.renew_before, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(acme.profile.as_deref(), Some("tlsserver"));
    assert_eq!(acme.storage_key.as_ref().unwrap().expose().len(), 64);
    assert_eq!(acme.eab_kid.as_ref().unwrap().expose(), "kid-1234567890");
    assert_eq!(c.limits.max_body, 10 * 1024 * 1024);
    assert_eq!(c.limits.max_header_bytes, 64 * 1024);
    assert_eq!(c.limits.drain_timeout, Duration::from_secs(20));
    assert_eq!(c.limits.idle_timeout, Duration::from_secs(90));
    assert_eq!(c.limits.tunnel_idle_timeout, Duration::from_secs(600));
    assert_eq!(c.log.body_max, 16 * 1024);
    assert_eq!(c.log.hash_key.as_ref().unwrap().expose(), FILE_SECRET);
    assert_eq!(c.redact.builtin, BUILTIN_RULES);
    assert_eq!(c.redact.headers, ["x-api-key"]);
    assert_eq!(c.redact.rules[0].name, "order-id");
    assert_eq!(c.metrics.tokens.len(), 1);
    // sorted longest prefix first
    let prefixes: Vec<&str> = c.routes.iter().map(|r| r.path_prefix.as_str()).collect();
    assert_eq!(
        prefixes,
        ["/dingtalk-events/", "/dingtalk/", "/openclaw/", "/"]
    );
    let robot = &c.routes[1];
    assert_eq!(robot.verify, Verify::DingtalkRobot);
    assert_eq!(robot.app_secrets[1].expose(), "app-secret-previous-value");
    assert_eq!(robot.allow_cidrs[0].to_string(), "203.119.0.0/16");
    assert!(robot.allowed_origins.is_empty() && !robot.allow_trace);
    let ui = &c.routes[2];
    assert_eq!(
        ui.allowed_origins,
        ["https://bot.example.com", "http://127.0.0.1:8443"]
    );
    assert!(ui.allow_trace);
    let event = &c.routes[0];
    assert_eq!(event.event_aes_key.as_ref().unwrap().expose().len(), 43);
    assert_eq!(event.event_owner_key.as_deref(), Some("dingxxxxxxxx"));
    assert!(c.egress.is_none());
    assert!(c.warnings.is_empty());
}

#[test]
fn load_reads_the_file_and_names_it_when_missing() {
    let (dir, src) = full_in_tempdir();
    let path = tmp_path(&dir, "proxy.toml");
    std::fs::write(&path, src).unwrap();
    let c = load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(c.source, path);
    let missing = tmp_path(&dir, "nope.toml");
    let e = load(&missing, &LoadOptions::default()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("nope.toml") && msg.contains("cannot read"),
        "{msg}"
    );
}

#[test]
fn effective_toml_masks_every_secret_and_parses_back() {
    let (_dir, src) = full_in_tempdir();
    let c = parse(&src).unwrap();
    let out = c.effective_toml();
    for (_, value) in SECRET_VALUES {
        assert!(!out.contains(value), "secret value leaked:\n{out}");
    }
    assert!(!out.contains(FILE_SECRET));
    assert!(out.contains("\"${env:DINGTALK_APP_SECRET}\""), "{out}");
    assert!(out.contains("hash_key = \"${file:"), "{out}");
    assert!(
        out.contains("max_body = \"10MiB\"") && out.contains("renew_before = \"30d\""),
        "{out}"
    );
    for line in [
        "server_names = [\"bot.example.com\", \"*.example.org\"]",
        "idle_timeout = \"90s\"",
        "tunnel_idle_timeout = \"10m\"",
        "allowed_origins = [\"https://bot.example.com\", \"http://127.0.0.1:8443\"]",
        "allow_trace = true",
        "allow_trace = false",
    ] {
        assert!(out.contains(line), "{line} missing from\n{out}");
    }
    assert!(
        !out.contains("egress") && !out.contains("fallback"),
        "{out}"
    );
    let again = parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(again.effective_toml(), out);
}

#[test]
fn debug_never_shows_secret_values() {
    let (_dir, src) = full_in_tempdir();
    let c = parse(&src).unwrap();
    let debug = format!("{c:?}");
    for (_, value) in SECRET_VALUES {
        assert!(!debug.contains(value), "secret value in Debug");
    }
    assert!(!debug.contains(FILE_SECRET));
    assert!(debug.contains("Secret(${env:CLAWVEIL_METRICS_TOKEN})"));
}

#[test]
fn literal_secrets_are_masked_too() {
    let src = format!("{HTTPS}[metrics]\ntoken = \"literal-token-123\"\n");
    let c = parse(&src).unwrap();
    assert_eq!(c.metrics.tokens[0].expose(), "literal-token-123");
    let out = c.effective_toml();
    assert!(
        !out.contains("literal-token-123") && out.contains("<literal, masked>"),
        "{out}"
    );
    assert!(!format!("{c:?}").contains("literal-token-123"));
}

#[test]
fn defaults_fill_everything_but_listen_https() {
    let c = parse(HTTPS).unwrap();
    assert_eq!(c.listen.metrics.unwrap().to_string(), "127.0.0.1:9464");
    assert_eq!(c.listen.http, None);
    assert_eq!(c.upstream.url, "http://127.0.0.1:8080");
    assert_eq!(c.upstream.connect_timeout, Duration::from_secs(2));
    assert_eq!(c.upstream.response_timeout, Duration::from_secs(30));
    assert_eq!(c.upstream.exposure_check, Some(Duration::from_secs(30)));
    assert!(c.upstream.require_loopback);
    assert_eq!(c.tls.mode, TlsMode::SelfSigned);
    assert_eq!(c.tls.min_version, TlsVersion::V1_2);
    assert_eq!(
        c.tls.hsts.as_deref(),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(c.tls.cert.to_str(), Some("certs/selfsigned.pem"));
    assert_eq!(c.tls.key.to_str(), Some("certs/selfsigned.key"));
    assert_eq!(c.tls.names, ["localhost", "127.0.0.1", "::1"]);
    assert!(c.acme.is_none() && c.egress.is_none() && c.metrics.tokens.is_empty());
    assert!(c.listen.server_names.is_empty() && c.upstream.fallback.is_none());
    assert_eq!(c.limits.max_body, 10 << 20);
    assert_eq!(c.limits.max_header_bytes, 64 << 10);
    assert_eq!(c.limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.limits.request_timeout, Duration::from_secs(60));
    assert_eq!(c.limits.max_connections, 10_000);
    assert_eq!(c.limits.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.limits.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.limits.tunnel_idle_timeout, Duration::from_secs(600));
    assert_eq!(
        (
            c.log.format,
            c.log.level.as_str(),
            c.log.bodies,
            c.log.body_max
        ),
        (None, "info", BodyLog::Off, 16 << 10)
    );
    assert_eq!(c.redact.builtin, BUILTIN_RULES);
    assert_eq!(c.routes.len(), 1);
    let r = &c.routes[0];
    assert_eq!(
        (r.name.as_str(), r.path_prefix.as_str(), r.verify),
        ("default", "/", Verify::None)
    );
    assert!(r.replay && r.max_skew == Duration::from_secs(3600));
    assert!(r.allowed_origins.is_empty() && !r.allow_trace);
    let out = c.effective_toml();
    assert!(
        out.contains("server_names = []")
            && out.contains("idle_timeout = \"1m\"")
            && out.contains("tunnel_idle_timeout = \"10m\"")
            && out.contains("allowed_origins = []")
            && out.contains("allow_trace = false"),
        "{out}"
    );
    assert_eq!(parse(&out).unwrap().effective_toml(), out);
}

#[test]
fn empty_file_needs_only_listen_https() {
    let msg = err("");
    assert_eq!(msg, "proxy.toml:1:1: listen.https: required key is missing; add under [listen]: https = \"0.0.0.0:443\"");
    let msg = err("# just a comment\n\n[listen]\nhttp = \"0.0.0.0:80\"\n");
    assert!(
        msg.starts_with("proxy.toml:3:2: listen.https: required key is missing"),
        "{msg}"
    );
}

#[test]
fn other_defaults_per_section() {
    let c = parse(&format!("{HTTPS}[acme]\ndomains = [\"a.example\"]\n")).unwrap();
    let a = c.acme.unwrap();
    assert_eq!(
        a.directory,
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(a.storage.to_str(), Some("certs/acme"));
    let c = parse("[listen]\nhttps = \"[::]:443\"\nmetrics = \"\"\n[tls]\nhsts = \"\"\nmode = \"acme\"\n[acme]\ndomains = [\"a.example\"]\nchallenge = \"tls-alpn-01\"\n").unwrap();
    assert!(c.listen.metrics.is_none() && c.tls.hsts.is_none());
    assert_eq!(c.tls.key.to_str(), Some("certs/privkey.pem"));
    let c = parse(&format!(
        "{HTTPS}[limits]\nmax_body = 1000\n[log]\nlevel = \"info,hyper=warn\"\n"
    ))
    .unwrap();
    assert_eq!(c.limits.max_body, 1000);
    assert_eq!(c.log.level, "info,hyper=warn");
}

#[cfg(unix)]
#[test]
fn files_mode_checks_cert_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cert = tmp_path(&dir, "fullchain.pem");
    let key = tmp_path(&dir, "privkey.pem");
    private_file(&cert, "cert", 0o644);
    private_file(&key, "key", 0o600);
    let src = format!(
        "{HTTPS}[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let c = parse(&src).unwrap();
    assert_eq!(c.tls.key, key);

    private_file(&key, "key", 0o644);
    let msg = err(&src);
    assert!(msg.starts_with("proxy.toml:6:1: tls.key: "), "{msg}");
    assert!(
        msg.contains("is readable by group or others (mode 0644); run: chmod 600"),
        "{msg}"
    );

    let lax = clawveil_config::parse(
        &src,
        "proxy.toml".as_ref(),
        &LoadOptions {
            allow_insecure_permissions: true,
        },
    )
    .unwrap();
    assert_eq!(lax.warnings.len(), 1);
    assert_eq!(lax.warnings[0].path, key);
    assert!(lax.warnings[0].to_string().contains("chmod 600"));

    std::fs::remove_file(&cert).unwrap();
    let msg = err(&src);
    assert!(
        msg.contains("tls.cert") && msg.contains("fullchain.pem does not exist"),
        "{msg}"
    );
}

#[test]
fn every_key_of_the_full_file_is_in_the_reference() {
    let md = reference_markdown();
    let table: toml::Table = FULL.parse().unwrap();
    let mut checked = 0;
    walk(&md, "", &toml::Value::Table(table), &mut checked);
    assert!(checked >= 65, "walked only {checked} keys");
}

/// full.toml sets every supported key; the `[egress]` keys, which full.toml cannot hold
/// while they are refused, are set by egress.toml and egress_example.toml.
#[test]
fn the_full_file_sets_every_supported_key() {
    let table: toml::Table = FULL.parse().unwrap();
    let egress: Vec<toml::Table> = [EGRESS, EGRESS_EXAMPLE]
        .iter()
        .map(|src| src.parse().unwrap())
        .collect();
    let keys = supported_keys().into_iter().chain(unsupported_keys());
    for key in keys.filter(|k| k.starts_with("egress.")) {
        assert!(sets(&egress, &key), "neither egress fixture sets {key}");
    }
    for key in supported_keys()
        .iter()
        .filter(|k| !k.starts_with("egress."))
    {
        assert!(
            sets(std::slice::from_ref(&table), key),
            "full.toml does not set {key}"
        );
    }
}

/// Whether one of `tables` sets `key` (a dotted path without indices).
fn sets(tables: &[toml::Table], key: &str) -> bool {
    let mut values: Vec<&toml::Table> = tables.iter().collect();
    let (sections, name) = key.rsplit_once('.').unwrap_or(("", key));
    for section in sections.split('.').filter(|s| !s.is_empty()) {
        values = values
            .iter()
            .flat_map(|t| match t.get(section) {
                Some(toml::Value::Table(inner)) => vec![inner],
                Some(toml::Value::Array(items)) => {
                    items.iter().filter_map(toml::Value::as_table).collect()
                }
                _ => Vec::new(),
            })
            .collect();
    }
    values.iter().any(|t| t.contains_key(name))
}

/// Checks that every key under `section` has a row in that section's reference table.
fn walk(md: &str, section: &str, value: &toml::Value, checked: &mut usize) {
    let toml::Value::Table(table) = value else {
        return;
    };
    let chunk = section_chunk(md, section);
    for (key, v) in table {
        let child = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        let nested: Vec<&toml::Value> = match v {
            toml::Value::Table(_) if key != "inject_headers" => vec![v],
            toml::Value::Array(items)
                if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
            {
                items.iter().collect()
            }
            _ => Vec::new(),
        };
        if nested.is_empty() {
            assert!(
                chunk.contains(&format!("| `{key}` |")),
                "no reference row for {child}"
            );
            *checked += 1;
        } else {
            for n in nested {
                walk(md, &child, n, checked);
            }
        }
    }
}

fn section_chunk<'a>(md: &'a str, section: &str) -> &'a str {
    let start = if section.is_empty() {
        md.find("### Top level").expect("top-level section")
    } else {
        let single = format!("### `[{section}]`");
        let array = format!("### `[[{section}]]`");
        md.find(&single)
            .or_else(|| md.find(&array))
            .unwrap_or_else(|| panic!("no reference section for {section}"))
    };
    let rest = &md[start + 4..];
    let end = rest.find("\n### ").map_or(md.len(), |e| start + 4 + e);
    &md[start..end]
}

#[test]
fn reference_markdown_covers_sections_and_types() {
    let md = reference_markdown();
    assert!(md.starts_with("## Configuration reference"));
    for heading in [
        "[listen]",
        "[upstream]",
        "[tls]",
        "[acme]",
        "[limits]",
        "[log]",
        "[redact]",
        "[[redact.rule]]",
        "[metrics]",
        "[[route]]",
    ] {
        assert!(md.contains(&format!("### `{heading}`")), "{heading}");
    }
    for egress in ["[egress]", "[[egress.target]]"] {
        let listed = md.contains(&format!("### `{egress}`"));
        assert_eq!(listed, egress_supported(), "{egress}");
    }
    assert!(md.contains("| `server_names` | [string] | [] (any) |"));
    assert!(
        md.contains("| `allow_trace` | bool | `false` | TRACE is refused with 405 unless true. |")
    );
    assert!(md.contains("| `https` | address | required |"));
    assert!(md.contains("current directory"));
}

#[test]
fn the_repository_default_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proxy.toml");
    let Ok(src) = std::fs::read_to_string(&path) else {
        return;
    };
    let c = clawveil_config::parse(&src, &path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.listen.https.ip().is_loopback());
}
