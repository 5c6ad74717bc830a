//! Limits: body size (413), header size (431), slow clients, connection cap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{stdout, tls_stream, Harness, Opts};

#[test]
fn oversized_bodies_get_413_declared_or_streamed_and_are_counted() {
    let h = Harness::with(Opts {
        limits: "max_body = \"1MiB\"",
        ..Opts::default()
    });
    let big = h.dir.path().join("big");
    std::fs::write(&big, vec![b'a'; 2 * 1024 * 1024]).unwrap();
    let at = format!("@{}", big.display());
    assert_eq!(
        h.status(&["--http1.1", "--data-binary", &at, &h.url("/sha")]),
        413
    );
    assert!(
        h.upstream.requests_to("/sha").is_empty(),
        "a declared oversize body is never forwarded"
    );
    // Without a declared length the limit cuts the stream.
    assert_eq!(
        h.status(&[
            "--http1.1",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at,
            &h.url("/sha")
        ]),
        413
    );
    assert_eq!(
        h.status(&[
            "--http2",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at,
            &h.url("/sha")
        ]),
        413
    );
    assert_eq!(
        h.metric("clawveil_fail_closed_total{reason=\"body_too_large\"}"),
        3.0
    );
    // still serving
    assert_eq!(stdout(&h.curl(&[&h.url("/after")])), "ok");
}

#[test]
fn oversized_headers_get_431_and_are_counted() {
    let h = Harness::with(Opts {
        limits: "max_header_bytes = \"16KiB\"",
        ..Opts::default()
    });
    let big = format!("X-Big: {}", "a".repeat(40_000));
    assert_eq!(h.status(&["--http1.1", "-H", &big, &h.url("/hello")]), 431);
    assert!(h.metric("clawveil_fail_closed_total{reason=\"header_too_large\"}") >= 1.0);
    let small = format!("X-Small: {}", "a".repeat(8_000));
    assert_eq!(
        h.status(&["--http1.1", "-H", &small, &h.url("/hello")]),
        200
    );
}

/// A client still writing a head far over the limit when the proxy answers 431 must
/// be able to finish writing and read the answer: closing with its data unread would
/// reset the connection under it.
#[test]
fn a_client_still_sending_an_oversized_head_reads_the_431() {
    let h = Harness::with(Opts {
        limits: "max_header_bytes = \"16KiB\"",
        ..Opts::default()
    });
    for _ in 0..3 {
        let mut s = tls_stream(&h);
        let head = format!(
            "GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(2 << 20)
        );
        s.write_all(head.as_bytes())
            .expect("the proxy reads the rest of a refused head instead of resetting");
        s.flush().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // the answer, then the end of the connection (without close_notify)
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let got = String::from_utf8_lossy(&got);
        assert!(got.starts_with("HTTP/1.1 431"), "{got:?}");
    }
    assert!(h.metric("clawveil_fail_closed_total{reason=\"header_too_large\"}") >= 3.0);
    // still serving
    assert_eq!(stdout(&h.curl(&[&h.url("/after")])), "ok");
}

#[test]
fn slow_clients_are_cut_at_the_header_read_timeout() {
    let h = Harness::with(Opts {
        limits: "header_read_timeout = \"1s\"",
        ..Opts::default()
    });
    // A TCP client that never starts the TLS handshake.
    let mut s = TcpStream::connect(("127.0.0.1", h.https)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "connection closed without an answer");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    assert_eq!(stdout(&h.curl(&[&h.url("/still")])), "ok");
}

#[test]
fn a_body_slower_than_request_timeout_gets_408() {
    let h = Harness::with(Opts {
        limits: "request_timeout = \"1s\"",
        ..Opts::default()
    });
    let mut tls = crate::common::tls_stream(&h);
    let head = format!(
        "POST /sha HTTP/1.1\r\nHost: localhost:{}\r\nContent-Length: 100\r\n\r\npartial",
        h.https
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    let start = Instant::now();
    let mut answer = String::new();
    let _ = tls.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let h = Harness::with(Opts {
        limits: "max_connections = 1\nheader_read_timeout = \"2s\"",
        ..Opts::default()
    });
    // Occupy the only slot with an idle TCP connection (cut after 2 s).
    let _idle = TcpStream::connect(("127.0.0.1", h.https)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    assert_eq!(stdout(&h.curl(&[&h.url("/queued")])), "ok");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "served only after the slot freed: {:?}",
        start.elapsed()
    );
}
