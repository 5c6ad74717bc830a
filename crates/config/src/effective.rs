//! `Config::effective_toml`: the configuration as it will run (defaults filled in), as
//! TOML, with every secret masked. What `clawveil check` prints.

use std::path::Path;
use std::time::Duration;

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::secret::Secret;
use crate::Config;

impl Config {
    /// The effective configuration as TOML: every key with its value after defaults,
    /// secrets shown as their source (`${env:NAME}`) or `<literal, masked>`. It parses
    /// back to the same configuration (given the same environment and files), except that
    /// literal secrets are replaced by the mask.
    pub fn effective_toml(&self) -> String {
        let mut doc = DocumentMut::new();
        doc["trusted_proxies"] = strings(self.trusted_proxies.iter().map(ToString::to_string));

        let mut t = Table::new();
        t["https"] = value(self.listen.https.to_string());
        if let Some(http) = self.listen.http {
            t["http"] = value(http.to_string());
        }
        t["metrics"] = value(
            self.listen
                .metrics
                .map(|a| a.to_string())
                .unwrap_or_default(),
        );
        t["server_names"] = strings(self.listen.server_names.iter().cloned());
        doc["listen"] = Item::Table(t);

        let u = &self.upstream;
        let mut t = Table::new();
        t["url"] = value(&u.url);
        t["connect_timeout"] = duration(u.connect_timeout);
        t["response_timeout"] = duration(u.response_timeout);
        if let Some(f) = &u.fallback {
            t["fallback"] = value(f);
        }
        t["exposure_check"] = duration(u.exposure_check.unwrap_or_default());
        t["require_loopback"] = value(u.require_loopback);
        doc["upstream"] = Item::Table(t);

        let tls = &self.tls;
        let mut t = Table::new();
        t["mode"] = value(tls.mode.as_str());
        t["min_version"] = value(tls.min_version.as_str());
        t["hsts"] = value(tls.hsts.clone().unwrap_or_default());
        t["cert"] = path(&tls.cert);
        t["key"] = path(&tls.key);
        t["names"] = strings(tls.names.iter().cloned());
        t["watch_interval"] = duration(tls.watch_interval);
        doc["tls"] = Item::Table(t);

        if let Some(a) = &self.acme {
            let mut t = Table::new();
            t["domains"] = strings(a.domains.iter().cloned());
            t["contact"] = strings(a.contact.iter().cloned());
            t["directory"] = value(&a.directory);
            t["challenge"] = value(a.challenge.as_str());
            t["storage"] = path(&a.storage);
            if let Some(d) = a.renew_before {
                t["renew_before"] = duration(d);
            }
            if let Some(p) = &a.ca_roots {
                t["ca_roots"] = path(p);
            }
            secret(&mut t, "eab_kid", a.eab_kid.as_ref());
            secret(&mut t, "eab_hmac", a.eab_hmac.as_ref());
            secret(&mut t, "storage_key", a.storage_key.as_ref());
            if let Some(p) = &a.profile {
                t["profile"] = value(p);
            }
            doc["acme"] = Item::Table(t);
        }

        let l = &self.limits;
        let mut t = Table::new();
        t["max_body"] = size(l.max_body);
        t["max_header_bytes"] = size(l.max_header_bytes);
        t["header_read_timeout"] = duration(l.header_read_timeout);
        t["request_timeout"] = duration(l.request_timeout);
        t["max_connections"] = value(i64::try_from(l.max_connections).unwrap_or(i64::MAX));
        t["drain_timeout"] = duration(l.drain_timeout);
        t["idle_timeout"] = duration(l.idle_timeout);
        t["tunnel_idle_timeout"] = duration(l.tunnel_idle_timeout);
        doc["limits"] = Item::Table(t);

        let log = &self.log;
        let mut t = Table::new();
        if let Some(format) = log.format {
            t["format"] = value(format.as_str());
        }
        t["level"] = value(&log.level);
        t["bodies"] = value(log.bodies.as_str());
        t["body_max"] = size(log.body_max);
        secret(&mut t, "hash_key", log.hash_key.as_ref());
        doc["log"] = Item::Table(t);

        let r = &self.redact;
        let mut t = Table::new();
        t["builtin"] = strings(r.builtin.iter().cloned());
        t["json_keys"] = strings(r.json_keys.iter().cloned());
        t["headers"] = strings(r.headers.iter().cloned());
        let mut rules = ArrayOfTables::new();
        for rule in &r.rules {
            let mut rt = Table::new();
            rt["name"] = value(&rule.name);
            rt["pattern"] = value(&rule.pattern);
            rt["replace"] = value(rule.replace.as_str());
            rules.push(rt);
        }
        if !rules.is_empty() {
            t["rule"] = Item::ArrayOfTables(rules);
        }
        doc["redact"] = Item::Table(t);

        let mut t = Table::new();
        match self.metrics.tokens.as_slice() {
            [] => {}
            [one] => secret(&mut t, "token", Some(one)),
            several => t["token"] = strings(several.iter().map(Secret::masked)),
        }
        doc["metrics"] = Item::Table(t);

        let mut routes = ArrayOfTables::new();
        for route in &self.routes {
            let mut t = Table::new();
            t["name"] = value(&route.name);
            t["path_prefix"] = value(&route.path_prefix);
            t["verify"] = value(route.verify.as_str());
            if !route.app_secrets.is_empty() {
                t["app_secrets"] = strings(route.app_secrets.iter().map(Secret::masked));
            }
            t["max_skew"] = duration(route.max_skew);
            t["replay"] = value(route.replay);
            t["allow_cidrs"] = strings(route.allow_cidrs.iter().map(ToString::to_string));
            secret(&mut t, "event_token", route.event_token.as_ref());
            secret(&mut t, "event_aes_key", route.event_aes_key.as_ref());
            if let Some(o) = &route.event_owner_key {
                t["event_owner_key"] = value(o);
            }
            t["allowed_origins"] = strings(route.allowed_origins.iter().cloned());
            t["allow_trace"] = value(route.allow_trace);
            routes.push(t);
        }
        doc["route"] = Item::ArrayOfTables(routes);

        if let Some(e) = &self.egress {
            let mut t = Table::new();
            t["listen"] = value(e.listen.to_string());
            t["allow"] = strings(e.allow.iter().cloned());
            t["ports"] = value(e.ports.iter().map(|p| i64::from(*p)).collect::<Array>());
            t["plain_http"] = value(e.plain_http);
            t["allow_cidrs"] = strings(e.allow_cidrs.iter().map(ToString::to_string));
            secret(&mut t, "token", e.token.as_ref());
            let mut targets = ArrayOfTables::new();
            for target in &e.targets {
                let mut tt = Table::new();
                tt["name"] = value(&target.name);
                tt["url"] = value(&target.url);
                if let Some(f) = &target.fallback {
                    tt["fallback"] = value(f);
                }
                tt["fallback_on"] =
                    strings(target.fallback_on.iter().map(|c| c.as_str().to_owned()));
                tt["connect_timeout"] = duration(target.connect_timeout);
                tt["response_timeout"] = duration(target.response_timeout);
                tt["models"] = strings(target.models.iter().cloned());
                let mut headers = InlineTable::new();
                for (name, s) in &target.inject_headers {
                    headers.insert(name, Value::from(s.masked()));
                }
                tt["inject_headers"] = Item::Value(Value::InlineTable(headers));
                secret(&mut tt, "client_token", target.client_token.as_ref());
                if let Some(p) = &target.ca_roots {
                    tt["ca_roots"] = path(p);
                }
                targets.push(tt);
            }
            if !targets.is_empty() {
                t["target"] = Item::ArrayOfTables(targets);
            }
            doc["egress"] = Item::Table(t);
        }

        format!(
            "# Effective configuration from {}: defaults filled in, secrets masked.\n# Relative paths are relative to the current directory.\n{doc}",
            self.source.display()
        )
    }
}

fn strings(items: impl Iterator<Item = String>) -> Item {
    value(items.collect::<Array>())
}

fn path(p: &Path) -> Item {
    value(p.display().to_string())
}

fn secret(t: &mut Table, key: &str, s: Option<&Secret>) {
    if let Some(s) = s {
        t[key] = value(s.masked());
    }
}

/// An exact spelling in days, hours, minutes, seconds or milliseconds: `30d`, `1h`,
/// `10m`, `90s`, `500ms`; zero is `0s`.
pub(crate) fn duration(d: Duration) -> Item {
    value(format_duration(d))
}

pub(crate) fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        return humantime::format_duration(d).to_string();
    }
    let ms = d.as_millis();
    for (unit, n) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms % n == 0 {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

/// `10MiB` when exact, else the number of bytes.
fn size(bytes: u64) -> Item {
    for (unit, n) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes % n == 0 {
            return value(format!("{}{unit}", bytes / n));
        }
    }
    match i64::try_from(bytes) {
        Ok(b) => value(b),
        Err(_) => value(bytes.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(format_duration(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        let odd = Duration::from_nanos(1_500);
        assert_eq!(
            humantime::parse_duration(&format_duration(odd)).unwrap(),
            odd
        );
    }

    #[test]
    fn sizes_use_binary_units_when_exact() {
        assert_eq!(size(10 << 20).to_string(), "\"10MiB\"");
        assert_eq!(size(1000).to_string(), "1000");
    }
}
