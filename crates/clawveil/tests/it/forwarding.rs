//! Forwarding: headers, byte-exact bodies in both directions, streaming, errors.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::{sha256_hex, stdout, Harness, Opts};

#[test]
fn http1_and_http2_reach_the_bot_with_forwarding_headers() {
    let h = Harness::start();
    let out = h.curl(&[
        "--http1.1",
        "-D",
        "-",
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        "-H",
        "Forwarded: for=6.6.6.6",
        &h.url("/hello?x=1"),
    ]);
    let text = stdout(&out);
    assert!(text.ends_with("ok"), "{text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        lower.contains("strict-transport-security: max-age=31536000; includesubdomains"),
        "{text}"
    );
    let request_id = lower
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("x-request-id returned")
        .trim()
        .to_owned();

    let rec = h
        .upstream
        .requests_to("/hello")
        .pop()
        .expect("upstream saw the request");
    assert_eq!(rec.target, "/hello?x=1", "path and query forwarded as is");
    assert_eq!(
        rec.header("x-forwarded-for"),
        ["127.0.0.1"],
        "client copy replaced"
    );
    assert_eq!(rec.header("x-forwarded-proto"), ["https"]);
    assert_eq!(
        rec.header("x-forwarded-host"),
        [format!("localhost:{}", h.https)]
    );
    assert_eq!(
        rec.header("host"),
        [format!("localhost:{}", h.https)],
        "Host kept"
    );
    assert_eq!(
        rec.header("forwarded"),
        [format!(
            "for=127.0.0.1;proto=https;host=\"localhost:{}\"",
            h.https
        )]
    );
    assert_eq!(rec.header("x-request-id"), [request_id.as_str()]);

    let out = h.curl(&[
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version}",
        &h.url("/h2"),
    ]);
    assert_eq!(stdout(&out), "2");
    let rec = h
        .upstream
        .requests_to("/h2")
        .pop()
        .expect("h2 request forwarded");
    assert_eq!(
        rec.header("host"),
        [format!("localhost:{}", h.https)],
        ":authority becomes Host"
    );
}

#[test]
fn hop_by_hop_headers_are_not_forwarded() {
    let h = Harness::start();
    h.curl(&[
        "--http1.1",
        "-H",
        "Connection: keep-alive, X-Hop",
        "-H",
        "X-Hop: secret",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "X-Kept: yes",
        &h.url("/hop"),
    ]);
    let rec = h.upstream.requests_to("/hop").pop().unwrap();
    assert!(rec.header("x-hop").is_empty());
    assert!(rec.header("keep-alive").is_empty());
    assert_eq!(rec.header("x-kept"), ["yes"]);
}

#[test]
fn traceparent_is_continued_and_generated_otherwise() {
    let h = Harness::start();
    h.curl(&[
        "-H",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        &h.url("/tp"),
    ]);
    let rec = h.upstream.requests_to("/tp").pop().unwrap();
    let tp = rec.header("traceparent")[0];
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(
        !tp.contains("00f067aa0ba902b7"),
        "our hop gets its own span id"
    );
    assert_eq!(
        rec.header("x-request-id"),
        ["4bf92f3577b34da6a3ce929d0e0e4736"]
    );

    h.curl(&[&h.url("/fresh")]);
    let rec = h.upstream.requests_to("/fresh").pop().unwrap();
    assert_eq!(rec.header("traceparent")[0].len(), 55);
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut f = std::fs::File::open("/dev/urandom").unwrap();
    let mut v = vec![0u8; n];
    f.read_exact(&mut v).unwrap();
    v
}

#[test]
fn ten_mib_bodies_pass_byte_exact_both_ways_on_http1_and_http2() {
    let h = Harness::start();
    let data = random_bytes(10 * 1024 * 1024);
    let file = h.dir.path().join("big");
    std::fs::write(&file, &data).unwrap();
    let at_file = format!("@{}", file.display());
    let want = sha256_hex(&data);

    let up = h.curl(&["--http1.1", "--data-binary", &at_file, &h.url("/sha")]);
    assert_eq!(stdout(&up), want, "HTTP/1.1 upload");
    let up = h.curl(&[
        "--http2",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &at_file,
        &h.url("/sha"),
    ]);
    assert_eq!(stdout(&up), want, "HTTP/2 upload without a length");
    let up = h.curl(&[
        "--http1.1",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &at_file,
        &h.url("/sha"),
    ]);
    assert_eq!(stdout(&up), want, "HTTP/1.1 chunked upload");

    let out_file = h.dir.path().join("back");
    for v in ["--http1.1", "--http2"] {
        h.curl(&[
            v,
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &at_file,
            "-o",
            out_file.to_str().unwrap(),
            &h.url("/echo"),
        ]);
        assert!(
            std::fs::read(&out_file).unwrap() == data,
            "{v} download differs"
        );
    }
}

#[test]
fn server_sent_events_stream_without_buffering() {
    let h = Harness::start();
    let mut child = std::process::Command::new("curl")
        .args([
            "-sSN",
            "--cacert",
            h.cert.cert.to_str().unwrap(),
            "--resolve",
            &format!("localhost:{}:127.0.0.1", h.https),
            &h.url("/sse"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let start = Instant::now();
    let mut first = [0u8; 14];
    out.read_exact(&mut first).unwrap();
    let first_at = start.elapsed();
    assert_eq!(&first, b"data: event 0\n");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let total = start.elapsed();
    child.wait().unwrap();
    assert_eq!(rest.matches("data: event").count(), 4, "{rest}");
    // The stream takes ~800 ms; the first event must not wait for the end.
    assert!(
        first_at + Duration::from_millis(500) < total,
        "first event after {first_at:?} of {total:?}"
    );
}

#[test]
fn upstream_down_is_502_and_slow_upstream_is_504_with_nothing_leaked() {
    let h = Harness::with(Opts {
        dead_upstream: true,
        ..Opts::default()
    });
    let out = h.curl(&["-w", "\n%{http_code}", &h.url("/x")]);
    let text = stdout(&out);
    assert!(text.ends_with("\n502"), "{text}");
    assert!(h.metric("clawveil_upstream_errors_total{class=\"connect\",upstream=") >= 0.0);
    assert!(
        h.metrics_text().contains("class=\"connect\""),
        "connect error counted"
    );

    let h = Harness::start();
    let start = Instant::now();
    assert_eq!(h.status(&[&h.url("/slow?s=4")]), 504);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "response_timeout (2s) applies"
    );
    let m = h.metrics_text();
    assert!(
        m.contains("clawveil_upstream_timeouts_total{upstream="),
        "{m}"
    );

    // Upstream error bodies pass through untouched (they are the bot's answer), but
    // clawveil's own error pages carry nothing from the upstream.
    let out = h.curl(&["-w", "\n%{http_code}", &h.url("/status/500")]);
    assert!(stdout(&out).ends_with("\n500"));
}

#[test]
fn access_log_is_json_metadata_without_query_or_credentials() {
    let h = Harness::start();
    h.curl(&[
        "-H",
        "Authorization: Bearer sekrit-token-value",
        "-H",
        "Cookie: session=cookie-value-123",
        &h.url("/logged?access_token=query-secret-999"),
    ]);
    let ok = crate::common::eventually(5, || h.proxy.output().contains("\"target\":\"access\""));
    assert!(ok, "access event logged:\n{}", h.proxy.output());
    let log = h.proxy.output();
    for secret in ["sekrit-token-value", "cookie-value-123", "query-secret-999"] {
        assert!(!log.contains(secret), "{secret} leaked into the log");
    }
    let line = log
        .lines()
        .find(|l| l.contains("\"target\":\"access\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
    for field in [
        "trace_id",
        "route",
        "method",
        "status",
        "latency_ms",
        "bytes_in",
        "bytes_out",
        "upstream",
        "tls_version",
        "alpn",
    ] {
        assert!(v.get(field).is_some(), "{field} missing in {line}");
    }
    assert_eq!(v["status"], 200);
    assert_eq!(v["route"], "default");
}
