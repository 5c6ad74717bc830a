//! The metrics listener: token, health, readiness.

use std::process::Command;

use crate::common::{stdout, Harness, Opts};

fn get(url: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["-s", "-w", "\n%{http_code}"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = stdout(&Command::new("curl").args(&args).output().unwrap());
    let (body, code) = out.rsplit_once('\n').unwrap();
    (body.to_owned(), code.to_owned())
}

#[test]
fn a_metrics_token_is_enforced_and_refusals_are_counted() {
    let h = Harness::with(Opts {
        extra: "[metrics]\ntoken = \"s3cret-scrape-token\"",
        ..Opts::default()
    });
    let url = format!("http://127.0.0.1:{}/metrics", h.metrics);
    assert_eq!(get(&url, &[]).1, "401");
    assert_eq!(get(&url, &["-H", "Authorization: Bearer wrong"]).1, "401");
    let (body, code) = get(&url, &["-H", "Authorization: Bearer s3cret-scrape-token"]);
    assert_eq!(code, "200");
    assert!(
        body.contains("clawveil_fail_closed_total{reason=\"metrics_unauthorized\"} 2"),
        "{body}"
    );
    assert!(body.contains("clawveil_build_info{version="));
    assert!(!body.contains("s3cret-scrape-token"));
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
