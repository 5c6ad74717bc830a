//! Raw clients for what curl cannot imitate: a TLS handshake and then silence, request
//! heads written by hand, HTTP/2 frames written by hand, a client that stops reading.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawveil_testkit::{free_port, ProxyProcess, TestCert, TestUpstream};
use rustls_pki_types::pem::PemObject;

use crate::common::{bin, write_config, Harness, Opts};

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A finished TLS handshake with the https listener, offering `alpn` (maybe none), and
/// no application data sent.
pub fn tls(h: &Harness, alpn: &[&[u8]]) -> Tls {
    TlsTarget {
        cert: &h.cert.cert,
        port: h.https,
    }
    .connect(alpn)
}

/// An https listener and the certificate it serves.
pub struct TlsTarget<'a> {
    pub cert: &'a std::path::Path,
    pub port: u16,
}

impl TlsTarget<'_> {
    pub fn connect(&self, alpn: &[&[u8]]) -> Tls {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = self.client_config(provider);
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        self.connect_with(Arc::new(cfg))
    }

    /// A client configuration over `provider` that trusts the served certificate.
    pub fn client_config(
        &self,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_file_iter(self.cert).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    /// A finished handshake (SNI localhost) with `cfg`; reusing one `cfg` reuses its
    /// session store, so a later connection can resume.
    pub fn connect_with(&self, cfg: Arc<rustls::ClientConfig>) -> Tls {
        let mut conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // The short read timeout is for the tests' reads; a loaded machine may take
        // longer than that to answer the handshake, so only a real error or 10 s fail it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while conn.is_handshaking() {
            match conn.complete_io(&mut tcp) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) && Instant::now() < deadline => {}
                Err(e) => panic!("TLS handshake: {e}"),
            }
        }
        rustls::StreamOwned::new(conn, tcp)
    }
}

/// A plain TCP connection with a short read timeout (for [`wait_closed`]).
pub fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Reads (whatever comes is kept) until the server closes the connection; how long
/// after `since` that was, or `None` if it was still open after `max`.
pub fn wait_closed(s: &mut impl Read, since: Instant, max: Duration) -> Option<Duration> {
    let mut buf = [0u8; 16 * 1024];
    while since.elapsed() < max {
        match s.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(since.elapsed()),
        }
    }
    None
}

/// Writes `request` and reads until the server closes (at most 5 s).
pub fn exchange(s: &mut (impl Read + Write), request: &[u8]) -> String {
    s.write_all(request).unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let since = Instant::now();
    while since.elapsed() < Duration::from_secs(5) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// A proxy in front of an upstream of the test's own (`url`), with the usual harness
/// around it (its `upstream` is started and unused).
pub fn harness_for(url: &str, o: &Opts) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let upstream = TestUpstream::start();
    let cert = TestCert::localhost(dir.path());
    let (https, http, metrics) = (free_port(), free_port(), free_port());
    let config = write_config(dir.path(), https, http, metrics, url, &cert, o);
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

/// An upstream answering every request with `len` bytes (`connection: close`), written
/// as fast as the proxy takes them.
pub fn big_upstream(len: usize) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let top = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                     content-length: {len}\r\nconnection: close\r\n\r\n"
                );
                if s.write_all(top.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b'z'; 64 * 1024];
                let mut left = len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if s.write_all(&chunk[..n]).is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// The access events in the proxy's output.
pub fn access_events(h: &Harness) -> Vec<serde_json::Value> {
    h.proxy
        .output()
        .lines()
        .filter(|l| l.contains("\"target\":\"access\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub const CLIENT_IDLE: &str = "clawveil_fail_closed_total{reason=\"client_idle\"}";
pub const MALFORMED: &str = "clawveil_fail_closed_total{reason=\"malformed_request\"}";

/// HTTP/2 written by hand (RFC 9113), enough to send requests a real client never would.
pub mod h2 {
    use std::io::Read;

    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const GOAWAY: u8 = 7;
    pub const END_STREAM: u8 = 1;
    pub const END_HEADERS: u8 = 4;
    pub const PROTOCOL_ERROR: u32 = 1;

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A header block of literal fields (not indexed, not Huffman-coded), names as given.
    pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in fields {
            assert!(n.len() < 127 && v.len() < 127);
            b.push(0);
            b.push(n.len() as u8);
            b.extend_from_slice(n.as_bytes());
            b.push(v.len() as u8);
            b.extend_from_slice(v.as_bytes());
        }
        b
    }

    /// A GET on `stream`, with `extra` fields after the pseudo-headers.
    pub fn get(stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut fields = vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", path),
        ];
        fields.extend_from_slice(extra);
        frame(HEADERS, END_STREAM | END_HEADERS, stream, &block(&fields))
    }

    pub struct Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    /// The next frame, or `None` when the connection ended or nothing came for a while.
    pub fn read(s: &mut impl Read) -> Option<Frame> {
        let mut head = [0u8; 9];
        read_exact(s, &mut head)?;
        let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
        let mut payload = vec![0u8; len];
        read_exact(s, &mut payload)?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    fn read_exact(s: &mut impl Read, buf: &mut [u8]) -> Option<()> {
        let since = std::time::Instant::now();
        let mut got = 0;
        while got < buf.len() {
            if since.elapsed() > std::time::Duration::from_secs(5) {
                return None;
            }
            match s.read(&mut buf[got..]) {
                Ok(0) => return None,
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return None,
            }
        }
        Some(())
    }

    /// Frames until one on `stream` that ends it (a reset, or END_STREAM).
    pub fn until_stream_ends(s: &mut impl Read, stream: u32) -> Vec<Frame> {
        let mut seen = Vec::new();
        while let Some(f) = read(s) {
            let ends = f.stream == stream
                && (f.kind == RST_STREAM || f.flags & END_STREAM != 0 && f.kind != SETTINGS);
            let goaway = f.kind == GOAWAY;
            seen.push(f);
            if ends || goaway {
                break;
            }
        }
        seen
    }
}
