//! The files under `acme.storage`: the account credentials, the certificate chain and
//! its private key, the lock, and small status files. The directory is 0700, every
//! file 0600, every write atomic (`clawveil_tls::write_private`). With a storage key,
//! the private key and the account credentials are sealed (see [`crate::seal`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clawveil_tls::{write_private, CertInfo, LoadedCert};
use serde::{Deserialize, Serialize};

use crate::error::AcmeError;
use crate::seal::{is_sealed, OpenError, SealKey};

pub(crate) const ACCOUNT: &str = "account.json";
pub(crate) const CERT: &str = "cert.pem";
pub(crate) const KEY: &str = "key.pem";
pub(crate) const LOCK: &str = "lock";
pub(crate) const SCHEDULE: &str = "schedule.json";
pub(crate) const CERT_META: &str = "cert-meta.json";

/// What is known about the stored certificate beyond its own contents (not secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct CertMeta {
    /// SHA-256 of the leaf (hex): the metadata counts only for that certificate.
    pub leaf_sha256: String,
    /// The profile it was ordered with, as the CA confirmed it.
    pub profile: Option<String>,
}

/// The account credentials and the directory they belong to.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredAccount {
    pub directory: String,
    pub credentials: instant_acme::AccountCredentials,
}

/// What the manager last decided, for `clawveil cert status` (not secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ScheduleFile {
    /// Unix seconds of the next renewal attempt.
    pub next_renewal: u64,
    /// Why then (`ari-window`, `renew-before`, `backoff`, `no-certificate`, ...).
    pub reason: String,
    /// Failed attempts in a row.
    pub failures: u32,
    pub last_error: Option<String>,
}

/// The stored certificate, if it can be served.
pub(crate) enum StoredCert {
    Missing,
    Usable(Box<LoadedCert>),
    /// Present but not servable (damaged, expired, wrong names); a new one is ordered.
    Unusable(String),
}

/// Holds the exclusive lock on the storage until dropped.
#[derive(Debug)]
pub(crate) struct StorageLock {
    _file: File,
}

#[derive(Debug)]
pub(crate) struct Storage {
    dir: PathBuf,
    key: Option<SealKey>,
}

impl Storage {
    pub(crate) fn new(cfg: &clawveil_config::Acme) -> Result<Storage, AcmeError> {
        let key = match &cfg.storage_key {
            Some(k) => Some(SealKey::from_hex(k.expose())?),
            None => None,
        };
        Ok(Storage {
            dir: cfg.storage.clone(),
            key,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the directory (0700), or tightens an existing one to 0700. Only a
    /// directory that was there before is warned about: one created here never was open.
    pub(crate) fn prepare(&self) -> Result<(), AcmeError> {
        let existed = self.dir.exists();
        if !existed {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| AcmeError::io(&self.dir, "create the storage directory", e))?;
        }
        let meta = fs::metadata(&self.dir)
            .map_err(|e| AcmeError::io(&self.dir, "inspect the storage directory", e))?;
        if meta.permissions().mode() & 0o777 != 0o700 {
            if existed && meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(dir = %self.dir.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "ACME storage was accessible to group/others; setting it to 0700");
            }
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| AcmeError::io(&self.dir, "set the storage directory to 0700", e))?;
        }
        Ok(())
    }

    /// Takes the exclusive lock, or says which process-wide lock is held.
    pub(crate) fn lock(&self) -> Result<StorageLock, AcmeError> {
        let path = self.path(LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| AcmeError::io(&path, "open the lock file", e))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(StorageLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(AcmeError::Locked { path }),
            Err(e) => Err(AcmeError::io(&path, "lock", e.into())),
        }
    }

    /// Reads a private file, opening it if sealed. `None` when it does not exist.
    /// A plaintext file found while a storage key is set is sealed in place.
    pub(crate) fn read_secret(&self, name: &str) -> Result<Option<Vec<u8>>, AcmeError> {
        let path = self.path(name);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AcmeError::io(&path, "read", e)),
        };
        match (&self.key, is_sealed(&data)) {
            (Some(key), true) => match key.open(name, &data) {
                Ok(plain) => Ok(Some(plain)),
                Err(OpenError::WrongKey) => Err(AcmeError::WrongStorageKey {
                    dir: self.dir.clone(),
                }),
                Err(OpenError::Corrupted(reason)) => Err(AcmeError::Corrupted {
                    path,
                    reason: reason.into(),
                }),
            },
            (None, true) => Err(AcmeError::SealedWithoutKey { path }),
            (Some(_), false) => {
                tracing::warn!(file = %path.display(), "found an unsealed private file while acme.storage_key is set; sealing it now");
                self.write_secret(name, &data)?;
                Ok(Some(data))
            }
            (None, false) => Ok(Some(data)),
        }
    }

    /// Writes a private file (sealed when a storage key is set), 0600, atomically.
    pub(crate) fn write_secret(&self, name: &str, plain: &[u8]) -> Result<(), AcmeError> {
        match &self.key {
            Some(key) => self.write_plain(name, &key.seal(name, plain)),
            None => self.write_plain(name, plain),
        }
    }

    /// Writes a file that needs no sealing, still 0600 and atomically.
    pub(crate) fn write_plain(&self, name: &str, data: &[u8]) -> Result<(), AcmeError> {
        let path = self.path(name);
        write_private(&path, data).map_err(|e| AcmeError::io(&path, "write", e))
    }

    pub(crate) fn load_account(&self, directory: &str) -> Result<Option<StoredAccount>, AcmeError> {
        let Some(data) = self.read_secret(ACCOUNT)? else {
            return Ok(None);
        };
        let stored: StoredAccount =
            serde_json::from_slice(&data).map_err(|e| AcmeError::Corrupted {
                path: self.path(ACCOUNT),
                reason: format!(
                    "not valid account JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        if stored.directory != directory {
            tracing::info!(stored = %stored.directory, configured = %directory, "the stored ACME account belongs to another directory; a new account will be created");
            return Ok(None);
        }
        Ok(Some(stored))
    }

    pub(crate) fn save_account(&self, account: &StoredAccount) -> Result<(), AcmeError> {
        let json = serde_json::to_vec(account).map_err(|e| AcmeError::Corrupted {
            path: self.path(ACCOUNT),
            reason: format!("cannot serialize the account: {e}"),
        })?;
        self.write_secret(ACCOUNT, &json)
    }

    /// Loads the stored certificate and key. Errors only for problems that a new
    /// certificate would not fix (wrong storage key, unreadable files).
    pub(crate) fn load_cert(&self, domains: &[String]) -> Result<StoredCert, AcmeError> {
        let cert_path = self.path(CERT);
        let chain = match fs::read(&cert_path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StoredCert::Missing),
            Err(e) => return Err(AcmeError::io(&cert_path, "read", e)),
        };
        let key = match self.read_secret(KEY) {
            Ok(Some(k)) => k,
            Ok(None) => {
                return Ok(StoredCert::Unusable(format!(
                    "{} is missing",
                    self.path(KEY).display()
                )))
            }
            Err(AcmeError::Corrupted { path, reason }) => {
                return Ok(StoredCert::Unusable(format!(
                    "{} is corrupted ({reason})",
                    path.display()
                )))
            }
            Err(e) => return Err(e),
        };
        let loaded = match LoadedCert::from_pem(&chain, &key, &cert_path, &self.path(KEY)) {
            Ok(l) => l,
            Err(e) => return Ok(StoredCert::Unusable(e.to_string())),
        };
        if let Some(missing) = missing_name(&loaded.info, domains) {
            return Ok(StoredCert::Unusable(format!(
                "the stored certificate does not cover {missing}"
            )));
        }
        Ok(StoredCert::Usable(Box::new(loaded)))
    }

    /// Stores a new certificate: the key first, then the chain (a crash in between
    /// leaves a mismatched pair, which loading detects and re-orders), then what it was
    /// ordered with.
    pub(crate) fn save_cert(
        &self,
        chain_pem: &[u8],
        key_pem: &[u8],
        profile: Option<&str>,
    ) -> Result<(), AcmeError> {
        self.write_secret(KEY, key_pem)?;
        self.write_plain(CERT, chain_pem)?;
        let Ok(leaf) = self.read_leaf(chain_pem) else {
            let _ = fs::remove_file(self.path(CERT_META));
            return Ok(());
        };
        let meta = CertMeta {
            leaf_sha256: leaf_sha256(&leaf),
            profile: profile.map(str::to_owned),
        };
        let json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
        self.write_plain(CERT_META, &json)
    }

    /// The metadata of the stored certificate, when it belongs to `leaf`.
    pub(crate) fn read_cert_meta(&self, leaf: &[u8]) -> Option<CertMeta> {
        let data = fs::read(self.path(CERT_META)).ok()?;
        let meta: CertMeta = serde_json::from_slice(&data).ok()?;
        (meta.leaf_sha256 == leaf_sha256(leaf)).then_some(meta)
    }

    fn read_leaf(&self, chain: &[u8]) -> Result<Vec<u8>, AcmeError> {
        use rustls_pki_types::pem::PemObject;
        let path = self.path(CERT);
        let leaf = rustls_pki_types::CertificateDer::pem_slice_iter(chain)
            .next()
            .ok_or_else(|| AcmeError::Corrupted {
                path: path.clone(),
                reason: "no PEM certificate".into(),
            })?
            .map_err(|e| AcmeError::Corrupted {
                path,
                reason: e.to_string(),
            })?;
        Ok(leaf.as_ref().to_vec())
    }

    /// Reads only the leaf of the stored chain (no key needed), for `cert status`, with
    /// its metadata when that belongs to it.
    pub(crate) fn read_cert_info(&self) -> Result<Option<(CertInfo, Option<CertMeta>)>, AcmeError> {
        let path = self.path(CERT);
        let chain = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AcmeError::io(&path, "read", e)),
        };
        let leaf = self.read_leaf(&chain)?;
        let info = CertInfo::parse(&leaf).map_err(|e| AcmeError::Corrupted {
            path,
            reason: e.to_string(),
        })?;
        Ok(Some((info, self.read_cert_meta(&leaf))))
    }

    /// Modification time and length of the stored chain, to notice replacements.
    pub(crate) fn cert_stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = fs::metadata(self.path(CERT)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    pub(crate) fn read_schedule(&self) -> Option<ScheduleFile> {
        let data = fs::read(self.path(SCHEDULE)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub(crate) fn write_schedule(&self, s: &ScheduleFile) {
        if let Ok(json) = serde_json::to_vec_pretty(s) {
            if let Err(e) = self.write_plain(SCHEDULE, &json) {
                tracing::warn!(error = %e, "cannot record the ACME schedule");
            }
        }
    }
}

fn leaf_sha256(leaf: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first configured domain the certificate does not name (case-insensitive).
pub(crate) fn missing_name<'a>(info: &CertInfo, domains: &'a [String]) -> Option<&'a str> {
    domains
        .iter()
        .find(|d| !info.names.iter().any(|n| n.eq_ignore_ascii_case(d)))
        .map(String::as_str)
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
