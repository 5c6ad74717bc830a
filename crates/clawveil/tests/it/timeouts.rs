//! Whose fault a slow exchange is: a slow upload is the client's (the response timeout
//! counts from the last body byte; a body past `request_timeout` is 408, not 504), and an
//! upstream that cuts its response short is the upstream's (`class="reset"`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{eventually, sha256_hex, tls_stream, Harness, Opts};
use crate::setup::{
    access_events, all_refusals, assert_one_refusal, raw_status, series, start, still_serving,
};

/// `response_timeout = "1s"`, `request_timeout = "3s"`, in front of `upstream`.
fn proxy(upstream: Option<&str>) -> Harness {
    let o = Opts {
        limits: "request_timeout = \"3s\"",
        ..Opts::default()
    };
    start(&o, upstream, &[], |_, text| {
        assert!(text.contains("response_timeout = \"2s\""));
        text.replacen("response_timeout = \"2s\"", "response_timeout = \"1s\"", 1)
    })
}

/// Sends a head declaring `declared` bytes, then `body` one byte per `gap`, then reads
/// the answer until the server closes: (answer, seconds from the head to the answer).
fn dribble(h: &Harness, path: &str, declared: usize, body: &[u8], gap: Duration) -> (String, f64) {
    let mut s = tls_stream(h);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost:{}\r\nContent-Length: {declared}\r\n\
         Connection: close\r\n\r\n",
        h.https
    );
    let start = Instant::now();
    s.write_all(head.as_bytes()).unwrap();
    s.flush().unwrap();
    for b in body {
        std::thread::sleep(gap);
        s.write_all(&[*b]).unwrap();
        s.flush().unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&got).into_owned();
    (answer, start.elapsed().as_secs_f64())
}

fn timeouts(h: &Harness, upstream: &str) -> f64 {
    let label = format!("upstream=\"{upstream}\"");
    series(h, "clawveil_upstream_timeouts_total", &[&label])
}

#[test]
fn a_slow_upload_is_served_once_its_body_is_in() {
    let h = proxy(None);
    let upstream = h.upstream.addr.to_string();
    let before = all_refusals(&h);
    // 20 bytes over 2 s: longer than response_timeout, within request_timeout.
    let body = b"dribbled-body-012345";
    let (answer, took) = dribble(&h, "/sha", body.len(), body, Duration::from_millis(100));
    assert_eq!(raw_status(&answer), 200, "{answer}");
    assert!(answer.ends_with(&sha256_hex(body)), "{answer}");
    assert!(took >= 2.0, "the body took {took} s");
    let rec = h.upstream.requests_to("/sha");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].body_len, body.len());
    assert_eq!(all_refusals(&h), before);
    assert_eq!(timeouts(&h, &upstream), 0.0);
    still_serving(&h);
}

#[test]
fn a_body_stalled_past_request_timeout_is_408_not_504() {
    let h = proxy(None);
    let upstream = h.upstream.addr.to_string();
    let before = all_refusals(&h);
    // 10 of 100 declared bytes, then nothing.
    let (answer, took) = dribble(&h, "/stall", 100, b"0123456789", Duration::ZERO);
    assert_eq!(raw_status(&answer), 408, "{answer}");
    assert!(answer.ends_with("request body too slow\n"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!((2.5..8.0).contains(&took), "answered after {took} s");
    assert_one_refusal(&before, &all_refusals(&h), "request_timeout");
    assert_eq!(
        timeouts(&h, &upstream),
        0.0,
        "not counted against the upstream"
    );
    let errors = format!("upstream=\"{upstream}\"");
    assert_eq!(
        series(&h, "clawveil_upstream_errors_total", &[&errors]),
        0.0
    );
    // The head streams on ahead of the body, but the bot never gets a whole request.
    let rec = h.upstream.requests_to("/stall");
    assert!(rec.iter().all(|r| r.body_len < 100), "{rec:?}");
    assert!(eventually(5, || access_events(&h).iter().any(|e| {
        e["path"] == "/stall" && e["status"] == 408 && e["error"] == "client_timeout"
    })));
    still_serving(&h);
}

/// An upstream that answers `/cut` with `Content-Length: 100000` and then only 1,000
/// bytes before closing, and anything else with `ok`. Counts the `/cut` requests.
fn cutting_upstream() -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let cuts = Arc::new(AtomicUsize::new(0));
    let counted = cuts.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                if head.starts_with(b"GET /cut") {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let top = "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                               content-length: 100000\r\n\r\n";
                    let _ = s.write_all(top.as_bytes());
                    let _ = s.write_all(&[b'z'; 1000]);
                    let _ = s.flush();
                    // Die a moment later, as a crashing bot does: cut at once, an h2 stream
                    // may be reset before its queued HEADERS frame is written (h2 drops a
                    // reset stream's pending frames) and the client sees no status at all.
                    std::thread::sleep(std::time::Duration::from_millis(300));
                } else {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    );
                }
                let _ = s.flush();
            });
        }
    });
    (format!("http://{addr}"), cuts)
}

#[test]
fn an_upstream_cutting_its_response_short_is_a_reset_and_the_client_stream_is_cut() {
    let (url, cuts) = cutting_upstream();
    let h = proxy(Some(&url));
    let upstream = url.trim_start_matches("http://").to_owned();
    let resets = || {
        let u = format!("upstream=\"{upstream}\"");
        series(
            &h,
            "clawveil_upstream_errors_total",
            &[&u, "class=\"reset\""],
        )
    };
    let before = all_refusals(&h);
    for (n, http) in [(1.0, "--http1.1"), (2.0, "--http2")] {
        let out = h.curl(&[
            http,
            "-w",
            "\n%{http_code} %{size_download}",
            &h.url("/cut"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let tail = text.rsplit('\n').next().unwrap_or_default().to_owned();
        assert!(
            !out.status.success(),
            "{http}: curl saw a complete transfer: {tail}"
        );
        let (status, size) = tail.split_once(' ').unwrap();
        assert_eq!(status, "200", "{http}");
        let size: usize = size.parse().unwrap();
        assert!(size <= 1000, "{http}: {size} bytes");
        assert!(
            eventually(5, || resets() == n),
            "{http}: reset counted {} times",
            resets()
        );
        assert_eq!(
            cuts.load(Ordering::SeqCst),
            n as usize,
            "{http}: the upstream's requests"
        );
    }
    assert!(eventually(5, || {
        access_events(&h)
            .iter()
            .filter(|e| e["path"] == "/cut" && e["error"] == "reset")
            .count()
            == 2
    }));
    assert_eq!(
        all_refusals(&h),
        before,
        "an upstream failure is not a refusal"
    );
    let u = format!("upstream=\"{upstream}\"");
    assert_eq!(series(&h, "clawveil_upstream_timeouts_total", &[&u]), 0.0);
    // Still serving.
    let out = h.curl(&[&h.url("/after")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
}
