//! Issuance with HTTP-01 and TLS-ALPN-01, served through the real listeners.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clawveil_acme::AcmeError;
use clawveil_config::secret::Secret;
use clawveil_telemetry::Metrics;
use clawveil_tls::{CertStore, Http01Tokens};

use crate::support::*;

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn http01_issues_and_serves_through_the_real_listeners() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 0);
        pebble.start();
        let cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        let (node, started) = Node::start(cfg, ports, fast()).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(30)).await;

        let roots = pebble.root().await;
        let (status, body, _) = node.get(&roots, "/hello").await.unwrap();
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
        let (code, _) = http_get(ports.metrics_addr(), "/readyz").await;
        assert_eq!(code, 200);
        assert_eq!(node.counter("orders", &["ok"]), 1);
        assert_eq!(node.counter("orders", &["failed"]), 0);
        assert!(node.counter("reloads", &["acme", "ok"]) >= 1);
        assert!(node.next_renewal() > now_unix(), "next renewal lies ahead");
        let exposition = node.metrics.encode();
        assert!(exposition
            .contains("clawveil_acme_next_renewal_timestamp_seconds{name=\"bot.clawveil.test\"}"));
        assert!(exposition
            .contains("clawveil_certificate_expiry_timestamp_seconds{name=\"bot.clawveil.test\"}"));

        // storage: directory 0700, every file 0600, the expected files
        let store_dir = tmp.path().join("store");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&store_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let files = modes(&store_dir);
        for name in ["account.json", "cert.pem", "key.pem", "lock"] {
            assert!(
                files.iter().any(|(p, _)| p.ends_with(name)),
                "{name} missing: {files:?}"
            );
        }
        assert!(files.iter().all(|(_, m)| *m == 0o600), "{files:?}");

        // `cert status`
        let st = clawveil_acme::status(node.config.acme.as_ref().unwrap()).unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].names, vec![DOMAIN.to_string()]);
        assert!(st[0].issuer.contains("Pebble"), "{}", st[0].issuer);
        assert_eq!(st[0].problem, None);
        assert!(st[0].next_renewal > SystemTime::now() && st[0].next_renewal < st[0].not_after);
        assert_eq!(
            st[0].next_renewal_reason, "renew-before",
            "Pebble 2.4 offers no ARI"
        );
        let text = st[0].to_string();
        assert!(
            text.contains("bot.clawveil.test") && text.contains("renewal"),
            "{text}"
        );
        node.stop().await;
    });
}

#[test]
fn tls_alpn01_sealed_storage_lock_wrong_key_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 0);
        pebble.start();
        let mut cfg = config(tmp.path(), ports, upstream().await, &pebble, "tls-alpn-01");
        cfg.acme.as_mut().unwrap().storage_key = Some(Secret::literal(STORAGE_KEY));
        let acme = cfg.acme.clone().unwrap();
        let (node, started) = Node::start(cfg.clone(), ports, fast()).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(30)).await;
        let roots = pebble.root().await;
        let (status, body, leaf) = node.get(&roots, "/hello").await.unwrap();
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));

        // sealed: no plaintext key anywhere, and still 0600
        let store_dir = tmp.path().join("store");
        for (path, mode) in modes(&store_dir) {
            assert_eq!(mode, 0o600, "{}", path.display());
            let data = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&data).contains("PRIVATE KEY"),
                "{} holds a plaintext key",
                path.display()
            );
        }

        // a second manager on the same storage is refused
        let metrics = std::sync::Arc::new(Metrics::new("test"));
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let second = clawveil_acme::start_with(
            &acme,
            CertStore::new(metrics.clone()),
            Http01Tokens::default(),
            metrics,
            rx,
            fast(),
        )
        .await;
        let err = second.expect_err("the lock is held");
        assert!(matches!(err, AcmeError::Locked { .. }), "{err}");
        assert!(
            err.to_string().contains("another clawveil process holds"),
            "{err}"
        );
        node.stop().await;

        // a wrong storage key is a clear error, not garbage
        let mut wrong = acme.clone();
        wrong.storage_key = Some(Secret::literal(STORAGE_KEY.replace('0', "f")));
        let metrics = std::sync::Arc::new(Metrics::new("test"));
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let store = CertStore::new(metrics.clone());
        let err = clawveil_acme::start_with(
            &wrong,
            store.clone(),
            Http01Tokens::default(),
            metrics,
            rx,
            fast(),
        )
        .await
        .expect_err("wrong key");
        assert!(
            err.to_string()
                .contains("storage_key does not match the sealed files in"),
            "{err}"
        );
        assert!(store.current().is_none());

        // restart with the right key: the stored certificate is served at once, no new order
        let (node, started) = Node::start(cfg, ports, fast()).await;
        started.unwrap();
        assert!(
            node.store.readiness().is_ok(),
            "served before start() returned"
        );
        let (status, _, leaf_again) = node.get(&roots, "/hello").await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(leaf, leaf_again, "the same certificate");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            node.counter("orders", &["ok"]) + node.counter("orders", &["failed"]),
            0
        );
        node.stop().await;
    });
}
