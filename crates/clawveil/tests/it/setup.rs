//! Shared by the request-pipeline tests (dingtalk, methods, host, timeouts): a proxy
//! whose generated configuration the test edits (top-level keys, `[listen]`, routes,
//! secrets in its temp dir, an environment), raw HTTP/1.1 over TLS, and an HTTP/2
//! client (the `h2` crate) for requests curl will not send.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawveil_testkit::{free_port, ProxyProcess, TestCert, TestUpstream};
use hyper::http;
use rustls_pki_types::pem::PemObject;

use crate::common::{bin, stdout, tls_stream, write_config, Harness, Opts};

/// A proxy whose configuration is the harness's, passed through `edit` (which also gets
/// the temp dir, to write secret files into), in front of `upstream_url` (default: the
/// harness's recording upstream), started with `env` added to its environment.
pub fn start(
    o: &Opts,
    upstream_url: Option<&str>,
    env: &[(&str, &str)],
    edit: impl FnOnce(&Path, String) -> String,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let upstream = TestUpstream::start();
    let cert = TestCert::localhost(dir.path());
    let (https, http, metrics) = (free_port(), free_port(), free_port());
    let url = upstream_url.map_or_else(|| upstream.url(), str::to_owned);
    let config = write_config(dir.path(), https, http, metrics, &url, &cert, o);
    let text = edit(dir.path(), std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, text).unwrap();
    let args = ["run", "--config", config.to_str().unwrap()];
    let proxy = ProxyProcess::start_with(&bin(), &args, dir.path(), https, env);
    Harness {
        dir,
        upstream,
        cert,
        https,
        http,
        metrics,
        proxy,
    }
}

/// Top-level keys (they must come before the first table).
pub fn top_level(text: String, keys: &str) -> String {
    format!("{keys}\n{text}")
}

/// Keys added to `[listen]`.
pub fn in_listen(text: String, keys: &str) -> String {
    text.replacen("[listen]\n", &format!("[listen]\n{keys}\n"), 1)
}

/// `clawveil_fail_closed_total{reason}`.
pub fn refused(h: &Harness, reason: &str) -> f64 {
    h.metric(&format!(
        "clawveil_fail_closed_total{{reason=\"{reason}\"}}"
    ))
}

/// Every `clawveil_fail_closed_total` series, as (reason, value), for "nothing else
/// moved" checks.
pub fn all_refusals(h: &Harness) -> Vec<(String, f64)> {
    h.metrics_text()
        .lines()
        .filter_map(|l| l.strip_prefix("clawveil_fail_closed_total{reason=\""))
        .filter_map(|rest| {
            let (reason, value) = rest.split_once("\"} ")?;
            Some((reason.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Asserts that exactly `reason` moved, by one, between two [`all_refusals`] snapshots.
pub fn assert_one_refusal(before: &[(String, f64)], after: &[(String, f64)], reason: &str) {
    let value =
        |set: &[(String, f64)], r: &str| set.iter().find(|(n, _)| n == r).map_or(0.0, |(_, v)| *v);
    for (r, v) in after {
        let want = value(before, r) + if r == reason { 1.0 } else { 0.0 };
        assert_eq!(
            *v, want,
            "fail_closed{{reason={r:?}}}, expecting only {reason:?} +1"
        );
    }
    assert!(
        after.iter().any(|(r, _)| r == reason),
        "{reason} never counted"
    );
}

/// A normal request right after: served by the upstream.
pub fn still_serving(h: &Harness) {
    let n = h.upstream.requests_to("/after-check").len();
    assert_eq!(stdout(&h.curl(&[&h.url("/after-check")])), "ok");
    assert_eq!(h.upstream.requests_to("/after-check").len(), n + 1);
}

/// Writes `request` on a fresh TLS connection (ALPN http/1.1, SNI localhost) and reads
/// until the server closes it (send `Connection: close`) or 10 s pass.
pub fn raw(h: &Harness, request: &[u8]) -> String {
    let mut s = tls_stream(h);
    s.write_all(request).unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(10) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The status code of a raw HTTP/1.1 answer (0 if there was none).
pub fn raw_status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Sends `req` (no body) over a fresh HTTP/2 connection with the `h2` crate: the
/// response head, or why there was none (a stream reset, no answer in 10 s).
pub fn h2_request(h: &Harness, req: http::Request<()>) -> Result<http::Response<()>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_file_iter(&h.cert.cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", h.https))
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        let (client, conn) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.unwrap();
        let (resp, _) = client
            .send_request(req, true)
            .expect("request accepted by h2");
        match tokio::time::timeout(Duration::from_secs(10), resp).await {
            Ok(Ok(r)) => Ok(r.map(|_| ())),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in 10 s".into()),
        }
    })
}

/// The access events (JSON lines with `"target":"access"`) the proxy wrote so far.
pub fn access_events(h: &Harness) -> Vec<serde_json::Value> {
    h.proxy
        .output()
        .lines()
        .filter(|l| l.contains("\"target\":\"access\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The value of the series of `name` whose labels include all of `labels` (`k="v"`,
/// in any order), or 0.
pub fn series(h: &Harness, name: &str, labels: &[&str]) -> f64 {
    h.metrics_text()
        .lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|rest| rest.split_once("} "))
        .find(|(set, _)| labels.iter().all(|l| set.split(',').any(|p| p == *l)))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0.0)
}
