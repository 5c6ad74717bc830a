//! How a target is reached: HTTPS only, certificates always verified.
//!
//! The verifier is the platform's (rustls-platform-verifier: the system's roots, with
//! the target's `ca_roots` added). One case WebPKI refuses is accepted, as `curl
//! --cacert` and the ACME client accept it: the server presents, byte for byte, one of
//! the certificates of `ca_roots` (a self-signed certificate, often marked as a CA, as
//! private gateways and test servers use). Such a pinned certificate must still be
//! valid for the name and inside its validity period, and the handshake signature is
//! checked as always. No setting turns verification off.
//!
//! The connect timeout covers the TCP connect and the TLS handshake together.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use clawveil_telemetry::ErrorClass;
use http::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

type BoxError = Box<dyn StdError + Send + Sync>;

/// What went wrong loading a target's trust settings.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("ca_roots {path}: {source}")]
    CaRootsUnreadable {
        path: std::path::PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("ca_roots {path}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")]
    CaRootsEmpty { path: std::path::PathBuf },
    #[error("TLS verifier: {0}")]
    Verifier(#[source] rustls::Error),
}

/// The certificates of a `ca_roots` PEM file.
pub(crate) fn load_ca_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let unreadable = |source| TrustError::CaRootsUnreadable {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(TrustError::CaRootsEmpty {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The TLS client settings of one target: TLS 1.2 and 1.3, ALPN h2 and http/1.1.
pub(crate) fn client_config(
    ca_roots: Vec<CertificateDer<'static>>,
) -> Result<ClientConfig, TrustError> {
    let verifier = TargetVerifier::new(ca_roots)?;
    Ok(
        ClientConfig::builder_with_provider(clawveil_tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(TrustError::Verifier)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
    )
}

/// The connector of one target's client.
pub(crate) type Connector = Timed<HttpsConnector<HttpConnector>>;

pub(crate) fn connector(tls: ClientConfig, connect_timeout: Duration) -> Connector {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Timed {
        inner: https,
        timeout: connect_timeout,
    }
}

/// The platform verifier plus the pinned `ca_roots` case.
#[derive(Debug)]
struct TargetVerifier {
    platform: rustls_platform_verifier::Verifier,
    pinned: Vec<CertificateDer<'static>>,
}

impl TargetVerifier {
    fn new(ca_roots: Vec<CertificateDer<'static>>) -> Result<TargetVerifier, TrustError> {
        let platform = rustls_platform_verifier::Verifier::new_with_extra_roots(
            ca_roots.iter().cloned(),
            clawveil_tls::provider(),
        )
        .map_err(TrustError::Verifier)?;
        Ok(TargetVerifier {
            platform,
            pinned: ca_roots,
        })
    }

    /// The server presented one of `ca_roots` itself, for this name, inside its
    /// validity period.
    fn pinned_ok(
        &self,
        end_entity: &CertificateDer<'_>,
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return false;
        }
        let Ok(parsed) = rustls::server::ParsedCertificate::try_from(end_entity) else {
            return false;
        };
        if rustls::client::verify_server_name(&parsed, name).is_err() {
            return false;
        }
        let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        clawveil_tls::CertInfo::parse(end_entity.as_ref())
            .map(|info| now >= info.not_before && now <= info.not_after)
            .unwrap_or(false)
    }
}

impl ServerCertVerifier for TargetVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.platform.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(_) if self.pinned_ok(end_entity, server_name, now) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.platform.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.platform.supported_verify_schemes()
    }
}

/// A connector whose whole connect (TCP and TLS) must finish within `timeout`.
#[derive(Clone)]
pub(crate) struct Timed<C> {
    inner: C,
    timeout: Duration,
}

/// The connect (TCP and TLS) did not finish in time.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out")]
pub(crate) struct ConnectTimedOut;

impl<C> tower_service::Service<Uri> for Timed<C>
where
    C: tower_service::Service<Uri, Error = BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(done) => done,
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

/// The class of a failed exchange with a target, from the client's error chain: any
/// rustls error is `tls` (the connection was refused for its TLS, whatever the
/// detail), a connect that ran out of time `timeout`, another connect failure
/// `connect`, broken HTTP `protocol`, anything else (a reset, a close) `reset`.
pub(crate) fn classify(err: &hyper_util::client::legacy::Error) -> ErrorClass {
    let (mut tls, mut timed_out, mut parse) = (false, false, false);
    walk(err, &mut |e| {
        tls |= e.is::<rustls::Error>();
        timed_out |= e.is::<ConnectTimedOut>()
            || e.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut);
        parse |= e
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse);
    });
    if tls {
        ErrorClass::Tls
    } else if timed_out {
        ErrorClass::Timeout
    } else if err.is_connect() {
        ErrorClass::Connect
    } else if parse {
        ErrorClass::Protocol
    } else {
        ErrorClass::Reset
    }
}

/// Visits `e` and every error under it. `io::Error::source` skips the error an
/// `io::Error` wraps, so that one is visited through `get_ref`.
fn walk(e: &(dyn StdError + 'static), f: &mut dyn FnMut(&(dyn StdError + 'static))) {
    f(e);
    if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
        walk(inner, f);
    } else if let Some(source) = e.source() {
        walk(source, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str, ca: bool, not_after_year: i32) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after_year, 1, 1);
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn a_pinned_certificate_passes_only_for_its_name_and_while_valid() {
        let pinned = self_signed("localhost", true, 4000);
        let v = TargetVerifier::new(vec![pinned.clone()]).unwrap();
        let localhost = ServerName::try_from("localhost").unwrap();
        let other = ServerName::try_from("other.example").unwrap();
        let now = UnixTime::now();
        // The platform verifier alone refuses a CA certificate as the server's own.
        assert!(v
            .platform
            .verify_server_cert(&pinned, &[], &localhost, &[], now)
            .is_err());
        assert!(v
            .verify_server_cert(&pinned, &[], &localhost, &[], now)
            .is_ok());
        assert!(v
            .verify_server_cert(&pinned, &[], &other, &[], now)
            .is_err());
        let stranger = self_signed("localhost", true, 4000);
        assert!(v
            .verify_server_cert(&stranger, &[], &localhost, &[], now)
            .is_err());
        let expired = self_signed("localhost", true, 2001);
        let v = TargetVerifier::new(vec![expired.clone()]).unwrap();
        assert!(v
            .verify_server_cert(&expired, &[], &localhost, &[], now)
            .is_err());
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let tls = io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        let mut seen = false;
        walk(&tls, &mut |e| seen |= e.is::<rustls::Error>());
        assert!(seen);
    }
}
