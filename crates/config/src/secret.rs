//! Secrets: config values resolved from `${env:NAME}` / `${file:/path}` templates.
//!
//! A secret field may hold a template (`"${env:DINGTALK_APP_SECRET}"`), text containing
//! templates (`"Bearer ${file:/run/secrets/model_key}"`) or a plain literal. The resolved
//! value is only reachable through [`Secret::expose`]; `Debug` and `Display` show where it
//! came from (`${env:NAME}`) or `<literal, masked>`, never the value.
//!
//! `${file:..}` files must not be accessible by group or others, root-owned files that
//! only one of this process's groups may read excepted (see [`check_private_file`]); one
//! trailing newline (`\n` or `\r\n`) is trimmed. [`Secret::reload`] re-reads variables
//! and files (on SIGHUP, and when the binary sees a file change).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ErrorKind};
use crate::perms::{check_private_file, PermissionWarning};

/// A resolved secret and where it came from.
#[derive(Clone)]
pub struct Secret {
    template: String,
    parts: Vec<Part>,
    value: String,
    origin: Origin,
    warnings: Vec<PermissionWarning>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Env(String),
    File(PathBuf),
}

/// Where a secret is configured, for error messages on load and on reload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub file: PathBuf,
    pub key: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub allow_insecure: bool,
}

impl Origin {
    fn error(&self, kind: ErrorKind) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            key: self.key.clone(),
            kind: Box::new(kind),
        }
    }
}

impl Secret {
    /// A secret given directly (tests, values that come from elsewhere).
    pub fn literal(value: impl Into<String>) -> Secret {
        let value = value.into();
        Secret {
            template: value.clone(),
            parts: vec![Part::Text(value.clone())],
            value,
            origin: Origin::default(),
            warnings: Vec::new(),
        }
    }

    /// Resolves `template` outside a config file; `key` names it in errors.
    pub fn resolve(template: &str, key: &str, allow_insecure: bool) -> Result<Secret, ConfigError> {
        let origin = Origin {
            key: key.to_owned(),
            allow_insecure,
            ..Origin::default()
        };
        Secret::resolve_at(template, origin)
    }

    pub(crate) fn resolve_at(template: &str, origin: Origin) -> Result<Secret, ConfigError> {
        let parts = parse_template(template)
            .map_err(|reason| origin.error(ErrorKind::BadTemplate { reason }))?;
        let mut secret = Secret {
            template: template.to_owned(),
            parts,
            value: String::new(),
            origin,
            warnings: Vec::new(),
        };
        secret.fill()?;
        Ok(secret)
    }

    fn fill(&mut self) -> Result<(), ConfigError> {
        let mut value = String::new();
        let mut warnings = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => value.push_str(text),
                Part::Env(var) => value.push_str(&read_env(var).map_err(|k| self.origin.error(k))?),
                Part::File(path) => {
                    let what = self.origin.key.clone();
                    match check_private_file(path, &what, self.origin.allow_insecure) {
                        Ok(Some(w)) => warnings.push(w),
                        Ok(None) => {}
                        Err(e) => return Err(self.origin.error(ErrorKind::Permission(e))),
                    }
                    value.push_str(&read_file(path).map_err(|k| self.origin.error(k))?);
                }
            }
        }
        if value.is_empty() {
            return Err(self.origin.error(ErrorKind::Empty {
                hint:
                    "a secret needs a value, e.g. \"${env:NAME}\" or \"${file:/run/secrets/name}\""
                        .into(),
            }));
        }
        self.value = value;
        self.warnings = warnings;
        Ok(())
    }

    /// The resolved value. Use it only where it is needed (signing, comparing, sending).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Re-reads the environment variables and files this secret comes from (SIGHUP), with
    /// the same checks as at load time. A literal returns itself.
    pub fn reload(&self) -> Result<Secret, ConfigError> {
        let mut fresh = self.clone();
        fresh.fill()?;
        Ok(fresh)
    }

    /// True when the value was written directly in the config (no `${..}`).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The `${file:..}` files this secret reads (to watch them).
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().filter_map(|p| match p {
            Part::File(path) => Some(path.as_path()),
            _ => None,
        })
    }

    /// Too-open `${file:..}` files accepted because insecure permissions were allowed.
    pub fn warnings(&self) -> &[PermissionWarning] {
        &self.warnings
    }

    /// Compares the value with `candidate` in time independent of where they differ.
    pub fn ct_eq(&self, candidate: &[u8]) -> bool {
        let value = self.value.as_bytes();
        value.len() == candidate.len()
            && value
                .iter()
                .zip(candidate)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The masked form used by `Display`, `Debug` and `Config::effective_toml`.
    pub fn masked(&self) -> String {
        if self.is_literal() {
            "<literal, masked>".to_owned()
        } else {
            self.template.clone()
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.masked())
    }
}

/// Splits a template into text, `${env:NAME}` and `${file:PATH}` parts. The error never
/// quotes the template's literal text (it may be the secret itself).
fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    let mut consumed = 0;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        let inner_start = start + 2;
        let Some(len) = rest[inner_start..].find('}') else {
            return Err(format!(
                "`${{` at character {} has no closing `}}`",
                char_pos(template, consumed + start)
            ));
        };
        let inner = &rest[inner_start..inner_start + len];
        let (scheme, arg) = inner.split_once(':').unwrap_or((inner, ""));
        match scheme {
            "env" => {
                let valid = arg
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && arg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!(
                        "`${{env:{arg}}}` needs a variable name of letters, digits and _"
                    ));
                }
                parts.push(Part::Env(arg.to_owned()));
            }
            "file" => {
                if arg.trim().is_empty() {
                    return Err("`${file:}` needs a path".to_owned());
                }
                parts.push(Part::File(PathBuf::from(arg)));
            }
            other => {
                let shown: String = other.chars().take(20).collect();
                return Err(format!("unknown secret source `{shown}`"));
            }
        }
        let next = inner_start + len + 1;
        consumed += next;
        rest = &rest[next..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

fn char_pos(s: &str, byte: usize) -> usize {
    s.get(..byte).map_or(byte, |b| b.chars().count()) + 1
}

fn read_env(var: &str) -> Result<String, ErrorKind> {
    match std::env::var(var) {
        Ok(v) if v.is_empty() => Err(ErrorKind::EnvInvalid {
            var: var.to_owned(),
            reason: "is set but empty",
        }),
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => Err(ErrorKind::EnvMissing {
            var: var.to_owned(),
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err(ErrorKind::EnvInvalid {
            var: var.to_owned(),
            reason: "is not valid UTF-8",
        }),
    }
}

fn read_file(path: &Path) -> Result<String, ErrorKind> {
    let mut text = std::fs::read_to_string(path).map_err(|source| ErrorKind::SecretFile {
        path: path.to_owned(),
        source,
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(ErrorKind::SecretFileEmpty {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_parts() {
        let parts = parse_template("Bearer ${file:/run/k} and ${env:A_1}!").unwrap();
        assert_eq!(
            parts,
            vec![
                Part::Text("Bearer ".into()),
                Part::File("/run/k".into()),
                Part::Text(" and ".into()),
                Part::Env("A_1".into()),
                Part::Text("!".into()),
            ]
        );
        assert_eq!(
            parse_template("plain $ text").unwrap(),
            vec![Part::Text("plain $ text".into())]
        );
    }

    #[test]
    fn bad_templates_are_explained_without_the_text() {
        let e = parse_template("sekrit${env:X").unwrap_err();
        assert!(e.contains("no closing") && !e.contains("sekrit"), "{e}");
        assert!(parse_template("${vault:x}")
            .unwrap_err()
            .contains("unknown secret source `vault`"));
        assert!(parse_template("${env:}")
            .unwrap_err()
            .contains("variable name"));
        assert!(parse_template("${env:A-B}")
            .unwrap_err()
            .contains("variable name"));
        assert!(parse_template("${file:}")
            .unwrap_err()
            .contains("needs a path"));
    }

    #[test]
    fn literal_is_masked() {
        let s = Secret::literal("hunter2");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s.to_string(), "<literal, masked>");
        assert_eq!(format!("{s:?}"), "Secret(<literal, masked>)");
        assert!(s.ct_eq(b"hunter2") && !s.ct_eq(b"hunter3") && !s.ct_eq(b"hunter"));
        assert_eq!(s.reload().unwrap().expose(), "hunter2");
    }

    #[test]
    fn env_secret_shows_its_source_and_reloads() {
        let var = "CLAWVEIL_TEST_SECRET_UNIT_RELOAD";
        std::env::set_var(var, "one");
        let s = Secret::resolve(&format!("${{env:{var}}}"), "metrics.token", false).unwrap();
        assert_eq!(s.expose(), "one");
        assert_eq!(s.to_string(), format!("${{env:{var}}}"));
        assert!(!format!("{s:?}").contains("one"));
        std::env::set_var(var, "two");
        assert_eq!(s.reload().unwrap().expose(), "two");
        std::env::remove_var(var);
        let msg = s.reload().unwrap_err().to_string();
        assert!(
            msg.contains(var) && msg.contains("metrics.token") && msg.contains("not set"),
            "{msg}"
        );
    }

    #[test]
    fn empty_values_are_refused() {
        let var = "CLAWVEIL_TEST_SECRET_UNIT_EMPTY";
        std::env::set_var(var, "");
        let msg = Secret::resolve(&format!("${{env:{var}}}"), "k", false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("is set but empty"), "{msg}");
        let msg = Secret::resolve("", "k", false).unwrap_err().to_string();
        assert!(msg.contains("must not be empty"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn file_secret_trims_newline_and_checks_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tok");
        std::fs::write(&path, "abc\r\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let template = format!("Bearer ${{file:{}}}", path.display());
        let s = Secret::resolve(
            &template,
            "egress.target[0].inject_headers.Authorization",
            false,
        )
        .unwrap();
        assert_eq!(s.expose(), "Bearer abc");
        assert_eq!(s.files().collect::<Vec<_>>(), vec![path.as_path()]);
        std::fs::write(&path, "").unwrap();
        assert!(s.reload().unwrap_err().to_string().contains("is empty"));
        std::fs::write(&path, "x\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let msg = s.reload().unwrap_err().to_string();
        assert!(
            msg.contains("chmod 600") && msg.contains("mode 0644"),
            "{msg}"
        );
        let lax = Secret::resolve(&template, "k", true).unwrap();
        assert_eq!(lax.warnings().len(), 1);
    }
}
