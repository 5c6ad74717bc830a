//! The engine's configuration, as the config crate hands it over, and its
//! validation into compiled rules.

use std::str::FromStr;
use std::sync::Arc;

use regex_automata::meta;

use crate::error::RedactError;
use crate::rules::{Enabled, RuleId, BUILTIN, FIRST_CUSTOM, JSON_KEY_NAME};

/// What the engine should redact (`[redact]` and `log.hash_key` in `proxy.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Built-in rules to enable, by name (see [`Engine::builtin_names`](crate::Engine::builtin_names)).
    /// Default: all of them.
    pub builtin: Vec<String>,
    /// Extra JSON keys (and form parameters) whose values are always replaced,
    /// matched case-insensitively ignoring `_`, `-` and `.`; counted as `json-key`.
    pub json_keys: Vec<String>,
    /// Custom pattern rules.
    pub custom: Vec<CustomRule>,
    /// Key for `[<rule>:<hmac>]` tags instead of fixed masks; at least 16 bytes.
    pub hash_key: Option<Vec<u8>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            builtin: BUILTIN.iter().map(|s| (*s).to_owned()).collect(),
            json_keys: Vec::new(),
            custom: Vec::new(),
            hash_key: None,
        }
    }
}

/// A `[[redact.rule]]`: every match of `pattern` is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRule {
    /// Shown in the mask and in `clawveil_redactions_total{rule}`: 1–40 of
    /// `A-Z a-z 0-9 - _ .`, distinct from the built-in names and `json-key`.
    pub name: String,
    /// A regular expression (Rust `regex` syntax) that does not match the empty string.
    pub pattern: String,
    /// Mask, or keyed hash when a hash key is configured.
    pub replace: Replace,
}

/// How a custom rule replaces its matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Replace {
    /// `[REDACTED:<rule>]`.
    #[default]
    Mask,
    /// `[<rule>:<10 hex of HMAC-SHA256>]` if `log.hash_key` is set, else a mask.
    Hash,
}

impl FromStr for Replace {
    type Err = RedactError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mask" => Ok(Replace::Mask),
            "hash" => Ok(Replace::Hash),
            other => Err(RedactError::UnknownReplace(other.to_owned())),
        }
    }
}

/// The validated pieces the engine is made of.
pub(crate) struct Compiled {
    pub(crate) enabled: Enabled,
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) json_keys: Vec<crate::rules::names::Norm>,
    pub(crate) custom: Option<(meta::Regex, Vec<(RuleId, bool)>)>,
}

const MAX_NAME: usize = 40;

pub(crate) fn compile(cfg: &EngineConfig) -> Result<Compiled, RedactError> {
    let mut enabled = Enabled::default();
    for name in &cfg.builtin {
        let id =
            BUILTIN
                .iter()
                .position(|b| b == name)
                .ok_or_else(|| RedactError::UnknownBuiltin {
                    name: name.clone(),
                    valid: &BUILTIN,
                })?;
        enabled = enabled.with(id as RuleId);
    }
    let mut names: Vec<Arc<str>> = BUILTIN.iter().map(|s| Arc::from(*s)).collect();
    names.push(Arc::from(JSON_KEY_NAME));

    let mut json_keys = Vec::new();
    for key in &cfg.json_keys {
        let norm = crate::rules::names::Norm::new(key.trim().as_bytes()).ok_or_else(|| {
            RedactError::BadJsonKey {
                key: key.clone(),
                reason: "longer than 64 characters",
            }
        })?;
        if norm.as_bytes().is_empty() {
            return Err(RedactError::BadJsonKey {
                key: key.clone(),
                reason: "empty",
            });
        }
        json_keys.push(norm);
    }

    let mut patterns = Vec::new();
    let mut ids = Vec::new();
    for rule in &cfg.custom {
        check_name(&rule.name, &names)?;
        let bad = |message: String| RedactError::BadPattern {
            rule: rule.name.clone(),
            message,
        };
        let re = meta::Regex::new(&rule.pattern).map_err(|e| bad(e.to_string()))?;
        if re.is_match("") {
            return Err(bad("it matches the empty string".into()));
        }
        let id = RuleId::try_from(names.len()).map_err(|_| bad("too many rules".into()))?;
        debug_assert!(id >= FIRST_CUSTOM);
        names.push(Arc::from(rule.name.as_str()));
        patterns.push(rule.pattern.as_str());
        ids.push((id, rule.replace == Replace::Hash));
    }
    let custom = if patterns.is_empty() {
        None
    } else {
        let re = meta::Regex::new_many(&patterns).map_err(|e| RedactError::BadPattern {
            rule: cfg
                .custom
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            message: e.to_string(),
        })?;
        Some((re, ids))
    };
    Ok(Compiled {
        enabled,
        names,
        json_keys,
        custom,
    })
}

fn check_name(name: &str, taken: &[Arc<str>]) -> Result<(), RedactError> {
    let bad = |reason| {
        Err(RedactError::BadRuleName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return bad("it must be 1 to 40 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return bad("only A-Z, a-z, 0-9, `-`, `_` and `.` are allowed");
    }
    if name == "REDACTED" {
        return bad("it is reserved");
    }
    if taken.iter().any(|t| &**t == name) {
        return bad("a built-in or another custom rule already has this name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(name: &str, pattern: &str) -> EngineConfig {
        EngineConfig {
            custom: vec![CustomRule {
                name: name.into(),
                pattern: pattern.into(),
                replace: Replace::Mask,
            }],
            ..EngineConfig::default()
        }
    }

    fn err(cfg: &EngineConfig) -> String {
        compile(cfg).err().expect("should fail").to_string()
    }

    #[test]
    fn unknown_builtin_lists_valid_names() {
        let cfg = EngineConfig {
            builtin: vec!["email".into(), "passport".into()],
            ..EngineConfig::default()
        };
        let e = err(&cfg);
        assert!(e.contains("`passport`"), "{e}");
        assert!(
            e.contains(
                "email, phone, id-card, bank-card, bearer, api-key, jwt, url-secret, dingtalk"
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_custom_rules_name_the_rule() {
        let e = err(&custom("order-id", "ORD-[0-9"));
        assert!(
            e.starts_with("redaction rule `order-id`: invalid pattern"),
            "{e}"
        );
        assert!(err(&custom("maybe", "a*")).contains("empty string"));
        assert!(err(&custom("email", "x")).contains("already has this name"));
        assert!(err(&custom("json-key", "x")).contains("already has this name"));
        assert!(err(&custom("has space", "x")).contains("only A-Z"));
        assert!(err(&custom("", "x")).contains("1 to 40"));
    }

    #[test]
    fn replace_modes_parse() {
        assert_eq!("hash".parse::<Replace>().unwrap(), Replace::Hash);
        assert_eq!("mask".parse::<Replace>().unwrap(), Replace::Mask);
        assert!("scramble"
            .parse::<Replace>()
            .unwrap_err()
            .to_string()
            .contains("mask, hash"));
    }

    #[test]
    fn json_keys_are_normalised() {
        let cfg = EngineConfig {
            json_keys: vec!["Customer_ID".into()],
            ..EngineConfig::default()
        };
        let keys = compile(&cfg).ok().unwrap().json_keys;
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].as_bytes(), b"customerid");
        let cfg = EngineConfig {
            json_keys: vec![" - ".into()],
            ..EngineConfig::default()
        };
        assert!(err(&cfg).contains("empty"));
    }
}
