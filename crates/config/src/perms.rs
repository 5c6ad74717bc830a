//! OpenSSH-style checks for private files (TLS keys, `${file:..}` secrets, ACME storage):
//! a file that group or others may access is refused unless the operator explicitly
//! allows it, in which case the caller logs the returned warning loudly.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a private file is refused.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    /// The file does not exist.
    #[error("{} ({what}) does not exist", path.display())]
    Missing { path: PathBuf, what: String },
    /// The path exists but is not a regular file (e.g. a directory).
    #[error("{} ({what}) is not a regular file", path.display())]
    NotAFile { path: PathBuf, what: String },
    /// The file exists but cannot be read by this process.
    #[error("{} ({what}) cannot be read: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Group or others have some access (`mode & 0o077 != 0`).
    #[error("{} ({what}) is {} by group or others (mode {mode:04o}); run: chmod 600 {}", path.display(), access(*mode), shell_quote(path))]
    Insecure {
        path: PathBuf,
        what: String,
        mode: u32,
    },
}

impl PermissionError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PermissionError::Missing { path, .. }
            | PermissionError::NotAFile { path, .. }
            | PermissionError::Unreadable { path, .. }
            | PermissionError::Insecure { path, .. } => path,
        }
    }
}

/// A too-open private file that was accepted because insecure permissions were allowed
/// (`--allow-insecure-permissions`). `Display` is the text to log as a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionWarning {
    pub path: PathBuf,
    /// What the file is for, e.g. `tls.key` or `acme.storage_key`.
    pub what: String,
    /// The permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

impl fmt::Display for PermissionWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) is {} by group or others (mode {:04o}); accepted only because insecure permissions are allowed; fix it: chmod 600 {}",
            self.path.display(),
            self.what,
            access(self.mode),
            self.mode,
            shell_quote(&self.path)
        )
    }
}

/// Checks that `path` exists, is a readable regular file, and that neither group nor
/// others have any access to it (`mode & 0o077 == 0`, as OpenSSH demands of private
/// keys). `what` names the file's purpose in messages (e.g. `tls.key`).
///
/// With `allow_insecure`, a too-open file is accepted and `Ok(Some(warning))` returned;
/// the caller must log the warning. Symlinks are followed (Kubernetes secret volumes).
pub fn check_private_file(
    path: &Path,
    what: &str,
    allow_insecure: bool,
) -> Result<Option<PermissionWarning>, PermissionError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PermissionError::Missing {
                path: path.to_owned(),
                what: what.to_owned(),
            })
        }
        Err(source) => {
            return Err(PermissionError::Unreadable {
                path: path.to_owned(),
                what: what.to_owned(),
                source,
            })
        }
    };
    if !meta.is_file() {
        return Err(PermissionError::NotAFile {
            path: path.to_owned(),
            what: what.to_owned(),
        });
    }
    let mut warning = None;
    if let Some(mode) = mode_of(&meta) {
        if mode & 0o077 != 0 {
            if !allow_insecure {
                return Err(PermissionError::Insecure {
                    path: path.to_owned(),
                    what: what.to_owned(),
                    mode,
                });
            }
            warning = Some(PermissionWarning {
                path: path.to_owned(),
                what: what.to_owned(),
                mode,
            });
        }
    }
    if let Err(source) = std::fs::File::open(path) {
        return Err(PermissionError::Unreadable {
            path: path.to_owned(),
            what: what.to_owned(),
            source,
        });
    }
    Ok(warning)
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    Some(meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

fn access(mode: u32) -> &'static str {
    if mode & 0o044 != 0 {
        "readable"
    } else {
        "accessible"
    }
}

/// Quotes a path for a copy-pasteable shell command when it needs quoting.
fn shell_quote(path: &Path) -> String {
    let s = path.display().to_string();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file_with_mode(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn private_file_passes() {
        let dir = tempfile::tempdir().unwrap();
        let p = file_with_mode(dir.path(), "k", 0o600);
        assert!(check_private_file(&p, "tls.key", false).unwrap().is_none());
        let p = file_with_mode(dir.path(), "r", 0o400);
        assert!(check_private_file(&p, "tls.key", false).unwrap().is_none());
    }

    #[test]
    fn group_readable_is_refused_with_chmod_hint() {
        let dir = tempfile::tempdir().unwrap();
        let p = file_with_mode(dir.path(), "k", 0o644);
        let msg = check_private_file(&p, "tls.key", false)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("(tls.key) is readable by group or others (mode 0644)"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("run: chmod 600 {}", p.display())),
            "{msg}"
        );
        let p = file_with_mode(dir.path(), "w", 0o620);
        let msg = check_private_file(&p, "x", false).unwrap_err().to_string();
        assert!(msg.contains("mode 0620"), "{msg}");
    }

    #[test]
    fn allow_insecure_returns_warning() {
        let dir = tempfile::tempdir().unwrap();
        let p = file_with_mode(dir.path(), "k", 0o640);
        let w = check_private_file(&p, "tls.key", true)
            .unwrap()
            .expect("warning");
        assert_eq!(w.mode, 0o640);
        let text = w.to_string();
        assert!(
            text.contains("mode 0640") && text.contains("chmod 600"),
            "{text}"
        );
    }

    #[test]
    fn missing_and_directory_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.key");
        let msg = check_private_file(&missing, "tls.key", true)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("nope.key (tls.key) does not exist"), "{msg}");
        let msg = check_private_file(dir.path(), "tls.key", true)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("is not a regular file"), "{msg}");
    }

    #[test]
    fn odd_paths_are_quoted_in_the_hint() {
        assert_eq!(
            shell_quote(Path::new("certs/privkey.pem")),
            "certs/privkey.pem"
        );
        assert_eq!(shell_quote(Path::new("my keys/k.pem")), "'my keys/k.pem'");
    }
}
