//! Faults: rejected nonces, a CA that stops and restarts, failing validation, a CA that
//! is down at start (fail closed), corrupted storage.

use std::time::Duration;

use clawveil_acme::{AcmeError, Step};
use clawveil_testkit::free_port;
use rustls_pki_types::ServerName;

use crate::support::*;

#[test]
fn rejected_nonces_still_issue() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 50);
        pebble.start();
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        let (node, started) = Node::start(cfg, ports, fast()).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(60)).await;
        let roots = pebble.root().await;
        assert_eq!(node.get(&roots, "/").await.unwrap().0, 200);
        assert_eq!(node.counter("orders", &["ok"]), 1);
        assert!(
            pebble.log().contains("reject"),
            "Pebble was told to reject nonces"
        );
        node.stop().await;
    });
}

#[test]
fn ca_stopped_during_renewal_keeps_serving_then_recovers_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 0);
        pebble.start();
        let mut cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        cfg.acme.as_mut().unwrap().renew_before = Some(Duration::from_secs(100 * 365 * 86400));
        let opts = clawveil_acme::Options {
            min_renewal_interval: Duration::from_secs(1),
            ..fast()
        };
        let (node, started) = Node::start(cfg, ports, opts).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(30)).await;
        let old_roots = pebble.root().await;

        pebble.stop();
        let failed_before = node.counter("orders", &["failed"]);
        let gauge_before = node.next_renewal();
        eventually(
            Duration::from_secs(30),
            "failed orders counted while the CA is down",
            || node.counter("orders", &["failed"]) >= failed_before + 3,
        )
        .await;
        assert_ne!(
            node.next_renewal(),
            gauge_before,
            "the next-renewal gauge follows the backoff"
        );
        // the old certificate keeps serving
        assert!(node.store.readiness().is_ok());
        let (status, _, _) = node
            .get(&old_roots, "/")
            .await
            .expect("old certificate still served");
        assert_eq!(status, 200);
        let ok_before = node.counter("orders", &["ok"]);

        // Pebble restarted: new root, and it forgot the account; the manager recovers.
        pebble.start();
        eventually(
            Duration::from_secs(40),
            "a certificate from the restarted CA",
            || node.counter("orders", &["ok"]) > ok_before,
        )
        .await;
        let new_roots = pebble.root().await;
        let mut served = false;
        for _ in 0..50 {
            if let Ok((200, _, _)) = node.get(&new_roots, "/").await {
                served = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(served, "the certificate of the restarted CA is served");
        node.stop().await;
    });
}

#[test]
fn failing_validation_is_counted_and_nothing_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        // Pebble validates http-01 on a port nobody listens on.
        let mut pebble = Pebble::prepare(tmp.path(), free_port(), ports.https, 0);
        pebble.start();
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        let (node, started) = Node::start(cfg, ports, fast()).await;
        started.unwrap();
        eventually(Duration::from_secs(30), "two failed orders", || {
            node.counter("orders", &["failed"]) >= 2
        })
        .await;
        assert_eq!(node.counter("orders", &["ok"]), 0);
        assert!(node.store.current().is_none(), "nothing is served");
        assert!(node.store.readiness().is_err());
        let roots = pebble.root().await;
        let err = node
            .get(&roots, "/")
            .await
            .expect_err("no handshake without a certificate");
        assert!(err.contains("TLS handshake"), "{err}");
        let st = clawveil_acme::status(node.config.acme.as_ref().unwrap()).unwrap();
        assert!(st.is_empty(), "nothing stored");
        node.stop().await;

        // The same through `cert renew` (no clawveil running: it answers itself) shows
        // the step, the domain and the CA's problem type.
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        let (logs, _guard) = capture_logs();
        let err = clawveil_acme::renew_now(&cfg, Duration::from_secs(60))
            .await
            .expect_err("validation fails");
        let AcmeError::Order(order) = &err else {
            panic!("{err}")
        };
        assert_eq!(order.step, Step::Validation, "{err}");
        assert_eq!(order.domain.as_deref(), Some(DOMAIN), "{err}");
        let problem = order.problem_type.as_deref().unwrap_or_default();
        assert!(problem.starts_with("urn:ietf:params:acme:error:"), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("validation") && text.contains(DOMAIN) && text.contains(problem),
            "{text}"
        );
        let tokens_hidden = |s: &str| {
            s.match_indices("acme-challenge/")
                .all(|(i, m)| s[i + m.len()..].starts_with("<redacted>"))
        };
        assert!(tokens_hidden(&text), "{text}");
        // the log line names the domain, the step and the problem type, and no token
        let logs = logs.text();
        let line = logs
            .lines()
            .find(|l| l.contains("ACME order failed"))
            .unwrap_or_else(|| panic!("no failure logged: {logs}"));
        for want in ["step=validation", DOMAIN, problem] {
            assert!(line.contains(want), "{want} missing in: {line}");
        }
        assert!(tokens_hidden(&logs), "{logs}");
    });
}

#[test]
fn fail_closed_until_the_ca_comes_up() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 20);
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "tls-alpn-01");
        let (node, started) = Node::start(cfg, ports, fast()).await;
        started.expect("an unreachable CA is not a start error");
        eventually(Duration::from_secs(10), "a failed attempt", || {
            node.counter("orders", &["failed"]) >= 1
        })
        .await;

        assert!(node.store.readiness().is_err());
        let (code, body) = http_get(ports.metrics_addr(), "/readyz").await;
        assert_eq!(code, 503, "{body}");
        // any client, trusting anything: the handshake itself is refused
        let any_root = rcgen::CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let err = https_get(
            ports.https_addr(),
            ServerName::try_from(DOMAIN).unwrap(),
            &[any_root.der().clone()],
            "/",
        )
        .await
        .expect_err("no certificate, no handshake");
        assert!(err.contains("TLS handshake"), "{err}");
        assert!(node.counter("fail_closed", &["no_certificate"]) >= 1);

        pebble.start();
        node.wait_ready(Duration::from_secs(40)).await;
        let roots = pebble.root().await;
        assert_eq!(node.get(&roots, "/").await.unwrap().0, 200);
        let (code, _) = http_get(ports.metrics_addr(), "/readyz").await;
        assert_eq!(code, 200);
        node.stop().await;
    });
}

#[test]
fn corrupted_storage_files() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 0);
        pebble.start();
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        let (node, started) = Node::start(cfg.clone(), ports, fast()).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(30)).await;
        node.stop().await;

        // A damaged certificate: reported, not served, ordered again; no crash.
        let store_dir = tmp.path().join("store");
        std::fs::write(
            store_dir.join("cert.pem"),
            "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let st = clawveil_acme::status(cfg.acme.as_ref().unwrap());
        assert!(st.is_err(), "status names the damaged file");
        let (node, started) = Node::start(cfg.clone(), ports, fast()).await;
        started.unwrap();
        assert_eq!(node.counter("reloads", &["acme", "failed"]), 1);
        assert!(node.store.current().is_none());
        node.wait_ready(Duration::from_secs(30)).await;
        assert_eq!(node.counter("orders", &["ok"]), 1);
        node.stop().await;

        // A damaged account file can never heal by itself: a clear start error.
        std::fs::write(store_dir.join("account.json"), "{\"directory\": 42").unwrap();
        let (node, started) = Node::start(cfg, ports, fast()).await;
        let err = started.expect_err("corrupted account");
        assert!(
            err.to_string().contains("account.json is corrupted"),
            "{err}"
        );
        node.stop().await;
    });
}
