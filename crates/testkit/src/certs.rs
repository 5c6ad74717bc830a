//! Certificates generated per test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A self-signed certificate for `localhost` and `127.0.0.1`, written to a directory.
pub struct TestCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_pem: String,
}

impl TestCert {
    /// Writes `cert.pem` and `key.pem` (0600) into `dir`, valid for the given names.
    pub fn write(dir: &Path, names: &[&str]) -> TestCert {
        Self::write_named(dir, "cert.pem", "key.pem", names)
    }

    pub fn write_named(dir: &Path, cert_name: &str, key_name: &str, names: &[&str]) -> TestCert {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.self_signed(&key).expect("self-signed");
        let (cert_path, key_path) = (dir.join(cert_name), dir.join(key_name));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        TestCert {
            cert: cert_path,
            key: key_path,
            cert_pem: cert.pem(),
        }
    }

    /// For localhost and 127.0.0.1.
    pub fn localhost(dir: &Path) -> TestCert {
        Self::write(dir, &["localhost", "127.0.0.1"])
    }
}
