//! Answering challenges: HTTP-01 through [`Http01Tokens`] (served by the plain-HTTP
//! listener), TLS-ALPN-01 through [`CertStore::set_alpn_challenge`] with an RFC 8737
//! certificate. Answers are withdrawn when the [`Armed`] guard drops, whatever the
//! outcome of the order.
//!
//! An IP address (RFC 8738) is validated like a name over HTTP-01 (the CA connects to
//! the address itself). Over TLS-ALPN-01 the CA sends the address's reverse-DNS name
//! as SNI (`7.113.0.203.in-addr.arpa`, or 32 nibbles under `ip6.arpa`), and the
//! challenge certificate carries the address as an iPAddress subjectAltName.

use std::net::IpAddr;
use std::sync::Arc;

use clawveil_config::Challenge;
use clawveil_tls::{CertStore, Http01Tokens};
use instant_acme::{ChallengeType, KeyAuthorization};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The SNI under which the CA asks for `identifier`'s TLS-ALPN-01 answer: the name
/// itself, or for an IP address its reverse-DNS name (RFC 8738 §6).
pub(crate) fn alpn_sni(identifier: &str) -> String {
    match identifier.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        Ok(IpAddr::V6(v6)) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
        Err(_) => identifier.to_ascii_lowercase(),
    }
}

/// A self-signed certificate for TLS-ALPN-01 (RFC 8737 §3): P-256, the domain (or IP
/// address, as an iPAddress) as its only subjectAltName, and the critical acmeIdentifier extension
/// (1.3.6.1.5.5.7.1.31) holding the DER OCTET STRING of SHA-256(key authorization).
pub(crate) fn alpn_certificate(
    domain: &str,
    key_auth_digest: &[u8],
) -> Result<Arc<CertifiedKey>, String> {
    if key_auth_digest.len() != 32 {
        return Err(format!(
            "key authorization digest must be 32 bytes, got {}",
            key_auth_digest.len()
        ));
    }
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(key_auth_digest)];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its consistency check parses the certificate with
    // webpki, which (rightly, for a server certificate) rejects the critical
    // acmeIdentifier extension. The key was made for this certificate just above.
    let signing_key = clawveil_tls::provider()
        .key_provider
        .load_private_key(der_key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing_key,
    )))
}

/// Where challenge answers go.
#[derive(Clone)]
pub(crate) struct Responder {
    pub kind: Challenge,
    pub store: Arc<CertStore>,
    pub http01: Http01Tokens,
}

impl Responder {
    pub(crate) fn challenge_type(&self) -> ChallengeType {
        match self.kind {
            Challenge::Http01 => ChallengeType::Http01,
            Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        }
    }

    /// A guard that withdraws every answer it published when dropped.
    pub(crate) fn arm(&self) -> Armed<'_> {
        Armed {
            responder: self,
            tokens: Vec::new(),
            domains: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

/// Published answers of one order.
pub(crate) struct Armed<'a> {
    responder: &'a Responder,
    tokens: Vec<String>,
    /// SNI names of the TLS-ALPN-01 answers.
    domains: Vec<String>,
    /// Tokens and key authorizations, to scrub from error details.
    pub secrets: Vec<String>,
}

impl Armed<'_> {
    /// Publishes the answer for `domain`'s challenge.
    pub(crate) fn answer(
        &mut self,
        domain: &str,
        token: &str,
        key_auth: &KeyAuthorization,
    ) -> Result<(), String> {
        self.secrets.push(token.to_owned());
        self.secrets.push(key_auth.as_str().to_owned());
        match self.responder.kind {
            Challenge::Http01 => {
                self.responder.http01.insert(token, key_auth.as_str());
                self.tokens.push(token.to_owned());
            }
            Challenge::TlsAlpn01 => {
                let cert = alpn_certificate(domain, key_auth.digest().as_ref())?;
                let sni = alpn_sni(domain);
                self.responder.store.set_alpn_challenge(&sni, Some(cert));
                self.domains.push(sni);
            }
        }
        Ok(())
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        for t in &self.tokens {
            self.responder.http01.remove(t);
        }
        for d in &self.domains {
            self.responder.store.set_alpn_challenge(d, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn alpn_certificate_follows_rfc_8737() {
        let digest = [7u8; 32];
        let ck = alpn_certificate("bot.example.com", &digest).unwrap();
        let (_, cert) = parse_x509_certificate(ck.cert[0].as_ref()).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            vec![GeneralName::DNSName("bot.example.com")]
        );
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(ext.critical);
        // DER OCTET STRING (tag 0x04, length 32) of the digest
        let mut expected = vec![0x04, 0x20];
        expected.extend_from_slice(&digest);
        assert_eq!(ext.value, expected.as_slice());
        assert!(alpn_certificate("x", &[0u8; 3]).is_err());
    }

    #[test]
    fn ip_addresses_are_answered_under_their_reverse_dns_name() {
        assert_eq!(alpn_sni("203.0.113.7"), "7.113.0.203.in-addr.arpa");
        assert_eq!(alpn_sni("Bot.Example.com"), "bot.example.com");
        // RFC 8738 §6's example
        assert_eq!(
            alpn_sni("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        for ip in ["203.0.113.7", "2001:db8::1"] {
            let ck = alpn_certificate(ip, &[1u8; 32]).unwrap();
            let (_, cert) = parse_x509_certificate(ck.cert[0].as_ref()).unwrap();
            let san = cert.subject_alternative_name().unwrap().unwrap();
            let addr: IpAddr = ip.parse().unwrap();
            let octets = match addr {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            assert_eq!(
                san.value.general_names,
                vec![GeneralName::IPAddress(&octets)],
                "{ip}"
            );
        }
    }
}
