//! Server certificate verification for `acme.ca_roots`: ordinary WebPKI path building
//! to the given roots, plus one case WebPKI refuses but `curl --cacert` accepts: the
//! server presents exactly one of the configured certificates itself (a self-signed
//! certificate, often marked as a CA, as test CAs and private servers use). Such a
//! certificate is pinned byte for byte by the operator, and still has to be inside its
//! validity period; the handshake signature is checked as always.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug)]
pub(crate) struct RootsVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl RootsVerifier {
    pub(crate) fn new(certs: Vec<CertificateDer<'static>>) -> Result<RootsVerifier, String> {
        let mut roots = RootCertStore::empty();
        for cert in &certs {
            roots
                .add(cert.clone())
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), clawveil_tls::provider())
                .build()
                .map_err(|e| e.to_string())?;
        Ok(RootsVerifier {
            inner,
            pinned: certs,
        })
    }

    fn pinned_and_current(&self, end_entity: &CertificateDer<'_>, now: UnixTime) -> bool {
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return false;
        }
        let now = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        clawveil_tls::CertInfo::parse(end_entity.as_ref())
            .map(|info| now >= info.not_before && now <= info.not_after)
            .unwrap_or(false)
    }
}

impl ServerCertVerifier for RootsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => Ok(v),
            Err(_) if self.pinned_and_current(end_entity, now) => {
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
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_flagged(name: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn pinned_self_signed_ca_certificate_is_accepted_others_are_not() {
        let pinned = ca_flagged("localhost");
        let v = RootsVerifier::new(vec![pinned.clone()]).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        // WebPKI alone refuses a CA certificate as the server's own
        assert!(v
            .inner
            .verify_server_cert(&pinned, &[], &name, &[], now)
            .is_err());
        assert!(v.verify_server_cert(&pinned, &[], &name, &[], now).is_ok());
        let stranger = ca_flagged("localhost");
        assert!(v
            .verify_server_cert(&stranger, &[], &name, &[], now)
            .is_err());
        // outside its validity period the pin does not help
        let far = UnixTime::since_unix_epoch(Duration::from_secs(32_000_000_000 * 4));
        assert!(v.verify_server_cert(&pinned, &[], &name, &[], far).is_err());
    }
}
