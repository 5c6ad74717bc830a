//! Certificates are always verified: a wrong CA, a wrong name or an expired
//! certificate is a 502, counted as `upstream_tls_invalid`, and (as a connect failure)
//! a reason to use the fallback.

use clawveil_config::FallbackCause;

use crate::common::{
    self_signed_ca_leaf, target, Behaviour, Egress, Leaf, Logs, ModelServer, TestCa, CHAT_ANSWER,
};

/// Serves `leaf` and sends one request through a target trusting `trusted`; returns
/// the status and the listener.
async fn through(leaf: &Leaf, trusted: Option<&str>) -> (u16, Egress, ModelServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = ModelServer::start(leaf, Behaviour::default()).await;
    let roots = trusted.map(|pem| {
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, pem).unwrap();
        p
    });
    let egress = Egress::start(vec![target("models", &server.url(), roots.as_deref())]).await;
    let (status, _, _) = egress
        .send("POST", "/models/v1/chat/completions", &[], b"{}")
        .await;
    (status, egress, server)
}

#[tokio::test]
async fn wrong_ca_wrong_name_and_expired_certificates_are_502_and_counted() {
    let (logs, _g) = Logs::capture();
    let ca = TestCa::new("trusted CA");
    let stranger = TestCa::new("stranger CA");
    let cases = [
        (
            "wrong CA",
            stranger.leaf(&["localhost"], 4000),
            Some(ca.pem()),
        ),
        (
            "wrong name",
            ca.leaf(&["other.example"], 4000),
            Some(ca.pem()),
        ),
        ("expired", ca.leaf(&["localhost"], 2001), Some(ca.pem())),
        // No ca_roots: the system's roots do not know a test CA.
        ("system roots only", ca.leaf(&["localhost"], 4000), None),
    ];
    for (what, leaf, trusted) in cases {
        let (status, egress, server) = through(&leaf, trusted.as_deref()).await;
        assert_eq!(status, 502, "{what}");
        assert_eq!(egress.fail_closed("upstream_tls_invalid"), 1, "{what}");
        assert_eq!(egress.upstream_errors("models", "tls"), 1, "{what}");
        assert!(server.seen().is_empty(), "{what}: a request went out");
    }
    let events = logs.wait_events(4).await;
    assert!(
        events
            .iter()
            .all(|e| e["status"] == 502 && e["error"] == "tls" && e["upstream"] == "primary"),
        "{events:?}"
    );

    // The control: the same CA and a good certificate.
    let (status, _, _) = through(&ca.leaf(&["localhost"], 4000), Some(&ca.pem())).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_self_signed_certificate_listed_in_ca_roots_is_trusted_for_its_names_only() {
    let _g = Logs::capture();
    // What `openssl req -x509` makes (the acceptance check's model server).
    let leaf = self_signed_ca_leaf(&["localhost", "127.0.0.1"]);
    let (status, _, server) = through(&leaf, Some(&leaf.cert_pem)).await;
    assert_eq!(status, 200);
    assert_eq!(server.seen().len(), 1);

    let other = self_signed_ca_leaf(&["other.example"]);
    let (status, egress, _) = through(&other, Some(&other.cert_pem)).await;
    assert_eq!(status, 502);
    assert_eq!(egress.fail_closed("upstream_tls_invalid"), 1);
}

#[tokio::test]
async fn a_primary_failing_verification_is_a_connect_failure_for_the_fallback() {
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("trusted CA");
    let stranger = TestCa::new("stranger CA");
    let bad = ModelServer::start(&stranger.leaf(&["localhost"], 4000), Behaviour::default()).await;
    let good = ModelServer::start(&ca.leaf(&["localhost"], 4000), Behaviour::default()).await;
    let roots = ca.write(dir.path(), "ca.pem");
    let mut spec = target("models", &bad.url(), Some(&roots));
    spec.fallback = Some(good.url());
    spec.fallback_on = vec![FallbackCause::Connect];
    let egress = Egress::start(vec![spec]).await;
    let (status, _, body) = egress
        .send("POST", "/models/v1/chat/completions", &[], b"{}")
        .await;
    assert_eq!((status, &body[..]), (200, CHAT_ANSWER.as_bytes()));
    assert_eq!(egress.fail_closed("upstream_tls_invalid"), 1);
    assert_eq!(egress.fallbacks("models", "connect"), 1);
    assert!(bad.seen().is_empty());
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(
        (ev["upstream"].as_str(), ev["fallback"].as_str()),
        (Some("fallback"), Some("connect"))
    );
}

#[tokio::test]
async fn unusable_trust_settings_stop_the_start() {
    let _g = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for (path, want) in [(&empty, "no PEM certificate"), (&missing, "missing.pem")] {
        let spec = target("models", "https://localhost:1", Some(path));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let (_rtx, rrx) = tokio::sync::watch::channel(0);
        let settings = clawveil_egress::EgressSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            forward: clawveil_egress::ForwardPolicy::new(vec![]),
            targets: vec![spec],
            replay_buffer: clawveil_egress::REPLAY_BUFFER,
        };
        let metrics = std::sync::Arc::new(clawveil_telemetry::Metrics::new("t"));
        let e = clawveil_egress::start(settings, metrics, rx, rrx)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("egress.target \"models\"") && e.contains(want),
            "{e}"
        );
        drop(tx);
    }
    let mut plain = target("models", "http://localhost:1", None);
    plain.name = "m".into();
    let metrics = std::sync::Arc::new(clawveil_telemetry::Metrics::new("t"));
    let e = clawveil_egress::Targets::new(&[plain], metrics)
        .unwrap_err()
        .to_string();
    assert!(e.contains("url: must start with https://"), "{e}");
}
