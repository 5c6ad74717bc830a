//! Certificate profiles against the scripted CA: the configured profile is checked
//! against the directory's `meta.profiles` at start, sent on the first order and on
//! every renewal, and shown by `cert status`.

use std::time::{Duration, SystemTime};

use clawveil_acme::AcmeError;

use crate::mock_ca::{self, Script};
use crate::support::*;

const PROFILES: &[(&str, &str)] = &[
    ("classic", "The same profile you're accustomed to"),
    (
        "shortlived",
        "A short-lived certificate profile (160 hours)",
    ),
    ("tlsserver", "A modern profile for TLS server certificates"),
];

#[test]
fn the_profile_is_sent_on_the_first_order_and_on_renewals() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let now = SystemTime::now();
        // a renewal window that has passed: every certificate is due (paced below)
        let ca = mock_ca::start(
            tmp.path(),
            Script {
                window: (
                    now - Duration::from_secs(7200),
                    now - Duration::from_secs(3600),
                ),
                profiles: PROFILES.to_vec(),
                http_port: ports.http,
                ..Script::default()
            },
        )
        .await;
        let mut cfg = config_for(
            tmp.path(),
            ports,
            upstream().await,
            &ca.directory(),
            &ca.tls_cert,
            "http-01",
        );
        cfg.acme.as_mut().unwrap().profile = Some("shortlived".into());
        let opts = clawveil_acme::Options {
            min_renewal_interval: Duration::from_millis(800),
            ..fast()
        };
        let (node, started) = Node::start(cfg.clone(), ports, opts).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(20)).await;
        let (status, body, _) = node
            .get(std::slice::from_ref(&ca.root), "/hello")
            .await
            .unwrap();
        assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
        eventually(Duration::from_secs(20), "two renewals", || {
            node.counter("orders", &["ok"]) >= 3
        })
        .await;
        let orders = ca.state.lock().unwrap().orders.clone();
        assert!(orders.len() >= 3, "{orders:?}");
        for (i, o) in orders.iter().enumerate() {
            assert_eq!(o["profile"], "shortlived", "order {i}: {o}");
        }
        assert!(orders[0].get("replaces").is_none(), "{}", orders[0]);
        assert!(
            orders[1]["replaces"].is_string(),
            "a renewal: {}",
            orders[1]
        );

        // `cert status` shows it (read once renewals stopped)
        node.stop().await;
        let st = clawveil_acme::status(cfg.acme.as_ref().unwrap()).unwrap();
        assert_eq!(st[0].profile.as_deref(), Some("shortlived"));
        assert!(
            st[0].to_string().contains("profile     shortlived"),
            "{}",
            st[0]
        );
        let life = st[0].not_after.duration_since(st[0].not_before).unwrap();
        assert!(life > Duration::from_secs(159 * 3600), "{life:?}");
    });
}

#[test]
fn a_profile_the_ca_does_not_offer_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none");
    std::fs::create_dir_all(&none).unwrap();
    runtime().block_on(async {
        let offering = mock_ca::start(
            tmp.path(),
            Script {
                profiles: vec![PROFILES[0], PROFILES[2]],
                ..Script::default()
            },
        )
        .await;
        for (ca, want) in [
            (
                &offering,
                "is not offered by {dir}; it offers \"classic\", \"tlsserver\"",
            ),
            (
                &mock_ca::start(&none, Script::default()).await,
                "is not offered by {dir}; the CA advertises no profiles (no meta.profiles in its directory): remove acme.profile",
            ),
        ] {
            let ports = Ports::new();
            let mut cfg = config_for(
                tmp.path(),
                ports,
                upstream().await,
                &ca.directory(),
                &ca.tls_cert,
                "http-01",
            );
            cfg.acme.as_mut().unwrap().profile = Some("shortlived".into());
            let (node, started) = Node::start(cfg, ports, fast()).await;
            let err = started.expect_err("refused at start");
            assert!(matches!(err, AcmeError::Profile(_)), "{err:?}");
            let text = err.to_string();
            let want = format!(
                "acme.profile = \"shortlived\" {}",
                want.replace("{dir}", &ca.directory())
            );
            assert_eq!(text, want);
            assert!(node.acme.is_none());
            assert!(ca.state.lock().unwrap().orders.is_empty(), "no order placed");
            node.stop().await;
        }
    });
}
