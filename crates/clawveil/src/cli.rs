//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A TLS-terminating, fail-closed reverse proxy for chat bots.
///
/// clawveil sits in front of a bot listening on plain HTTP (by default 127.0.0.1:8080),
/// terminates TLS, forwards requests byte for byte with forwarding headers, limits and
/// timeouts, and exports Prometheus metrics. Everything is configured in one TOML file;
/// see proxy.toml in the repository for a commented example.
#[derive(Debug, Parser)]
#[command(
    name = "clawveil",
    version,
    about,
    long_about,
    propagate_version = true
)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The options of `run`, which is what `clawveil` without a subcommand does.
    #[command(flatten)]
    pub run: ConfigArgs,
}

impl Cli {
    /// The subcommand to carry out: `run` unless another one is named.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

const AFTER_HELP: &str = "\
Examples:
  clawveil                                 run with ./proxy.toml
  clawveil --config /etc/clawveil/proxy.toml
                                           run with that file (the same as `clawveil run --config ...`)
  clawveil check --config proxy.toml       validate and print the effective config (secrets masked)
  clawveil cert status                     the certificate served, and when it expires or renews

Exit status:
  0  stopped by SIGTERM/SIGINT after draining (or the command succeeded)
  1  failed while running
  2  invalid configuration, including certificate files that cannot be read or used
     (what `clawveil check` reports)
  3  could not start: a port already in use, ACME storage locked or unwritable, ...

Signals: SIGHUP reloads certificates and secrets; SIGTERM/SIGINT stop accepting, finish
in-flight requests, exit 0.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default: `clawveil --config x` is `clawveil run --config x`).
    Run(ConfigArgs),
    /// Validate the configuration (and certificate files) and print the effective
    /// configuration with every secret masked. Exits 2 when it is invalid.
    Check(ConfigArgs),
    /// Run the configured redaction rules over a file (or stdin) and print the result,
    /// to try a custom rule before deploying it. Uses `[redact]` and `log.hash_key` of
    /// the configuration when it exists, the built-in rules otherwise.
    Redact(RedactArgs),
    /// Certificates: the one served (or stored by ACME), when it expires and when it
    /// renews; or renew an ACME certificate now.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Audit the bot's host: its files at rest, who can reach it without clawveil,
    /// plain-http model URLs, identifiers in its logs, and clawveil's own state. Prints
    /// a checklist (never a secret value); exits 1 when any check fails.
    Doctor(DoctorArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The bot's directory (repeatable). Default: ~/.openclaw, and /etc/openclaw when
    /// it exists.
    #[arg(long = "openclaw-dir", value_name = "DIR")]
    pub openclaw_dirs: Vec<PathBuf>,
    /// The bot's configuration, when it is not <DIR>/openclaw.json.
    #[arg(long, env = "OPENCLAW_CONFIG_PATH", value_name = "FILE")]
    pub openclaw_config: Option<PathBuf>,
    /// clawveil's configuration; its checks are skipped when the file does not exist.
    #[arg(short, long, env = "CLAWVEIL_CONFIG", default_value = "proxy.toml")]
    pub config: PathBuf,
    /// Print the checklist as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Remove group and other access from the files and directories flagged (files
    /// become 0600, directories 0700) before checking. Nothing else is modified.
    #[arg(long)]
    pub fix_perms: bool,
    /// A further log file or directory to scan (repeatable).
    #[arg(long = "log-path", value_name = "PATH")]
    pub log_paths: Vec<PathBuf>,
    /// Scan at most this many log and session files, newest first.
    #[arg(long, default_value_t = 200)]
    pub log_max_files: usize,
    /// Read at most this many MiB of logs in all.
    #[arg(long, default_value_t = 64)]
    pub log_max_mib: u64,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// The certificate: names, issuer, when it expires; with ACME also the next renewal
    /// and why, and recent failures.
    Status(ConfigArgs),
    /// Order a new certificate now. When clawveil is running on the same storage it
    /// does the renewal (and swaps the certificate in without a restart); otherwise this
    /// command answers the challenge itself on listen.http / listen.https.
    Renew {
        #[command(flatten)]
        config: ConfigArgs,
        /// How long to wait for the renewal.
        #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RedactArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The input; standard input when absent.
    pub file: Option<PathBuf>,
    /// How to read the input: `application/json`, `application/x-www-form-urlencoded`,
    /// `text/plain`, … By default JSON when it parses as JSON, text otherwise.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Also list, on stderr, which rule matched where (byte offset and length, never
    /// the value).
    #[arg(long)]
    pub explain: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(short, long, env = "CLAWVEIL_CONFIG", default_value = "proxy.toml")]
    pub config: PathBuf,
    /// Accept private keys and secret files that group or others can read. Loudly
    /// warned about; meant for broken volume mounts, not for production. Not needed for
    /// a root-owned file that only its group may read when clawveil runs with that group
    /// (`chown root:GROUP`, `chmod 440`; Kubernetes Secrets with fsGroup): that is accepted.
    #[arg(long)]
    pub allow_insecure_permissions: bool,
}
