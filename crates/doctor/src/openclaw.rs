//! The parts of an OpenClaw configuration (`openclaw.json`, JSON5) the doctor reads.
//! Unknown keys are ignored and missing ones take OpenClaw's defaults: the bot may be
//! another version, or another kind of bot.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::DoctorError;

/// OpenClaw's default gateway port.
pub const DEFAULT_GATEWAY_PORT: u16 = 18789;

/// A parsed `openclaw.json`.
#[derive(Debug, Clone)]
pub struct OpenClawConfig {
    pub path: PathBuf,
    pub root: Value,
}

/// How a configured secret is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretForm {
    /// `"${NAME}"`, a SecretRef object (`{ source, id }`) or an empty value.
    Reference,
    /// The value itself.
    PlainText,
}

/// One model provider (`models.providers.<id>`).
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub base_url: Option<String>,
}

impl OpenClawConfig {
    /// Reads and parses `path`. Errors never quote the file's text (it may hold keys):
    /// only where the parser stopped.
    pub fn load(path: &Path) -> Result<Self, DoctorError> {
        let text = std::fs::read_to_string(path).map_err(|source| DoctorError::Read {
            path: path.to_owned(),
            source,
        })?;
        let root: Value = json5::from_str(&text).map_err(|e| DoctorError::Json5 {
            path: path.to_owned(),
            at: e
                .position()
                .map(|p| format!("line {} column {}", p.line + 1, p.column + 1))
                .unwrap_or_else(|| "an unknown position".into()),
            code: e
                .code()
                .map(|c| format!("{c:?}"))
                .unwrap_or_else(|| "invalid value".into()),
        })?;
        Ok(OpenClawConfig {
            path: path.to_owned(),
            root,
        })
    }

    fn get(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.root, |v, k| v.get(k))
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// `gateway.bind`, when set (OpenClaw's default is `loopback`).
    pub fn gateway_bind(&self) -> Option<&str> {
        self.str_at(&["gateway", "bind"])
    }

    /// The host of `gateway.bind = "custom"` (`gateway.customBindHost`).
    pub fn gateway_custom_host(&self) -> Option<&str> {
        self.str_at(&["gateway", "customBindHost"])
    }

    /// `gateway.port`, or 18789.
    pub fn gateway_port(&self) -> u16 {
        self.get(&["gateway", "port"])
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(DEFAULT_GATEWAY_PORT)
    }

    /// `gateway.auth.mode`, when set.
    pub fn gateway_auth_mode(&self) -> Option<&str> {
        self.str_at(&["gateway", "auth", "mode"])
    }

    /// Whether `gateway.auth.<key>` (`token`, `password`) has a value (plain or a reference).
    pub fn gateway_auth_has(&self, key: &str) -> bool {
        match self.get(&["gateway", "auth", key]) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Object(_)) => true,
            _ => false,
        }
    }

    /// `models.providers.*`, sorted by id.
    pub fn providers(&self) -> Vec<Provider> {
        let mut out: Vec<Provider> = self
            .get(&["models", "providers"])
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(id, p)| Provider {
                        id: id.clone(),
                        base_url: p.get("baseUrl").and_then(Value::as_str).map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// `proxy.proxyUrl`, when set.
    pub fn proxy_url(&self) -> Option<&str> {
        self.str_at(&["proxy", "proxyUrl"])
    }

    /// `proxy.enabled` (absent counts as enabled when a URL is set).
    pub fn proxy_enabled(&self) -> bool {
        self.get(&["proxy", "enabled"])
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }

    /// `logging.file`, when set.
    pub fn log_file(&self) -> Option<&str> {
        self.str_at(&["logging", "file"])
    }

    /// Every secret-named key whose value is stored in plain text, as dotted paths
    /// (`models.providers.openai.apiKey`). The values are never returned.
    pub fn plain_text_secrets(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk(&self.root, &mut String::new(), &mut found);
        found.sort();
        found
    }
}

fn walk(v: &Value, path: &mut String, found: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                if secret_name(k) {
                    if let Value::String(s) = child {
                        if secret_form(s) == SecretForm::PlainText {
                            found.push(path.clone());
                        }
                    }
                }
                walk(child, path, found);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(child, path, found);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Whether a key names a credential (`apiKey`, `token`, `appSecret`, `password`, ...).
pub(crate) fn secret_name(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    [
        "apikey",
        "token",
        "secret",
        "password",
        "privatekey",
        "accesskey",
    ]
    .iter()
    .any(|s| k.ends_with(s))
}

/// Whether a configured string is a reference (`${NAME}`, possibly several, and
/// nothing else) or the secret itself.
pub(crate) fn secret_form(s: &str) -> SecretForm {
    let mut rest = s.trim();
    if rest.is_empty() {
        return SecretForm::Reference;
    }
    while let Some(after) = rest.strip_prefix("${") {
        match after.find('}') {
            Some(end) => rest = after[end + 1..].trim_start(),
            None => return SecretForm::PlainText,
        }
    }
    if rest.is_empty() {
        SecretForm::Reference
    } else {
        SecretForm::PlainText
    }
}

/// Where the OpenClaw configurations are: `explicit` (`$OPENCLAW_CONFIG_PATH`) first,
/// then `openclaw.json` in each directory, those that exist, without repeats.
pub fn config_paths(explicit: Option<&Path>, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let candidates = explicit
        .map(Path::to_path_buf)
        .into_iter()
        .chain(dirs.iter().map(|d| d.join("openclaw.json")));
    for p in candidates {
        if p.is_file() && !out.iter().any(|q| same_file(q, &p)) {
            out.push(p);
        }
    }
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> OpenClawConfig {
        OpenClawConfig {
            path: "openclaw.json".into(),
            root: json5::from_str(s).unwrap(),
        }
    }

    #[test]
    fn reads_json5_with_defaults() {
        let c = parse("{ // comment\n gateway: { bind: 'lan', }, models: { providers: { b: {baseUrl: 'http://x'}, a: {} } } }");
        assert_eq!(c.gateway_bind(), Some("lan"));
        assert_eq!(c.gateway_port(), 18789);
        assert_eq!(c.gateway_auth_mode(), None);
        let p = c.providers();
        assert_eq!(p[0].id, "a");
        assert_eq!(p[1].base_url.as_deref(), Some("http://x"));
        assert!(c.proxy_enabled());
    }

    #[test]
    fn tolerates_other_shapes() {
        let c = parse("{ gateway: 'x', models: [1, 2], proxy: null }");
        assert_eq!(c.gateway_bind(), None);
        assert!(c.providers().is_empty());
        assert_eq!(c.proxy_url(), None);
    }

    #[test]
    fn finds_plain_text_secrets_by_name() {
        let c = parse(
            r#"{ models: { providers: { openai: { apiKey: "sk-plain", maxTokens: 5 },
                  ok: { apiKey: "${OPENAI_API_KEY}" }, ref: { apiKey: { source: "env", id: "X" } } } },
                gateway: { auth: { token: "abc" } },
                channels: { dingtalk: { appSecret: "s3" , accounts: [ { clientSecret: "z" } ] } } }"#,
        );
        assert_eq!(
            c.plain_text_secrets(),
            [
                "channels.dingtalk.accounts[0].clientSecret",
                "channels.dingtalk.appSecret",
                "gateway.auth.token",
                "models.providers.openai.apiKey",
            ]
        );
    }

    #[test]
    fn references_are_not_plain_text() {
        assert_eq!(secret_form("${A}"), SecretForm::Reference);
        assert_eq!(secret_form(" ${A}${B} "), SecretForm::Reference);
        assert_eq!(secret_form(""), SecretForm::Reference);
        assert_eq!(secret_form("Bearer ${A}"), SecretForm::PlainText);
        assert_eq!(secret_form("${A"), SecretForm::PlainText);
        assert_eq!(secret_form("sk-123"), SecretForm::PlainText);
        assert!(secret_name("apiKey") && secret_name("api_key") && secret_name("appSecret"));
        assert!(!secret_name("maxTokens") && !secret_name("tokenizer"));
    }
}
