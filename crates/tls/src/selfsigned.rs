//! The development certificate: generated on first start for `tls.names`, stored beside
//! its key (0600), and reused on later starts while it is valid and covers the names.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::atomic::{write_private, write_public};
use crate::load::{CertError, LoadedCert};

/// How long a generated certificate is valid.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Regenerate when less than this remains.
const RENEW_MARGIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Loads the self-signed certificate at `cert`/`key`, generating (or regenerating) it
/// when it is missing, expiring within a week, or does not cover every name in `names`.
pub fn ensure_self_signed(
    cert: &Path,
    key: &Path,
    names: &[String],
) -> Result<LoadedCert, CertError> {
    if cert.exists() && key.exists() {
        match LoadedCert::from_files(cert, key, false) {
            Ok(loaded) => {
                let covers = names
                    .iter()
                    .all(|n| loaded.info.names.iter().any(|m| m == n));
                let fresh = SystemTime::now() + RENEW_MARGIN < loaded.info.not_after;
                if covers && fresh {
                    return Ok(loaded);
                }
                tracing::info!(cert = %cert.display(), covers, fresh, "regenerating the self-signed certificate");
            }
            // An insecure key file is the operator's to fix, never silently replaced.
            Err(e @ CertError::Permission(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "the stored self-signed certificate is unusable; generating a new one")
            }
        }
    }
    generate(cert, key, names)
}

fn generate(cert: &Path, key: &Path, names: &[String]) -> Result<LoadedCert, CertError> {
    let gen_err = |e: rcgen::Error| CertError::Generate {
        reason: e.to_string(),
    };
    let key_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        "clawveil self-signed development certificate",
    );
    params.distinguished_name = dn;
    let now = SystemTime::now();
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + VALIDITY).into();
    let certificate = params.self_signed(&key_pair).map_err(gen_err)?;

    for dir in [cert.parent(), key.parent()].into_iter().flatten() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| CertError::Write {
                path: dir.to_owned(),
                source: e,
            })?;
        }
    }
    let key_pem = key_pair.serialize_pem();
    let cert_pem = certificate.pem();
    write_private(key, key_pem.as_bytes()).map_err(|e| CertError::Write {
        path: key.to_owned(),
        source: e,
    })?;
    write_public(cert, cert_pem.as_bytes()).map_err(|e| CertError::Write {
        path: cert.to_owned(),
        source: e,
    })?;
    tracing::info!(cert = %cert.display(), key = %key.display(), names = ?names, "generated a self-signed development certificate");
    LoadedCert::from_pem(cert_pem.as_bytes(), key_pem.as_bytes(), cert, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    }

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (
            dir.path().join("certs/dev.pem"),
            dir.path().join("certs/dev.key"),
        );
        let first = ensure_self_signed(&c, &k, &names()).unwrap();
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(first.info.names, names());
        let second = ensure_self_signed(&c, &k, &names()).unwrap();
        assert_eq!(first.key.cert, second.key.cert, "reused, not regenerated");
    }

    #[test]
    fn regenerates_when_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("dev.pem"), dir.path().join("dev.key"));
        let first = ensure_self_signed(&c, &k, &names()).unwrap();
        let more = vec!["bot.internal".to_string()];
        let second = ensure_self_signed(&c, &k, &more).unwrap();
        assert_ne!(first.key.cert, second.key.cert);
        assert_eq!(second.info.names, more);
    }

    #[test]
    fn refuses_a_world_readable_key_instead_of_replacing_it() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("dev.pem"), dir.path().join("dev.key"));
        ensure_self_signed(&c, &k, &names()).unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ensure_self_signed(&c, &k, &names()).unwrap_err();
        assert!(err.to_string().contains("chmod"), "{err}");
    }
}
