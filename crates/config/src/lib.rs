//! # clawveil-config
//!
//! Everything that turns a `proxy.toml` into a validated [`Config`]. This crate owns:
//!
//! - **parsing**, in two stages: serde structs with `deny_unknown_fields` that mirror the
//!   file (`raw`), then validation into the typed model ([`Config`] and friends) holding
//!   `SocketAddr`, `Duration`, byte counts and resolved [`Secret`]s. Nothing downstream
//!   sees TOML, and validation finishes before anything binds.
//! - **errors** that name the file, line, column and key and say what would be valid:
//!   `proxy.toml:3:1: listen.httpz: unknown key; valid keys in [listen]: https, http, metrics`.
//!   A [`ConfigError`] makes the process exit with [`ConfigError::exit_code`] (2).
//! - **secrets**: `${env:NAME}` and `${file:/path}` templates ([`secret`]), masked in
//!   `Debug`, `Display` and [`Config::effective_toml`], re-read on SIGHUP; the binary
//!   polls [`Config::secret_files`] to reload on a change too.
//! - **permission checks** for private files, OpenSSH-style ([`check_private_file`]),
//!   applied to `tls.key` (files mode) and every `${file:..}` secret, and used by other
//!   crates for the files they own.
//! - **the configuration reference** in the README ([`reference_markdown`]), tested
//!   against the raw structs.
//! - **enforce or refuse**: a documented key that the running binary does not enforce yet
//!   (`[egress]`, `upstream.fallback`; see [`unsupported_keys`]) is refused with
//!   [`ErrorKind::NotSupported`] before anything else is checked, never accepted and
//!   ignored. Its validation code stays, ready for when the key is enforced: `[egress]`
//!   is switched on by the one constant `EGRESS_SUPPORTED` in `reference.rs`.
//!
//! Relative paths (`tls.cert`, `acme.storage`, `${file:certs/x}`, ...) are kept relative
//! and so resolve against the current directory of the process, as nginx resolves them
//! against its prefix; they are not relative to the config file.
//!
//! ```
//! let opts = clawveil_config::LoadOptions::default();
//! let src = "[listen]\nhttps = \"127.0.0.1:8443\"\n";
//! let config = clawveil_config::parse(src, "proxy.toml".as_ref(), &opts).unwrap();
//! assert_eq!(config.listen.metrics.unwrap().to_string(), "127.0.0.1:9464");
//! assert_eq!(config.routes[0].name, "default");
//!
//! let err = clawveil_config::parse("[listen]\nhttps = \"127.0.0.1:8443\"\nhttpz = 1\n", "proxy.toml".as_ref(), &opts)
//!     .unwrap_err();
//! assert!(err.to_string().starts_with("proxy.toml:3:1: listen.httpz: unknown key"));
//! ```

mod effective;
mod error;
mod model;
mod perms;
mod raw;
mod reference;
pub mod secret;
mod span;
mod validate;
mod values;

use std::path::Path;

pub use error::{ConfigError, ErrorKind};
pub use model::*;
pub use perms::{check_private_file, PermissionError, PermissionWarning};
pub use reference::{reference_markdown, supported_keys, unsupported_keys};
pub use secret::Secret;

use span::{join_path, section_path, Seg, Tree};

/// How to load a configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Accept `tls.key` and `${file:..}` secrets that group or others may read (beyond
    /// the root-owned, group-readable files [`check_private_file`] accepts anyway); each is
    /// reported in [`Config::warnings`] for the caller to log loudly.
    pub allow_insecure_permissions: bool,
}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: None,
        column: None,
        key: String::new(),
        kind: Box::new(ErrorKind::Read(e)),
    })?;
    parse(&src, path, opts)
}

/// Validates configuration text; `path` is used in messages and as [`Config::source`].
pub fn parse(src: &str, path: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
    let tree = Tree::parse(src).map_err(|e| syntax_error(src, path, &e))?;
    refuse_unsupported(path, &tree)?;
    parse_tree(src, path, &tree, opts)
}

/// `parse` without refusing the keys that are not supported yet, for the tests of their
/// validation code.
#[cfg(test)]
pub(crate) fn parse_unsupported(src: &str) -> Result<Config, ConfigError> {
    let path = Path::new("proxy.toml");
    let tree = Tree::parse(src).map_err(|e| syntax_error(src, path, &e))?;
    parse_tree(src, path, &tree, &LoadOptions::default())
}

fn parse_tree(
    src: &str,
    path: &Path,
    tree: &Tree<'_>,
    opts: &LoadOptions,
) -> Result<Config, ConfigError> {
    let raw = toml::from_str::<raw::RawConfig>(src)
        .map_err(|e| deserialize_error(src, path, tree, &e))?;
    validate::validate(raw, path, tree, opts)
}

/// Refuses the first (in file order) key or table that the reference marks as not
/// supported yet. Runs before deserializing, so that anything inside such a table, known
/// or not, gets "not supported yet" rather than "unknown key".
fn refuse_unsupported(path: &Path, tree: &Tree<'_>) -> Result<(), ConfigError> {
    let first = reference::refused()
        .filter_map(|(key, not_yet)| {
            let written = tree.find_written(&key)?;
            Some((tree.locate(&written), written, not_yet))
        })
        .min_by_key(|(at, _, _)| *at);
    match first {
        None => Ok(()),
        Some(((line, column), key, not_yet)) => Err(ConfigError {
            file: path.to_owned(),
            line: Some(line),
            column: Some(column),
            key,
            kind: Box::new(ErrorKind::NotSupported {
                what: not_yet.what.to_owned(),
                hint: not_yet.hint.to_owned(),
            }),
        }),
    }
}

fn syntax_error(src: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = span::line_col(src, span.start);
    let near = src
        .get(span.clone())
        .filter(|s| !s.is_empty() && s.len() <= 40 && !s.contains('\n'))
        .map(str::to_owned);
    ConfigError {
        file: path.to_owned(),
        line: Some(line),
        column: Some(column),
        key: String::new(),
        kind: Box::new(ErrorKind::Syntax {
            message: e.message().trim().to_owned(),
            near,
        }),
    }
}

/// Turns a serde error (unknown key, wrong type) into a located error naming the key.
fn deserialize_error(src: &str, path: &Path, tree: &Tree<'_>, e: &toml::de::Error) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = span::line_col(src, span.start);
    let segs = tree.path_at(span.start);
    let message = e.message().trim();
    let kind = if message.starts_with("unknown field") {
        let parent: Vec<Seg> = segs[..segs.len().saturating_sub(1)].to_vec();
        let section = section_path(&parent);
        let valid = reference::valid_keys(&section);
        let typed = match segs.last() {
            Some(Seg::Key(k)) => k.as_str(),
            _ => "",
        };
        let suggestion = valid
            .iter()
            .copied()
            .filter(|v| edit_distance(v, typed) <= 2)
            .min_by_key(|v| edit_distance(v, typed));
        ErrorKind::UnknownKey {
            section: reference::heading(&section),
            valid,
            suggestion,
        }
    } else {
        let found = message
            .strip_prefix("invalid type: ")
            .or_else(|| message.strip_prefix("invalid value: "))
            .and_then(|m| m.split(", expected").next())
            .unwrap_or(message);
        ErrorKind::WrongType {
            found: found.to_owned(),
            expected: reference::expected_type(&section_path(&segs)),
        }
    };
    ConfigError {
        file: path.to_owned(),
        line: Some(line),
        column: Some(column),
        key: join_path(&segs),
        kind: Box::new(kind),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}
