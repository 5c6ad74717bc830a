//! The certificate store rustls consults on every handshake. Swapping the certificate
//! is one atomic pointer store: open connections keep their session, new handshakes
//! get the new certificate, nothing is rebound.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use clawveil_config::TlsVersion;
use clawveil_telemetry::Metrics;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::load::{CertInfo, LoadedCert};
use crate::ACME_TLS_ALPN;

/// Where the served certificate came from (the `source` metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertSource {
    Files,
    SelfSigned,
    Acme,
}

impl CertSource {
    /// The `source` label of `clawveil_certificate_reloads_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Files | Self::SelfSigned => "files",
            Self::Acme => "acme",
        }
    }
}

#[derive(Debug)]
struct Served {
    key: Arc<CertifiedKey>,
    info: CertInfo,
    source: CertSource,
}

/// Holds the served certificate and any TLS-ALPN-01 challenge certificates.
pub struct CertStore {
    current: ArcSwapOption<Served>,
    alpn_challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("current", &self.current.load().as_ref().map(|s| &s.info))
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// An empty store: every handshake is refused until a certificate is installed.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(CertStore {
            current: ArcSwapOption::empty(),
            alpn_challenges: RwLock::new(HashMap::new()),
            metrics,
        })
    }

    /// Serves `cert` from the next handshake on and publishes its expiry.
    pub fn install(&self, cert: LoadedCert, source: CertSource) {
        let name = cert.info.primary_name().to_owned();
        self.metrics
            .cert_expiry
            .with_label_values(&[&name])
            .set(cert.info.not_after_unix() as f64);
        let lifetime = cert
            .info
            .not_after
            .duration_since(cert.info.not_before)
            .unwrap_or_default();
        self.metrics
            .cert_lifetime
            .with_label_values(&[&name])
            .set(lifetime.as_secs_f64());
        let old = self.current.swap(Some(Arc::new(Served {
            key: cert.key,
            info: cert.info,
            source,
        })));
        if let Some(old) = old {
            let old_name = old.info.primary_name();
            if old_name != name {
                let _ = self.metrics.cert_expiry.remove_label_values(&[old_name]);
                let _ = self.metrics.cert_lifetime.remove_label_values(&[old_name]);
            }
        }
    }

    /// What is being served, if anything.
    pub fn current(&self) -> Option<(CertInfo, CertSource)> {
        self.current
            .load()
            .as_ref()
            .map(|s| (s.info.clone(), s.source))
    }

    /// `Ok` when a valid, unexpired certificate is being served; otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        match self.current.load().as_ref() {
            None => Err("no certificate to serve yet".into()),
            Some(s) if SystemTime::now() > s.info.not_after => Err(format!(
                "certificate for {} expired at {}",
                s.info.primary_name(),
                clawveil_telemetry::rfc3339(s.info.not_after)
            )),
            Some(_) => Ok(()),
        }
    }

    /// Installs (or with `None`, removes) the certificate answering TLS-ALPN-01 for `domain`.
    pub fn set_alpn_challenge(&self, domain: &str, key: Option<Arc<CertifiedKey>>) {
        let mut map = self
            .alpn_challenges
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match key {
            Some(k) => map.insert(domain.to_ascii_lowercase(), k),
            None => map.remove(&domain.to_ascii_lowercase()),
        };
    }

    fn alpn_challenge(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        let map = self
            .alpn_challenges
            .read()
            .unwrap_or_else(|e| e.into_inner());
        map.get(&domain.to_ascii_lowercase()).cloned()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let wants_challenge = hello
            .alpn()
            .map(|mut protos| protos.any(|p| p == ACME_TLS_ALPN))
            .unwrap_or(false);
        if wants_challenge {
            // RFC 8737: only the challenge certificate, never the real one.
            return hello.server_name().and_then(|n| self.alpn_challenge(n));
        }
        let served = self.current.load_full()?;
        // Fail closed: an expired certificate is not served.
        if SystemTime::now() > served.info.not_after {
            return None;
        }
        Some(served.key.clone())
    }
}

/// A rustls server configuration over `store`: TLS 1.2+ (or 1.3 only), the key-exchange
/// groups of [`crate::KX_GROUPS`], session resumption (see `handshake.rs`), ALPN h2 and
/// http/1.1, plus `acme-tls/1` when TLS-ALPN-01 challenges are answered.
pub fn server_config(
    store: Arc<CertStore>,
    min_version: TlsVersion,
    acme_tls_alpn: bool,
) -> Arc<ServerConfig> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
    };
    let mut cfg = ServerConfig::builder_with_provider(crate::handshake::server_provider())
        .with_protocol_versions(versions)
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(store);
    crate::handshake::enable_resumption(&mut cfg);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if acme_tls_alpn {
        cfg.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    Arc::new(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_the_expiry_in_rfc3339() {
        let store = CertStore::new(Arc::new(Metrics::new("test")));
        assert_eq!(
            store.readiness().unwrap_err(),
            "no certificate to serve yet"
        );
        let dir = tempfile::tempdir().unwrap();
        let mut cert = crate::ensure_self_signed(
            &dir.path().join("c.pem"),
            &dir.path().join("k.pem"),
            &["localhost".to_owned()],
        )
        .unwrap();
        store.install(cert.clone(), CertSource::SelfSigned);
        assert!(store.readiness().is_ok());
        cert.info.not_after =
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        store.install(cert, CertSource::SelfSigned);
        assert_eq!(
            store.readiness().unwrap_err(),
            "certificate for localhost expired at 2023-11-14T22:13:20Z"
        );
    }
}
