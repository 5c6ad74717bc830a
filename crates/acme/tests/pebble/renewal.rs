//! Renewal: Pebble 2.4 has no ARI and issues five-year certificates, so `renew_before`
//! longer than the lifetime makes every certificate due at once; the minimum renewal
//! interval then paces the renewals. Requests keep flowing, none may fail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;

use crate::support::*;

#[test]
fn renewal_swaps_the_certificate_while_requests_flow() {
    let tmp = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let ports = Ports::new();
        let mut pebble = Pebble::prepare(tmp.path(), ports.http, ports.https, 0);
        pebble.start();
        let mut cfg = config(tmp.path(), ports, upstream().await, &pebble, "http-01");
        cfg.acme.as_mut().unwrap().renew_before = Some(Duration::from_secs(100 * 365 * 86400));
        let opts = clawveil_acme::Options {
            min_renewal_interval: Duration::from_millis(1500),
            ..fast()
        };
        let (node, started) = Node::start(cfg, ports, opts).await;
        started.unwrap();
        node.wait_ready(Duration::from_secs(30)).await;
        let roots = pebble.root().await;

        // One long-lived connection sending requests throughout.
        let stop = Arc::new(AtomicBool::new(false));
        let keepalive_ok = Arc::new(AtomicUsize::new(0));
        let keepalive = {
            let (stop, ok, roots) = (stop.clone(), keepalive_ok.clone(), roots.clone());
            let addr = ports.https_addr();
            tokio::spawn(async move {
                let mut store = rustls::RootCertStore::empty();
                for r in roots {
                    store.add(r).unwrap();
                }
                let tls = rustls::ClientConfig::builder_with_provider(clawveil_tls::provider())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(store)
                    .with_no_client_auth();
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
                    .connect(ServerName::try_from(DOMAIN).unwrap(), tcp)
                    .await
                    .unwrap();
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) {
                    let req = http::Request::get("/keepalive")
                        .header("host", DOMAIN)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let resp = sender.send_request(req).await.expect("keep-alive request");
                    assert_eq!(resp.status(), 200);
                    resp.into_body().collect().await.unwrap();
                    ok.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };

        // New connections (new handshakes) meanwhile; each sees the current certificate.
        let mut leaves = Vec::new();
        let mut failures = Vec::new();
        let mut requests = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            requests += 1;
            match node.get(&roots, "/hello").await {
                Ok((200, body, leaf)) if body == b"ok" => {
                    if leaves.last() != Some(&leaf) {
                        leaves.push(leaf);
                    }
                }
                other => failures.push(format!("{other:?}")),
            }
            if leaves.len() >= 3 && requests >= 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::Relaxed);
        keepalive
            .await
            .expect("the keep-alive connection survived every swap");
        assert!(
            failures.is_empty(),
            "{} of {requests} requests failed: {failures:?}",
            failures.len()
        );
        assert!(
            leaves.len() >= 3,
            "expected at least two renewals, saw {} certificates",
            leaves.len()
        );
        assert!(keepalive_ok.load(Ordering::Relaxed) > 10);
        assert!(node.counter("orders", &["ok"]) >= 3);
        assert!(node.counter("reloads", &["acme", "ok"]) >= 3);
        node.stop().await;
    });
}
