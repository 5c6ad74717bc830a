//! A real Prometheus scrapes clawveil: with a bearer token from a file, every second,
//! with the example alerting rules loaded. The counts it stores are the requests sent,
//! `up` is 1, every rule evaluates without error and none fires on a healthy proxy; and
//! the exposition itself is clean under `promtool check metrics`.
//!
//! Needs `prometheus` and `promtool` (Debian/Ubuntu: `apt-get install prometheus`). When
//! they are missing the test fails, never skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clawveil_testkit::{free_port, wait_port};
use serde_json::Value;

use crate::common::{eventually, Harness, Opts};

const TOKEN: &str = "scrape-token-0123456789abcdef";

/// Fails (never skips) when a binary the test needs is not installed.
fn require(bin: &str) {
    let found = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{bin}` is not installed: this test needs a real Prometheus and promtool. \
         Install them with `apt-get install prometheus` (Debian/Ubuntu), then run it again."
    );
}

fn example_alerts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/prometheus/alerts.yml")
}

/// A `prometheus` process on a free loopback port, with its storage in a temp dir; killed
/// (by PID) when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(scrape_port: u16, token_file: &Path) -> Prometheus {
        require("prometheus");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: clawveil\n    authorization:\n      type: Bearer\n      credentials_file: {}\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{scrape_port}']\n",
                example_alerts().display(),
                token_file.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let p = Prometheus { child, port, dir };
        assert!(
            wait_port(port, Duration::from_secs(30)),
            "prometheus did not listen on {port}:\n{}",
            p.log()
        );
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// GET on the HTTP API; the `data` of a `"status":"success"` answer, or None.
    fn api(&self, path: &str, query: Option<&str>) -> Option<Value> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "5", "-G"]);
        if let Some(q) = query {
            cmd.args(["--data-urlencode", &format!("query={q}")]);
        }
        cmd.arg(format!("http://127.0.0.1:{}{path}", self.port));
        let out = cmd.output().expect("curl is installed");
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["status"] == "success").then(|| v["data"].clone())
    }

    /// The values of an instant query, as (labels, value).
    fn query(&self, q: &str) -> Vec<(Value, f64)> {
        let Some(data) = self.api("/api/v1/query", Some(q)) else {
            return Vec::new();
        };
        data["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|s| {
                        let v = s["value"][1].as_str()?.parse().ok()?;
                        Some((s["metric"].clone(), v))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (at most 30 s) until `q` has exactly one series, of value `want`.
    fn wait_for(&self, q: &str, want: f64) {
        let mut last = Vec::new();
        let ok = eventually(30, || {
            last = self.query(q);
            last.len() == 1 && last[0].1 == want
        });
        assert!(
            ok,
            "prometheus never had {q} = {want} (last answer {last:?}); its log:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scrape(h: &Harness) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-H",
            &format!("Authorization: Bearer {TOKEN}"),
            &format!("http://127.0.0.1:{}/metrics", h.metrics),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "scrape failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_real_prometheus_scrapes_clawveil_and_the_example_alerts_stay_quiet() {
    require("prometheus");
    require("promtool");
    let h = Harness::with(Opts {
        extra: "[metrics]\ntoken = \"scrape-token-0123456789abcdef\"\n\
                [[route]]\nname = \"api\"\npath_prefix = \"/api/\"\n\
                [[route]]\nname = \"default\"\npath_prefix = \"/\"",
        ..Opts::default()
    });
    for path in ["/api/a", "/api/b", "/api/c", "/x", "/y"] {
        assert_eq!(h.status(&[&h.url(path)]), 200, "{path}");
    }
    let token_file = h.dir.path().join("scrape-token");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&token_file)
            .unwrap();
        writeln!(f, "{TOKEN}").unwrap();
    }

    let prom = Prometheus::start(h.metrics, &token_file);
    let api = r#"clawveil_requests_total{job="clawveil",listener="https",route="api",method="GET",status_class="2xx"}"#;
    prom.wait_for(api, 3.0);
    prom.wait_for(
        r#"clawveil_requests_total{listener="https",route="default",status_class="2xx"}"#,
        2.0,
    );
    prom.wait_for(r#"up{job="clawveil"}"#, 1.0);

    // The count follows new traffic, scrape after scrape.
    for _ in 0..2 {
        assert_eq!(h.status(&[&h.url("/api/more")]), 200);
    }
    prom.wait_for(api, 5.0);
    prom.wait_for(
        r#"clawveil_request_duration_seconds_count{listener="https",route="api"}"#,
        5.0,
    );
    // The scrapes carried the token: none was refused.
    prom.wait_for(
        r#"clawveil_fail_closed_total{reason="metrics_unauthorized"}"#,
        0.0,
    );
    assert_eq!(
        prom.query(r#"clawveil_certificate_expiry_timestamp_seconds{name="localhost"} > time()"#)
            .len(),
        1,
        "the served certificate's notAfter is stored and in the future"
    );

    // The example alerting rules load, evaluate without error against the real series,
    // and none fires (or is pending) on a healthy proxy with a valid certificate.
    let mut rules = Vec::new();
    let evaluated = eventually(30, || {
        rules = prom
            .api("/api/v1/rules", None)
            .and_then(|d| d["groups"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        !rules.is_empty()
            && rules
                .iter()
                .all(|r| r["health"] == "ok" && r["lastEvaluation"] != "0001-01-01T00:00:00Z")
    });
    assert!(
        evaluated,
        "the rules of {} did not all evaluate cleanly: {rules:#?}\n{}",
        example_alerts().display(),
        prom.log()
    );
    assert!(rules.len() >= 9, "{rules:#?}");
    for r in &rules {
        assert_eq!(r["state"], "inactive", "an alert is not quiet: {r:#}");
    }

    // promtool's linter finds nothing in the exposition.
    let text = scrape(&h);
    assert!(text.contains("clawveil_requests_total"), "{text}");
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = lint.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}",
        out.status
    );
}
