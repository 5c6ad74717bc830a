//! Loading a PEM certificate chain and private key into a rustls `CertifiedKey`,
//! checking that they belong together and that the certificate is valid now.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate could not be loaded. The old certificate, if any, keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: PathBuf },
    #[error("{path}: not a valid PEM file: {reason}")]
    BadPem { path: PathBuf, reason: String },
    #[error("{path}: no PEM private key found (expected -----BEGIN PRIVATE KEY----- or EC/RSA PRIVATE KEY)")]
    NoKey { path: PathBuf },
    #[error(
        "the private key does not match the certificate, or its type is unsupported: {reason}"
    )]
    KeyMismatch { reason: String },
    #[error("the certificate is not valid X.509: {reason}")]
    Parse { reason: String },
    #[error("the certificate expired at {}; refusing to serve it", clawveil_telemetry::rfc3339(*not_after))]
    Expired { not_after: SystemTime },
    #[error("the certificate is not valid before {}", clawveil_telemetry::rfc3339(*not_before))]
    NotYetValid { not_before: SystemTime },
    #[error(transparent)]
    Permission(#[from] clawveil_config::PermissionError),
    #[error("cannot generate a certificate: {reason}")]
    Generate { reason: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What operators want to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DNS names and IP addresses from the subjectAltName extension.
    pub names: Vec<String>,
    pub issuer: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl CertInfo {
    /// Reads names, issuer and validity from a DER certificate.
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        inspect(der)
    }

    /// Seconds since the Unix epoch of notAfter.
    pub fn not_after_unix(&self) -> u64 {
        unix(self.not_after)
    }

    /// The name used for metric labels: the first subjectAltName, or `unnamed`.
    pub fn primary_name(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or("unnamed")
    }

    /// Whether `now` lies inside the validity period (with 5 minutes of slack for
    /// clock skew at the start).
    pub fn check_dates(&self, now: SystemTime) -> Result<(), CertError> {
        if now > self.not_after {
            return Err(CertError::Expired {
                not_after: self.not_after,
            });
        }
        if now + Duration::from_secs(300) < self.not_before {
            return Err(CertError::NotYetValid {
                not_before: self.not_before,
            });
        }
        Ok(())
    }
}

/// A certificate ready to serve.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    pub info: CertInfo,
}

impl LoadedCert {
    /// Builds from PEM text: a chain (leaf first) and a private key. `cert_origin` and
    /// `key_origin` name where each came from, for error messages.
    pub fn from_pem(
        chain_pem: &[u8],
        key_pem: &[u8],
        cert_origin: &Path,
        key_origin: &Path,
    ) -> Result<Self, CertError> {
        if !chain_pem.windows(11).any(|w| w == b"CERTIFICATE") {
            return Err(CertError::NoCertificate {
                path: cert_origin.to_owned(),
            });
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| CertError::BadPem {
                path: cert_origin.to_owned(),
                reason: e.to_string(),
            })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls_pki_types::pem::Error::NoItemsFound => CertError::NoKey {
                path: key_origin.to_owned(),
            },
            other => CertError::BadPem {
                path: key_origin.to_owned(),
                reason: other.to_string(),
            },
        })?;
        Self::from_der(chain, key, cert_origin)
    }

    /// Builds from DER: checks the chain is non-empty, the key matches, dates are valid now.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        origin: &Path,
    ) -> Result<Self, CertError> {
        let leaf = chain.first().ok_or_else(|| CertError::NoCertificate {
            path: origin.to_owned(),
        })?;
        let info = inspect(leaf.as_ref())?;
        info.check_dates(SystemTime::now())?;
        let certified = CertifiedKey::from_der(chain, key, &crate::provider()).map_err(|e| {
            CertError::KeyMismatch {
                reason: e.to_string(),
            }
        })?;
        Ok(LoadedCert {
            key: Arc::new(certified),
            info,
        })
    }

    /// Reads `cert` (chain) and `key` from disk. The key file must not be readable by
    /// group or others unless `allow_insecure` is set (or it is root-owned and only one
    /// of this process's groups may read it: [`clawveil_config::check_private_file`]).
    pub fn from_files(cert: &Path, key: &Path, allow_insecure: bool) -> Result<Self, CertError> {
        check_private_mode(key, allow_insecure)?;
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| CertError::Read {
                path: p.to_owned(),
                source: e,
            })
        };
        Self::from_pem(&read(cert)?, &read(key)?, cert, key)
    }
}

/// Refuses a private file that group or others may read (OpenSSH-style), unless allowed,
/// with the one exception of [`clawveil_config::check_private_file`] (root:GROUP 0440).
pub fn check_private_mode(path: &Path, allow_insecure: bool) -> Result<(), CertError> {
    if let Some(warning) = clawveil_config::check_private_file(path, "private key", allow_insecure)?
    {
        tracing::warn!(%warning, "insecure permissions allowed by --allow-insecure-permissions");
    }
    Ok(())
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH
    }
}

fn inspect(der: &[u8]) -> Result<CertInfo, CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| CertError::Parse {
        reason: e.to_string(),
    })?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        names.push(std::net::IpAddr::from(a).to_string());
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        names.push(std::net::IpAddr::from(a).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let validity = cert.validity();
    Ok(CertInfo {
        names,
        issuer: cert.issuer().to_string(),
        not_before: from_unix(validity.not_before.timestamp()),
        not_after: from_unix(validity.not_after.timestamp()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(not_before: SystemTime, not_after: SystemTime) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn load(cert: &str, key: &str) -> Result<LoadedCert, CertError> {
        LoadedCert::from_pem(
            cert.as_bytes(),
            key.as_bytes(),
            Path::new("c.pem"),
            Path::new("k.pem"),
        )
    }

    #[test]
    fn expired_and_not_yet_valid_certificates_are_refused() {
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        let (c, k) = pem_pair(now - 10 * day, now - day);
        let e = load(&c, &k).unwrap_err();
        assert!(matches!(e, CertError::Expired { .. }));
        let text = e.to_string();
        let when = clawveil_telemetry::rfc3339(now - day);
        assert!(
            text.contains(&format!("expired at {}", &when[..10]))
                && text.ends_with("refusing to serve it"),
            "{text}"
        );
        let (c, k) = pem_pair(now + day, now + 10 * day);
        let e = load(&c, &k).unwrap_err();
        assert!(matches!(e, CertError::NotYetValid { .. }));
        let text = e.to_string();
        assert!(
            text.contains(&format!(
                "not valid before {}",
                &clawveil_telemetry::rfc3339(now + day)[..10]
            )) && text.ends_with('Z')
                && !text.contains("Unix"),
            "{text}"
        );
        let (c, k) = pem_pair(now - day, now + day);
        let ok = load(&c, &k).unwrap();
        assert_eq!(ok.info.names, ["localhost"]);
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        let (c, _) = pem_pair(now - day, now + day);
        let (_, other_key) = pem_pair(now - day, now + day);
        assert!(matches!(
            load(&c, &other_key),
            Err(CertError::KeyMismatch { .. })
        ));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(
            load("garbage", "garbage"),
            Err(CertError::NoCertificate { .. })
        ));
        let (c, _) = pem_pair(
            SystemTime::now(),
            SystemTime::now() + Duration::from_secs(86_400),
        );
        assert!(matches!(
            load(&c, "not a key"),
            Err(CertError::NoKey { .. })
        ));
    }
}
