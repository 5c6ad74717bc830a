//! TLS: versions, ALPN, garbage on the TLS port, self-signed mode.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use clawveil_testkit::{free_port, ProxyProcess};

use crate::common::{bin, eventually, stdout, Harness, Opts};

fn s_client(port: u16, args: &[&str]) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut all = vec!["s_client", "-connect", &connect];
    all.extend_from_slice(args);
    let mut child = Command::new("timeout")
        .arg("10")
        .arg("openssl")
        .args(&all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn tls_1_1_is_refused_and_1_2_and_1_3_are_served() {
    let h = Harness::start();
    let old = s_client(h.https, &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert!(
        old.contains("Cipher is (NONE)") || old.contains("alert"),
        "{old}"
    );
    let v12 = s_client(h.https, &["-tls1_2"]);
    assert!(
        v12.contains("Protocol  : TLSv1.2") || v12.contains("TLSv1.2"),
        "{v12}"
    );
    let v13 = s_client(h.https, &["-tls1_3"]);
    assert!(v13.contains("TLSv1.3"), "{v13}");
    let m = h.metrics_text();
    assert!(
        m.contains(
            "clawveil_tls_handshakes_total{group=\"X25519\",result=\"ok\",version=\"TLSv1.3\"}"
        ),
        "{m}"
    );
    assert!(h.metric("clawveil_fail_closed_total{reason=\"tls_handshake\"}") >= 1.0);
}

#[test]
fn min_version_1_3_refuses_tls_1_2() {
    let h = Harness::with(Opts {
        tls: "min_version = \"1.3\"",
        ..Opts::default()
    });
    let v12 = s_client(h.https, &["-tls1_2"]);
    assert!(v12.contains("Cipher is (NONE)"), "{v12}");
    assert!(s_client(h.https, &["-tls1_3"]).contains("TLSv1.3"));
}

#[test]
fn alpn_offers_h2_and_http1() {
    let h = Harness::start();
    assert!(s_client(h.https, &["-alpn", "h2"]).contains("ALPN protocol: h2"));
    assert!(s_client(h.https, &["-alpn", "http/1.1"]).contains("ALPN protocol: http/1.1"));
}

#[test]
fn garbage_on_the_tls_port_is_refused_and_the_proxy_keeps_serving() {
    let h = Harness::start();
    let before = h.metric("clawveil_fail_closed_total{reason=\"tls_handshake\"}");
    // Port probes (connect, close before a byte) are not refusals.
    for _ in 0..3 {
        drop(TcpStream::connect(("127.0.0.1", h.https)).unwrap());
    }
    for payload in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0x00][..],
        &[0u8; 512][..],
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", h.https)).unwrap();
        let _ = s.write_all(payload);
        drop(s);
    }
    assert!(eventually(5, || h
        .metric("clawveil_fail_closed_total{reason=\"tls_handshake\"}")
        >= before + 3.0));
    assert_eq!(stdout(&h.curl(&[&h.url("/after-garbage")])), "ok");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        h.metric("clawveil_fail_closed_total{reason=\"tls_handshake\"}"),
        before + 3.0,
        "the three probes were counted"
    );
}

#[test]
fn self_signed_mode_generates_a_0600_key_once_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (https, metrics) = (free_port(), free_port());
    let cert = dir.path().join("certs/dev.pem");
    let key = dir.path().join("certs/dev.key");
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\nhttps = \"127.0.0.1:{https}\"\nmetrics = \"127.0.0.1:{metrics}\"\n[tls]\nmode = \"self-signed\"\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let first_pem;
    {
        let _p = ProxyProcess::start(&bin(), &config, dir.path(), https);
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        first_pem = std::fs::read(&cert).unwrap();
        let out = Command::new("curl")
            .args([
                "-s",
                "--cacert",
                cert.to_str().unwrap(),
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("https://127.0.0.1:{https}/"),
            ])
            .output()
            .unwrap();
        // TLS verifies against the generated certificate; no bot is running, so 502.
        assert_eq!(stdout(&out), "502");
        let ready = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{metrics}/readyz")])
            .output()
            .unwrap();
        assert!(stdout(&ready).contains("\"ready\":true"));
    }
    let _p = ProxyProcess::start(&bin(), &config, dir.path(), https);
    assert_eq!(
        std::fs::read(&cert).unwrap(),
        first_pem,
        "the certificate is reused on restart"
    );
}
