//! Errors raised while building an [`Engine`](crate::Engine) from its configuration.

use thiserror::Error;

/// Why an [`EngineConfig`](crate::EngineConfig) could not be turned into an engine.
///
/// Redaction itself never fails: what cannot be redacted safely is omitted
/// (see [`OmitReason`](crate::OmitReason)).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RedactError {
    /// `redact.builtin` names a rule that does not exist.
    #[error("unknown built-in redaction rule `{name}`; valid names are: {}", .valid.join(", "))]
    UnknownBuiltin {
        /// The name as configured.
        name: String,
        /// Every valid built-in name.
        valid: &'static [&'static str],
    },
    /// A custom rule's `pattern` is not a valid regular expression, or matches the
    /// empty string (which would match everywhere).
    #[error("redaction rule `{rule}`: invalid pattern: {message}")]
    BadPattern {
        /// The custom rule's name.
        rule: String,
        /// What is wrong with the pattern.
        message: String,
    },
    /// A custom rule's name is empty, too long, uses characters other than
    /// `A-Z a-z 0-9 - _ .`, or collides with a built-in or another custom rule.
    #[error("redaction rule name `{name}` is invalid: {reason}")]
    BadRuleName {
        /// The name as configured.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An entry of `redact.json_keys` is empty or too long.
    #[error("redact.json_keys entry `{key}` is invalid: {reason}")]
    BadJsonKey {
        /// The key as configured.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `log.hash_key` is unusable.
    #[error("log.hash_key is invalid: {reason}")]
    BadHashKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A replace mode other than `mask` or `hash`.
    #[error("unknown replace mode `{0}`; valid modes are: mask, hash")]
    UnknownReplace(String),
}
