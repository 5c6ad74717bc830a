//! The harness: a temp dir, a test upstream, a certificate, the proxy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clawveil_testkit::{free_port, ProxyProcess, TestCert, TestUpstream};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clawveil"))
}

/// Extra TOML spliced into the sections of the generated config.
#[derive(Default, Clone)]
pub struct Opts {
    pub upstream: &'static str,
    pub tls: &'static str,
    pub limits: &'static str,
    pub extra: &'static str,
    /// Point the proxy at a port where nothing listens.
    pub dead_upstream: bool,
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub upstream: TestUpstream,
    pub cert: TestCert,
    pub https: u16,
    pub http: u16,
    pub metrics: u16,

    pub proxy: ProxyProcess,
}

pub fn write_config(
    dir: &Path,
    https: u16,
    http: u16,
    metrics: u16,
    upstream: &str,
    cert: &TestCert,
    o: &Opts,
) -> PathBuf {
    let text = format!(
        "[listen]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"127.0.0.1:{http}\"\nmetrics = \"127.0.0.1:{metrics}\"\n\
         [upstream]\nurl = \"{upstream}\"\nresponse_timeout = \"2s\"\n{}\n\
         [tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\nwatch_interval = \"200ms\"\n{}\n\
         [limits]\n{}\n\
         [log]\n{}\n",
        o.upstream,
        cert.cert.display(),
        cert.key.display(),
        o.tls,
        if o.limits.contains("max_body") { o.limits.to_owned() } else { format!("max_body = \"20MiB\"\n{}", o.limits) },
        if o.extra.contains("level =") { o.extra.to_owned() } else { format!("level = \"debug\"\n{}", o.extra) }
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

impl Harness {
    pub fn start() -> Harness {
        Self::with(Opts::default())
    }

    pub fn with(o: Opts) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let upstream = TestUpstream::start();
        let cert = TestCert::localhost(dir.path());
        let (https, http, metrics) = (free_port(), free_port(), free_port());
        let url = if o.dead_upstream {
            format!("http://127.0.0.1:{}", free_port())
        } else {
            upstream.url()
        };
        let config = write_config(dir.path(), https, http, metrics, &url, &cert, &o);
        let proxy = ProxyProcess::start(&bin(), &config, dir.path(), https);
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

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https)
    }

    /// curl trusting the test certificate, with localhost resolved to 127.0.0.1.
    pub fn curl(&self, args: &[&str]) -> Output {
        let resolve = format!("localhost:{}:127.0.0.1", self.https);
        let cacert = self.cert.cert.to_str().unwrap().to_owned();
        let mut all: Vec<&str> = vec![
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            &cacert,
            "--resolve",
            &resolve,
        ];
        all.extend_from_slice(args);
        Command::new("curl")
            .args(&all)
            .output()
            .expect("curl is installed")
    }

    /// The HTTP status curl saw for `args`.
    pub fn status(&self, args: &[&str]) -> u16 {
        let mut a = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        a.extend_from_slice(args);
        let out = self.curl(&a);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    pub fn metrics_text(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", &format!("http://127.0.0.1:{}/metrics", self.metrics)])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// The value of one exact series line (`name{labels}`), or 0.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics_text(), series)
    }
}

pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Polls `f` for up to `secs` seconds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

pub fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    stdout(&out).split_whitespace().next().unwrap().to_owned()
}

/// A raw TLS connection to the proxy (for clients curl cannot imitate: slow bodies).
pub fn tls_stream(
    h: &Harness,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&h.cert.cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let conn =
        rustls::ClientConnection::new(std::sync::Arc::new(cfg), "localhost".try_into().unwrap())
            .unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", h.https)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    rustls::StreamOwned::new(conn, tcp)
}
