//! The operator's small tools: `clawveil redact` and `clawveil cert status`.

use std::io::Write;
use std::process::{Command, Stdio};

use clawveil_testkit::TestCert;

use crate::common::{bin, stdout};

fn redact(config: Option<&std::path::Path>, input: &str, extra: &[&str]) -> (String, String) {
    let cfg = config
        .map(|p| p.to_str().unwrap().to_owned())
        .unwrap_or_else(|| "/nonexistent/proxy.toml".into());
    let mut args = vec!["redact", "--config", cfg.as_str()];
    args.extend_from_slice(extra);
    let mut child = Command::new(bin())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn redact_applies_builtin_and_custom_rules_and_explains_without_values() {
    let (out, _) = redact(None, "call 13912345678 or li.lei@example.com", &[]);
    assert_eq!(out.trim(), "call [REDACTED:phone] or [REDACTED:email]");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("proxy.toml");
    std::fs::write(&cfg, "[listen]\nhttps = \"127.0.0.1:8443\"\n[[redact.rule]]\nname = \"order-id\"\npattern = 'ORD-[0-9]{8}'\n").unwrap();
    let input = r#"{"senderStaffId":"manager4220","text":{"content":"order ORD-20261124"}}"#;
    let (out, err) = redact(Some(&cfg), input, &["--explain"]);
    assert_eq!(
        out.trim(),
        r#"{"senderStaffId":"[REDACTED:dingtalk]","text":{"content":"order [REDACTED:order-id]"}}"#
    );
    assert!(
        err.contains("order-id") && err.contains("dingtalk"),
        "{err}"
    );
    assert!(
        !err.contains("ORD-20261124") && !err.contains("manager4220"),
        "explain never shows values: {err}"
    );
}

#[test]
fn cert_status_describes_the_served_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::localhost(dir.path());
    let cfg = dir.path().join("proxy.toml");
    std::fs::write(
        &cfg,
        format!("[listen]\nhttps = \"127.0.0.1:8443\"\n[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n", cert.cert.display(), cert.key.display()),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["cert", "status", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(
        text.contains("localhost, 127.0.0.1") && text.contains("not after"),
        "{text}"
    );
}

#[test]
fn cert_status_of_an_empty_acme_storage_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("proxy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[listen]\nhttps = \"127.0.0.1:8443\"\nhttp = \"127.0.0.1:8880\"\n[tls]\nmode = \"acme\"\n[acme]\ndomains = [\"bot.example.com\"]\nstorage = \"{}\"\n",
            dir.path().join("acme").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["cert", "status", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("no certificate stored"), "{text}");
}
