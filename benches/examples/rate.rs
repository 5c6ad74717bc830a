//! The load generator behind `benches/compare.sh` for what wrk and h2load do not
//! measure: latency at a fixed rate, TLS handshakes per second with and without
//! resumption, and a crowd of idle keep-alive TLS connections.
//!
//! ```sh
//! cargo build --release -p clawveil-benches --example rate
//! R=target/release/examples/rate
//! # open loop, constant rate: RATE req/s spread over CONNS keep-alive h1 connections
//! $R latency https://127.0.0.1:8443/1k RATE CONNS SECONDS
//! # new connection per request (Connection: close), CONC at a time, full or resumed TLS 1.3
//! $R handshakes https://127.0.0.1:8443/1k CONC SECONDS full|resume
//! # open N TLS connections, one request each, then hold them until killed
//! $R hold https://127.0.0.1:8443/1k N
//! ```
//!
//! Every mode prints one line of `key=value` pairs on stdout (`hold` prints it once
//! the connections are all open, then waits to be killed).
//!
//! *Latency* is open loop, so coordinated omission is avoided: request `k` of
//! connection `c` is due at `start + (k·CONNS + c) / RATE` whatever happened before,
//! and its latency is counted from that due time, not from when it was actually
//! sent; a server that stalls is charged for every request that should have gone
//! out meanwhile. Each connection has its own OS thread that sleeps until the due
//! time (no 1 ms timer wheel in between, and the thread's timer slack lowered from
//! Linux's 50 µs to 1 µs); `late_p99_us` reports how late the sends themselves were,
//! the generator's own error.
//!
//! The TLS client is rustls with X25519 only (the group OpenSSL-based clients such as
//! wrk pick), TLS 1.3 for handshakes; the server's certificate signature is checked,
//! its chain is not (the benchmark's certificate is self-signed).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type Err = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: rate latency URL RATE CONNS SECONDS | handshakes URL CONC SECONDS full|resume | hold URL N";
    let num = |i: usize| -> f64 {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{usage}"))
    };
    let target = Target::parse(args.get(1).expect(usage));
    match args.first().map(String::as_str) {
        Some("latency") => latency(&target, num(2), num(3) as usize, num(4)),
        Some("handshakes") => {
            let resume = match args.get(4).map(String::as_str) {
                Some("full") => false,
                Some("resume") => true,
                _ => panic!("{usage}"),
            };
            handshakes(&target, num(2) as usize, num(3), resume);
        }
        Some("hold") => hold(&target, num(2) as usize),
        _ => panic!("{usage}"),
    }
}

/// `http[s]://ip:port/path`; the TLS server name is always `localhost`.
#[derive(Clone)]
struct Target {
    tls: bool,
    addr: SocketAddr,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Target {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            panic!("URL must start with http:// or https://: {url}")
        };
        let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Target {
            tls,
            addr: hostport.parse().expect("URL host must be ip:port"),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        }
    }
}

/// Accepts the server's certificate whatever it is, but checks the handshake
/// signature with it, so the client does the work a real one does.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        msg: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            msg,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        msg: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            msg,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(tls13_only: bool, resume: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519],
        ..aws_lc_rs::default_provider()
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    if !resume {
        cfg.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(cfg)
}

/// An h1 keep-alive connection driven by hyper, over TLS or plain TCP.
async fn connect_h1(
    t: &Target,
    tls: &TlsConnector,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, Err> {
    let tcp = TcpStream::connect(t.addr).await?;
    tcp.set_nodelay(true)?;
    if t.tls {
        let s = tls.connect(ServerName::try_from("localhost")?, tcp).await?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s)).await?;
        tokio::spawn(conn);
        Ok(send)
    } else {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(send)
    }
}

async fn get(
    send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    t: &Target,
) -> Result<(), Err> {
    send.ready().await?;
    let req = hyper::Request::get(t.path.as_str())
        .header(hyper::header::HOST, "localhost")
        .body(Empty::new())?;
    let resp = send.send_request(req).await?;
    let ok = resp.status().is_success();
    resp.into_body().collect().await?;
    if ok {
        Ok(())
    } else {
        Err("status not 2xx".into())
    }
}

/// Lets this thread's sleeps end within about a microsecond of their deadline instead
/// of Linux's default 50 µs timer slack.
#[allow(unsafe_code)]
fn precise_sleep() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer and touches only this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn latency(t: &Target, rate: f64, conns: usize, secs: f64) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let tls = TlsConnector::from(client_config(false, true));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let mut starts = Vec::new();
    let mut threads = Vec::new();
    for c in 0..conns {
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        starts.push(start_tx);
        let (t, tls, ready_tx) = (t.clone(), tls.clone(), ready_tx.clone());
        threads.push(std::thread::spawn(move || {
            precise_sleep();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut send = connect_h1(&t, &tls).await.ok();
                // one request before the clock starts: the connection is warm
                if let Some(s) = send.as_mut() {
                    let _ = get(s, &t).await;
                }
                ready_tx.send(()).ok();
                let start = start_rx.recv().expect("start");
                let end = start + Duration::from_secs_f64(secs);
                let (mut lat, mut late, mut errors) = (Vec::new(), Vec::new(), 0u64);
                for k in 0u32.. {
                    let due = start + interval * (k * conns as u32 + c as u32);
                    if due >= end {
                        break;
                    }
                    let now = Instant::now();
                    if due > now {
                        // a blocking sleep: nothing else runs on this thread meanwhile
                        std::thread::sleep(due - now);
                    }
                    late.push(Instant::now().saturating_duration_since(due).as_micros() as u64);
                    let ok = match send.as_mut() {
                        Some(s) => get(s, &t).await.is_ok(),
                        None => false,
                    };
                    if ok {
                        lat.push(due.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                        send = connect_h1(&t, &tls).await.ok();
                    }
                }
                (lat, late, errors)
            })
        }));
    }
    drop(ready_tx);
    for _ in 0..conns {
        ready_rx.recv().expect("a connection thread died");
    }
    let start = Instant::now() + Duration::from_millis(50);
    for s in &starts {
        s.send(start).ok();
    }
    let (mut lat, mut late, mut errors) = (Vec::new(), Vec::new(), 0);
    for th in threads {
        let (l, la, e) = th.join().expect("thread");
        lat.extend(l);
        late.extend(la);
        errors += e;
    }
    lat.sort_unstable();
    late.sort_unstable();
    println!(
        "p50_us={} p99_us={} p999_us={} max_us={} done={} errors={} rps={:.0} late_p99_us={}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat.last().copied().unwrap_or(0),
        lat.len(),
        errors,
        lat.len() as f64 / secs,
        percentile(&late, 0.99),
    );
}

fn handshakes(t: &Target, conc: usize, secs: f64, resume: bool) {
    assert!(t.tls, "handshakes need an https:// URL");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tls = TlsConnector::from(client_config(true, resume));
    let (done, resumed, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        t.path
    );
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conc {
            let (t, tls, req) = (t.clone(), tls.clone(), req.clone());
            let (done, resumed, errors) = (done.clone(), resumed.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let mut buf = Vec::with_capacity(4096);
                while Instant::now() < end {
                    let one = async {
                        let tcp = TcpStream::connect(t.addr).await?;
                        tcp.set_nodelay(true)?;
                        let mut s = tls.connect(ServerName::try_from("localhost")?, tcp).await?;
                        let kind = s.get_ref().1.handshake_kind();
                        s.write_all(req.as_bytes()).await?;
                        buf.clear();
                        // read to the server's close; a close without close_notify is fine
                        match s.read_to_end(&mut buf).await {
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                            Err(e) => return Err(Err::from(e)),
                        }
                        if !buf.starts_with(b"HTTP/1.1 200") {
                            return Err("status not 200".into());
                        }
                        Ok::<_, Err>(kind == Some(HandshakeKind::Resumed))
                    };
                    match one.await {
                        Ok(r) if Instant::now() < end => {
                            done.fetch_add(1, Relaxed);
                            if r {
                                resumed.fetch_add(1, Relaxed);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {
                            errors.fetch_add(1, Relaxed);
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.ok();
        }
    });
    let n = done.load(Relaxed);
    println!(
        "hs_per_s={:.0} done={} resumed_frac={:.3} errors={}",
        n as f64 / secs,
        n,
        if n > 0 {
            resumed.load(Relaxed) as f64 / n as f64
        } else {
            0.0
        },
        errors.load(Relaxed)
    );
}

fn hold(t: &Target, n: usize) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tls = TlsConnector::from(client_config(false, true));
    rt.block_on(async {
        // 64 connections being opened at a time, so that no proxy's accept queue overflows
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (t, tls, gate) = (t.clone(), tls.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.ok()?;
                let mut send = connect_h1(&t, &tls).await.ok()?;
                get(&mut send, &t).await.ok()?;
                Some(send)
            }));
        }
        let mut held = Vec::new();
        let mut failed = 0;
        for task in tasks {
            match task.await.ok().flatten() {
                Some(s) => held.push(s),
                None => failed += 1,
            }
        }
        println!("held={} failed={}", held.len(), failed);
        std::io::stdout().flush().ok();
        std::future::pending::<()>().await;
    });
}
