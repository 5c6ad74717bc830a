//! The metrics listener: token, health, readiness.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::{bin, eventually, metric_value, stdout, Harness, Opts};

fn get(url: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["-s", "-w", "\n%{http_code}"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = stdout(&Command::new("curl").args(&args).output().unwrap());
    let (body, code) = out.rsplit_once('\n').unwrap();
    (body.to_owned(), code.to_owned())
}

const UNAUTHORIZED: &str = "clawveil_fail_closed_total{reason=\"metrics_unauthorized\"}";

/// `metrics.token` as an array of two file secrets (a rotation overlap): either is
/// accepted, anything else is 401 and counted; SIGHUP re-reads both files.
#[test]
fn a_metrics_token_is_enforced_and_refusals_are_counted() {
    const NEW: &str = "scrape-token-new-0001";
    const OLD: &str = "scrape-token-old-0002";
    const NEXT: &str = "scrape-token-next-0003";
    let secrets = tempfile::tempdir().unwrap();
    let write = |name: &str, value: &str| {
        let path = secrets.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let (new, old) = (write("metrics_new", NEW), write("metrics_old", OLD));
    let extra = format!(
        "[metrics]\ntoken = [\"${{file:{}}}\", \"${{file:{}}}\"]",
        new.display(),
        old.display()
    );
    let h = Harness::with(Opts {
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    });
    let url = format!("http://127.0.0.1:{}/metrics", h.metrics);
    let with = |token: &str| get(&url, &["-H", &format!("Authorization: Bearer {token}")]);
    assert_eq!(get(&url, &[]).1, "401");
    let refused = [
        "wrong",
        "scrape-token-third-0004",
        &NEW[..NEW.len() - 1],
        &format!("{NEW}{OLD}"),
        &format!("{NEW},{OLD}"),
    ];
    for token in refused {
        assert_eq!(with(token).1, "401", "{token}");
    }
    for token in [NEW, OLD] {
        let (body, code) = with(token);
        assert_eq!(code, "200", "{token}");
        assert_eq!(metric_value(&body, UNAUTHORIZED), 6.0, "{body}");
        assert!(body.contains("clawveil_build_info{version="));
        assert!(!body.contains(NEW) && !body.contains(OLD), "{body}");
    }
    // `check` shows where the tokens come from, never their values.
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(h.dir.path().join("proxy.toml"))
        .output()
        .unwrap();
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains(&format!(
            "token = [\"${{file:{}}}\", \"${{file:{}}}\"]",
            new.display(),
            old.display()
        )),
        "{printed}"
    );
    assert!(
        !printed.contains(NEW) && !printed.contains(OLD),
        "{printed}"
    );

    // Rotation: the old file gets the next token; after SIGHUP the old value is refused.
    write("metrics_old", NEXT);
    h.proxy.signal("HUP");
    assert!(
        eventually(10, || with(NEXT).1 == "200"),
        "{}",
        h.proxy.output()
    );
    let before = metric_value(&with(NEW).0, UNAUTHORIZED);
    assert_eq!(with(OLD).1, "401", "the replaced token is refused");
    let (body, code) = with(NEW);
    assert_eq!(code, "200", "the other file's token is still accepted");
    assert_eq!(metric_value(&body, UNAUTHORIZED), before + 1.0, "{body}");
    let output = h.proxy.output();
    for token in [NEW, OLD, NEXT] {
        assert!(!output.contains(token), "{token} in the output:\n{output}");
    }
    // health and readiness need no token
    assert_eq!(
        get(&format!("http://127.0.0.1:{}/healthz", h.metrics), &[]).1,
        "200"
    );
    let (ready, code) = get(&format!("http://127.0.0.1:{}/readyz", h.metrics), &[]);
    assert_eq!(code, "200", "{ready}");
}

#[test]
fn requests_are_counted_by_route_and_timed() {
    let h = Harness::with(Opts {
        extra: "[[route]]\nname = \"api\"\npath_prefix = \"/api/\"\n[[route]]\nname = \"default\"\npath_prefix = \"/\"",
        ..Opts::default()
    });
    h.curl(&[&h.url("/api/one")]);
    h.curl(&[&h.url("/api/two")]);
    h.curl(&[&h.url("/other")]);
    let m = h.metrics_text();
    assert!(m.contains("clawveil_requests_total{listener=\"https\",method=\"GET\",route=\"api\",status_class=\"2xx\"} 2"), "{m}");
    assert!(m.contains("clawveil_requests_total{listener=\"https\",method=\"GET\",route=\"default\",status_class=\"2xx\"} 1"), "{m}");
    assert!(
        m.contains("clawveil_request_duration_seconds_count{listener=\"https\",route=\"api\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("clawveil_certificate_expiry_timestamp_seconds{name=\"localhost\"}"),
        "{m}"
    );
    assert!(!m.contains("/api/one"), "paths never become labels");
}
