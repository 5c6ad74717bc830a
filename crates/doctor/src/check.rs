//! One line of the checklist, and the checklist printed as text or JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Pass,
    /// Could not be checked here (a file that does not exist, not Linux, ...).
    Skipped,
    /// Worth fixing; does not fail the run.
    Warn,
    /// A way the bot's data leaks or can be reached without clawveil: exit status 1.
    Fail,
}

impl Status {
    /// The word printed in the text checklist.
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Skipped => "skip",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// The part of the checklist a check belongs to, in printing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    /// The bot's files: modes, plain-text keys.
    AtRest,
    /// Who can reach the bot without clawveil.
    Exposure,
    /// Model URLs and the bot's forward proxy.
    InTransit,
    /// Identifiers and credentials in the bot's logs and sessions.
    Logs,
    /// clawveil's own configuration, certificate and storage.
    Clawveil,
}

impl Section {
    /// The heading printed above the section.
    pub fn title(self) -> &'static str {
        match self {
            Section::AtRest => "At rest",
            Section::Exposure => "Exposure",
            Section::InTransit => "In transit",
            Section::Logs => "Logs",
            Section::Clawveil => "clawveil",
        }
    }
}

/// One rule's count in one log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The redaction rule (`phone`, `api-key`, ...).
    pub rule: String,
    /// How many values it found.
    pub count: u64,
}

/// One line of the checklist. Never holds a secret value: only where a secret is
/// and which rule found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub section: Section,
    /// A stable identifier for automation (`perms.file`, `gateway.bind`, ...).
    pub id: &'static str,
    pub status: Status,
    /// What was found, in one line.
    pub message: String,
    /// How to fix it, in one line (absent when there is nothing to fix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The file the check is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Per-rule counts (log checks only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<RuleCount>,
}

impl Check {
    pub(crate) fn new(
        section: Section,
        id: &'static str,
        status: Status,
        message: impl Into<String>,
    ) -> Self {
        Check {
            section,
            id,
            status,
            message: message.into(),
            fix: None,
            path: None,
            counts: Vec::new(),
        }
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub(crate) fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
}

/// How many checks came out each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skipped: usize,
}

impl Summary {
    /// Counts `checks`.
    pub fn of(checks: &[Check]) -> Self {
        let mut s = Summary::default();
        for c in checks {
            match c.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Skipped => s.skipped += 1,
            }
        }
        s
    }
}

/// A mode `--fix-perms` changed (or would change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermChange {
    pub path: PathBuf,
    /// The mode before, as written by `chmod` (`0644`).
    pub from: String,
    /// The mode after (`0600`).
    pub to: String,
}

/// What `clawveil doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The checks in printing order (by section, then in the order they ran).
    pub checks: Vec<Check>,
    /// The modes `--fix-perms` changed, before the checks ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<PermChange>,
    pub summary: Summary,
}

impl Outcome {
    pub(crate) fn new(mut checks: Vec<Check>, fixed: Vec<PermChange>) -> Self {
        // stable: keeps the order within a section
        checks.sort_by_key(|c| c.section);
        let summary = Summary::of(&checks);
        Outcome {
            checks,
            fixed,
            summary,
        }
    }

    /// Whether any check failed: the process then exits 1.
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }

    /// The checklist for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if !self.fixed.is_empty() {
            let _ = writeln!(out, "--fix-perms changed {} mode(s):", self.fixed.len());
            for c in &self.fixed {
                let _ = writeln!(out, "  {} -> {}  {}", c.from, c.to, c.path.display());
            }
            out.push('\n');
        }
        let mut section = None;
        for c in &self.checks {
            if section != Some(c.section) {
                if section.is_some() {
                    out.push('\n');
                }
                let _ = writeln!(out, "{}", c.section.title());
                section = Some(c.section);
            }
            let _ = writeln!(out, "  {}  {}", c.status.word(), c.message);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "        fix: {fix}");
            }
        }
        let s = self.summary;
        let _ = writeln!(
            out,
            "\n{} fail, {} warn, {} pass, {} skipped",
            s.fail, s.warn, s.pass, s.skipped
        );
        out
    }

    /// The checklist for automation: one JSON object.
    pub fn to_json(&self) -> String {
        // serialising plain structs of strings and numbers cannot fail
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// `path` as one shell word, for a `fix:` line that can be pasted.
pub(crate) fn shell_quote(path: &std::path::Path) -> String {
    let s = path.display().to_string();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%=~".contains(&b));
    if plain {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("/a/b.json".as_ref()), "/a/b.json");
        assert_eq!(shell_quote("/a b/it's".as_ref()), r"'/a b/it'\''s'");
    }

    #[test]
    fn text_groups_by_section_and_counts() {
        let checks = vec![
            Check::new(Section::Logs, "logs", Status::Pass, "clean"),
            Check::new(Section::AtRest, "perms.file", Status::Fail, "x: 0644").fix("chmod 600 x"),
        ];
        let out = Outcome::new(checks, Vec::new());
        assert_eq!(
            out.to_text(),
            "At rest\n  FAIL  x: 0644\n        fix: chmod 600 x\n\nLogs\n  pass  clean\n\n1 fail, 0 warn, 1 pass, 0 skipped\n"
        );
        assert!(out.failed());
        let v: serde_json::Value = serde_json::from_str(&out.to_json()).unwrap();
        assert_eq!(v["checks"][0]["status"], "fail");
        assert_eq!(v["checks"][0]["section"], "at-rest");
        assert_eq!(v["summary"]["fail"], 1);
    }
}
