//! The README's configuration reference is generated from the config structs.

const BEGIN: &str = "<!-- BEGIN CONFIG REFERENCE -->\n";
const END: &str = "<!-- END CONFIG REFERENCE -->";

#[test]
fn readme_config_reference_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        readme.find(BEGIN).expect("begin marker") + BEGIN.len(),
        readme.find(END).expect("end marker"),
    );
    let want = clawveil_config::reference_markdown();
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        readme[start..end] == want,
        "README.md's configuration reference is out of date: run UPDATE_README=1 cargo test -p clawveil readme"
    );
}

// The README's "Operations" section and docs/METRICS.md are checked against the code
// and the running binary, so they cannot drift.

use std::collections::BTreeSet;

use crate::common::{Harness, Opts};
use crate::setup::access_events;

fn repo_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the README section that starts with `heading`, up to the next `## `.
fn readme_section(heading: &str) -> String {
    let readme = repo_file("README.md");
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no {heading:?} section"));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// The backquoted names in the first cell of each table row of `text`
/// (`| \`a\`, \`b\` | ... |` gives `a` and `b`).
fn first_cells(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .flat_map(|l| {
            let cell = l.split(" |").next().unwrap_or("");
            format!("`{cell}")
                .split(", ")
                .map(|n| n.trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every backquoted word of `text` that starts with `prefix`.
fn quoted_with_prefix(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.starts_with(prefix)
                && w[prefix.len()..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// The rows of the table under `## Refusal reasons` (or another `## ` heading) of `text`.
fn table_after(text: &str, heading: &str) -> BTreeSet<String> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let rest = &text[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    first_cells(&rest[..end])
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The signals the binary installs handlers for, from its source.
fn handled_signals() -> BTreeSet<String> {
    let src = repo_file("crates/clawveil/src/run.rs");
    src.split("SignalKind::")
        .skip(1)
        .map(|s| {
            let kind = s.split('(').next().unwrap();
            match kind {
                "hangup" => "SIGHUP",
                "terminate" => "SIGTERM",
                "interrupt" => "SIGINT",
                "quit" => "SIGQUIT",
                "user_defined1" => "SIGUSR1",
                "user_defined2" => "SIGUSR2",
                other => {
                    panic!("SignalKind::{other} is handled; add it to this test and the README")
                }
            }
            .to_owned()
        })
        .collect()
}

/// The exit statuses the binary can return, from its source.
fn exit_statuses() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for file in ["main.rs", "run.rs", "cert.rs", "redact.rs"] {
        let src = repo_file(&format!("crates/clawveil/src/{file}"));
        if src.contains("ExitCode::SUCCESS") {
            codes.insert("0".to_owned());
        }
        if src.contains("ExitCode::FAILURE") {
            codes.insert("1".to_owned());
        }
        for line in src
            .lines()
            .filter(|l| l.trim_start().starts_with("const EXIT_"))
        {
            let value = line.split('=').nth(1).unwrap().trim().trim_end_matches(';');
            codes.insert(value.to_owned());
        }
    }
    codes
}

/// The paths the metrics listener answers, from its source.
fn metrics_endpoints() -> BTreeSet<String> {
    let src = repo_file("crates/telemetry/src/server.rs");
    src.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix("\"/")?;
            let (path, tail) = rest.split_once('"')?;
            tail.trim_start()
                .starts_with("=>")
                .then(|| format!("/{path}"))
        })
        .collect()
}

/// The field names every access event may carry, from the sources that emit them.
fn access_fields_in_code() -> BTreeSet<String> {
    let mut fields = BTreeSet::new();
    for file in [
        "crates/telemetry/src/access.rs",
        "crates/egress/src/event.rs",
        "crates/egress/src/targets/event.rs",
    ] {
        let src = repo_file(file);
        let mut emits = 0;
        for block in src.split("tracing::info!(").skip(1) {
            let block = block.split(");").next().unwrap();
            if !block.contains("target: \"access\"") && !block.contains("target: ACCESS_TARGET") {
                continue;
            }
            emits += 1;
            for line in block.lines().skip(1) {
                let name: String = line
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                let after = line.trim_start()[name.len()..].trim_start();
                if !name.is_empty() && (after.starts_with('=') || after.starts_with(',')) {
                    fields.insert(name);
                }
            }
        }
        assert!(emits > 0, "{file}: no access event found; update this test");
    }
    fields
}

const ENVELOPE: &[&str] = &["timestamp", "level", "message", "target"];

#[test]
fn readme_operations_section_matches_the_code() {
    let ops = readme_section("## Operations");
    let documented_signals: BTreeSet<String> = first_cells(&ops)
        .into_iter()
        .filter(|c| c.starts_with("SIG"))
        .collect();
    assert_eq!(
        documented_signals,
        handled_signals(),
        "README Operations: signals"
    );
    let documented_codes: BTreeSet<String> = first_cells(&ops)
        .into_iter()
        .filter(|c| c.chars().all(|ch| ch.is_ascii_digit()))
        .collect();
    assert_eq!(
        documented_codes,
        exit_statuses(),
        "README Operations: exit statuses"
    );
    let documented_endpoints: BTreeSet<String> = first_cells(&ops)
        .into_iter()
        .filter(|c| c.starts_with('/'))
        .collect();
    assert_eq!(
        documented_endpoints,
        metrics_endpoints(),
        "README Operations: endpoints"
    );
    let mut documented_fields: BTreeSet<String> = table_after(&ops, "| field | what |");
    assert!(
        ENVELOPE.iter().all(|f| ops.contains(&format!("`{f}`"))),
        "README Operations: the fields of every line"
    );
    documented_fields.extend(set(ENVELOPE));
    let mut code_fields = access_fields_in_code();
    code_fields.extend(set(ENVELOPE));
    code_fields.remove("target"); // `target:` is the event's target, written as the envelope field
    code_fields.insert("target".to_owned());
    assert_eq!(
        documented_fields, code_fields,
        "README Operations: log fields"
    );
}

#[test]
fn the_documented_metrics_and_log_fields_are_what_the_binary_serves() {
    // Bodies and headers logged, so the optional fields show up too.
    let h = Harness::with(Opts {
        extra: "bodies = \"redacted\"\nlevel = \"debug\"\n",
        ..Opts::default()
    });
    assert_eq!(
        h.status(&[
            "-d",
            "{\"text\":{\"content\":\"hi\"}}",
            "-H",
            "content-type: application/json",
            &h.url("/x?a=1")
        ]),
        200
    );
    assert_eq!(h.status(&["-X", "TRACE", &h.url("/")]), 405);
    let text = h.metrics_text();

    // Families: the binary, docs/METRICS.md and the README agree.
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE clawveil_"))
        .map(|l| format!("clawveil_{}", l.split(' ').next().unwrap()))
        .collect();
    let contract = repo_file("docs/METRICS.md");
    let in_contract: BTreeSet<String> = first_cells(&contract)
        .into_iter()
        .filter(|n| n.starts_with("clawveil_"))
        .collect();
    assert_eq!(
        in_contract, served,
        "docs/METRICS.md lists exactly the families served"
    );
    let ops = readme_section("## Operations");
    assert_eq!(
        quoted_with_prefix(&ops, "clawveil_"),
        served,
        "README Operations: metric families"
    );
    assert!(
        text.contains("\nprocess_resident_memory_bytes "),
        "process_* families"
    );

    // Refusal reasons: every one starts at zero, so the first scrape lists them all.
    let reasons: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("clawveil_fail_closed_total{reason=\""))
        .map(|l| l.split('"').next().unwrap().to_owned())
        .collect();
    assert!(reasons.len() >= 20, "{reasons:?}");
    assert_eq!(
        table_after(&contract, "## Refusal reasons"),
        reasons,
        "docs/METRICS.md: refusal reasons"
    );

    // Every field an access event carried is documented.
    let mut documented = table_after(&ops, "| field | what |");
    documented.extend(set(ENVELOPE));
    // An access event is written when the answer's body ends, which can be just after
    // curl has it all.
    crate::common::eventually(5, || access_events(&h).len() >= 2);
    let events = access_events(&h);
    assert!(events.len() >= 2, "{events:?}");
    let mut seen = BTreeSet::new();
    for e in &events {
        seen.extend(e.as_object().unwrap().keys().cloned());
    }
    let undocumented: Vec<_> = seen.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "access-event fields missing from the README: {undocumented:?}"
    );
    for f in [
        "request_json",
        "request_headers",
        "reason",
        "tls_version",
        "tls_group",
    ] {
        assert!(seen.contains(f), "{f} was expected in {events:?}");
    }
}
