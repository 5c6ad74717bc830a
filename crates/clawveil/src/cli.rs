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
#[command(
    after_help = "Examples:\n  clawveil                          run with ./proxy.toml\n  clawveil run --config /etc/clawveil/proxy.toml\n  clawveil check --config proxy.toml  validate and print the effective config (secrets masked)\n\nSignals: SIGHUP reloads certificates and secrets; SIGTERM/SIGINT stop accepting, finish in-flight requests, exit 0."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (the default when no subcommand is given).
    Run(ConfigArgs),
    /// Validate the configuration (and certificate files) and print the effective
    /// configuration with every secret masked. Exits 2 when it is invalid.
    Check(ConfigArgs),
}

impl Default for Command {
    fn default() -> Self {
        Command::Run(ConfigArgs::default())
    }
}

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(short, long, env = "CLAWVEIL_CONFIG", default_value = "proxy.toml")]
    pub config: PathBuf,
    /// Accept private keys and secret files that group or others can read. Loudly
    /// warned about; meant for broken volume mounts, not for production.
    #[arg(long)]
    pub allow_insecure_permissions: bool,
}

impl Default for ConfigArgs {
    fn default() -> Self {
        ConfigArgs {
            config: std::env::var_os("CLAWVEIL_CONFIG")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("proxy.toml")),
            allow_insecure_permissions: false,
        }
    }
}
