//! Test harness: a real Pebble (with pebble-challtestsrv as its DNS server), the real
//! clawveil listeners in-process (`clawveil_proxy::serve`) in front of a tiny upstream,
//! the ACME manager, and a TLS client that trusts Pebble's root. Every process is
//! killed by its handle when dropped; every port is an ephemeral one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clawveil_acme::Options;
use clawveil_testkit::{free_port, wait_port};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

pub const DOMAIN: &str = "bot.clawveil.test";
pub const STORAGE_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Fast timings for tests (production defaults are minutes to hours).
pub fn fast() -> Options {
    Options {
        backoff_base: Duration::from_millis(300),
        backoff_max: Duration::from_secs(3),
        initial_backoff_base: Duration::from_millis(200),
        initial_backoff_max: Duration::from_secs(2),
        poll_interval: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(60),
        validation_timeout: Duration::from_secs(20),
        min_renewal_interval: Duration::from_secs(3600),
        ari_retry: Duration::from_secs(3600),
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn require(bin: &str) {
    let ok = Command::new(bin)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "`{bin}` is not installed: run `bash .ci/run` (as root it apt-get installs pebble) or `apt-get install -y pebble`, then the tests again"
    );
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pebble and its DNS server. Pebble validates challenges against `http_port` /
/// `tls_port` on 127.0.0.1 (every name resolves to 127.0.0.1).
pub struct Pebble {
    dir: PathBuf,
    pub listen: u16,
    pub mgmt: u16,
    dns: u16,
    nonce_reject: u8,
    _dns_server: Killed,
    pebble: Option<Killed>,
}

impl Pebble {
    /// Writes Pebble's TLS certificate and configuration and starts the DNS server;
    /// Pebble itself starts with [`Pebble::start`].
    pub fn prepare(dir: &Path, http_port: u16, tls_port: u16, nonce_reject: u8) -> Pebble {
        require("pebble");
        require("pebble-challtestsrv");
        let dir = dir.join("pebble");
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        // Like acme.sh's `openssl req -x509`: self-signed and marked as a CA, which
        // WebPKI alone refuses as a server's own certificate (see src/verify.rs).
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let (listen, mgmt, dns, dns_mgmt) = (free_port(), free_port(), free_port(), free_port());
        let config = format!(
            r#"{{"pebble":{{"listenAddress":"127.0.0.1:{listen}","managementListenAddress":"127.0.0.1:{mgmt}",
            "certificate":"{d}/cert.pem","privateKey":"{d}/key.pem","httpPort":{http_port},"tlsPort":{tls_port},
            "ocspResponderURL":"","externalAccountBindingRequired":false}}}}"#,
            d = dir.display()
        );
        std::fs::write(dir.join("pebble.json"), config).unwrap();
        let log = std::fs::File::create(dir.join("challtestsrv.log")).unwrap();
        let dns_server = Command::new("pebble-challtestsrv")
            .args([
                "-defaultIPv6",
                "",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ])
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns}"),
                "-management",
                &format!("127.0.0.1:{dns_mgmt}"),
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pebble-challtestsrv");
        let dns_server = Killed(dns_server);
        assert!(
            wait_port(dns_mgmt, Duration::from_secs(10)),
            "pebble-challtestsrv did not start"
        );
        Pebble {
            dir,
            listen,
            mgmt,
            dns,
            nonce_reject,
            _dns_server: dns_server,
            pebble: None,
        }
    }

    /// Starts (or restarts) Pebble: a new root, no accounts, no orders.
    pub fn start(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pebble.log"))
            .unwrap();
        let child = Command::new("pebble")
            .args([
                "-config",
                &self.dir.join("pebble.json").display().to_string(),
            ])
            .args(["-dnsserver", &format!("127.0.0.1:{}", self.dns)])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", self.nonce_reject.to_string())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pebble");
        self.pebble = Some(Killed(child));
        assert!(
            wait_port(self.listen, Duration::from_secs(15)),
            "pebble did not start: {}",
            self.log()
        );
        assert!(
            wait_port(self.mgmt, Duration::from_secs(15)),
            "pebble management did not start"
        );
    }

    pub fn stop(&mut self) {
        self.pebble = None;
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.listen)
    }

    /// Pebble's own TLS certificate (what `acme.ca_roots` must trust).
    pub fn tls_cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }

    /// The root that issued the certificates (regenerated on every start).
    pub async fn root(&self) -> Vec<CertificateDer<'static>> {
        let own = std::fs::read(self.tls_cert()).unwrap();
        let roots: Vec<_> = CertificateDer::pem_slice_iter(&own)
            .map(Result::unwrap)
            .collect();
        let addr: SocketAddr = ([127, 0, 0, 1], self.mgmt).into();
        let server = ServerName::IpAddress(addr.ip().into());
        let config = rustls::ClientConfig::builder_with_provider(clawveil_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned(roots[0].clone())))
            .with_no_client_auth();
        let (status, body, _) = https_get_with(addr, server, Arc::new(config), "/roots/0")
            .await
            .expect("fetch /roots/0");
        assert_eq!(status, 200);
        CertificateDer::pem_slice_iter(&body)
            .map(Result::unwrap)
            .collect()
    }
}

/// Trusts exactly one certificate (Pebble's own, self-signed and CA-flagged, for its
/// management interface), as `curl --cacert` would.
#[derive(Debug)]
struct Pinned(CertificateDer<'static>);

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = clawveil_tls::provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = clawveil_tls::provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        clawveil_tls::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One GET over a fresh TLS connection: status, body, and the leaf the server presented.
pub async fn https_get(
    addr: SocketAddr,
    server: ServerName<'static>,
    roots: &[CertificateDer<'static>],
    path: &str,
) -> Result<(u16, Vec<u8>, Vec<u8>), String> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(clawveil_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    https_get_with(addr, server, Arc::new(config), path).await
}

/// The same with a given client configuration.
pub async fn https_get_with(
    addr: SocketAddr,
    server: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<(u16, Vec<u8>, Vec<u8>), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(server, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", DOMAIN)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok((status, body, leaf))
}

/// Plain-HTTP GET (metrics listener): status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The upstream bot: answers `ok` to everything.
pub async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

pub use crate::node::*;
