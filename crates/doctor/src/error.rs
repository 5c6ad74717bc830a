//! What can stop the doctor (everything else becomes a line of the checklist).

use std::path::PathBuf;

/// An error of `clawveil doctor`. None of them carries file contents: a file the
/// doctor reads may hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An OpenClaw configuration is not JSON5. Only the position and the kind of
    /// error are kept, never the text around it.
    #[error("{}: not valid JSON5 at {at} ({code})", path.display())]
    Json5 {
        path: PathBuf,
        at: String,
        code: String,
    },
    /// `--fix-perms` could not change a mode.
    #[error("{}: cannot change the mode to {mode:04o}: {source}", path.display())]
    Chmod {
        path: PathBuf,
        mode: u32,
        #[source]
        source: std::io::Error,
    },
    /// The redaction rules of clawveil's configuration do not compile.
    #[error("[redact]: {0}")]
    Redact(#[from] clawveil_redact::RedactError),
}
