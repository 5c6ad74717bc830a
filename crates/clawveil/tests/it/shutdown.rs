//! Graceful shutdown: SIGTERM stops accepting, lets in-flight requests finish, exits 0.

use std::process::Command;
use std::time::Duration;

use crate::common::{stdout, Harness};

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let mut h = Harness::start();
    let mut inflight = Vec::new();
    for v in ["--http1.1", "--http2"] {
        let args = [
            "-sS",
            v,
            "--cacert",
            h.cert.cert.to_str().unwrap(),
            "--resolve",
            &format!("localhost:{}:127.0.0.1", h.https),
            &h.url("/slow?s=1"),
        ]
        .map(String::from);
        inflight.push(std::thread::spawn(move || {
            Command::new("curl").args(&args).output().unwrap()
        }));
    }
    std::thread::sleep(Duration::from_millis(400));
    h.proxy.signal("TERM");
    for t in inflight {
        let out = t.join().unwrap();
        assert_eq!(
            stdout(&out),
            "slow",
            "in-flight request finished: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status = h
        .proxy
        .wait_exit(Duration::from_secs(5))
        .expect("exited after draining");
    assert!(status.success(), "{status:?}");
    assert!(h.proxy.output().contains("shutting down"));
    // No longer accepting.
    assert_ne!(h.status(&[&h.url("/after")]), 200);
}
