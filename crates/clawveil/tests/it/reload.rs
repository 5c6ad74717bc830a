//! Certificate reloads: SIGHUP and file changes swap certificates without dropping
//! connections; broken files keep the old certificate serving.

use std::process::Command;

use clawveil_testkit::TestCert;

use crate::common::{eventually, stdout, Harness};

/// Whether a fresh TLS handshake verifies against `ca` (a self-signed test cert).
fn served_by(h: &Harness, ca: &std::path::Path) -> bool {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &format!("localhost:{}:127.0.0.1", h.https),
            &h.url("/which"),
        ])
        .output()
        .unwrap();
    stdout(&out) == "200"
}

/// Writes a fresh certificate over the served one (atomically, as deploy tools do).
fn replace_cert(h: &Harness) -> std::path::PathBuf {
    let staging = h.dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let new = TestCert::localhost(&staging);
    std::fs::copy(&new.key, h.dir.path().join("key.tmp")).unwrap();
    std::fs::rename(h.dir.path().join("key.tmp"), &h.cert.key).unwrap();
    std::fs::copy(&new.cert, h.dir.path().join("cert.tmp")).unwrap();
    std::fs::rename(h.dir.path().join("cert.tmp"), &h.cert.cert).unwrap();
    new.cert
}

#[test]
fn sighup_swaps_the_certificate_while_a_request_is_in_flight() {
    let h = Harness::start();
    let old_ca = h.dir.path().join("old-ca.pem");
    std::fs::copy(&h.cert.cert, &old_ca).unwrap();
    let inflight = {
        let args = [
            "-sS",
            "--cacert",
            old_ca.to_str().unwrap(),
            "--resolve",
            &format!("localhost:{}:127.0.0.1", h.https),
            &h.url("/slow?s=1.5"),
        ]
        .map(String::from);
        std::thread::spawn(move || Command::new("curl").args(&args).output().unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let new_ca = replace_cert(&h);
    h.proxy.signal("HUP");
    assert!(
        eventually(5, || served_by(&h, &new_ca)),
        "new certificate served"
    );
    assert!(!served_by(&h, &old_ca), "old certificate retired");
    assert_eq!(
        stdout(&inflight.join().unwrap()),
        "slow",
        "the in-flight request completed"
    );
    assert!(h.metric("clawveil_certificate_reloads_total{result=\"ok\",source=\"files\"}") >= 2.0);
}

#[test]
fn a_changed_file_is_picked_up_without_a_signal() {
    let h = Harness::start();
    let new_ca = replace_cert(&h);
    assert!(
        eventually(10, || served_by(&h, &new_ca)),
        "file watcher reloaded:\n{}",
        h.proxy.output()
    );
}

#[test]
fn garbage_or_mismatched_files_keep_the_old_certificate_serving() {
    let h = Harness::start();
    let good_ca = h.dir.path().join("good-ca.pem");
    std::fs::copy(&h.cert.cert, &good_ca).unwrap();

    std::fs::write(&h.cert.cert, "garbage\n").unwrap();
    h.proxy.signal("HUP");
    assert!(eventually(5, || h.metric(
        "clawveil_certificate_reloads_total{result=\"failed\",source=\"files\"}"
    ) >= 1.0));
    assert!(served_by(&h, &good_ca), "old certificate still served");

    // A valid certificate with somebody else's key.
    let other = TestCert::localhost(&h.dir.path().join("other").tap_mkdir());
    std::fs::copy(&other.cert, &h.cert.cert).unwrap();
    h.proxy.signal("HUP");
    assert!(eventually(5, || h.metric(
        "clawveil_certificate_reloads_total{result=\"failed\",source=\"files\"}"
    ) >= 2.0));
    assert!(served_by(&h, &good_ca));
    // The metric moves before the log writer thread has written the line.
    let said = |text: &str| eventually(5, || h.proxy.output().contains(text));
    let log = || h.proxy.output();
    assert!(said("previous certificate keeps serving"), "{}", log());
    assert!(said("does not match"), "the log says why: {}", log());
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
