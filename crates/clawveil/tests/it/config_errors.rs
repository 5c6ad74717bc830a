//! Configuration errors, as an operator meets them through `clawveil check` and `run`.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use clawveil_testkit::TestCert;

use crate::common::{bin, stdout};

fn check(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["check", "--config", path.to_str().unwrap()])
        .env_remove("CLAWVEIL_TEST_SECRET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn unknown_keys_name_the_file_line_and_key_and_exit_2() {
    let (code, out) = check("[listen]\nhttps = \"127.0.0.1:8443\"\nhttpz = \"x\"\n", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("proxy.toml:3"), "{out}");
    assert!(out.contains("httpz"), "{out}");
    assert!(out.contains("https"), "suggests valid keys: {out}");
}

#[test]
fn bad_values_say_what_would_be_valid() {
    for (config, expect) in [
        ("[listen]\nhttps = \"localhost\"\n", "listen.https"),
        ("[listen]\nhttps = \"127.0.0.1:8443\"\n[limits]\nheader_read_timeout = \"10 parsecs\"\n", "header_read_timeout"),
        ("[listen]\nhttps = \"127.0.0.1:8443\"\n[limits]\nmax_body = \"lots\"\n", "max_body"),
        ("[listen]\nhttps = \"127.0.0.1:8443\"\n[tls]\nmode = \"magic\"\n", "self-signed"),
        ("[listen]\nhttps = \"127.0.0.1:8443\"\nmetrics = \"0.0.0.0:9464\"\n", "metrics.token"),
        ("[listen]\nhttps = \"127.0.0.1:8443\"\n[tls]\nmode = \"files\"\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n", "/nonexistent"),
        ("[listen\nhttps = 1\n", "proxy.toml:1"),
    ] {
        let (code, out) = check(config, &[]);
        assert_eq!(code, 2, "{config}: {out}");
        assert!(out.contains(expect), "{config}: expected {expect:?} in {out}");
    }
}

#[test]
fn secrets_are_masked_by_check_and_a_missing_variable_is_named() {
    let config = "[listen]\nhttps = \"127.0.0.1:8443\"\n[metrics]\ntoken = \"${env:CLAWVEIL_TEST_SECRET}\"\n";
    let (code, out) = check(config, &[("CLAWVEIL_TEST_SECRET", "tok3nV4lueXyz")]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("tok3nV4lueXyz"), "{out}");
    let (code, out) = check(config, &[]);
    assert_eq!(code, 2);
    assert!(out.contains("CLAWVEIL_TEST_SECRET"), "{out}");
}

#[test]
fn a_group_or_world_readable_key_is_refused_with_the_chmod_that_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::localhost(dir.path());
    std::fs::set_permissions(&cert.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "[listen]\nhttps = \"127.0.0.1:8443\"\n[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.cert.display(),
        cert.key.display()
    );
    let (code, out) = check(&config, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("chmod 600 {}", cert.key.display())),
        "{out}"
    );

    // The override works, loudly.
    let path = dir.path().join("p.toml");
    std::fs::write(&path, &config).unwrap();
    let out = Command::new(bin())
        .args([
            "check",
            "--allow-insecure-permissions",
            "--config",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_repository_proxy_toml_is_valid() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proxy.toml");
    let out = Command::new(bin())
        .args(["check", "--config", repo.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_and_version_teach() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let help = stdout(&out);
    for word in ["run", "check", "SIGHUP", "proxy.toml"] {
        assert!(help.contains(word), "{word} in --help: {help}");
    }
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(stdout(&out).starts_with("clawveil "));
}
