//! OpenSSH-style checks for private files (TLS keys, `${file:..}` secrets, ACME storage):
//! a file that group or others may access is refused unless the operator explicitly
//! allows it, in which case the caller logs the returned warning loudly.
//!
//! One exception, as PostgreSQL makes for its key file: a file that root owns and that
//! only its group may also read (no group write or execute, nothing for others, e.g.
//! `0440` or `0640`) is accepted when that group is this process's effective group or one
//! of its supplementary groups. That is how Kubernetes hands Secret volumes to a non-root
//! process (`fsGroup`: owner root, group the fsGroup, mode 0440 whatever `defaultMode`
//! says), and how `chown root:clawveil; chmod 440` shares a root-managed file with one
//! service: only root can write it, only members of that group can read it.

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
    /// Group or others have some access (`mode & 0o077 != 0`), and it is not the
    /// accepted root-owned, group-readable case (see the module documentation).
    #[error("{} ({what}) is {} by group or others (mode {mode:04o}); run: chmod 600 {}{}", path.display(), access(*mode), shell_quote(path), group_hint(*mode, *owner, *group))]
    Insecure {
        path: PathBuf,
        what: String,
        mode: u32,
        /// The file's owner uid (after following symlinks).
        owner: u32,
        /// The file's group gid.
        group: u32,
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
/// keys), or that it is owned by root, readable by its group and nothing more, and its
/// group is one of this process's groups (`root:GROUP 0440`, the Kubernetes `fsGroup`
/// layout). `what` names the file's purpose in messages (e.g. `tls.key`).
///
/// With `allow_insecure`, a too-open file is accepted and `Ok(Some(warning))` returned;
/// the caller must log the warning. Symlinks are followed and the target is judged
/// (Kubernetes secret volumes: `name -> ..data/name`, `..data -> ..2024_..`).
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
    if let Some((mode, owner, group)) = mode_of(&meta) {
        if mode & 0o077 != 0 && !root_group_readable(mode, owner, group, &process_groups()) {
            if !allow_insecure {
                return Err(PermissionError::Insecure {
                    path: path.to_owned(),
                    what: what.to_owned(),
                    mode,
                    owner,
                    group,
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

/// Permission bits (`st_mode & 0o7777`), owner uid and group gid.
#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> Option<(u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.mode() & 0o7777, meta.uid(), meta.gid()))
}

#[cfg(not(unix))]
fn mode_of(_meta: &std::fs::Metadata) -> Option<(u32, u32, u32)> {
    None
}

/// The effective gid and the supplementary gids of this process.
#[cfg(unix)]
fn process_groups() -> Vec<u32> {
    let mut gids = vec![rustix::process::getegid().as_raw()];
    // On failure only the effective group counts: refusing is the safe side.
    if let Ok(more) = rustix::process::getgroups() {
        gids.extend(more.into_iter().map(|g| g.as_raw()));
    }
    gids.sort_unstable();
    gids.dedup();
    gids
}

#[cfg(not(unix))]
fn process_groups() -> Vec<u32> {
    Vec::new()
}

/// The one group-readable layout accepted: owned by root (so only root can change it),
/// the group may read and do nothing else, others nothing, and the group is one of
/// `process_groups` (so the readers are this process and its peers in that group).
fn root_group_readable(mode: u32, owner: u32, group: u32, process_groups: &[u32]) -> bool {
    owner == 0 && mode & 0o077 == 0o040 && process_groups.contains(&group)
}

/// For a file refused although only its group may read it: why the root:GROUP
/// exception did not apply.
fn group_hint(mode: u32, owner: u32, group: u32) -> String {
    if mode & 0o077 != 0o040 {
        return String::new();
    }
    let why = if owner != 0 {
        format!("it is owned by uid {owner}, not root")
    } else {
        let gids: Vec<String> = process_groups().iter().map(u32::to_string).collect();
        format!(
            "its group {group} is not one of this process's groups ({})",
            gids.join(", ")
        )
    };
    format!(
        "; group read alone is accepted only for a file owned by root whose group this \
         process is in (e.g. chown root:GROUP and chmod 440, as Kubernetes fsGroup does), \
         but {why}"
    )
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
        let p = file_with_mode(dir.path(), "k", 0o644);
        let w = check_private_file(&p, "tls.key", true)
            .unwrap()
            .expect("warning");
        assert_eq!(w.mode, 0o644);
        let text = w.to_string();
        assert!(
            text.contains("mode 0644") && text.contains("chmod 600"),
            "{text}"
        );
    }

    #[test]
    fn root_group_rule() {
        let groups = [1000, 65532];
        // Owned by root, group read only, a group of the process: accepted.
        for mode in [0o440, 0o640, 0o040] {
            assert!(root_group_readable(mode, 0, 65532, &groups), "{mode:o}");
            assert!(root_group_readable(mode, 0, 1000, &groups), "{mode:o}");
        }
        // Anything more for the group, anything for others, another owner or another group.
        for (mode, owner, group) in [
            (0o460, 0, 65532),
            (0o450, 0, 65532),
            (0o444, 0, 65532),
            (0o441, 0, 65532),
            (0o404, 0, 65532),
            (0o440, 1000, 65532),
            (0o440, 65532, 65532),
            (0o440, 0, 4242),
            (0o640, 0, 4242),
        ] {
            assert!(
                !root_group_readable(mode, owner, group, &groups),
                "{mode:o} {owner}:{group}"
            );
        }
        assert!(!root_group_readable(0o440, 0, 0, &[]));
    }

    /// chown needs root; elsewhere these cases are covered by `root_group_rule` only.
    fn as_root() -> bool {
        let root = rustix::process::geteuid().is_root();
        if !root {
            eprintln!("skipped: chown needs root");
        }
        root
    }

    fn owned(p: &Path, uid: u32, gid: u32, mode: u32) {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A gid this process is not in (to play "another group").
    fn foreign_gid() -> u32 {
        let mine = process_groups();
        (4242..).find(|g| !mine.contains(g)).unwrap()
    }

    #[test]
    fn root_owned_file_readable_by_our_group_is_accepted() {
        if !as_root() {
            return;
        }
        let egid = rustix::process::getegid().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let p = file_with_mode(dir.path(), "k", 0o600);
        for mode in [0o440, 0o640] {
            owned(&p, 0, egid, mode);
            assert!(
                check_private_file(&p, "metrics.token", false)
                    .unwrap()
                    .is_none(),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn other_group_layouts_are_refused() {
        if !as_root() {
            return;
        }
        let egid = rustix::process::getegid().as_raw();
        let other = foreign_gid();
        let dir = tempfile::tempdir().unwrap();
        let p = file_with_mode(dir.path(), "k", 0o600);
        let refused = |uid, gid, mode| {
            owned(&p, uid, gid, mode);
            check_private_file(&p, "metrics.token", false)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let msg = refused(1000, egid, 0o440);
        assert!(
            msg.contains("(mode 0440); run: chmod 600")
                && msg.contains("chown root:GROUP and chmod 440")
                && msg.ends_with("but it is owned by uid 1000, not root"),
            "{msg}"
        );
        let msg = refused(0, other, 0o640);
        assert!(
            msg.contains("mode 0640")
                && msg.contains(&format!(
                    "but its group {other} is not one of this process's groups ({egid}"
                )),
            "{msg}"
        );
        for mode in [0o460, 0o444, 0o450] {
            let msg = refused(0, egid, mode);
            assert!(
                msg.contains(&format!(
                    "(mode {mode:04o}); run: chmod 600 {}",
                    p.display()
                )) && !msg.contains("chown"),
                "{msg}"
            );
        }
    }

    /// Kubernetes' Secret volume: `name -> ..data/name`, `..data -> ..<timestamp>`, the
    /// file itself in the timestamped directory. The target decides, not the symlinks
    /// (which are 0777).
    #[test]
    fn kubernetes_symlink_layout_is_judged_by_its_target() {
        if !as_root() {
            return;
        }
        use std::os::unix::fs::symlink;
        let egid = rustix::process::getegid().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let stamped = dir.path().join("..2025_01_02_03_04_05.123456789");
        std::fs::create_dir(&stamped).unwrap();
        let target = file_with_mode(&stamped, "metrics_token", 0o400);
        symlink("..2025_01_02_03_04_05.123456789", dir.path().join("..data")).unwrap();
        let p = dir.path().join("metrics_token");
        symlink("..data/metrics_token", &p).unwrap();

        owned(&target, 0, egid, 0o440);
        assert!(check_private_file(&p, "metrics.token", false)
            .unwrap()
            .is_none());
        owned(&target, 0, egid, 0o444);
        let msg = check_private_file(&p, "metrics.token", false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("mode 0444"), "{msg}");
        owned(&target, 0, foreign_gid(), 0o440);
        let msg = check_private_file(&p, "metrics.token", false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("is not one of this process's groups"), "{msg}");
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
