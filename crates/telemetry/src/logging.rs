//! Log setup: JSON lines (default) or human-readable lines on stdout.

use tracing_subscriber::EnvFilter;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log.level {level:?} is not a valid filter: {reason}")]
    BadFilter { level: String, reason: String },
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber. `CLAWVEIL_LOG`, when set, overrides `level`
/// (same syntax: `info`, `debug`, `clawveil_proxy=trace`, …).
pub fn init_logging(json: bool, level: &str) -> Result<(), LogError> {
    let level = std::env::var("CLAWVEIL_LOG").unwrap_or_else(|_| level.to_string());
    let filter = EnvFilter::try_new(&level).map_err(|e| LogError::BadFilter {
        level: level.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_target(true);
    let res = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder.compact().try_init()
    };
    res.map_err(|_| LogError::AlreadyInstalled)
}
