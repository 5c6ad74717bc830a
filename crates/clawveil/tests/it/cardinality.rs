//! Bounded cardinality by construction: 10,000 requests with random paths, query
//! strings, methods, `Host` headers (or none), TLS junk, and model requests with random
//! `model` values through the egress listener, add no `clawveil_*` series after the
//! first 100 (one of each kind), and no random value reaches `/metrics`.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clawveil_testkit::{free_port, wait_port, TestCert};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Harness, Opts};

const TOTAL: usize = 10_000;
const FIRST: usize = 100;
const WORKERS: usize = 24;
const LISTED: [&str; 2] = ["qwen-max", "qwen-turbo"];

/// What a request is; the labels it may produce depend on this alone, never on the
/// random parts, so that the first `FIRST` requests (every kind in turn) produce every
/// series the rest can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// h2 GET of a random path and query: route `default`.
    Get,
    /// h2 POST under `/api/` with a random path, query and body: route `api`.
    PostApi,
    /// h2, a random extension method: `OTHER`.
    OddMethod,
    /// HTTP/1.1 without `Host`.
    NoHost,
    /// HTTP/1.1 with a random `Host`.
    RandomHost,
    /// Random bytes instead of a TLS handshake.
    TlsJunk,
    /// Egress: a random `model` (label `other`).
    RandomModel,
    /// Egress: a listed model, a random path under the target.
    Listed0,
    Listed1,
    /// Egress: a random target name (no such target).
    NoTarget,
}

const KINDS: [Kind; 10] = [
    Kind::Get,
    Kind::PostApi,
    Kind::OddMethod,
    Kind::NoHost,
    Kind::RandomHost,
    Kind::TlsJunk,
    Kind::RandomModel,
    Kind::Listed0,
    Kind::Listed1,
    Kind::NoTarget,
];

/// splitmix64: reproducible random values without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `len` characters that are unreserved in a URI path, query and token, and make
    /// no dot segment: `[A-Za-z0-9_~-]`.
    fn word(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~-";
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len())] as char)
            .collect()
    }

    /// A value recorded in `planted`, to look for in `/metrics` afterwards: at least 12
    /// random characters, so that none is in the text by chance.
    fn plant(&mut self, planted: &Mutex<Vec<String>>, len: usize) -> String {
        let v = format!("r{}", self.word(len.max(12)));
        planted.lock().unwrap().push(v.clone());
        v
    }
}

#[test]
fn random_paths_hosts_and_models_add_no_series() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let model_dir = tempfile::tempdir().unwrap();
    let model_cert = TestCert::localhost(model_dir.path());
    let model_port = rt.block_on(model_server(&model_cert));
    let egress = free_port();
    let extra = format!(
        "level = \"warn\"\n\
         [[route]]\nname = \"api\"\npath_prefix = \"/api/\"\n\
         [[route]]\nname = \"default\"\npath_prefix = \"/\"\n\
         [egress]\nlisten = \"127.0.0.1:{egress}\"\n\
         [[egress.target]]\nname = \"models\"\nurl = \"https://localhost:{model_port}\"\n\
         models = [\"{}\", \"{}\"]\nca_roots = \"{}\"\n",
        LISTED[0],
        LISTED[1],
        model_cert.cert.display()
    );
    let h = Harness::with(Opts {
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    });
    assert!(
        wait_port(egress, Duration::from_secs(20)),
        "{}",
        h.proxy.output()
    );
    let client = Arc::new(Client::new(&h, egress));
    let planted = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));

    // Every kind in turn, then count.
    rt.block_on(async {
        let mut w = Worker::new(client.clone(), planted.clone(), seen.clone(), 1).await;
        for i in 0..FIRST {
            w.run(KINDS[i % KINDS.len()]).await;
        }
    });
    let first = series(&h.metrics_text());

    // The rest at random, by concurrent workers on kept-alive connections.
    let next = Arc::new(AtomicUsize::new(FIRST));
    rt.block_on(async {
        let mut tasks = Vec::new();
        for seed in 0..WORKERS as u64 {
            let (client, planted, seen, next) =
                (client.clone(), planted.clone(), seen.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut w = Worker::new(client, planted, seen, seed + 2).await;
                while next.fetch_add(1, Ordering::Relaxed) < TOTAL {
                    let kind = KINDS[w.rng.below(KINDS.len())];
                    w.run(kind).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let text = h.metrics_text();
    let all = series(&text);
    let seen = seen.lock().unwrap().clone();
    let sent: usize = client.sent.load(Ordering::Relaxed);
    assert_eq!(sent, TOTAL, "requests sent");
    assert_eq!(
        first.len(),
        all.len(),
        "series added after the first {FIRST} requests: {:#?}\n(kinds and statuses seen: {seen:?})",
        all.difference(&first).collect::<Vec<_>>()
    );
    assert_eq!(first, all);
    // What each kind got, so that a kind that stopped reaching its code path shows.
    for (kind, status) in &seen {
        let ok = match kind {
            Kind::Get | Kind::PostApi | Kind::OddMethod | Kind::RandomModel => *status == 200,
            Kind::Listed0 | Kind::Listed1 => *status == 200,
            Kind::NoHost | Kind::RandomHost | Kind::NoTarget => (400..500).contains(status),
            Kind::TlsJunk => *status == 0,
        };
        assert!(ok, "{kind:?} got {status}; all: {seen:?}");
    }
    let planted = planted.lock().unwrap();
    assert!(planted.len() > TOTAL, "{}", planted.len());
    for v in planted.iter() {
        assert!(!text.contains(v.as_str()), "{v:?} in /metrics:\n{text}");
    }
    for model in LISTED {
        assert!(
            text.contains(&format!("clawveil_model_request_duration_seconds_count{{model=\"{model}\",target=\"models\"}}")),
            "{text}"
        );
    }
    assert!(text.contains("model=\"other\""), "{text}");
    assert!(
        text.contains("route=\"api\"") && text.contains("method=\"OTHER\""),
        "{text}"
    );
    eprintln!(
        "{TOTAL} requests, {} clawveil_* series, in {:?}; kinds and statuses: {seen:?}",
        all.len(),
        started.elapsed()
    );
}

/// The `clawveil_*` series of a scrape: every sample line without its value.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with("clawveil_"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s).to_owned())
        .collect()
}

/// How to reach clawveil: its https listener (TLS, h2 or HTTP/1.1) and egress listener.
struct Client {
    https: u16,
    egress: u16,
    /// ALPN h2 only, and http/1.1 only.
    tls_h2: tokio_rustls::TlsConnector,
    tls_h1: tokio_rustls::TlsConnector,
    sent: AtomicUsize,
}

impl Client {
    fn new(h: &Harness, egress: u16) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&h.cert.cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = |alpn: &[u8]| {
            let mut cfg = cfg.clone();
            cfg.alpn_protocols = vec![alpn.to_vec()];
            tokio_rustls::TlsConnector::from(Arc::new(cfg))
        };
        Client {
            https: h.https,
            egress,
            tls_h2: connector(b"h2"),
            tls_h1: connector(b"http/1.1"),
            sent: AtomicUsize::new(0),
        }
    }

    async fn tls(
        &self,
        connector: &tokio_rustls::TlsConnector,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.https))
            .await
            .unwrap();
        connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap()
    }

    async fn h2(&self) -> http2::SendRequest<Full<Bytes>> {
        let tls = self.tls(&self.tls_h2).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        send
    }

    /// HTTP/1.1 to the egress listener (plain) or the https listener.
    async fn h1(&self, egress: bool) -> http1::SendRequest<Full<Bytes>> {
        if egress {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.egress))
                .await
                .unwrap();
            let (send, conn) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
            tokio::spawn(conn);
            send
        } else {
            let tls = self.tls(&self.tls_h1).await;
            let (send, conn) = http1::handshake(TokioIo::new(tls)).await.unwrap();
            tokio::spawn(conn);
            send
        }
    }
}

/// One client of each sort, reconnected when the server closes its connection.
struct Worker {
    client: Arc<Client>,
    planted: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<BTreeSet<(Kind, u16)>>>,
    rng: Rng,
    h2: http2::SendRequest<Full<Bytes>>,
    h1: Option<http1::SendRequest<Full<Bytes>>>,
    egress: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Worker {
    async fn new(
        client: Arc<Client>,
        planted: Arc<Mutex<Vec<String>>>,
        seen: Arc<Mutex<BTreeSet<(Kind, u16)>>>,
        seed: u64,
    ) -> Worker {
        let h2 = client.h2().await;
        Worker {
            client,
            planted,
            seen,
            rng: Rng(seed),
            h2,
            h1: None,
            egress: None,
        }
    }

    fn plant(&mut self, len: usize) -> String {
        self.rng.plant(&self.planted, len)
    }

    fn path(&mut self, prefix: &str) -> String {
        let mut p = prefix.to_owned();
        for i in 0..1 + self.rng.below(4) {
            if i > 0 {
                p.push('/');
            }
            let n = 4 + self.rng.below(16);
            p.push_str(&self.plant(n));
        }
        if self.rng.below(2) == 0 {
            let (k, v) = (self.plant(6), self.plant(12));
            p.push_str(&format!("?{k}={v}&x={}", self.rng.word(8)));
        }
        p
    }

    async fn run(&mut self, kind: Kind) {
        let https = format!("https://localhost:{}", self.client.https);
        let status = match kind {
            Kind::Get => {
                let uri = format!("{https}{}", self.path("/"));
                self.send_h2(Method::GET, &uri, Bytes::new()).await
            }
            Kind::PostApi => {
                let uri = format!("{https}{}", self.path("/api/"));
                let body = Bytes::from(self.plant(64));
                self.send_h2(Method::POST, &uri, body).await
            }
            Kind::OddMethod => {
                let m = format!(
                    "X{}",
                    self.rng.word(6).to_ascii_uppercase().replace('~', "_")
                );
                let uri = format!("{https}{}", self.path("/"));
                self.send_h2(
                    Method::from_bytes(m.as_bytes()).unwrap(),
                    &uri,
                    Bytes::new(),
                )
                .await
            }
            Kind::NoHost => {
                let path = self.path("/");
                self.send_h1(false, Method::GET, &path, None, Bytes::new())
                    .await
            }
            Kind::RandomHost => {
                let (path, host) = (self.path("/"), format!("h{}.example", self.plant(10)));
                self.send_h1(false, Method::GET, &path, Some(host), Bytes::new())
                    .await
            }
            Kind::TlsJunk => {
                self.tls_junk().await;
                0
            }
            Kind::RandomModel | Kind::Listed0 | Kind::Listed1 | Kind::NoTarget => {
                let model = match kind {
                    Kind::Listed0 => LISTED[0].to_owned(),
                    Kind::Listed1 => LISTED[1].to_owned(),
                    _ => self.plant(12),
                };
                let path = match kind {
                    Kind::Listed0 | Kind::Listed1 => self.path("/models/v1/"),
                    Kind::NoTarget => format!("/{}/v1/chat/completions", self.plant(8)),
                    _ => "/models/v1/chat/completions".to_owned(),
                };
                let body = format!(
                    "{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
                    self.plant(16)
                );
                let host = format!("127.0.0.1:{}", self.client.egress);
                self.send_h1(true, Method::POST, &path, Some(host), Bytes::from(body))
                    .await
            }
        };
        self.client.sent.fetch_add(1, Ordering::Relaxed);
        self.seen.lock().unwrap().insert((kind, status));
    }

    async fn send_h2(&mut self, method: Method, uri: &str, body: Bytes) -> u16 {
        for _ in 0..3 {
            if self.h2.ready().await.is_err() {
                self.h2 = self.client.h2().await;
                continue;
            }
            let req = Request::builder()
                .method(method.clone())
                .uri(uri)
                .body(Full::new(body.clone()))
                .unwrap();
            if let Ok(resp) = self.h2.send_request(req).await {
                return finish(resp).await;
            }
        }
        panic!("{method} {uri}: no answer over h2");
    }

    async fn send_h1(
        &mut self,
        egress: bool,
        method: Method,
        path: &str,
        host: Option<String>,
        body: Bytes,
    ) -> u16 {
        for _ in 0..3 {
            let slot = if egress {
                &mut self.egress
            } else {
                &mut self.h1
            };
            let usable = match slot.as_mut() {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            if !usable {
                *slot = Some(self.client.h1(egress).await);
            }
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header("content-type", "application/json");
            if let Some(host) = &host {
                req = req.header("host", host);
            }
            let req = req.body(Full::new(body.clone())).unwrap();
            if let Ok(resp) = slot.as_mut().unwrap().send_request(req).await {
                return finish(resp).await;
            }
            *slot = None;
        }
        panic!("{method} {path}: no answer over HTTP/1.1");
    }

    /// Random bytes (not a ClientHello, not plaintext HTTP) on the https port.
    async fn tls_junk(&mut self) {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.client.https))
            .await
            .unwrap();
        let mut junk = vec![0u8; 16 + self.rng.below(200)];
        for b in junk.iter_mut().skip(1) {
            *b = self.rng.next() as u8;
        }
        let _ = tcp.write_all(&junk).await;
        let _ = tcp.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
    }
}

async fn finish(resp: hyper::Response<hyper::body::Incoming>) -> u16 {
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    status
}

/// A stand-in model gateway: HTTPS (h2 and HTTP/1.1) on a loopback port, answering
/// every request with a small JSON document after reading its body.
async fn model_server(cert: &TestCert) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        let answer = hyper::Response::builder()
                            .status(StatusCode::OK)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(
                                br#"{"id":"cmpl-1","choices":[]}"#,
                            )))
                            .unwrap();
                        Ok::<_, Infallible>(answer)
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}
