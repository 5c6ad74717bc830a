//! `ConfigError`: every problem with a `proxy.toml` names the file, the line and column,
//! the key (a dotted path such as `route[2].verify`) and what would be valid.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::perms::PermissionError;

/// A configuration error. `Display` reads
/// `proxy.toml:3:1: listen.httpz: unknown key; valid keys in [listen]: https, http, metrics`.
#[derive(Debug)]
pub struct ConfigError {
    /// The config file (empty when there is none, e.g. a secret resolved on its own).
    pub file: PathBuf,
    /// 1-based line of the key (or of the closest enclosing table), when known.
    pub line: Option<u32>,
    /// 1-based column (in characters), when known.
    pub column: Option<u32>,
    /// Dotted key path, e.g. `listen.https`, `route[2].verify` (empty for syntax errors
    /// that precede any key).
    pub key: String,
    /// What is wrong, with the hint.
    pub kind: Box<ErrorKind>,
}

impl ConfigError {
    /// The process exit status for a configuration error: 2.
    pub fn exit_code(&self) -> i32 {
        2
    }

    /// What is wrong (without the location).
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display().to_string();
        let mut sep = "";
        if !file.is_empty() {
            f.write_str(&file)?;
            sep = ": ";
        }
        if let Some(line) = self.line {
            let prefix = if file.is_empty() { "line " } else { ":" };
            write!(f, "{prefix}{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
            sep = ": ";
        }
        if !self.key.is_empty() {
            write!(f, "{sep}{}", self.key)?;
            sep = ": ";
        }
        write!(f, "{sep}{}", self.kind)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

/// The kinds of configuration error. Each message says what would be valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read the config file: {0}")]
    Read(#[source] std::io::Error),
    /// Not valid TOML.
    #[error("TOML syntax error: {message}{}", near.as_ref().map(|n| format!(" (at `{n}`)")).unwrap_or_default())]
    Syntax {
        message: String,
        near: Option<String>,
    },
    /// A key this section does not have.
    #[error("unknown key; valid keys in {section}: {}{}", valid.join(", "), suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        section: String,
        valid: Vec<&'static str>,
        suggestion: Option<&'static str>,
    },
    /// A value of the wrong TOML type.
    #[error("wrong type: {found}; expected {expected}")]
    WrongType { found: String, expected: String },
    /// A required key is absent.
    #[error("required key is missing; {hint}")]
    Missing { hint: String },
    /// Not an `ip:port` socket address.
    #[error("{value:?} is not an ip:port address ({reason}); expected e.g. {suggestion:?}")]
    BadAddress {
        value: String,
        reason: String,
        suggestion: String,
    },
    /// A listener that must be on loopback is not.
    #[error("{addr} is not a loopback address; {why}; use e.g. \"127.0.0.1:{}\"", addr.port())]
    NotLoopback { addr: SocketAddr, why: &'static str },
    /// Metrics exposed beyond loopback without a token.
    #[error("{addr} is not a loopback address, so metrics.token is required (add token = \"${{env:CLAWVEIL_METRICS_TOKEN}}\" under [metrics]), or bind metrics to \"127.0.0.1:{}\"", addr.port())]
    MetricsNeedsToken { addr: SocketAddr },
    /// Not a duration.
    #[error("{value:?} is not a valid duration ({reason}); expected a number with a unit, e.g. \"500ms\", \"30s\", \"1h\", \"30d\"")]
    BadDuration { value: String, reason: String },
    /// Not a size.
    #[error("{value:?} is not a valid size ({reason}); expected e.g. \"16KiB\", \"10MiB\" or an integer number of bytes")]
    BadSize { value: String, reason: String },
    /// Not one of a fixed set of values.
    #[error("{value:?} is not valid; expected one of: {}", quoted(valid))]
    BadEnum {
        value: String,
        valid: &'static [&'static str],
    },
    /// Not an acceptable URL.
    #[error("{value:?} is not a valid URL ({reason}); expected {expected}")]
    BadUrl {
        value: String,
        reason: String,
        expected: &'static str,
    },
    /// A value that is wrong for a reason specific to its key.
    #[error("{value:?} {reason}; expected {expected}")]
    BadValue {
        value: String,
        reason: String,
        expected: String,
    },
    /// A secret value (never shown) that is wrong.
    #[error("the secret {reason}; expected {expected}")]
    BadSecret { reason: String, expected: String },
    /// A list or string that must not be empty.
    #[error("must not be empty; {hint}")]
    Empty { hint: String },
    /// A name or value used twice.
    #[error("{value:?} is used twice (first at {first}); {what} must be unique")]
    Duplicate {
        value: String,
        first: String,
        what: &'static str,
    },
    /// Keys that do not fit together.
    #[error("{reason}; {hint}")]
    Conflict { reason: String, hint: String },
    /// A regular expression that does not compile or matches too much.
    #[error("pattern {pattern:?} {reason}")]
    BadRegex { pattern: String, reason: String },
    /// A file the configuration names does not exist.
    #[error("{} does not exist or cannot be read ({source}); {hint}", path.display())]
    FileNotFound {
        path: PathBuf,
        hint: String,
        #[source]
        source: std::io::Error,
    },
    /// A private file (key, `${file:..}` secret) that is missing or too open.
    #[error(transparent)]
    Permission(#[from] PermissionError),
    /// A `${env:NAME}` whose variable is not set.
    #[error("environment variable {var} is not set (referenced as ${{env:{var}}}); set it or change the key")]
    EnvMissing { var: String },
    /// A `${env:NAME}` whose variable is set but empty or not UTF-8.
    #[error("environment variable {var} {reason}")]
    EnvInvalid { var: String, reason: &'static str },
    /// A `${file:..}` that cannot be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    SecretFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A `${file:..}` that is empty (after trimming the trailing newline).
    #[error("secret file {} is empty", path.display())]
    SecretFileEmpty { path: PathBuf },
    /// A key or table that this version parses but does not enforce: refused rather
    /// than accepted and ignored (`[egress]`, `upstream.fallback`).
    #[error("not supported yet: {what}; {hint}")]
    NotSupported { what: String, hint: String },
    /// A number, size or duration outside the range that makes sense for its key.
    #[error("{value:?} is out of range; expected {min} to {max}")]
    OutOfRange {
        /// As written in the file.
        value: String,
        /// The smallest valid value, as it would be written (`1KiB`, `1ms`, `0s`).
        min: String,
        /// The largest valid value, as it would be written (`1MiB`, `24h`).
        max: String,
    },
    /// A malformed `${...}` template.
    #[error("bad secret template: {reason}; expected \"${{env:NAME}}\", \"${{file:/path}}\", text containing them, or a literal")]
    BadTemplate { reason: String },
}

/// `"a", "b", "c"`
pub(crate) fn quoted(valid: &[&str]) -> String {
    valid
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
