//! The bot's logs and session transcripts, scanned with clawveil's redaction engine:
//! counts per rule and per file, never a value.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clawveil_redact::{Engine, Report};

use crate::check::{Check, RuleCount, Section, Status};

/// How much of the logs is read: the newest files first, at most this many and this
/// many bytes in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_files: usize,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_files: 200,
            max_bytes: 64 << 20,
        }
    }
}

/// A log file to scan.
#[derive(Debug, Clone)]
pub struct LogFile {
    pub path: PathBuf,
    pub modified: Option<SystemTime>,
}

/// Rules that find credentials: a hit fails the check. Any other rule (personal
/// identifiers) warns.
fn is_credential(rule: &str) -> bool {
    matches!(rule, "api-key" | "bearer" | "jwt" | "url-secret")
}

/// `14 phone numbers`, `1 api key`.
fn describe(rule: &str, n: u64) -> String {
    let (one, many) = match rule {
        "email" => ("e-mail address", "e-mail addresses"),
        "phone" => ("phone number", "phone numbers"),
        "id-card" => ("ID card number", "ID card numbers"),
        "bank-card" => ("bank card number", "bank card numbers"),
        "bearer" => ("bearer credential", "bearer credentials"),
        "api-key" => ("api key", "api keys"),
        "jwt" => ("JWT", "JWTs"),
        "url-secret" => ("secret in a URL", "secrets in URLs"),
        "dingtalk" => ("DingTalk id", "DingTalk ids"),
        "json-key" => (
            "value under a configured json_key",
            "values under configured json_keys",
        ),
        other => return format!("{n} × {other}"),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Orders `files` newest first and keeps what fits in `limits`. Returns the kept files
/// and how many were left out.
pub fn select(mut files: Vec<LogFile>, limits: Limits) -> (Vec<LogFile>, usize) {
    files.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| a.path.cmp(&b.path))
    });
    files.dedup_by(|a, b| a.path == b.path);
    let total = files.len();
    files.truncate(limits.max_files);
    let kept = files.len();
    (files, total - kept)
}

/// Scans the files, reading at most `limits.max_bytes` in all, and returns the checklist
/// lines: one per file with a finding, and one summing up.
pub fn scan(engine: &Engine, files: &[LogFile], left_out: usize, limits: Limits) -> Vec<Check> {
    let mut out = Vec::new();
    let mut budget = limits.max_bytes;
    let (mut scanned, mut cut, mut with_findings) = (0usize, 0usize, 0usize);
    for f in files {
        if budget == 0 {
            cut += 1;
            continue;
        }
        let Ok(file) = std::fs::File::open(&f.path) else {
            continue;
        };
        let mut bytes = Vec::new();
        if file.take(budget).read_to_end(&mut bytes).is_err() {
            continue;
        }
        budget -= bytes.len() as u64;
        scanned += 1;
        let report = scan_bytes(engine, &bytes, &f.path);
        if report.is_empty() {
            continue;
        }
        with_findings += 1;
        let counts: Vec<RuleCount> = report
            .iter()
            .map(|(rule, count)| RuleCount {
                rule: rule.to_owned(),
                count,
            })
            .collect();
        let credentials = counts.iter().any(|c| is_credential(&c.rule));
        let words: Vec<String> = counts.iter().map(|c| describe(&c.rule, c.count)).collect();
        let shown = shown_path(engine, &f.path);
        let mut check = Check::new(
            Section::Logs,
            "logs.findings",
            if credentials {
                Status::Fail
            } else {
                Status::Warn
            },
            format!("{shown}: {}", words.join(", ")),
        )
        .fix(if credentials {
            "rotate the credential, delete or redact the file; keep keys out of the bot (egress inject_headers)"
        } else {
            "keep it 0600, rotate or delete old transcripts (OpenClaw session pruning), and do not ship it to shared logging"
        });
        check.path = Some(PathBuf::from(shown));
        check.counts = counts;
        out.push(check);
    }
    let unread = left_out + cut;
    let summary = format!(
        "scanned {scanned} log/session file(s), newest first: {with_findings} with identifiers or credentials"
    );
    let status = if with_findings == 0 {
        Status::Pass
    } else {
        Status::Warn
    };
    out.push(Check::new(Section::Logs, "logs.scanned", status, summary));
    if unread > 0 {
        out.push(Check::new(
            Section::Logs,
            "logs.limit",
            Status::Skipped,
            format!(
                "{unread} older file(s) not scanned (limits: {} files, {} MiB; see --log-max-files, --log-max-mib)",
                limits.max_files,
                limits.max_bytes >> 20
            ),
        ));
    }
    out
}

/// Runs the rules over one file's bytes: JSON lines structurally (so keys such as
/// `senderStaffId` count), anything else as text.
fn scan_bytes(engine: &Engine, bytes: &[u8], path: &Path) -> Report {
    let mut report = Report::new();
    let text = String::from_utf8_lossy(bytes);
    let jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    for line in text.lines() {
        let json = jsonl
            && line.trim_start().starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(line).is_ok();
        if json {
            let _ = engine.redact_body(
                line.as_bytes(),
                Some("application/json"),
                None,
                usize::MAX,
                &mut report,
            );
        } else {
            let _ = engine.redact_text(line, &mut report);
        }
    }
    report
}

/// A path as printed: file names may hold identifiers (a phone number as a session
/// name), so they go through the engine too.
fn shown_path(engine: &Engine, path: &Path) -> String {
    let mut r = Report::new();
    engine
        .redact_text(&path.display().to_string(), &mut r)
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawveil_redact::EngineConfig;

    #[test]
    fn words() {
        assert_eq!(describe("phone", 14), "14 phone numbers");
        assert_eq!(describe("api-key", 1), "1 api key");
        assert_eq!(describe("my-rule", 2), "2 × my-rule");
    }

    #[test]
    fn counts_text_and_json_lines() {
        let e = Engine::new(&EngineConfig::default()).unwrap();
        let jsonl = b"{\"senderStaffId\":\"manager4711\",\"text\":\"call 13812345678\"}\nnot json 13912345678\n";
        let r = scan_bytes(&e, jsonl, Path::new("a.jsonl"));
        assert_eq!(r.count("phone"), 2);
        assert_eq!(r.count("dingtalk"), 1);
        let r = scan_bytes(&e, b"nothing here\n", Path::new("a.log"));
        assert!(r.is_empty());
    }

    #[test]
    fn paths_are_redacted() {
        let e = Engine::new(&EngineConfig::default()).unwrap();
        assert_eq!(
            shown_path(&e, Path::new("/s/13812345678.jsonl")),
            "/s/[REDACTED:phone].jsonl"
        );
    }
}
