//! Typed errors. [`AcmeError`] is what the public API returns; [`OrderError`] is one
//! failed attempt at getting a certificate (retried with backoff by the manager).

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

/// The problem document type of a CA's rate limit (RFC 8555 §6.7).
pub const RATE_LIMITED: &str = "urn:ietf:params:acme:error:rateLimited";
/// The CA no longer knows the stored account (e.g. a test CA that was restarted).
pub const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";
/// The certificate named in `replaces` was already replaced (RFC 9773 §5).
pub const ALREADY_REPLACED: &str = "urn:ietf:params:acme:error:alreadyReplaced";

/// Errors of the public API. Those returned by [`start`](crate::start) can never
/// succeed without the operator changing something.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("acme.domains is empty: name at least one domain for the certificate")]
    NoDomains,
    #[error("acme.storage_key must be 32 bytes written as 64 hex characters (e.g. `openssl rand -hex 32`): {reason}")]
    BadStorageKey { reason: String },
    #[error("storage_key does not match the sealed files in {}: use the key they were sealed with, or move the directory away to start over", dir.display())]
    WrongStorageKey { dir: PathBuf },
    #[error("{} is sealed but acme.storage_key is not set: set the storage_key it was sealed with", path.display())]
    SealedWithoutKey { path: PathBuf },
    #[error("{} is corrupted ({reason}); move it away to start over", path.display())]
    Corrupted { path: PathBuf, reason: String },
    #[error("acme.ca_roots {}: {reason}", path.display())]
    CaRoots { path: PathBuf, reason: String },
    #[error("acme.eab_kid/acme.eab_hmac: {reason}")]
    Eab { reason: String },
    #[error("{}: cannot {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("another clawveil process holds the lock {}: only one process may manage this ACME storage at a time", path.display())]
    Locked { path: PathBuf },
    #[error("the ACME HTTP client could not be set up: {reason}")]
    Client { reason: String },
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error("cert renew: {reason}")]
    Renew { reason: String },
    #[error(transparent)]
    Profile(#[from] ProfileRefused),
}

/// `acme.profile` names a profile the CA does not advertise in its directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProfileRefused {
    pub profile: String,
    pub directory: String,
    /// The profiles the directory advertises, sorted (empty: it advertises none).
    pub offered: Vec<String>,
}

impl fmt::Display for ProfileRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acme.profile = {:?} is not offered by {}; ",
            self.profile, self.directory
        )?;
        match self.offered.as_slice() {
            [] => f.write_str(
                "the CA advertises no profiles (no meta.profiles in its directory): remove acme.profile",
            ),
            offered => {
                let list: Vec<String> = offered.iter().map(|p| format!("{p:?}")).collect();
                write!(f, "it offers {}", list.join(", "))
            }
        }
    }
}

impl AcmeError {
    pub(crate) fn io(path: impl Into<PathBuf>, what: &'static str, source: std::io::Error) -> Self {
        AcmeError::Io {
            path: path.into(),
            what,
            source,
        }
    }
}

/// Which step of getting a certificate failed (the `step` field of log lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fetching the CA's directory (CA unreachable, TLS trust, bad URL).
    Directory,
    /// Creating or loading the ACME account.
    Account,
    /// Placing the order.
    NewOrder,
    /// Fetching an authorization.
    Authorization,
    /// Telling the CA a challenge is ready.
    Challenge,
    /// The CA validating the challenge answers.
    Validation,
    /// Sending the CSR.
    Finalize,
    /// Downloading the certificate.
    Download,
    /// Checking the downloaded certificate against the key and the domains.
    Verify,
    /// Writing the certificate into storage.
    Store,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Directory => "directory",
            Step::Account => "account",
            Step::NewOrder => "new-order",
            Step::Authorization => "authorization",
            Step::Challenge => "challenge",
            Step::Validation => "validation",
            Step::Finalize => "finalize",
            Step::Download => "download",
            Step::Verify => "verify",
            Step::Store => "store",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed attempt to obtain a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderError {
    pub step: Step,
    /// The identifier the failure concerns, when the CA said so.
    pub domain: Option<String>,
    /// The CA's problem document type (`urn:ietf:params:acme:error:...`), if any.
    pub problem_type: Option<String>,
    /// What went wrong, with tokens and key authorizations removed.
    pub detail: String,
    /// When the CA asked us to come back (`Retry-After`), if it did.
    pub retry_after: Option<SystemTime>,
}

impl OrderError {
    pub(crate) fn new(step: Step, detail: impl Into<String>) -> Self {
        OrderError {
            step,
            domain: None,
            problem_type: None,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Builds from an instant-acme error, keeping the problem type and the identifier.
    pub(crate) fn from_acme(step: Step, err: &instant_acme::Error) -> Self {
        match err {
            instant_acme::Error::Api(p) => {
                let mut e =
                    OrderError::new(step, p.detail.clone().unwrap_or_else(|| "no detail".into()));
                e.problem_type = p.r#type.clone();
                if let Some(sub) = p.subproblems.first() {
                    e.domain = sub
                        .identifier
                        .as_ref()
                        .map(|i| i.authorized(false).to_string());
                    if let Some(d) = &sub.detail {
                        e.detail = format!("{}: {d}", e.detail);
                    }
                    if e.problem_type.is_none() {
                        e.problem_type = sub.r#type.clone();
                    }
                }
                e
            }
            other => OrderError::new(step, error_chain(other)),
        }
    }

    pub(crate) fn for_domain(mut self, domain: &str) -> Self {
        if self.domain.is_none() {
            self.domain = Some(domain.to_owned());
        }
        self
    }

    /// Whether the CA refused because of a rate limit.
    pub fn is_rate_limited(&self) -> bool {
        self.problem_type.as_deref() == Some(RATE_LIMITED)
    }

    pub(crate) fn is_account_missing(&self) -> bool {
        self.problem_type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST)
    }

    /// Removes secrets (tokens, key authorizations) the CA may quote in its detail.
    pub(crate) fn scrub(mut self, secrets: &[String]) -> Self {
        let mut longest_first: Vec<&String> = secrets.iter().filter(|s| s.len() >= 8).collect();
        longest_first.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in longest_first {
            self.detail = self.detail.replace(s.as_str(), "<redacted>");
        }
        self
    }
}

/// An error and its sources, `outer: inner: innermost` (hyper says only "client
/// error (Connect)"; the cause, such as a refused certificate, is in the sources).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ACME step {} failed", self.step)?;
        if let Some(d) = &self.domain {
            write!(f, " for {d}")?;
        }
        if self.is_rate_limited() {
            f.write_str(" (rate limited by the CA)")?;
        }
        write!(f, ": {}", self.detail)?;
        if let Some(t) = &self.problem_type {
            write!(f, " [{t}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for OrderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_step_domain_and_problem_type() {
        let mut e =
            OrderError::new(Step::Validation, "connection refused").for_domain("bot.example.com");
        e.problem_type = Some(RATE_LIMITED.into());
        let s = e.to_string();
        assert!(s.contains("validation"), "{s}");
        assert!(s.contains("bot.example.com"), "{s}");
        assert!(s.contains("rate limited"), "{s}");
        assert!(s.contains(RATE_LIMITED), "{s}");
        assert!(e.is_rate_limited());
    }

    #[test]
    fn scrub_removes_tokens() {
        let e = OrderError::new(
            Step::Validation,
            "expected abcdefghij.thumbprint got nothing",
        )
        .scrub(&["abcdefghij".into(), "abcdefghij.thumbprint".into()]);
        assert!(!e.detail.contains("abcdefghij"), "{}", e.detail);
    }
}
