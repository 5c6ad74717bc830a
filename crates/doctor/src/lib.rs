//! `clawveil doctor`: audits a chat bot's host, the way an operator would, for every
//! way the bot's data can leak around clawveil.
//!
//! * **At rest**: files under the bot's directories (`~/.openclaw`, `/etc/openclaw`)
//!   that group or others may open (config, credential and `.env` files fail, each with
//!   the `chmod` that fixes it), directories that are not 0700, and keys kept in plain
//!   text in `openclaw.json` (JSON5) or `.env` files.
//! * **Exposure**: the gateway's `gateway.bind` and `gateway.auth.mode`, sockets
//!   listening off loopback on the gateway's port or clawveil's upstream port (Linux
//!   `/proc/net/tcp{,6}`), and clawveil's metrics listener off loopback without a token.
//! * **In transit**: model `baseUrl`s in plain http to another host, and whether the
//!   bot's `proxy.proxyUrl` is clawveil's egress listener.
//! * **Logs**: the newest log and session files, within limits, run through clawveil's
//!   redaction engine: counts per rule and per file.
//! * **clawveil**: the result of `clawveil check`, the certificate's days left, and
//!   whether ACME storage is sealed.
//!
//! The doctor never prints a secret value, only where it is and which rule found it,
//! and never modifies anything except, with `--fix-perms`, the modes of the files and
//! directories it flagged (group and others lose all access; contents, owners and
//! times stay as they are).
//!
//! The checks that need the crates above this one (the proxy's and egress's validation,
//! the redaction rules of a configuration, the ACME store) are plugged in by the binary
//! through [`Hooks`], so this crate depends only on config, tls, redact and sockets.

#![forbid(unsafe_code)]

mod check;
mod error;
mod exposure;
mod files;
mod logs;
pub mod openclaw;
mod own;
mod transit;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clawveil_config::{Acme, Config};
use clawveil_redact::{Engine, EngineConfig};

pub use check::{Check, Outcome, PermChange, RuleCount, Section, Status, Summary};
pub use error::DoctorError;
pub use logs::Limits as LogLimits;
pub use transit::Endpoint;

/// The fix for a model key the bot holds.
pub(crate) const INJECT_FIX: &str = "let clawveil hold it: [[egress.target]] inject_headers = { Authorization = \"Bearer ${file:/run/secrets/model_key}\" }, then remove it here";

/// An error from a hook: whatever the crate behind it returns.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Reads when the stored ACME certificate expires (`None`: none stored yet).
pub type AcmeNotAfter = fn(&Acme) -> Result<Option<SystemTime>, HookError>;

/// What the binary plugs in from the crates above this one.
#[derive(Debug, Clone, Copy)]
pub struct Hooks {
    /// The validation `clawveil check` runs after loading (proxy and egress).
    pub validate: fn(&Config) -> Result<(), HookError>,
    /// The redaction rules of a configuration.
    pub engine_config: fn(&Config) -> EngineConfig,
    /// When the stored ACME certificate expires.
    pub acme_not_after: Option<AcmeNotAfter>,
}

impl Default for Hooks {
    /// Loading only, the built-in redaction rules, no ACME store.
    fn default() -> Self {
        Hooks {
            validate: |_| Ok(()),
            engine_config: |_| EngineConfig::default(),
            acme_not_after: None,
        }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bot's directories (see [`default_openclaw_dirs`]).
    pub openclaw_dirs: Vec<PathBuf>,
    /// `$OPENCLAW_CONFIG_PATH`: the bot's configuration when it is not
    /// `<dir>/openclaw.json`.
    pub openclaw_config: Option<PathBuf>,
    /// clawveil's configuration (`proxy.toml`); skipped when it does not exist.
    pub config: PathBuf,
    /// Further log files or directories to scan.
    pub log_paths: Vec<PathBuf>,
    pub log_limits: LogLimits,
    /// Tighten modes before checking.
    pub fix_perms: bool,
    /// Where `tcp` and `tcp6` are: `/proc/net`.
    pub proc_net: PathBuf,
}

impl Options {
    /// Checks `openclaw_dirs` against `config`, with the default limits.
    pub fn new(openclaw_dirs: Vec<PathBuf>, config: PathBuf) -> Self {
        Options {
            openclaw_dirs,
            openclaw_config: None,
            config,
            log_paths: Vec::new(),
            log_limits: LogLimits::default(),
            fix_perms: false,
            proc_net: PathBuf::from("/proc/net"),
        }
    }
}

/// `~/.openclaw`, and `/etc/openclaw` when it exists.
pub fn default_openclaw_dirs(home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = home.map(|h| h.join(".openclaw")).into_iter().collect();
    let etc = Path::new("/etc/openclaw");
    if etc.is_dir() {
        dirs.push(etc.to_path_buf());
    }
    dirs
}

/// Runs every check (after `--fix-perms`, when asked).
pub fn run(opts: &Options, hooks: &Hooks) -> Result<Outcome, DoctorError> {
    let mut checks = Vec::new();
    let roots: Vec<&PathBuf> = opts.openclaw_dirs.iter().filter(|d| d.is_dir()).collect();
    for missing in opts.openclaw_dirs.iter().filter(|d| !d.is_dir()) {
        checks.push(Check::new(
            Section::AtRest,
            "openclaw.dir",
            Status::Skipped,
            format!("{}: no such directory", missing.display()),
        ));
    }
    let mut trees: Vec<files::Tree> = roots.iter().map(|r| files::walk(r)).collect();
    let mut fixed = Vec::new();
    if opts.fix_perms {
        let plan = files::plan(&trees.iter().collect::<Vec<_>>());
        fixed = files::apply(&plan)?;
        trees = roots.iter().map(|r| files::walk(r)).collect();
    }

    // at rest
    for (root, tree) in roots.iter().zip(&trees) {
        checks.extend(files::check_modes(root, tree));
        checks.extend(files::check_env_files(tree));
    }
    let mut bots = Vec::new();
    let paths = openclaw::config_paths(opts.openclaw_config.as_deref(), &opts.openclaw_dirs);
    if paths.is_empty() {
        checks.push(Check::new(
            Section::AtRest,
            "openclaw.config",
            Status::Skipped,
            "no openclaw.json found: gateway and model checks skipped (set OPENCLAW_CONFIG_PATH or --openclaw-dir)",
        ));
    }
    for path in paths {
        match openclaw::OpenClawConfig::load(&path) {
            Ok(cfg) => {
                checks.extend(plain_text_secrets(&cfg));
                bots.push(cfg);
            }
            Err(e) => checks.push(
                Check::new(
                    Section::AtRest,
                    "openclaw.config",
                    Status::Fail,
                    e.to_string(),
                )
                .fix("fix the file (openclaw doctor), then run clawveil doctor again")
                .path(&path),
            ),
        }
    }

    // clawveil's own configuration, which the other sections compare against
    let (cfg, own) = own::load(&opts.config, hooks);
    checks.extend(own);

    // exposure
    let mut watched: Vec<exposure::Watched> = Vec::new();
    for bot in &bots {
        checks.extend(exposure::check_gateway(bot));
        watched.push(gateway_port(bot.gateway_port()));
    }
    if bots.is_empty() {
        watched.push(gateway_port(openclaw::DEFAULT_GATEWAY_PORT));
    }
    if let Some(port) = cfg.as_ref().and_then(upstream_port) {
        watched.push(exposure::Watched {
            port,
            what: "the bot, clawveil's upstream.url".into(),
            fix: format!("bind the bot to 127.0.0.1:{port} only"),
        });
    }
    watched.sort_by_key(|w| w.port);
    watched.dedup_by_key(|w| w.port);
    checks.extend(exposure::check_listeners(&opts.proc_net, &watched));
    checks.push(match &cfg {
        Some(cfg) => exposure::check_metrics(cfg),
        None => Check::new(
            Section::Exposure,
            "metrics",
            Status::Skipped,
            "clawveil's metrics listener: no valid clawveil configuration",
        ),
    });

    // in transit
    let egress = cfg
        .as_ref()
        .and_then(|c| c.egress.as_ref())
        .map(|e| e.listen);
    for bot in &bots {
        checks.extend(transit::check_models(bot, egress));
        checks.push(transit::check_proxy(bot, egress));
    }

    // logs
    let engine_cfg = cfg
        .as_ref()
        .map_or_else(EngineConfig::default, |c| (hooks.engine_config)(c));
    let engine = Engine::new(&engine_cfg)?;
    let (selected, left_out) =
        logs::select(log_files(&trees, &bots, &opts.log_paths), opts.log_limits);
    checks.extend(logs::scan(&engine, &selected, left_out, opts.log_limits));

    // clawveil itself
    if let Some(cfg) = &cfg {
        checks.extend(own::check_cert(cfg, hooks, SystemTime::now()));
        checks.push(own::check_sealed(cfg));
    }
    Ok(Outcome::new(checks, fixed))
}

fn gateway_port(port: u16) -> exposure::Watched {
    exposure::Watched {
        port,
        what: "the OpenClaw gateway".into(),
        fix: "set gateway.bind = \"loopback\" in openclaw.json and restart the gateway".into(),
    }
}

/// The upstream's port when the upstream is on this host.
fn upstream_port(cfg: &Config) -> Option<u16> {
    let ep = Endpoint::parse(&cfg.upstream.url)?;
    ep.is_loopback().then(|| ep.port_or_default()).flatten()
}

/// Every log and session file: under the bot's directories, `logging.file` of its
/// configurations, and `extra` (files, or directories to walk).
fn log_files(
    trees: &[files::Tree],
    bots: &[openclaw::OpenClawConfig],
    extra: &[PathBuf],
) -> Vec<logs::LogFile> {
    let mut more: Vec<files::Tree> = Vec::new();
    for p in extra
        .iter()
        .cloned()
        .chain(bots.iter().filter_map(|b| b.log_file().map(PathBuf::from)))
    {
        let mut t = files::walk(&p);
        if p.is_file() {
            // named explicitly: a log whatever its name
            for e in &mut t.entries {
                e.kind = files::Kind::Log;
            }
        }
        more.push(t);
    }
    trees
        .iter()
        .chain(&more)
        .flat_map(|t| &t.entries)
        .filter(|e| e.kind == files::Kind::Log)
        .map(|e| logs::LogFile {
            path: e.path.clone(),
            modified: e.modified,
        })
        .collect()
}

/// Secret-named keys of an OpenClaw configuration kept in plain text.
fn plain_text_secrets(cfg: &openclaw::OpenClawConfig) -> Vec<Check> {
    let file = cfg.path.display();
    let found = cfg.plain_text_secrets();
    if found.is_empty() {
        return vec![Check::new(
            Section::AtRest,
            "secrets.config",
            Status::Pass,
            format!("{file}: no key or token in plain text"),
        )
        .path(&cfg.path)];
    }
    found
        .into_iter()
        .map(|key| {
            let model_key = key.starts_with("models.providers.") && key.ends_with(".apiKey");
            let check = Check::new(
                Section::AtRest,
                "secrets.config",
                Status::Warn,
                format!("{file}: {key} is stored in plain text"),
            )
            .path(&cfg.path);
            if model_key {
                check.fix(INJECT_FIX)
            } else {
                check.fix(format!(
                    "write \"${{{}}}\" instead and keep the value in the service's environment or ~/.openclaw/.env (mode 0600)",
                    env_name(&key)
                ))
            }
        })
        .collect()
}

/// A suggested environment variable name for a configuration key:
/// `gateway.auth.token` → `OPENCLAW_GATEWAY_TOKEN`.
fn env_name(key: &str) -> String {
    let mut out = String::from("OPENCLAW");
    for part in key.split('.').filter(|p| *p != "auth") {
        out.push('_');
        let mut prev_lower = false;
        for ch in part.chars() {
            if ch.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
            out.push(if ch.is_ascii_alphanumeric() {
                ch.to_ascii_uppercase()
            } else {
                '_'
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert_eq!(env_name("gateway.auth.token"), "OPENCLAW_GATEWAY_TOKEN");
        assert_eq!(
            env_name("channels.dingtalk.appSecret"),
            "OPENCLAW_CHANNELS_DINGTALK_APP_SECRET"
        );
    }
}
