//! Random and mangled input: errors only, never a panic.

use proptest::prelude::*;

use crate::{full_in_tempdir, parse, FULL};

/// Lines that look like config, so that mangling reaches validation, not only the parser.
fn line() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "https",
        "http",
        "metrics",
        "url",
        "mode",
        "min_version",
        "domains",
        "challenge",
        "max_body",
        "level",
        "builtin",
        "name",
        "path_prefix",
        "verify",
        "app_secrets",
        "event_aes_key",
        "listen",
        "inject_headers",
        "fallback_on",
        "max_connections",
        "token",
        "pattern",
        "storage_key",
        "zz",
    ]);
    let values = prop::sample::select(vec![
        "\"0.0.0.0:443\"",
        "\"127.0.0.1:0\"",
        "443",
        "\"\"",
        "\"30s\"",
        "\"10MiB\"",
        "-1",
        "true",
        "[]",
        "[\"a\"]",
        "\"${env:\"",
        "\"${env:CLAWVEIL_FUZZ_UNSET}\"",
        "\"${file:/nonexistent}\"",
        "{ A = \"b\" }",
        "\"acme\"",
        "\"files\"",
        "\"dingtalk-robot\"",
        "\"/\"",
        "\"[\"",
        "1979-05-27",
        "3.5",
        "\"ä\"",
    ]);
    let headers = prop::sample::select(vec![
        "[listen]",
        "[tls]",
        "[acme]",
        "[[route]]",
        "[egress]",
        "[[egress.target]]",
        "[redact]",
        "[[redact.rule]]",
        "[metrics]",
        "[limits]",
        "[log]",
        "[upstream]",
        "",
    ]);
    (headers, keys, values).prop_map(|(h, k, v)| format!("{h}\n{k} = {v}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        let _ = parse(&src);
    }

    #[test]
    fn config_shaped_text_never_panics(lines in prop::collection::vec(line(), 0..12)) {
        let src = lines.join("\n");
        if let Err(e) = parse(&src) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with("proxy.toml:"), "{}", msg);
        }
    }

    #[test]
    fn mangled_full_example_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, "\\PC{0,3}"), 1..6)) {
        let (_dir, full) = full_in_tempdir();
        let mut src = full;
        for (at, op, text) in edits {
            let mut i = at.index(src.len() + 1);
            while !src.is_char_boundary(i) { i -= 1; }
            match op {
                0 => src.insert_str(i, &text),
                1 => { let end = (i + 8).min(src.len()); let mut end = end; while !src.is_char_boundary(end) { end -= 1; } src.replace_range(i..end, ""); }
                2 => src.insert(i, '\n'),
                _ => src.insert_str(i, "\"]}=[.\n"),
            }
        }
        if let Err(e) = parse(&src) {
            prop_assert!(e.line.is_some() && e.exit_code() == 2);
        }
    }
}

#[test]
fn full_example_is_valid_before_mangling() {
    let (_dir, src) = full_in_tempdir();
    assert!(parse(&src).is_ok());
    assert!(FULL.contains("@DIR@"));
}
