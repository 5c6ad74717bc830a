//! The plain-HTTP listener redirects and never proxies.

use std::process::Command;

use crate::common::{stdout, Harness};

#[test]
fn plain_http_redirects_with_308_and_never_reaches_the_bot() {
    let h = Harness::start();
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
            "Host: bot.example.com",
            &format!("http://127.0.0.1:{}/plain?q=1", h.http),
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        format!("308 https://bot.example.com:{}/plain?q=1", h.https)
    );
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-d",
            "x=1",
            &format!("http://127.0.0.1:{}/post", h.http),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "308");
    assert!(
        h.upstream.records().is_empty(),
        "nothing proxied over plaintext"
    );
    assert_eq!(
        h.metric("clawveil_fail_closed_total{reason=\"plaintext_refused\"}"),
        2.0
    );
    assert!(h.metrics_text().contains("clawveil_requests_total{listener=\"http\",method=\"GET\",route=\"redirect\",status_class=\"3xx\"} 1"));
}

#[test]
fn unknown_acme_challenges_are_404_not_redirects() {
    let h = Harness::start();
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!(
                "http://127.0.0.1:{}/.well-known/acme-challenge/unknown",
                h.http
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "404");
    assert_eq!(
        h.metric("clawveil_fail_closed_total{reason=\"plaintext_refused\"}"),
        0.0
    );
}
