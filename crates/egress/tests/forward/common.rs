//! The forward proxy on a loopback port, local destinations, a raw CONNECT client,
//! curl, and the access events captured per test.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawveil_egress::{bind_loopback, EgressMetrics, ForwardPolicy, ForwardProxy};
use clawveil_telemetry::Metrics;
use prometheus::IntCounterVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing_subscriber::fmt::MakeWriter;

pub struct Proxy {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub tunnels: IntCounterVec,
    pub shutdown: watch::Sender<bool>,
    pub served: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(policy: ForwardPolicy) -> Proxy {
        let metrics = Arc::new(Metrics::new("0.0.0-test"));
        let tunnels = metrics.egress_tunnels.clone();
        let (shutdown, rx) = watch::channel(false);
        let proxy = ForwardProxy::new(policy, EgressMetrics::new(metrics.clone()), rx).unwrap();
        let listener = bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = tokio::spawn(proxy.serve(listener));
        Proxy {
            addr,
            metrics,
            tunnels,
            shutdown,
            served,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn fail_closed(&self, reason: &str) -> u64 {
        self.metrics.fail_closed.with_label_values(&[reason]).get()
    }

    /// (allowed, denied) in `clawveil_egress_tunnels_total`.
    pub fn decisions(&self) -> (u64, u64) {
        let get = |d: &str| self.tunnels.with_label_values(&[d]).get();
        (get("allowed"), get("denied"))
    }

    /// Sends CONNECT (with `extra` header lines) and reads the response head only,
    /// so that no tunnelled byte is consumed. Returns the status and the stream.
    pub async fn connect(&self, target: &str, extra: &str) -> (u16, String, TcpStream) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).await.unwrap(), 1, "closed mid-head");
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head, s)
    }
}

/// A policy with `allow`, `ports` and `allow_cidrs`, the rest at defaults.
pub fn policy(allow: &[&str], ports: &[u16], cidrs: &[&str]) -> ForwardPolicy {
    ForwardPolicy {
        ports: ports.to_vec(),
        allow_cidrs: cidrs.iter().map(|c| c.parse().unwrap()).collect(),
        ..ForwardPolicy::new(allow.iter().map(|s| s.to_string()).collect())
    }
}

/// Echoes every byte back; counts accepted connections.
pub async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, accepted)
}

/// Answers every request with `hello from upstream` and records the request heads.
pub async fn http_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let body = "hello from upstream";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, heads)
}

/// Runs curl (off the runtime thread) and returns (exit code, stdout).
pub async fn curl(args: &[&str]) -> (i32, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", "--noproxy", ""])
            .args(&args)
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("ALL_PROXY")
            .output()
            .expect("curl is installed (scripts/test.sh installs it)")
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

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
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn access_events(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "access")
            .collect()
    }

    /// Waits (a few seconds at most) until `n` access events have been written.
    pub async fn wait_events(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..500 {
            let events = self.access_events();
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} access events, got:\n{}", self.text());
    }
}
