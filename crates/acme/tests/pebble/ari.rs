//! Renewal information (RFC 9773) against the scripted CA: the schedule follows the
//! suggested window, the renewal order names the certificate it `replaces`, and a CA
//! that rate-limits with `Retry-After` is waited for.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;

use crate::mock_ca::{self, MockCa, Script};
use crate::support::*;

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as f64
}

/// A CA that answers renewal information with `window` and rate-limits every order.
async fn start_mock(dir: &Path, window: (SystemTime, SystemTime)) -> MockCa {
    let script = Script {
        window,
        rate_limit: true,
        ..Script::default()
    };
    mock_ca::start(dir, script).await
}

/// Stores a valid certificate for DOMAIN issued by a throwaway CA (so it carries an
/// authority key identifier, which ARI needs); returns its leaf.
fn store_certificate(dir: &Path) -> CertificateDer<'static> {
    use std::os::unix::fs::PermissionsExt;
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![DOMAIN.to_string()]).unwrap();
    params.use_authority_key_identifier_extension = true;
    let leaf = params.signed_by(&key, &ca).unwrap();
    let store = dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        store.join("cert.pem"),
        format!("{}{}", leaf.pem(), ca.pem()),
    )
    .unwrap();
    std::fs::write(store.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(
        store.join("key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    leaf.der().clone()
}

#[test]
fn ari_window_in_the_future_schedules_renewal_inside_it() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let now = SystemTime::now();
        let window = (
            now + Duration::from_secs(10 * 86400),
            now + Duration::from_secs(11 * 86400),
        );
        let ca = start_mock(tmp.path(), window).await;
        store_certificate(tmp.path());
        let ports = Ports::new();
        let cfg = config_for(
            tmp.path(),
            ports,
            upstream().await,
            &format!("{}/dir", ca.base),
            &ca.tls_cert,
            "http-01",
        );
        let (node, started) = Node::start(cfg.clone(), ports, fast()).await;
        started.unwrap();
        assert!(
            node.store.readiness().is_ok(),
            "the stored certificate is served at once"
        );
        eventually(
            Duration::from_secs(10),
            "renewal information fetched",
            || ca.state.lock().unwrap().ari_hits == 1,
        )
        .await;
        eventually(
            Duration::from_secs(5),
            "the gauge moves into the window",
            || {
                let g = node.next_renewal();
                g >= unix(window.0) && g <= unix(window.1)
            },
        )
        .await;
        let st = clawveil_acme::status(cfg.acme.as_ref().unwrap()).unwrap();
        assert_eq!(st[0].next_renewal_reason, "ari-window");
        assert!(
            st[0].next_renewal >= window.0 - Duration::from_secs(1)
                && st[0].next_renewal <= window.1
        );
        // Retry-After (6 h) is respected: no second fetch, and no order yet
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(ca.state.lock().unwrap().ari_hits, 1);
        assert!(ca.state.lock().unwrap().orders.is_empty());
        node.stop().await;
    });
}

#[test]
fn ari_window_passed_orders_with_replaces_and_honours_rate_limit_retry_after() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let now = SystemTime::now();
        let window = (
            now - Duration::from_secs(2 * 86400),
            now - Duration::from_secs(86400),
        );
        let ca = start_mock(tmp.path(), window).await;
        let leaf = store_certificate(tmp.path());
        let ports = Ports::new();
        let cfg = config_for(
            tmp.path(),
            ports,
            upstream().await,
            &format!("{}/dir", ca.base),
            &ca.tls_cert,
            "http-01",
        );
        let (node, started) = Node::start(cfg.clone(), ports, fast()).await;
        started.unwrap();
        eventually(Duration::from_secs(10), "a failed order", || {
            node.counter("orders", &["failed"]) == 1
        })
        .await;

        // the order named the certificate it replaces (RFC 9773 §5)
        let expected = instant_acme::CertificateIdentifier::try_from(&leaf)
            .unwrap()
            .to_string();
        let orders = ca.state.lock().unwrap().orders.clone();
        assert_eq!(
            orders[0]["replaces"],
            serde_json::Value::String(expected),
            "{orders:?}"
        );
        assert_eq!(orders[0]["identifiers"][0]["value"], DOMAIN);

        // rateLimited with Retry-After: 3600 → the next attempt waits an hour, not the backoff
        let soon = unix(SystemTime::now());
        eventually(
            Duration::from_secs(5),
            "the gauge shows the CA's Retry-After",
            || node.next_renewal() >= soon + 3500.0,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            node.counter("orders", &["failed"]),
            1,
            "no retry before Retry-After"
        );
        assert!(
            node.store.readiness().is_ok(),
            "the old certificate keeps serving"
        );
        let st = clawveil_acme::status(cfg.acme.as_ref().unwrap()).unwrap();
        let last = st[0].last_error.clone().unwrap_or_default();
        assert!(
            last.contains("rate limited") && last.contains("rateLimited"),
            "{last}"
        );
        assert_eq!(st[0].failures, 1);
        node.stop().await;
    });
}
