//! What Pebble 2.4 cannot show, against a scripted ACME server: renewal information
//! (RFC 9773) steering the schedule, `replaces` on the renewal order, and a CA that
//! rate-limits with `Retry-After`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::*;

#[derive(Default)]
struct State {
    /// RFC 3339 start and end of the suggested window.
    window: (String, String),
    ari_hits: usize,
    /// Decoded payloads of newOrder requests.
    orders: Vec<serde_json::Value>,
}

struct MockCa {
    base: String,
    tls_cert: PathBuf,
    state: Arc<Mutex<State>>,
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as f64
}

fn reply(
    status: StatusCode,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("replay-nonce", "bm9uY2U");
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(Full::new(body.into())).unwrap()
}

async fn answer(
    base: String,
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    match (&parts.method, path.as_str()) {
        (&Method::GET, "/dir") => {
            let dir = serde_json::json!({
                "newNonce": format!("{base}/nonce"), "newAccount": format!("{base}/acct"),
                "newOrder": format!("{base}/order"), "renewalInfo": format!("{base}/ari"),
            });
            reply(
                StatusCode::OK,
                &[("content-type", "application/json".into())],
                dir.to_string(),
            )
        }
        (_, "/nonce") => reply(StatusCode::OK, &[], ""),
        (&Method::POST, "/acct") => reply(
            StatusCode::CREATED,
            &[
                ("location", format!("{base}/acct/1")),
                ("content-type", "application/json".into()),
            ],
            r#"{"status":"valid"}"#,
        ),
        (&Method::GET, p) if p.starts_with("/ari/") => {
            let mut s = state.lock().unwrap();
            s.ari_hits += 1;
            let info = serde_json::json!({
                "suggestedWindow": {"start": s.window.0, "end": s.window.1},
                "explanationURL": "https://ca.example/ari",
            });
            reply(
                StatusCode::OK,
                &[
                    ("retry-after", "21600".into()),
                    ("content-type", "application/json".into()),
                ],
                info.to_string(),
            )
        }
        (&Method::POST, "/order") => {
            let jws: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let payload = jws["payload"].as_str().unwrap_or_default();
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap_or_default();
            state
                .lock()
                .unwrap()
                .orders
                .push(serde_json::from_slice(&decoded).unwrap_or_default());
            reply(
                StatusCode::TOO_MANY_REQUESTS,
                &[
                    ("retry-after", "3600".into()),
                    ("content-type", "application/problem+json".into()),
                ],
                r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders recently","status":429}"#,
            )
        }
        _ => reply(StatusCode::NOT_FOUND, &[], "not found"),
    }
}

async fn start_mock(dir: &Path, window: (SystemTime, SystemTime)) -> MockCa {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let tls_cert = dir.join("mock-ca.pem");
    std::fs::write(&tls_cert, cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(clawveil_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("https://{addr}");
    let state = Arc::new(Mutex::new(State {
        window: (rfc3339(window.0), rfc3339(window.1)),
        ..State::default()
    }));
    let (b, st) = (base.clone(), state.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, b, st) = (acceptor.clone(), b.clone(), st.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| {
                    let (b, st) = (b.clone(), st.clone());
                    async move { Ok::<_, Infallible>(answer(b, st, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    MockCa {
        base,
        tls_cert,
        state,
    }
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
