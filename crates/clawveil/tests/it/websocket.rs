//! WebSocket pass-through: a real WebSocket server (tokio-tungstenite, plain TCP) behind
//! the real binary, driven by a tokio-tungstenite client over a tokio-rustls stream.
//! HTTP/2 (RFC 8441) is in `websocket_h2.rs`; the harness here serves both.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawveil_testkit::{free_port, ProxyProcess, TestCert};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::common::{bin, metric_value, write_config, Opts};

/// What the test upstream does with a connection.
#[derive(Clone, Copy)]
pub enum Upstream {
    /// A WebSocket server: echoes text and binary messages; answers the text "bye" by
    /// starting the closing handshake itself, and the text "drop" by closing the TCP
    /// connection without a Close frame.
    Echo,
    /// Answers any request with a plain `403 Forbidden` (never 101).
    Refuse,
}

/// An opening request as the upstream saw it: path, headers (names lowercase).
pub type Opening = (String, Vec<(String, String)>);

/// What the upstream saw.
#[derive(Default)]
pub struct Seen {
    /// TCP connections accepted.
    pub accepted: AtomicUsize,
    /// Close frames received from the proxy's side.
    pub closes: AtomicUsize,
    /// The opening requests.
    pub openings: Mutex<Vec<Opening>>,
}

/// A test upstream on 127.0.0.1:0, on a runtime of its own; stops when dropped.
pub struct WsUpstream {
    pub addr: std::net::SocketAddr,
    pub seen: Arc<Seen>,
    _rt: tokio::runtime::Runtime,
}

impl WsUpstream {
    pub fn start(kind: Upstream) -> WsUpstream {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let s = seen.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.accepted.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                tokio::spawn(async move {
                    match kind {
                        Upstream::Echo => echo(stream, s).await,
                        Upstream::Refuse => refuse(stream).await,
                    }
                });
            }
        });
        WsUpstream {
            addr,
            seen,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.seen.accepted.load(Ordering::SeqCst)
    }
}

// The callback's error type is tungstenite's (an HTTP response), not ours to shrink.
#[allow(clippy::result_large_err)]
async fn echo(stream: TcpStream, seen: Arc<Seen>) {
    let s = seen.clone();
    let record = move |req: &Request, resp: Response| {
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        s.openings
            .lock()
            .unwrap()
            .push((req.uri().path().to_owned(), headers));
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
        return;
    };
    while let Some(msg) = ws.next().await {
        let sent = match msg {
            Ok(Message::Text(t)) if t.as_str() == "bye" => {
                ws.close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "bye".into(),
                }))
                .await
            }
            Ok(Message::Text(t)) if t.as_str() == "drop" => break,
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).await,
            Ok(Message::Close(_)) => {
                // tungstenite answers the close itself; the loop ends after it.
                seen.closes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(_) => break,
        };
        if sent.is_err() {
            break;
        }
    }
    // Dropped here: the server closes the TCP connection (RFC 6455 §7.1.1).
}

async fn refuse(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = "no websocket here";
    let resp = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The real binary in front of a [`WsUpstream`].
pub struct WsProxy {
    /// Holds the config and the certificate while the proxy runs.
    pub _dir: tempfile::TempDir,
    pub cert: TestCert,
    pub https: u16,
    pub metrics: u16,
    pub proxy: ProxyProcess,
}

impl WsProxy {
    /// `limits` goes under `[limits]`, `routes` (`[[route]]` tables) after `[log]`.
    pub fn start(upstream: &WsUpstream, limits: &'static str, routes: &'static str) -> WsProxy {
        let dir = tempfile::tempdir().unwrap();
        let cert = TestCert::localhost(dir.path());
        let (https, http, metrics) = (free_port(), free_port(), free_port());
        let opts = Opts {
            limits,
            extra: routes,
            ..Opts::default()
        };
        let config = write_config(
            dir.path(),
            https,
            http,
            metrics,
            &upstream.url(),
            &cert,
            &opts,
        );
        let proxy = ProxyProcess::start(&bin(), &config, dir.path(), https);
        WsProxy {
            _dir: dir,
            cert,
            https,
            metrics,
            proxy,
        }
    }

    /// A TLS connection to the https listener offering `alpn`, trusting the test cert.
    pub async fn tls(&self, alpn: &[u8]) -> TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_file_iter(&self.cert.cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        let tcp = TcpStream::connect(("127.0.0.1", self.https)).await.unwrap();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap()
    }

    /// `wss://localhost:<https><path>` over HTTP/1.1, with extra request headers.
    pub async fn ws(
        &self,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<WebSocketStream<TlsStream<TcpStream>>, WsError> {
        let mut req = format!("wss://localhost:{}{path}", self.https)
            .into_client_request()
            .unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(*k, v.parse().unwrap());
        }
        let tls = self.tls(b"http/1.1").await;
        let (ws, resp) = tokio_tungstenite::client_async(req, tls).await?;
        assert_eq!(resp.status(), 101);
        Ok(ws)
    }

    /// The value of one series on `/metrics` (0 when absent).
    pub fn metric(&self, series: &str) -> f64 {
        let out = std::process::Command::new("curl")
            .args(["-sS", &format!("http://127.0.0.1:{}/metrics", self.metrics)])
            .output()
            .unwrap();
        metric_value(&String::from_utf8_lossy(&out.stdout), series)
    }

    /// The access events written so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.proxy
            .output()
            .lines()
            .filter(|l| l.contains("\"target\":\"access\""))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (up to 5 s) for the access event of `path`.
    pub async fn event(&self, path: &str) -> serde_json::Value {
        for _ in 0..50 {
            if let Some(e) = self.events().into_iter().find(|e| e["path"] == path) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no access event for {path}:\n{}", self.proxy.output());
    }

    /// Waits (up to 5 s) until `series` reads `want`.
    pub async fn metric_becomes(&self, series: &str, want: f64) {
        for _ in 0..50 {
            if self.metric(series) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{series} is {}, not {want}", self.metric(series));
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// The next data message, within 10 s.
async fn next_data(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("no error");
        if m.is_text() || m.is_binary() || m.is_close() {
            return m;
        }
    }
}

/// Reads until the stream ends (close handshake done, or the connection closed), within
/// `secs`; returns how long that took.
async fn until_closed(ws: &mut Ws, secs: u64) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
    .unwrap_or_else(|_| panic!("the tunnel stayed open for {secs} s"));
    started.elapsed()
}

/// The client's side of a normal close: the closing handshake, then TLS close_notify
/// and FIN once the server has closed (as a browser does).
async fn close(ws: &mut Ws) {
    ws.close(None).await.unwrap();
    until_closed(ws, 5).await;
    let _ = ws.get_mut().shutdown().await;
}

/// The status of a refused opening (panics if it was accepted).
fn refused_status(r: Result<Ws, WsError>) -> u16 {
    match r {
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[test]
fn h1_websocket_echoes_text_and_a_1mib_binary_frame() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "", "");
    runtime().block_on(async {
        let mut ws = p.ws("/ws", &[]).await.expect("upgrade");
        ws.send(Message::text("hello through clawveil"))
            .await
            .unwrap();
        assert_eq!(
            next_data(&mut ws).await,
            Message::text("hello through clawveil")
        );
        let big: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
            .collect();
        ws.send(Message::binary(big.clone())).await.unwrap();
        match next_data(&mut ws).await {
            Message::Binary(got) => {
                assert_eq!(got.len(), big.len());
                assert!(got[..] == big[..], "the 1 MiB frame came back altered");
            }
            other => panic!("expected the binary frame back, got {other:?}"),
        }
        close(&mut ws).await;
        // The bot was asked with an HTTP/1.1 upgrade for the same path.
        let openings = up.seen.openings.lock().unwrap().clone();
        assert_eq!(openings.len(), 1);
        let (path, headers) = &openings[0];
        assert_eq!(path, "/ws");
        let has = |n: &str, v: &str| {
            headers
                .iter()
                .any(|(k, x)| k == n && x.to_ascii_lowercase().contains(v))
        };
        assert!(has("upgrade", "websocket"), "{headers:?}");
        assert!(has("connection", "upgrade"), "{headers:?}");
        let e = p.event("/ws").await;
        assert_eq!(e["status"], 101, "{e}");
        assert!(e["bytes_in"].as_u64().unwrap() > 1 << 20, "{e}");
        assert!(e["bytes_out"].as_u64().unwrap() > 1 << 20, "{e}");
    });
}

// A WebSocket server closes TCP first after a closing handshake (RFC 6455 §7.1.1), so
// the tunnel names the side that sent the first Close frame, not the first FIN.
#[test]
fn a_close_from_the_client_reaches_the_server_and_is_logged_as_client_closed() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "", "");
    runtime().block_on(async {
        let mut ws = p.ws("/ws/client-closes", &[]).await.expect("upgrade");
        ws.send(Message::text("one")).await.unwrap();
        assert_eq!(next_data(&mut ws).await, Message::text("one"));
        close(&mut ws).await;
        assert_eq!(
            up.seen.closes.load(Ordering::SeqCst),
            1,
            "server saw the close"
        );
        let e = p.event("/ws/client-closes").await;
        assert_eq!(e["status"], 101, "{e}");
        assert!(e["bytes_in"].as_u64().unwrap() > 0, "{e}");
        assert!(e["bytes_out"].as_u64().unwrap() > 0, "{e}");
        assert_eq!(e["close_reason"], "client_closed", "{e}");
    });
}

#[test]
fn a_close_from_the_server_reaches_the_client_and_is_logged_as_upstream_closed() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "", "");
    runtime().block_on(async {
        let mut ws = p.ws("/ws/server-closes", &[]).await.expect("upgrade");
        ws.send(Message::text("bye")).await.unwrap();
        match next_data(&mut ws).await {
            Message::Close(Some(f)) => {
                assert_eq!(f.code, CloseCode::Normal);
                assert_eq!(f.reason.as_str(), "bye");
            }
            other => panic!("expected the server's close frame, got {other:?}"),
        }
        // tungstenite has answered the close; the server then closes TCP.
        until_closed(&mut ws, 5).await;
        let _ = ws.get_mut().shutdown().await;
        // The client's close reply went through too.
        assert_eq!(up.seen.closes.load(Ordering::SeqCst), 1);
        let e = p.event("/ws/server-closes").await;
        assert_eq!(e["status"], 101, "{e}");
        assert!(e["bytes_in"].as_u64().unwrap() > 0, "{e}");
        assert!(e["bytes_out"].as_u64().unwrap() > 0, "{e}");
        assert_eq!(e["close_reason"], "upstream_closed", "{e}");
    });
}

#[test]
fn a_client_that_leaves_without_a_close_frame_is_logged_as_client_dropped() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "", "");
    runtime().block_on(async {
        // TCP closed without a Close frame or TLS close_notify (a killed browser tab).
        let mut ws = p.ws("/ws/client-vanishes", &[]).await.expect("upgrade");
        ws.send(Message::text("one")).await.unwrap();
        assert_eq!(next_data(&mut ws).await, Message::text("one"));
        drop(ws);
        let e = p.event("/ws/client-vanishes").await;
        assert_eq!(e["status"], 101, "{e}");
        assert_eq!(e["close_reason"], "client_dropped", "{e}");
        assert!(e["bytes_in"].as_u64().unwrap() > 0, "{e}");
        assert!(e["bytes_out"].as_u64().unwrap() > 0, "{e}");

        // TLS close_notify and FIN, still without a Close frame.
        let mut ws = p.ws("/ws/client-hangs-up", &[]).await.expect("upgrade");
        ws.send(Message::text("two")).await.unwrap();
        assert_eq!(next_data(&mut ws).await, Message::text("two"));
        ws.get_mut().shutdown().await.unwrap();
        until_closed(&mut ws, 5).await;
        let e = p.event("/ws/client-hangs-up").await;
        assert_eq!(e["close_reason"], "client_dropped", "{e}");

        assert_eq!(
            up.seen.closes.load(Ordering::SeqCst),
            0,
            "a Close reached the server"
        );
        p.metric_becomes("clawveil_websocket_tunnels_open{route=\"default\"}", 0.0)
            .await;
    });
}

#[test]
fn a_server_that_leaves_without_a_close_frame_is_logged_as_upstream_dropped() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "", "");
    runtime().block_on(async {
        let mut ws = p.ws("/ws/server-vanishes", &[]).await.expect("upgrade");
        ws.send(Message::text("drop")).await.unwrap();
        // No Close frame comes: the stream just ends.
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("the tunnel ends within 5 s")
            {
                Some(Ok(Message::Close(f))) => panic!("a Close frame came: {f:?}"),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break,
            }
        }
        let _ = ws.get_mut().shutdown().await;
        let e = p.event("/ws/server-vanishes").await;
        assert_eq!(e["status"], 101, "{e}");
        assert_eq!(e["close_reason"], "upstream_dropped", "{e}");
    });
}

const WS_ROUTE: &str = "[[route]]\nname = \"ws\"\npath_prefix = \"/ws\"\n";
const OPEN: &str = "clawveil_websocket_tunnels_open{route=\"ws\"}";

#[test]
fn a_silent_tunnel_is_closed_after_the_idle_timeout() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "tunnel_idle_timeout = \"2s\"\n", WS_ROUTE);
    runtime().block_on(async {
        let mut ws = p.ws("/ws/idle", &[]).await.expect("upgrade");
        let opened = Instant::now();
        p.metric_becomes(OPEN, 1.0).await;
        until_closed(&mut ws, 8).await;
        let open_for = opened.elapsed();
        assert!(
            open_for >= Duration::from_millis(1500) && open_for <= Duration::from_secs(4),
            "closed after {open_for:?}, not ~2 s"
        );
        let e = p.event("/ws/idle").await;
        assert_eq!(e["close_reason"], "idle_timeout", "{e}");
        assert_eq!(e["status"], 101, "{e}");
        p.metric_becomes(OPEN, 0.0).await;
    });
}

#[test]
fn upgrades_the_route_refuses_never_reach_the_bot() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(
        &up,
        "",
        "[[route]]\nname = \"ws\"\npath_prefix = \"/ws\"\nallowed_origins = [\"https://ok.example\"]\n\
         [[route]]\nname = \"robot\"\npath_prefix = \"/robot\"\nverify = \"dingtalk-robot\"\napp_secrets = [\"test-app-secret\"]\n\
         [[route]]\nname = \"inside\"\npath_prefix = \"/inside\"\nallow_cidrs = [\"10.0.0.0/8\"]\n",
    );
    runtime().block_on(async {
        let evil = p.ws("/ws", &[("origin", "https://evil.example")]).await;
        assert_eq!(refused_status(evil), 403);
        assert_eq!(
            p.metric("clawveil_fail_closed_total{reason=\"origin_not_allowed\"}"),
            1.0
        );
        assert_eq!(up.accepted(), 0, "a refused upgrade reached the bot");

        let mut ws = p
            .ws("/ws", &[("origin", "https://ok.example")])
            .await
            .expect("the allowed origin is let through");
        ws.send(Message::text("allowed")).await.unwrap();
        assert_eq!(next_data(&mut ws).await, Message::text("allowed"));
        close(&mut ws).await;
        assert_eq!(up.accepted(), 1);

        let robot = p.ws("/robot/ws", &[]).await;
        assert_eq!(refused_status(robot), 401);
        let robot = p
            .ws(
                "/robot/ws",
                &[("timestamp", "1700000000000"), ("sign", "AAAA")],
            )
            .await;
        assert_eq!(refused_status(robot), 401);
        let outside = p.ws("/inside/ws", &[]).await;
        assert_eq!(refused_status(outside), 403);
        assert_eq!(
            p.metric("clawveil_fail_closed_total{reason=\"client_not_allowed\"}"),
            1.0
        );
        assert_eq!(up.accepted(), 1, "a refused upgrade reached the bot");
        assert_eq!(up.seen.openings.lock().unwrap().len(), 1);
    });
}

/// Regression: once hyper handed an HTTP/1.1 connection to the tunnel, `serve_tls`
/// returned and gave back its `max_connections` slot and its `clawveil_connections_open`
/// count while the socket stayed open (four tunnels with `max_connections = 2`, the
/// gauge at 0). The slot now lives in the connection's IO, which the tunnel holds.
#[test]
fn open_tunnels_still_count_as_connections() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "max_connections = 2\n", "");
    runtime().block_on(async {
        let mut open = Vec::new();
        for i in 0..2 {
            let mut ws = p.ws(&format!("/ws/{i}"), &[]).await.expect("upgrade");
            ws.send(Message::text("x")).await.unwrap();
            assert_eq!(next_data(&mut ws).await, Message::text("x"));
            open.push(ws);
        }
        assert_eq!(
            p.metric("clawveil_connections_open{listener=\"https\"}"),
            2.0
        );
        // Both slots are taken: a third connection waits in the accept queue.
        let third = tokio::time::timeout(Duration::from_secs(2), p.ws("/ws/2", &[])).await;
        assert!(
            third.is_err(),
            "a third connection was served with max_connections = 2"
        );
        // A tunnel that closes gives its slot back.
        let mut first = open.remove(0);
        close(&mut first).await;
        let mut ws = tokio::time::timeout(Duration::from_secs(10), p.ws("/ws/3", &[]))
            .await
            .expect("served once a tunnel closed")
            .expect("upgrade");
        ws.send(Message::text("y")).await.unwrap();
        assert_eq!(next_data(&mut ws).await, Message::text("y"));
        assert_eq!(
            p.metric("clawveil_connections_open{listener=\"https\"}"),
            2.0
        );
    });
}

#[test]
fn sigterm_drains_an_open_tunnel_then_closes_it_and_exits_zero() {
    let up = WsUpstream::start(Upstream::Echo);
    let mut p = WsProxy::start(&up, "drain_timeout = \"2s\"\n", WS_ROUTE);
    let rt = runtime();
    let mut ws = rt.block_on(async {
        let mut ws = p.ws("/ws/drain", &[]).await.expect("upgrade");
        ws.send(Message::text("before")).await.unwrap();
        assert_eq!(next_data(&mut ws).await, Message::text("before"));
        p.metric_becomes(OPEN, 1.0).await;
        ws
    });
    p.proxy.signal("TERM");
    let termed = Instant::now();
    rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ws.send(Message::text("during the drain")).await.unwrap();
        assert_eq!(next_data(&mut ws).await, Message::text("during the drain"));
        until_closed(&mut ws, 6).await;
    });
    let closed_after = termed.elapsed();
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after <= Duration::from_millis(3500),
        "tunnel closed {closed_after:?} after SIGTERM (drain is 2 s)"
    );
    let status = p
        .proxy
        .wait_exit(Duration::from_secs(6))
        .unwrap_or_else(|| panic!("still running:\n{}", p.proxy.output()));
    assert!(status.success(), "{status:?}\n{}", p.proxy.output());
    assert!(termed.elapsed() <= Duration::from_secs(7));
    let e = rt.block_on(p.event("/ws/drain"));
    assert_eq!(e["close_reason"], "shutdown", "{e}");
    assert!(e["bytes_in"].as_u64().unwrap() > 0, "{e}");
}

#[test]
fn an_upstream_that_declines_the_upgrade_is_answered_as_it_is() {
    let up = WsUpstream::start(Upstream::Refuse);
    let p = WsProxy::start(&up, "", "");
    runtime().block_on(async {
        let r = p.ws("/ws/declined", &[]).await;
        match r {
            Err(WsError::Http(resp)) => {
                assert_eq!(resp.status(), 403);
                let body = resp.body().clone().unwrap_or_default();
                assert_eq!(String::from_utf8_lossy(&body), "no websocket here");
            }
            Err(e) => panic!("expected the bot's 403, got {e}"),
            Ok(_) => panic!("the upgrade was accepted"),
        }
        assert_eq!(up.accepted(), 1);
        let e = p.event("/ws/declined").await;
        assert_eq!(e["status"], 403, "{e}");
    });
}
