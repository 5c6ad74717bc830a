//! Log setup: JSON lines or human-readable lines on stdout (human-readable on a
//! terminal unless `log.format` says otherwise).

use tracing_subscriber::EnvFilter;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log.level {level:?} is not a valid filter: {reason}")]
    BadFilter { level: String, reason: String },
    #[error("a logger is already installed")]
    AlreadyInstalled,
    #[error("cannot start the log writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The filter for a plain level: clawveil's own events (and the access events) at
/// `level`, every dependency at most at `info`. Libraries' debug and trace output
/// (hyper, h2, rustls) is not written for operators and is not redacted, so it never
/// reaches the log unless a directive asks for it by name (`h2=trace`).
pub fn filter_directives(level: &str) -> String {
    let level = level.trim();
    if level.contains('=') || level.contains(',') {
        return level.to_owned();
    }
    let deps = match level {
        "debug" | "trace" => "info",
        other => other,
    };
    format!("{deps},clawveil={level},access={level}")
}

/// Whether to write JSON lines: `configured` (`log.format` is `json`: `Some(true)`,
/// `pretty`: `Some(false)`) when the file says; otherwise JSON unless stdout is a
/// terminal, so a person trying clawveil reads lines and a container's log collector
/// gets JSON.
pub fn json_lines(configured: Option<bool>, stdout_is_terminal: bool) -> bool {
    configured.unwrap_or(!stdout_is_terminal)
}

/// Whether stdout is a terminal (for [`json_lines`]).
pub fn stdout_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}

/// Keeps the log writer thread alive; dropping it writes every line still queued.
/// Hold it until the process exits.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] crate::linebuf::Flusher);

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogGuard")
    }
}

/// Installs the global subscriber. `CLAWVEIL_LOG`, when set, overrides `level`
/// (same syntax: `info`, `debug`, `clawveil_proxy=trace`, …).
///
/// Lines are written by a dedicated thread in batches (see [`crate::linebuf`]), so
/// request threads never wait on stdout and a busy proxy writes many lines per
/// system call. Nothing is dropped: when stdout cannot keep up, logging waits.
/// JSON access events are formatted by [`crate::jsonline`].
pub fn init_logging(json: bool, level: &str) -> Result<LogGuard, LogError> {
    let ansi = stdout_is_terminal();
    let (writer, guard) =
        crate::linebuf::lines(Box::new(std::io::stdout())).map_err(LogError::Thread)?;
    let level =
        filter_directives(&std::env::var("CLAWVEIL_LOG").unwrap_or_else(|_| level.to_string()));
    let filter = EnvFilter::try_new(&level).map_err(|e| LogError::BadFilter {
        level: level.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(true);
    let res = if json {
        builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(crate::jsonline::JsonLines::new())
            .try_init()
    } else {
        builder.compact().try_init()
    };
    res.map_err(|_| LogError::AlreadyInstalled)?;
    Ok(LogGuard(guard))
}

#[cfg(test)]
mod tests {
    use super::{filter_directives, json_lines};

    #[test]
    fn a_terminal_gets_lines_a_pipe_gets_json_and_the_file_wins() {
        assert!(!json_lines(None, true));
        assert!(json_lines(None, false));
        for terminal in [true, false] {
            assert!(json_lines(Some(true), terminal));
            assert!(!json_lines(Some(false), terminal));
        }
    }

    #[test]
    fn dependencies_never_log_below_info_unless_named() {
        assert_eq!(
            filter_directives("trace"),
            "info,clawveil=trace,access=trace"
        );
        assert_eq!(filter_directives("warn"), "warn,clawveil=warn,access=warn");
        assert_eq!(filter_directives("h2=trace"), "h2=trace");
    }
}
