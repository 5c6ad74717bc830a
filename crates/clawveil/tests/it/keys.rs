//! Enforce or refuse: every key of the configuration reference either changes what the
//! running binary does — and a named test shows it — or is refused by `check` and `run`
//! as "not supported yet". A key added to the reference without a test that exercises
//! it fails here, and so does a refused key that `check` lets through.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::bin;

/// Key → the test that shows it changes behaviour (`file::function`, under `crates/`).
/// The test's file must mention the key by name.
const ENFORCED: &[(&str, &str)] = &[
    ("trusted_proxies", "clawveil/tests/it/dingtalk.rs::allow_cidrs_believes_x_forwarded_for_only_from_trusted_proxies"),
    ("listen.https", "clawveil/tests/it/common.rs::write_config"),
    ("listen.http", "clawveil/tests/it/plain_http.rs::plain_http_redirects_with_308_and_never_reaches_the_bot"),
    ("listen.metrics", "clawveil/tests/it/metrics.rs::requests_are_counted_by_route_and_timed"),
    ("listen.server_names", "clawveil/tests/it/host.rs::hosts_outside_server_names_are_misdirected"),
    ("upstream.url", "clawveil/tests/it/forwarding.rs::upstream_down_is_502_and_slow_upstream_is_504_with_nothing_leaked"),
    ("upstream.connect_timeout", "clawveil/tests/it/keys.rs::pretty_logs_hsts_and_a_short_connect_timeout_change_behaviour"),
    ("upstream.response_timeout", "clawveil/tests/it/forwarding.rs::upstream_down_is_502_and_slow_upstream_is_504_with_nothing_leaked"),
    ("upstream.exposure_check", "clawveil/tests/it/exposure.rs::a_bot_on_all_addresses_is_unready_until_it_rebinds_to_loopback"),
    ("upstream.require_loopback", "clawveil/tests/it/exposure.rs::require_loopback_false_reports_the_exposure_but_stays_ready"),
    ("tls.mode", "clawveil/tests/it/tls.rs::self_signed_mode_generates_a_0600_key_once_and_reuses_it"),
    ("tls.min_version", "clawveil/tests/it/tls.rs::min_version_1_3_refuses_tls_1_2"),
    ("tls.hsts", "clawveil/tests/it/keys.rs::pretty_logs_hsts_and_a_short_connect_timeout_change_behaviour"),
    ("tls.cert", "clawveil/tests/it/reload.rs::sighup_swaps_the_certificate_while_a_request_is_in_flight"),
    ("tls.key", "clawveil/tests/it/config_errors.rs::a_group_or_world_readable_key_is_refused_with_the_chmod_that_fixes_it"),
    ("tls.names", "tls/src/selfsigned.rs::regenerates_when_names_change"),
    ("tls.watch_interval", "clawveil/tests/it/reload.rs::a_changed_file_is_picked_up_without_a_signal"),
    ("acme.domains", "acme/tests/pebble/issuance.rs::http01_issues_and_serves_through_the_real_listeners"),
    ("acme.contact", "acme/tests/pebble/issuance.rs::http01_issues_and_serves_through_the_real_listeners"),
    ("acme.directory", "acme/tests/pebble/faults.rs::fail_closed_until_the_ca_comes_up"),
    ("acme.challenge", "acme/tests/pebble/issuance.rs::tls_alpn01_sealed_storage_lock_wrong_key_and_restart"),
    ("acme.storage", "acme/tests/pebble/issuance.rs::http01_issues_and_serves_through_the_real_listeners"),
    ("acme.renew_before", "acme/tests/pebble/faults.rs::ca_stopped_during_renewal_keeps_serving_then_recovers_after_restart"),
    ("acme.ca_roots", "acme/tests/pebble/issuance.rs::http01_issues_and_serves_through_the_real_listeners"),
    ("acme.eab_kid", "acme/src/account.rs::eab_hmac_decoding"),
    ("acme.eab_hmac", "acme/src/account.rs::eab_hmac_decoding"),
    ("acme.storage_key", "acme/tests/pebble/issuance.rs::tls_alpn01_sealed_storage_lock_wrong_key_and_restart"),
    ("acme.profile", "acme/tests/pebble/profiles.rs::the_profile_is_sent_on_the_first_order_and_on_renewals"),
    ("limits.max_body", "clawveil/tests/it/limits.rs::oversized_bodies_get_413_declared_or_streamed_and_are_counted"),
    ("limits.max_header_bytes", "clawveil/tests/it/limits.rs::oversized_headers_get_431_and_are_counted"),
    ("limits.header_read_timeout", "clawveil/tests/it/limits.rs::slow_clients_are_cut_at_the_header_read_timeout"),
    ("limits.request_timeout", "clawveil/tests/it/limits.rs::a_body_slower_than_request_timeout_gets_408"),
    ("limits.max_connections", "clawveil/tests/it/limits.rs::connections_beyond_max_connections_wait_for_a_free_slot"),
    ("limits.drain_timeout", "clawveil/tests/it/websocket.rs::sigterm_drains_an_open_tunnel_then_closes_it_and_exits_zero"),
    ("limits.idle_timeout", "clawveil/tests/it/idle.rs::keep_alive_connections_are_cut_after_the_idle_timeout_not_the_header_timeout"),
    ("limits.tunnel_idle_timeout", "clawveil/tests/it/websocket.rs::a_silent_tunnel_is_closed_after_the_idle_timeout"),
    ("log.format", "clawveil/tests/it/keys.rs::pretty_logs_hsts_and_a_short_connect_timeout_change_behaviour"),
    ("log.level", "clawveil/tests/it/leaks.rs::no_planted_identifier_reaches_any_output_at_trace_level"),
    ("log.bodies", "clawveil/tests/it/leaks.rs::no_planted_identifier_reaches_any_output_at_trace_level"),
    ("log.body_max", "clawveil/tests/it/keys.rs::body_max_and_json_keys_shape_the_logged_sample"),
    ("log.hash_key", "clawveil/tests/it/leaks.rs::no_planted_identifier_reaches_any_output_at_trace_level"),
    ("redact.builtin", "clawveil/tests/it/cli.rs::redact_applies_builtin_and_custom_rules_and_explains_without_values"),
    ("redact.json_keys", "clawveil/tests/it/keys.rs::body_max_and_json_keys_shape_the_logged_sample"),
    ("redact.headers", "clawveil/tests/it/leaks.rs::no_planted_identifier_reaches_any_output_at_trace_level"),
    ("redact.rule.name", "clawveil/tests/it/cli.rs::redact_applies_builtin_and_custom_rules_and_explains_without_values"),
    ("redact.rule.pattern", "clawveil/tests/it/cli.rs::redact_applies_builtin_and_custom_rules_and_explains_without_values"),
    ("redact.rule.replace", "clawveil/tests/it/leaks.rs::no_planted_identifier_reaches_any_output_at_trace_level"),
    ("metrics.token", "clawveil/tests/it/metrics.rs::a_metrics_token_is_enforced_and_refusals_are_counted"),
    ("route.name", "clawveil/tests/it/metrics.rs::requests_are_counted_by_route_and_timed"),
    ("route.path_prefix", "clawveil/tests/it/metrics.rs::requests_are_counted_by_route_and_timed"),
    ("route.verify", "clawveil/tests/it/dingtalk.rs::signed_callbacks_are_forwarded_intact_and_bad_ones_refused_with_401"),
    ("route.app_secrets", "clawveil/tests/it/dingtalk.rs::sighup_rotates_the_file_secret_without_a_restart"),
    ("route.max_skew", "clawveil/tests/it/dingtalk_event.rs::a_stale_push_is_refused_as_timestamp_skew"),
    ("route.replay", "clawveil/tests/it/dingtalk.rs::a_delivered_callback_is_acknowledged_once_more_but_not_forwarded_again"),
    ("route.allow_cidrs", "clawveil/tests/it/dingtalk.rs::allow_cidrs_believes_x_forwarded_for_only_from_trusted_proxies"),
    ("route.event_token", "clawveil/tests/it/dingtalk_event.rs::signed_pushes_are_forwarded_and_tampered_ones_refused"),
    ("route.event_aes_key", "clawveil/tests/it/dingtalk_event.rs::signed_pushes_are_forwarded_and_tampered_ones_refused"),
    ("route.event_owner_key", "clawveil/tests/it/dingtalk_event.rs::signed_pushes_are_forwarded_and_tampered_ones_refused"),
    ("route.allowed_origins", "clawveil/tests/it/websocket.rs::upgrades_the_route_refuses_never_reach_the_bot"),
    ("route.allow_trace", "clawveil/tests/it/methods.rs::trace_is_405_unless_the_route_allows_it"),
    ("egress.listen", "egress/tests/forward/refusals.rs::the_listener_binds_only_to_loopback"),
    ("egress.allow", "egress/tests/forward/refusals.rs::ports_and_names_outside_the_lists_are_refused_before_any_lookup"),
    ("egress.ports", "egress/tests/forward/refusals.rs::ports_and_names_outside_the_lists_are_refused_before_any_lookup"),
    ("egress.plain_http", "egress/tests/forward/tunnels.rs::absolute_form_is_refused_by_default_and_forwarded_only_when_allowed"),
    ("egress.allow_cidrs", "egress/tests/forward/tunnels.rs::connect_tunnels_to_a_local_echo_server_admitted_by_allow_cidrs"),
    ("egress.token", "egress/tests/forward/refusals.rs::a_missing_or_wrong_token_gets_407"),
    ("egress.target.name", "egress/tests/targets/routing.rs::a_name_no_target_has_is_refused"),
    ("egress.target.url", "egress/tests/targets/exchange.rs::a_plain_request_arrives_intact_with_the_injected_key_and_never_the_bots"),
    ("egress.target.fallback", "egress/tests/targets/fallback.rs::a_primary_that_cannot_be_reached_falls_back_and_is_counted"),
    ("egress.target.fallback_on", "egress/tests/targets/fallback.rs::a_primary_5xx_falls_back_only_when_configured_and_otherwise_passes_intact"),
    ("egress.target.connect_timeout", "egress/tests/targets/fallback.rs::a_primary_that_cannot_be_reached_falls_back_and_is_counted"),
    ("egress.target.response_timeout", "egress/tests/targets/fallback.rs::a_primary_that_does_not_answer_in_time_falls_back_and_counts_a_timeout"),
    ("egress.target.models", "egress/tests/targets/exchange.rs::models_off_the_list_are_labelled_other_and_their_names_go_nowhere"),
    ("egress.target.inject_headers", "egress/tests/targets/exchange.rs::a_plain_request_arrives_intact_with_the_injected_key_and_never_the_bots"),
    ("egress.target.client_token", "egress/tests/targets/exchange.rs::the_client_token_is_required_counted_and_swapped_for_the_key"),
    ("egress.target.ca_roots", "egress/tests/targets/tls.rs::a_self_signed_certificate_listed_in_ca_roots_is_trusted_for_its_names_only"),
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_supported_key_is_exercised_by_a_named_test() {
    let supported = clawveil_config::supported_keys();
    let listed: Vec<&str> = ENFORCED.iter().map(|(k, _)| *k).collect();
    let missing: Vec<&String> = supported
        .iter()
        .filter(|k| !listed.contains(&k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "keys in the reference with no test named here: {missing:?}"
    );
    let mut unexercised = Vec::new();
    for (key, at) in ENFORCED {
        assert!(
            supported.iter().any(|k| k == key),
            "{key} is listed here but not in the reference"
        );
        let (file, func) = at.split_once("::").unwrap();
        let text = std::fs::read_to_string(crates_dir().join(file))
            .unwrap_or_else(|e| panic!("{key}: {file}: {e}"));
        assert!(
            text.contains(&format!("fn {func}(")),
            "{key}: {file} has no fn {func}"
        );
        let leaf = key.rsplit('.').next().unwrap();
        if !(text.contains(leaf) || harness_mentions(file, leaf)) {
            unexercised.push(format!(
                "{key}: neither {file} nor its harness mentions {leaf}"
            ));
        }
    }
    assert!(unexercised.is_empty(), "{unexercised:#?}");
}

/// Whether the shared harness of a test file's directory sets the key.
fn harness_mentions(file: &str, leaf: &str) -> bool {
    let dir = crates_dir().join(file).parent().unwrap().to_owned();
    ["common.rs", "node.rs", "support.rs"]
        .iter()
        .filter_map(|h| std::fs::read_to_string(dir.join(h)).ok())
        .any(|t| t.contains(leaf))
}

#[test]
fn every_key_not_supported_yet_is_refused_by_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    for key in clawveil_config::unsupported_keys() {
        let (table, leaf) = key.rsplit_once('.').unwrap();
        let value = if leaf.contains("timeout") {
            "\"5s\"".to_owned()
        } else if ["allow", "models", "fallback_on"].contains(&leaf) {
            "[]".to_owned()
        } else if leaf == "inject_headers" {
            "{}".to_owned()
        } else {
            "\"https://x.example\"".to_owned()
        };
        let header = if table == "egress.target" {
            "[[egress.target]]".to_owned()
        } else {
            format!("[{table}]")
        };
        let text = format!(
            "[listen]\nhttps = \"127.0.0.1:0\"\nmetrics = \"\"\n{header}\n{leaf} = {value}\n"
        );
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &text).unwrap();
        for sub in ["check", "run"] {
            let out = Command::new(bin())
                .args([sub, "--config", path.to_str().unwrap()])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{sub} accepted {key}: {err}");
            assert!(err.contains("not supported yet"), "{sub} {key}: {err}");
        }
    }
}

#[test]
fn pretty_logs_hsts_and_a_short_connect_timeout_change_behaviour() {
    use crate::common::{write_config, Opts};
    use clawveil_testkit::{free_port, ProxyProcess, TestCert};
    // An upstream whose accept queue is full: connecting hangs until connect_timeout.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::localhost(dir.path());
    let (https, http, metrics) = (free_port(), free_port(), free_port());
    let config = write_config(
        dir.path(),
        https,
        http,
        metrics,
        &format!("http://{addr}"),
        &cert,
        &Opts {
            upstream: "connect_timeout = \"300ms\"",
            tls: "hsts = \"max-age=5\"",
            extra: "level = \"info\"\nformat = \"pretty\"",
            ..Opts::default()
        },
    );
    let proxy = ProxyProcess::start(&bin(), &config, dir.path(), https);
    let started = std::time::Instant::now();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
            "--cacert",
            cert.cert.to_str().unwrap(),
            "--resolve",
            &format!("localhost:{https}:127.0.0.1"),
            &format!("https://localhost:{https}/x"),
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    // response_timeout is 2s in the harness: a 504 well before it is the connect timeout.
    let answer = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(answer.ends_with("504"), "{answer}");
    assert!(
        answer.contains("strict-transport-security: max-age=5\r\n"),
        "{answer}"
    );
    assert!(
        took < std::time::Duration::from_millis(1800),
        "took {took:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logs = proxy.output();
    let access: Vec<&str> = logs.lines().filter(|l| l.contains("status")).collect();
    assert!(!access.is_empty(), "{logs}");
    assert!(
        access.iter().all(|l| !l.trim_start().starts_with('{')),
        "pretty lines are not JSON: {access:?}"
    );
}

#[test]
fn body_max_and_json_keys_shape_the_logged_sample() {
    use crate::common::{Harness, Opts};
    let h = Harness::with(Opts {
        extra: "level = \"info\"\nbodies = \"redacted\"\nbody_max = \"48B\"\n[redact]\njson_keys = [\"ticketNote\"]",
        ..Opts::default()
    });
    let short = r#"{"ticketNote":"plainwords here"}"#;
    let long = format!(r#"{{"pad":"{}"}}"#, "x".repeat(200));
    for body in [short, long.as_str()] {
        let status = h.status(&[
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
            &h.url("/echo"),
        ]);
        assert_eq!(status, 200);
    }
    assert!(crate::common::eventually(5, || h
        .proxy
        .output()
        .matches("\"status\":200")
        .count()
        >= 2));
    let logs = h.proxy.output();
    // json_keys: the value under the listed key is masked although no rule matches it.
    assert!(!logs.contains("plainwords"), "{logs}");
    // body_max: the 200-byte body is cut at 48 bytes and marked.
    assert!(logs.contains("[truncated]"), "{logs}");
    assert!(!logs.contains(&"x".repeat(60)), "{logs}");
}
