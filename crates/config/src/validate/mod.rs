//! Stage two: raw structs → validated `Config`. Every check reports file, line, key and
//! what would be valid through [`Ctx::err`].

mod egress;
mod metrics;
mod routes;
mod server;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{ConfigError, ErrorKind};
use crate::perms::PermissionWarning;
use crate::raw::RawConfig;
use crate::secret::{Origin, Secret};
use crate::span::Tree;
use crate::values::{self, Schemes};
use crate::{Config, LoadOptions};

/// The valid ranges of bounded keys, `(min, max)` inclusive; the reference states each
/// one in its key's meaning. Timeouts start at 1ms (zero is refused as "must be longer
/// than zero"); `limits.drain_timeout` may be zero (no drain).
pub(crate) mod range {
    use std::time::Duration;

    type Durations = (Duration, Duration);
    const MS: Duration = Duration::from_millis(1);
    const fn minutes(n: u64) -> Duration {
        Duration::from_secs(n * 60)
    }
    const fn hours(n: u64) -> Duration {
        Duration::from_secs(n * 3600)
    }

    pub(crate) const HEADER_READ_TIMEOUT: Durations = (MS, minutes(10));
    /// `limits.request_timeout`, `upstream.response_timeout`, `limits.idle_timeout`,
    /// `limits.tunnel_idle_timeout`, `route.max_skew`.
    pub(crate) const UP_TO_A_DAY: Durations = (MS, hours(24));
    pub(crate) const CONNECT_TIMEOUT: Durations = (MS, minutes(5));
    pub(crate) const DRAIN_TIMEOUT: Durations = (Duration::ZERO, hours(1));
    pub(crate) const WATCH_INTERVAL: Durations = (Duration::from_millis(100), hours(1));
    /// `upstream.exposure_check`, besides `"0s"` (off).
    pub(crate) const EXPOSURE_CHECK: Durations = (Duration::from_millis(100), hours(1));
    pub(crate) const MAX_HEADER_BYTES: (u64, u64) = (1 << 10, 1 << 20);
    pub(crate) const MAX_BODY: (u64, u64) = (1, 64 << 30);
    pub(crate) const BODY_MAX: (u64, u64) = (1, 16 << 20);
    pub(crate) const MAX_CONNECTIONS: (usize, usize) = (1, 1_000_000);
}

/// What every check needs: where errors point, and the options.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
    tree: &'a Tree<'a>,
    opts: &'a LoadOptions,
    warnings: Vec<PermissionWarning>,
}

/// Validates `raw` (parsed from `tree`'s source) into a `Config`.
pub(crate) fn validate(
    raw: RawConfig,
    file: &Path,
    tree: &Tree<'_>,
    opts: &LoadOptions,
) -> Result<Config, ConfigError> {
    let mut cx = Ctx {
        file,
        tree,
        opts,
        warnings: Vec::new(),
    };
    let trusted_proxies = cx.cidrs("trusted_proxies", raw.trusted_proxies.as_deref())?;
    let listen = server::listen(&cx, &raw.listen)?;
    let upstream = server::upstream(&cx, &raw.upstream)?;
    let tls = tls::tls(&mut cx, &raw.tls)?;
    let acme = raw
        .acme
        .as_ref()
        .map(|a| tls::acme(&mut cx, a))
        .transpose()?;
    let limits = server::limits(&cx, &raw.limits)?;
    let log = server::log(&mut cx, &raw.log)?;
    let redact = routes::redact(&cx, &raw.redact)?;
    let metrics = metrics::metrics(&mut cx, &raw.metrics)?;
    let routes = routes::routes(&mut cx, raw.route.as_deref())?;
    let egress = raw
        .egress
        .as_ref()
        .map(|e| egress::egress(&mut cx, e))
        .transpose()?;
    let config = Config {
        source: file.to_owned(),
        trusted_proxies,
        listen,
        upstream,
        tls,
        acme,
        limits,
        log,
        redact,
        metrics,
        routes,
        egress,
        warnings: std::mem::take(&mut cx.warnings),
    };
    server::cross_checks(&cx, &config)?;
    Ok(config)
}

impl Ctx<'_> {
    /// An error at `key`, located in the source.
    pub(crate) fn err(&self, key: &str, kind: ErrorKind) -> ConfigError {
        let (line, column) = self.tree.locate(key);
        ConfigError {
            file: self.file.to_owned(),
            line: Some(line),
            column: Some(column),
            key: key.to_owned(),
            kind: Box::new(kind),
        }
    }

    pub(crate) fn allow_insecure(&self) -> bool {
        self.opts.allow_insecure_permissions
    }

    pub(crate) fn warn(&mut self, warning: Option<PermissionWarning>) {
        self.warnings.extend(warning);
    }

    /// Resolves a secret template at `key`.
    pub(crate) fn secret(&mut self, key: &str, template: &str) -> Result<Secret, ConfigError> {
        let (line, column) = self.tree.locate(key);
        let origin = Origin {
            file: self.file.to_owned(),
            key: key.to_owned(),
            line: Some(line),
            column: Some(column),
            allow_insecure: self.opts.allow_insecure_permissions,
        };
        let secret = Secret::resolve_at(template, origin)?;
        self.warnings.extend(secret.warnings().iter().cloned());
        Ok(secret)
    }

    pub(crate) fn opt_secret(
        &mut self,
        key: &str,
        template: Option<&str>,
    ) -> Result<Option<Secret>, ConfigError> {
        template.map(|t| self.secret(key, t)).transpose()
    }

    pub(crate) fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => values::parse_duration(v).map_err(|k| self.err(key, k)),
        }
    }

    /// A duration in `min..=max`. Zero is refused as "must be longer than zero" unless
    /// `min` is zero; anything else outside the range as [`ErrorKind::OutOfRange`].
    pub(crate) fn duration_in(
        &self,
        key: &str,
        value: Option<&str>,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Result<Duration, ConfigError> {
        debug_assert!((min..=max).contains(&default), "{key}");
        let Some(v) = value else {
            return Ok(default);
        };
        let d = if min.is_zero() {
            values::parse_duration_or_zero(v)
        } else {
            values::parse_duration(v)
        };
        let d = d.map_err(|k| self.err(key, k))?;
        self.in_range(key, v, d, (min, max), duration_text)
    }

    /// A size in `min..=max` (zero is refused by the size parser itself).
    pub(crate) fn size_in(
        &self,
        key: &str,
        value: Option<&toml::Value>,
        default: u64,
        (min, max): (u64, u64),
    ) -> Result<u64, ConfigError> {
        debug_assert!((min..=max).contains(&default), "{key}");
        let Some(v) = value else {
            return Ok(default);
        };
        let n = values::parse_size(v).map_err(|k| self.err(key, k))?;
        let shown = match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.in_range(key, &shown, n, (min, max), size_text)
    }

    /// Refuses `value` (written as `shown`) outside `min..=max`, naming the bounds as
    /// `show` writes them.
    pub(crate) fn in_range<T: PartialOrd + Copy>(
        &self,
        key: &str,
        shown: &str,
        value: T,
        (min, max): (T, T),
        show: fn(T) -> String,
    ) -> Result<T, ConfigError> {
        if min <= value && value <= max {
            return Ok(value);
        }
        Err(self.err(
            key,
            ErrorKind::OutOfRange {
                value: shown.to_owned(),
                min: show(min),
                max: show(max),
            },
        ))
    }

    pub(crate) fn addr(
        &self,
        key: &str,
        value: &str,
        example_port: u16,
    ) -> Result<SocketAddr, ConfigError> {
        values::parse_addr(value, example_port).map_err(|k| self.err(key, k))
    }

    pub(crate) fn choice<T>(
        &self,
        key: &str,
        value: Option<&str>,
        default: T,
        names: &'static [&'static str],
        from_name: fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => values::parse_enum(v, names, from_name).map_err(|k| self.err(key, k)),
        }
    }

    pub(crate) fn url(
        &self,
        key: &str,
        value: &str,
        schemes: Schemes,
    ) -> Result<String, ConfigError> {
        values::parse_url(value, schemes).map_err(|k| self.err(key, k))?;
        Ok(value.to_owned())
    }

    pub(crate) fn cidrs(
        &self,
        key: &str,
        list: Option<&[String]>,
    ) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let list = list.unwrap_or_default();
        let parsed = list
            .iter()
            .enumerate()
            .map(|(i, v)| values::parse_cidr(v).map_err(|k| self.err(&format!("{key}[{i}]"), k)));
        parsed.collect()
    }

    pub(crate) fn path(value: Option<&str>, default: &str) -> PathBuf {
        PathBuf::from(value.unwrap_or(default))
    }

    /// A required key.
    pub(crate) fn required<'v>(
        &self,
        key: &str,
        value: Option<&'v String>,
        hint: &str,
    ) -> Result<&'v str, ConfigError> {
        match value {
            None => Err(self.err(
                key,
                ErrorKind::Missing {
                    hint: hint.to_owned(),
                },
            )),
            Some(v) if v.trim().is_empty() => Err(self.err(
                key,
                ErrorKind::Empty {
                    hint: hint.to_owned(),
                },
            )),
            Some(v) => Ok(v),
        }
    }

    /// Refuses the second occurrence of a value; `at(i)` names the key of element `i`.
    pub(crate) fn unique<'v>(
        &self,
        values: impl IntoIterator<Item = &'v str>,
        at: impl Fn(usize) -> String,
        what: &'static str,
    ) -> Result<(), ConfigError> {
        let mut seen: Vec<&str> = Vec::new();
        for (i, v) in values.into_iter().enumerate() {
            if let Some(first) = seen.iter().position(|s| *s == v) {
                return Err(self.err(
                    &at(i),
                    ErrorKind::Duplicate {
                        value: v.to_owned(),
                        first: at(first),
                        what,
                    },
                ));
            }
            seen.push(v);
        }
        Ok(())
    }
}

/// A duration bound as it would be written, in hours at most: `24h`, `10m`, `100ms`.
fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, n) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms % n == 0 && ms > 0 {
            return format!("{}{unit}", ms / n);
        }
    }
    if ms == 0 {
        return "0s".to_owned();
    }
    format!("{ms}ms")
}

/// A byte count as it would be written: `64KiB` when exact, else `1000 bytes`.
fn size_text(bytes: u64) -> String {
    for (unit, n) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes % n == 0 && bytes > 0 {
            return format!("{}{unit}", bytes / n);
        }
    }
    match bytes {
        1 => "1 byte".to_owned(),
        n => format!("{n} bytes"),
    }
}

/// Letters, digits, `-`, `_`, `.`: names used as labels and path segments.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}
