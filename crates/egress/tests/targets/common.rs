//! Model targets end to end on loopback: a test CA made here, HTTPS model servers that
//! record what they were sent, the egress listener from `clawveil_egress::start`, a
//! plain HTTP client for the bot, and the access events captured per test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clawveil_config::{EgressTarget, FallbackCause, Secret};
use clawveil_egress::{start, EgressSettings, ForwardPolicy, Running, REPLAY_BUFFER};
use clawveil_telemetry::Metrics;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing_subscriber::fmt::MakeWriter;

pub const MODEL_KEY: &str = "sk-injected-canary-7731";
pub const CHAT_ANSWER: &str = r#"{"id":"cmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello from the model"},"finish_reason":"stop"}]}"#;

// ---------------------------------------------------------------------------------
// Certificates

/// A CA made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate chain and key, as PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names`, valid from 2000 until `not_after_year`-01-01.
    pub fn leaf(&self, names: &[&str], not_after_year: i32) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after_year, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate as a `ca_roots` file.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.pem()).unwrap();
        path
    }
}

/// What `openssl req -x509` makes (and the acceptance checks use): one self-signed
/// certificate, marked as a CA, served by the server itself.
pub fn self_signed_ca_leaf(names: &[&str]) -> Leaf {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

// ---------------------------------------------------------------------------------
// The model server

/// One request as the model server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// Every header, as one text (to search for what must not be there).
    pub fn all_headers(&self) -> String {
        self.headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect()
    }
}

/// How a model server answers.
#[derive(Clone)]
pub struct Behaviour {
    /// Answer every request with this status (and a short body) instead.
    pub status: Option<u16>,
    /// Wait this long before the response head.
    pub delay: Duration,
    /// ALPN protocols offered (h2 and http/1.1 by default).
    pub alpn: Vec<Vec<u8>>,
    /// When set, a streamed answer sends one event, then one more per permit.
    pub gate: Option<Arc<Semaphore>>,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            status: None,
            delay: Duration::ZERO,
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            gate: None,
        }
    }
}

/// An OpenAI-style HTTPS server on a loopback port:
/// `POST .../chat/completions` answers [`CHAT_ANSWER`], or five SSE events when the
/// body asks for `"stream": true`; `.../echo` sends the body back; anything else `ok`.
pub struct ModelServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

pub type ServerBody = BoxBody<Bytes, Infallible>;

impl ModelServer {
    pub async fn start(leaf: &Leaf, behaviour: Behaviour) -> ModelServer {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = behaviour.alpn.clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let record = record.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req| {
                        let record = record.clone();
                        let behaviour = behaviour.clone();
                        async move { Ok::<_, Infallible>(answer(req, record, behaviour).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        ModelServer { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    req: Request<Incoming>,
    record: Arc<Mutex<Vec<Seen>>>,
    behaviour: Behaviour,
) -> Response<ServerBody> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    record.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        version: parts.version,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    tokio::time::sleep(behaviour.delay).await;
    if let Some(status) = behaviour.status {
        return full(
            status,
            "text/plain",
            Bytes::from(format!("status {status} from the model server")),
        );
    }
    if path.contains("/echo") {
        return full(200, "application/octet-stream", body);
    }
    if !path.contains("/chat/completions") {
        return full(200, "text/plain", Bytes::from_static(b"ok"));
    }
    let wants_stream = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["stream"].as_bool())
        .unwrap_or(false);
    if !wants_stream {
        return full(
            200,
            "application/json",
            Bytes::from_static(CHAT_ANSWER.as_bytes()),
        );
    }
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        for i in 0..5 {
            if i > 0 {
                if let Some(gate) = &behaviour.gate {
                    gate.acquire().await.unwrap().forget();
                }
            }
            let ev =
                format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"part{i} \"}}}}]}}\n\n");
            if tx.send(Bytes::from(ev)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
    });
    let mut resp = Response::new(ChannelBody(rx).boxed());
    resp.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    resp
}

/// A body fed by a channel, one frame per message, as they come.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

fn full(status: u16, content_type: &str, body: Bytes) -> Response<ServerBody> {
    let mut resp = Response::new(Full::new(body).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp.headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    resp
}

/// A loopback port nothing listens on.
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------
// Targets and the egress listener

/// A target for `url` trusting `ca_roots`, injecting [`MODEL_KEY`] as a bearer token,
/// with `qwen-max` on its model list.
pub fn target(name: &str, url: &str, ca_roots: Option<&Path>) -> EgressTarget {
    EgressTarget {
        name: name.into(),
        url: url.into(),
        fallback: None,
        fallback_on: vec![FallbackCause::Connect, FallbackCause::Timeout],
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(10),
        models: vec!["qwen-max".into()],
        inject_headers: vec![(
            "Authorization".into(),
            Secret::literal(format!("Bearer {MODEL_KEY}")),
        )],
        client_token: None,
        ca_roots: ca_roots.map(Path::to_owned),
    }
}

pub struct Egress {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Sender<bool>,
    pub reload: watch::Sender<u64>,
    pub running: Option<Running>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Egress {
    pub async fn start(targets: Vec<EgressTarget>) -> Egress {
        Egress::start_with(targets, REPLAY_BUFFER).await
    }

    pub async fn start_with(targets: Vec<EgressTarget>, replay_buffer: usize) -> Egress {
        let metrics = Arc::new(Metrics::new("0.0.0-test"));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (reload, reload_rx) = watch::channel(0u64);
        let settings = EgressSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            forward: ForwardPolicy::new(vec!["api.dingtalk.com".into()]),
            targets,
            replay_buffer,
        };
        let running = start(settings, metrics.clone(), shutdown_rx, reload_rx)
            .await
            .unwrap();
        Egress {
            addr: running.local_addr(),
            metrics,
            shutdown,
            reload,
            running: Some(running),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request to the listener, origin-form; returns the status, headers and body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, HeaderMap, Bytes) {
        let resp = self.request(method, path, headers, body).await;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status.as_u16(), parts.headers, body)
    }

    /// The response with its body still to be read.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response<Incoming> {
        let mut req = Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
            .await
            .expect("the egress listener answers")
            .unwrap()
    }

    pub fn fail_closed(&self, reason: &str) -> u64 {
        self.metrics.fail_closed.with_label_values(&[reason]).get()
    }

    pub fn fallbacks(&self, target: &str, cause: &str) -> u64 {
        self.metrics
            .fallbacks
            .with_label_values(&[target, cause])
            .get()
    }

    pub fn upstream_errors(&self, upstream: &str, class: &str) -> u64 {
        self.metrics
            .upstream_errors
            .with_label_values(&[upstream, class])
            .get()
    }

    pub fn timeouts(&self, upstream: &str) -> u64 {
        self.metrics
            .upstream_timeouts
            .with_label_values(&[upstream])
            .get()
    }

    /// (count, sum) of a model histogram (`duration` or `first_byte`).
    pub fn model_hist(&self, which: &str, target: &str, model: &str) -> (u64, f64) {
        let h = match which {
            "duration" => &self.metrics.model_duration,
            _ => &self.metrics.model_first_byte,
        };
        let h = h.with_label_values(&[target, model]);
        (h.get_sample_count(), h.get_sample_sum())
    }

    pub fn requests(&self, route: &str, method: &str, class: &str) -> u64 {
        self.metrics
            .requests
            .with_label_values(&["egress", route, method, class])
            .get()
    }

    /// Stops the listener and waits for the drain.
    pub async fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(r) = self.running.take() {
            tokio::time::timeout(Duration::from_secs(10), r.stopped())
                .await
                .expect("the egress listener drains");
        }
    }
}

/// Sends raw bytes to `addr` and reads the response head and `Content-Length` body.
pub async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer");
    let text = String::from_utf8_lossy(&buf).into_owned();
    (text[9..12].parse().unwrap(), text)
}

/// Runs curl (off the runtime thread) and returns (exit code, stdout).
pub async fn curl(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--noproxy", ""])
            .args(&args)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("https_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("ALL_PROXY")
            .output()
            .expect("curl is installed")
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

// ---------------------------------------------------------------------------------
// Logs

/// The log lines written while the guard lives (tests run on a current-thread
/// runtime, so every task of the test logs here).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut *self.0.lock().unwrap(), buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The access events of target requests.
    pub fn target_events(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["target"] == "access" && v["listener"] == "egress" && v["route"] != "forward"
            })
            .collect()
    }

    /// Waits (a few seconds at most) until `n` target events have been written.
    pub async fn wait_events(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..500 {
            let events = self.target_events();
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} target events, got:\n{}", self.text());
    }

    /// Asserts that none of `secrets` was logged.
    pub fn assert_clean(&self, secrets: &[&str]) {
        let text = self.text();
        for s in secrets {
            assert!(!text.contains(s), "{s:?} was logged:\n{text}");
        }
    }
}
