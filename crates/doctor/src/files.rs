//! The bot's files at rest: modes of everything under its directories, plain-text keys
//! in `.env` files, and `--fix-perms`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::check::{shell_quote, Check, PermChange, Section, Status};
use crate::error::DoctorError;

/// How deep and how wide the walk goes: a workspace may hold whole repositories.
const MAX_DEPTH: usize = 8;
const MAX_ENTRIES: usize = 50_000;
/// Directories and "other" files named one per line up to this many; more are summed up.
const MAX_LINES: usize = 5;

/// What a file under the bot's directory is, for the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Config,
    Credential,
    Env,
    /// Logs and session transcripts.
    Log,
    Other,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::Config => "config file",
            Kind::Credential => "credential file",
            Kind::Env => ".env file",
            Kind::Log => "log/session file",
            Kind::Other => "file",
        }
    }
}

/// One file or directory found under a root (symbolic links are not followed).
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub modified: Option<std::time::SystemTime>,
}

/// Everything under one root.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub entries: Vec<Entry>,
    /// The walk stopped at [`MAX_ENTRIES`].
    pub truncated: bool,
}

/// Walks `root` (the root itself included).
pub fn walk(root: &Path) -> Tree {
    let mut tree = Tree::default();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((path, depth)) = stack.pop() {
        if tree.entries.len() >= MAX_ENTRIES {
            tree.truncated = true;
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if !(ft.is_dir() || ft.is_file()) {
            continue;
        }
        let kind = if ft.is_dir() {
            Kind::Dir
        } else {
            classify(root, &path)
        };
        tree.entries.push(Entry {
            path: path.clone(),
            kind,
            mode: meta.permissions().mode() & 0o7777,
            modified: meta.modified().ok(),
        });
        if ft.is_dir() && depth < MAX_DEPTH {
            if let Ok(rd) = std::fs::read_dir(&path) {
                let mut children: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                // popped in name order
                children.sort_by(|a, b| b.cmp(a));
                stack.extend(children.into_iter().map(|c| (c, depth + 1)));
            }
        }
    }
    tree
}

fn classify(root: &Path, path: &Path) -> Kind {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let rel = path.strip_prefix(root).unwrap_or(path);
    let in_dir = |d: &str| {
        rel.parent()
            .is_some_and(|p| p.components().any(|c| c.as_os_str() == d))
    };
    let ext = |e: &str| name.ends_with(e);
    if name == ".env" || name.starts_with(".env.") || ext(".env") {
        Kind::Env
    } else if in_dir("credentials")
        || in_dir("secrets")
        || ext(".pem")
        || ext(".key")
        || name.contains("auth-profiles")
        || name.contains("credential")
        || name.contains("token")
    {
        Kind::Credential
    } else if ext(".log") || ext(".jsonl") || ext(".ndjson") || name.contains(".log.") {
        Kind::Log
    } else if name.starts_with("openclaw.json")
        || ext(".json5")
        || ext(".yaml")
        || ext(".yml")
        || ext(".toml")
        || (ext(".json") && rel.components().count() == 1)
    {
        Kind::Config
    } else {
        Kind::Other
    }
}

/// Who besides the owner may do what, for a message: `group and others can read it`.
fn access(mode: u32) -> String {
    let who = match (mode & 0o070 != 0, mode & 0o007 != 0) {
        (true, true) => "group and others",
        (true, false) => "group",
        _ => "others",
    };
    let can = if mode & 0o044 != 0 {
        "read"
    } else if mode & 0o022 != 0 {
        "write"
    } else {
        "enter"
    };
    format!("{who} can {can} it")
}

fn open(e: &Entry) -> bool {
    e.mode & 0o077 != 0
}

/// The mode `--fix-perms` gives an entry: group and others lose everything.
fn tightened(mode: u32) -> u32 {
    mode & !0o077
}

/// The checklist lines for the modes under one root.
pub fn check_modes(root: &Path, tree: &Tree) -> Vec<Check> {
    let mut out = Vec::new();
    let (mut dirs, mut others) = (Vec::new(), Vec::new());
    for e in tree.entries.iter().filter(|e| open(e)) {
        match e.kind {
            Kind::Config | Kind::Credential | Kind::Env => out.push(
                Check::new(
                    Section::AtRest,
                    "perms.file",
                    Status::Fail,
                    format!(
                        "{}: {} with mode {:04o}: {}",
                        e.path.display(),
                        e.kind.noun(),
                        e.mode,
                        access(e.mode)
                    ),
                )
                .fix(format!("chmod 600 {}", shell_quote(&e.path)))
                .path(&e.path),
            ),
            Kind::Dir => dirs.push(e),
            Kind::Log | Kind::Other => others.push(e),
        }
    }
    let world_writable = |e: &&Entry| e.mode & 0o002 != 0;
    if dirs.len() <= MAX_LINES {
        for d in &dirs {
            let status = if world_writable(d) {
                Status::Fail
            } else {
                Status::Warn
            };
            out.push(
                Check::new(
                    Section::AtRest,
                    "perms.dir",
                    status,
                    format!(
                        "{}: directory with mode {:04o}: {}",
                        d.path.display(),
                        d.mode,
                        access(d.mode)
                    ),
                )
                .fix(format!("chmod 700 {}", shell_quote(&d.path)))
                .path(&d.path),
            );
        }
    } else {
        let status = if dirs.iter().any(world_writable) {
            Status::Fail
        } else {
            Status::Warn
        };
        out.push(
            Check::new(
                Section::AtRest,
                "perms.dir",
                status,
                format!(
                    "{} directories under {} are open to group or others (e.g. {}, mode {:04o})",
                    dirs.len(),
                    root.display(),
                    dirs[0].path.display(),
                    dirs[0].mode
                ),
            )
            .fix(fix_all(root))
            .path(root),
        );
    }
    if !others.is_empty() {
        let logs = others.iter().filter(|e| e.kind == Kind::Log).count();
        let status = if logs > 0 { Status::Fail } else { Status::Warn };
        let first = others[0];
        let what = if logs > 0 {
            format!("{} files ({logs} logs or sessions)", others.len())
        } else {
            format!("{} files", others.len())
        };
        out.push(
            Check::new(
                Section::AtRest,
                "perms.other",
                status,
                format!(
                    "{what} under {} are open to group or others (e.g. {}, mode {:04o})",
                    root.display(),
                    first.path.display(),
                    first.mode
                ),
            )
            .fix(fix_all(root))
            .path(root),
        );
    }
    if tree.truncated {
        out.push(
            Check::new(
                Section::AtRest,
                "perms.truncated",
                Status::Skipped,
                format!(
                    "{}: stopped after {MAX_ENTRIES} entries; the rest was not checked",
                    root.display()
                ),
            )
            .path(root),
        );
    }
    if out.is_empty() {
        out.push(
            Check::new(
                Section::AtRest,
                "perms",
                Status::Pass,
                format!(
                    "{}: no file or directory is open to group or others",
                    root.display()
                ),
            )
            .path(root),
        );
    }
    out
}

fn fix_all(root: &Path) -> String {
    format!(
        "clawveil doctor --fix-perms (or chmod -R go-rwx {})",
        shell_quote(root)
    )
}

/// What `--fix-perms` would change under these trees.
pub fn plan(trees: &[&Tree]) -> Vec<(PathBuf, u32, u32)> {
    trees
        .iter()
        .flat_map(|t| t.entries.iter())
        .filter(|e| open(e))
        .map(|e| (e.path.clone(), e.mode, tightened(e.mode)))
        .collect()
}

/// Applies a plan: changes modes, nothing else (no contents, no owners; symbolic links
/// were never followed).
pub fn apply(plan: &[(PathBuf, u32, u32)]) -> Result<Vec<PermChange>, DoctorError> {
    let mut done = Vec::with_capacity(plan.len());
    for (path, from, to) in plan {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(*to)).map_err(|source| {
            DoctorError::Chmod {
                path: path.clone(),
                mode: *to,
                source,
            }
        })?;
        done.push(PermChange {
            path: path.clone(),
            from: format!("{from:04o}"),
            to: format!("{to:04o}"),
        });
    }
    Ok(done)
}

/// The names of keys a `.env` file holds in plain text (`OPENAI_API_KEY`), never values.
pub fn env_api_keys(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.starts_with('#') {
            continue;
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        let upper = name.to_ascii_uppercase();
        let key_like = upper.ends_with("API_KEY") || upper.ends_with("APIKEY");
        if key_like && crate::openclaw::secret_form(value) == crate::openclaw::SecretForm::PlainText
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// The checklist lines for `.env` files holding model keys.
pub fn check_env_files(tree: &Tree) -> Vec<Check> {
    let mut out = Vec::new();
    for e in tree.entries.iter().filter(|e| e.kind == Kind::Env) {
        let Ok(text) = std::fs::read_to_string(&e.path) else {
            continue;
        };
        let names = env_api_keys(&text);
        if names.is_empty() {
            continue;
        }
        out.push(
            Check::new(
                Section::AtRest,
                "secrets.env",
                Status::Warn,
                format!(
                    "{}: model key(s) in plain text: {}",
                    e.path.display(),
                    names.join(", ")
                ),
            )
            .fix(crate::INJECT_FIX)
            .path(&e.path),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_name_and_place() {
        let r = Path::new("/h/.openclaw");
        let k = |p: &str| classify(r, &r.join(p));
        assert_eq!(k("openclaw.json"), Kind::Config);
        assert_eq!(k("openclaw.json.bak.1"), Kind::Config);
        assert_eq!(k(".env"), Kind::Env);
        assert_eq!(k("credentials/whatsapp/creds.json"), Kind::Credential);
        assert_eq!(k("agents/main/agent/auth-profiles.json"), Kind::Credential);
        assert_eq!(k("agents/main/sessions/abc.jsonl"), Kind::Log);
        assert_eq!(k("logs/gateway.log.1"), Kind::Log);
        assert_eq!(k("agents/main/sessions/sessions.json"), Kind::Other);
    }

    #[test]
    fn access_words() {
        assert_eq!(access(0o644), "group and others can read it");
        assert_eq!(access(0o620), "group can write it");
        assert_eq!(access(0o701), "others can enter it");
        assert_eq!(tightened(0o755), 0o700);
        assert_eq!(tightened(0o644), 0o600);
    }

    #[test]
    fn env_names_only_plain_keys() {
        let t = "# c\nexport OPENAI_API_KEY=\"sk-x\"\nDASHSCOPE_APIKEY=${FROM_ENV}\nEMPTY_API_KEY=\nOPENCLAW_GATEWAY_TOKEN=abc\n";
        assert_eq!(env_api_keys(t), ["OPENAI_API_KEY"]);
    }
}
