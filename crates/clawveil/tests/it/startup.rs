//! Starting up as a person meets it: `clawveil --config x` without `run`, fatal start-up
//! errors said once on stderr with their own exit status, start-up log lines that read
//! as what they are (no `Some(..)`, no Rust enum names, lists as arrays, no empty
//! fields), lines on a terminal and JSON elsewhere, dates people can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use clawveil_testkit::{free_port, ProxyProcess, TestCert};

use crate::common::{bin, eventually, stdout};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `[listen]` on fresh ports; returns the text and the https port.
fn listen(http: u16) -> (String, u16) {
    let https = free_port();
    (
        format!(
            "[listen]\nhttps = \"127.0.0.1:{https}\"\nhttp = \"127.0.0.1:{http}\"\nmetrics = \"127.0.0.1:{}\"\n",
            free_port()
        ),
        https,
    )
}

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Runs clawveil with `args` until it exits by itself (within 20 s).
fn run_to_exit(args: &[&str], dir: &Path) -> Output {
    let child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    out
}

#[test]
fn options_without_a_subcommand_mean_run() {
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::localhost(dir.path());
    let (listen, https) = listen(free_port());
    let config = write(
        dir.path(),
        &format!(
            "{listen}[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.cert.display(),
            cert.key.display()
        ),
    );
    for args in [
        vec!["--config", config.as_str()],
        vec!["--allow-insecure-permissions", "--config", config.as_str()],
        vec!["-c", config.as_str()],
    ] {
        let mut p = ProxyProcess::start_with(&bin(), &args, dir.path(), https, &[]);
        p.signal("TERM");
        let status = p.wait_exit(Duration::from_secs(10));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "{args:?}: {}",
            p.output()
        );
        assert!(p.output().contains("clawveil listening"), "{args:?}");
    }
    // A subcommand with run's options before it is refused, not silently run.
    let out = Command::new(bin())
        .args(["--config", &config, "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn help_lists_the_exit_statuses_and_running_without_run() {
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let help = stdout(&out);
    for want in [
        "clawveil --config /etc/clawveil/proxy.toml",
        "Exit status:",
        "2  invalid configuration",
        "3  could not start",
    ] {
        assert!(help.contains(want), "{want:?} in --help:\n{help}");
    }
}

#[test]
fn a_port_in_use_is_said_once_on_stderr_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (listen, _) = listen(port);
    let config = write(dir.path(), &listen);
    let out = run_to_exit(&["--config", &config], dir.path());
    let (err, log) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(3), "stderr: {err}\nstdout: {log}");
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(err.matches(&addr).count(), 1, "{err}");
    assert_eq!(
        err.to_lowercase().matches("address already in use").count(),
        1,
        "{err}"
    );
    assert!(
        err.starts_with("clawveil: cannot start: ") && err.contains("listen.http"),
        "{err}"
    );
    assert!(!log.contains("in use"), "said on stderr only: {log}");
}

#[test]
fn an_unusable_certificate_file_is_a_configuration_error_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::localhost(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let (listen, _) = listen(free_port());
    let files = |cert_path: &Path| {
        format!(
            "{listen}[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert_path.display(),
            cert.key.display()
        )
    };
    let config = write(dir.path(), &files(&garbage));
    let out = run_to_exit(&["--config", &config], dir.path());
    let (err, log) = (stderr(&out), stdout(&out));
    assert_eq!(out.status.code(), Some(2), "stderr: {err}\nstdout: {log}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("clawveil: invalid configuration: ")
            && err.contains(garbage.to_str().unwrap())
            && err.contains("no PEM certificate"),
        "{err}"
    );
    assert!(
        !log.contains("previous certificate keeps serving"),
        "no reload message at start: {log}"
    );

    // Unreadable: only testable when not root (root reads it anyway).
    std::fs::set_permissions(&cert.cert, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&cert.cert).is_err() {
        let config = write(dir.path(), &files(&cert.cert));
        let out = run_to_exit(&["--config", &config], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(err.matches("ermission denied").count(), 1, "{err}");
        assert!(err.contains(cert.cert.to_str().unwrap()), "{err}");
    }
}

/// The JSON lines clawveil wrote so far, parsed (every line must be JSON).
fn json_lines(p: &ProxyProcess) -> Vec<serde_json::Map<String, serde_json::Value>> {
    std::fs::read_to_string(&p.stdout)
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => panic!("not a JSON object: {l}"),
        })
        .collect()
}

/// What a person should never have to read in a log field.
fn assert_human(lines: &[serde_json::Map<String, serde_json::Value>]) {
    for line in lines {
        for (k, v) in line {
            if let Some(s) = v.as_str() {
                assert!(!s.is_empty(), "empty {k:?}: {line:?}");
                for odd in [
                    "Some(",
                    "None",
                    "Unix seconds",
                    "[\"",
                    "SelfSigned",
                    "Acme",
                    "Http01",
                ] {
                    assert!(
                        !s.starts_with(odd) && !s.contains(odd),
                        "{k:?} = {s:?}: {line:?}"
                    );
                }
            }
        }
        for list in ["names", "domains", "contact", "targets", "paths"] {
            if let Some(v) = line.get(list) {
                assert!(v.is_array(), "{list} is a JSON array: {line:?}");
            }
        }
    }
}

/// `[tls]` in self-signed mode, generating into `dir` (the default `certs/` is relative
/// to the working directory).
fn self_signed(dir: &Path) -> String {
    format!(
        "[tls]\nmode = \"self-signed\"\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.join("certs/selfsigned.pem").display(),
        dir.join("certs/selfsigned.key").display()
    )
}

fn rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 20
        && b[4] == b'-'
        && b[10] == b'T'
        && s.ends_with('Z')
        && b.iter().filter(|c| c.is_ascii_digit()).count() == 14
}

#[test]
fn start_up_lines_read_as_what_they_say() {
    // Self-signed, as the repository's proxy.toml (without its explicit format).
    let dir = tempfile::tempdir().unwrap();
    let (listen_text, https) = listen(free_port());
    let config = write(
        dir.path(),
        &format!("{listen_text}{}", self_signed(dir.path())),
    );
    let p = ProxyProcess::start_with(&bin(), &["--config", &config], dir.path(), https, &[]);
    assert!(eventually(10, || p.output().contains("clawveil listening")));
    let lines = json_lines(&p);
    assert_human(&lines);
    let listening = lines
        .iter()
        .find(|l| l["message"] == "clawveil listening")
        .unwrap();
    assert_eq!(listening["tls_mode"], "self-signed");
    assert!(
        listening["http"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{listening:?}"
    );
    let generated = lines
        .iter()
        .find(|l| l["message"] == "generated a self-signed development certificate")
        .unwrap();
    assert_eq!(
        generated["names"],
        serde_json::json!(["localhost", "127.0.0.1", "::1"])
    );
    drop(p);

    // ACME against a CA that is not there: the storage is created without a warning.
    let ca = free_port();
    let (listen_text, https) = listen(free_port());
    let storage = dir.path().join("acme");
    let acme = format!(
        "{listen_text}[tls]\nmode = \"acme\"\n[acme]\ndomains = [\"bot.example.com\", \"www.example.com\"]\ncontact = [\"mailto:ops@example.com\"]\ndirectory = \"https://127.0.0.1:{ca}/dir\"\nstorage = \"{}\"\n",
        storage.display()
    );
    let config = write(dir.path(), &acme);
    let p = ProxyProcess::start_with(&bin(), &["--config", &config], dir.path(), https, &[]);
    assert!(
        eventually(15, || p.output().contains("ACME order failed")),
        "{}",
        p.output()
    );
    let lines = json_lines(&p);
    assert_human(&lines);
    assert!(
        !p.output().contains("group/others"),
        "no warning about a directory clawveil created: {}",
        p.output()
    );
    assert_eq!(
        std::fs::metadata(&storage).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let scheduled = lines
        .iter()
        .find(|l| l["message"] == "ACME renewal scheduled")
        .unwrap();
    assert!(
        rfc3339(scheduled["next_renewal"].as_str().unwrap()),
        "{scheduled:?}"
    );
    assert_eq!(
        scheduled["domains"],
        serde_json::json!(["bot.example.com", "www.example.com"])
    );
    let failed = lines
        .iter()
        .find(|l| l["message"] == "ACME order failed")
        .unwrap();
    assert!(
        !failed.contains_key("domain") && !failed.contains_key("problem"),
        "{failed:?}"
    );
    assert_eq!(
        lines
            .iter()
            .find(|l| l["message"] == "clawveil listening")
            .unwrap()["tls_mode"],
        "acme"
    );
    drop(p);

    // A directory that was open before is still tightened, and said so.
    std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = ProxyProcess::start_with(&bin(), &["--config", &config], dir.path(), https, &[]);
    assert!(
        eventually(10, || p.output().contains("group/others")),
        "{}",
        p.output()
    );
    assert_eq!(
        std::fs::metadata(&storage).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn a_terminal_gets_lines_and_an_explicit_format_wins() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` command (bsdutils)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (listen_text, _) = listen(free_port());
    for (log, json) in [("", false), ("[log]\nformat = \"json\"\n", true)] {
        let config = write(
            dir.path(),
            &format!("{listen_text}{}{log}", self_signed(dir.path())),
        );
        // `script` gives clawveil a terminal; `timeout` stops it with SIGINT.
        let inner = format!(
            "timeout -s INT 3 {} --config {config}",
            bin().to_str().unwrap()
        );
        let out = Command::new("script")
            .args(["-qec", &inner, "/dev/null"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(text.contains("clawveil listening"), "{log:?}: {text}");
        assert_eq!(text.contains("{\"timestamp\""), json, "{log:?}: {text}");
    }
}

#[test]
fn cert_status_says_dates_and_how_far_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let cert = TestCert::localhost(dir.path());
    let (listen_text, _) = listen(free_port());
    let config = write(
        dir.path(),
        &format!(
            "{listen_text}[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.cert.display(),
            cert.key.display()
        ),
    );
    let out = Command::new(bin())
        .args(["cert", "status", "--config", &config])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        !text.contains("Unix seconds") && text.contains("tls.mode = \"files\""),
        "{text}"
    );
    let after = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("not after"))
        .unwrap()
        .trim();
    let (date, rel) = after.split_once(' ').unwrap();
    assert!(rfc3339(date), "{after}");
    assert!(
        rel.starts_with("(in ") && rel.ends_with(" days)"),
        "{after}"
    );
}
