//! Requests the HTTP parser refuses (hyper answers 400 on its own, h2 resets the stream)
//! are refused like every other refusal: counted in `fail_closed{reason=
//! "malformed_request"}`, logged as an access event, and never forwarded.

use std::io::Write;

use crate::common::{eventually, stdout, Harness, Opts};
use crate::rawconn::{access_events, exchange, h2, tls, MALFORMED};

/// (what, request) pairs hyper's HTTP/1.1 parser answers with 400 and a close.
const REFUSED: &[(&str, &[u8])] = &[
    (
        "two different Content-Length values",
        b"POST /m1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    ),
    (
        "Transfer-Encoding not ending in chunked",
        b"POST /m2 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\nabcd",
    ),
    (
        "Transfer-Encoding in HTTP/1.0",
        b"POST /m3 HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "obs-fold",
        b"GET /m4 HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n",
    ),
    (
        "NUL in a header value",
        b"GET /m5 HTTP/1.1\r\nHost: localhost\r\nX-Nul: a\0b\r\n\r\n",
    ),
    (
        "space before the colon",
        b"GET /m6 HTTP/1.1\r\nHost: localhost\r\nX-Space : b\r\n\r\n",
    ),
    (
        "invalid request target",
        b"GET http://[::1/m7 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ),
    ("HTTP/0.9 request line", b"GET /m8\r\n"),
    ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
];

#[test]
fn parser_refusals_are_counted_logged_and_never_forwarded() {
    let h = Harness::start();
    for (n, (what, req)) in REFUSED.iter().enumerate() {
        let mut s = tls(&h, &[b"http/1.1"]);
        let answer = exchange(&mut s, req);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{what}: answered {answer:?}"
        );
        let want = (n + 1) as f64;
        assert!(
            eventually(5, || h.metric(MALFORMED) == want),
            "{what}: malformed_request is {}, want {want}",
            h.metric(MALFORMED)
        );
    }
    assert!(
        h.upstream.records().is_empty(),
        "nothing reached the bot: {:?}",
        h.upstream.records()
    );
    let refused = || {
        access_events(&h)
            .into_iter()
            .filter(|e| e["status"] == 400 && e["listener"] == "https")
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(5, || refused().len() == REFUSED.len()),
        "one access event per refusal: {:#?}",
        refused()
    );
    for e in refused() {
        assert_eq!(e["route"], "unrouted", "{e}");
        assert_eq!(e["error"], "client", "{e}");
        assert_eq!(e["trace_id"].as_str().map(str::len), Some(32), "{e}");
    }
    let requests = h.metric(
        "clawveil_requests_total{listener=\"https\",method=\"OTHER\",route=\"unrouted\",status_class=\"4xx\"}",
    );
    assert_eq!(requests, REFUSED.len() as f64);
    // still serving
    assert_eq!(stdout(&h.curl(&[&h.url("/after")])), "ok");
    assert_eq!(h.upstream.records().len(), 1);
}

#[test]
fn the_plain_listener_counts_parser_refusals_too() {
    let h = Harness::start();
    let mut s = crate::rawconn::tcp(h.http);
    let answer = exchange(
        &mut s,
        b"GET /p HTTP/1.1\r\nHost: localhost\r\nX-Nul: a\0b\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(eventually(5, || h.metric(MALFORMED) == 1.0));
    assert!(eventually(5, || access_events(&h)
        .iter()
        .any(|e| e["status"] == 400 && e["listener"] == "http")));
    // The metrics listener counts them (it writes no access events).
    let mut s = crate::rawconn::tcp(h.metrics);
    let answer = exchange(
        &mut s,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(eventually(5, || h.metric(MALFORMED) == 2.0));
}

/// Content-Length and Transfer-Encoding together: hyper goes by the chunked framing,
/// drops Content-Length and closes the connection after the answer (RFC 9112 6.3), so
/// the bot sees one consistent message and nothing can be smuggled behind it.
#[test]
fn content_length_with_chunked_is_framed_by_chunked_and_closes() {
    let h = Harness::start();
    let mut s = tls(&h, &[b"http/1.1"]);
    let answer = exchange(
        &mut s,
        b"POST /sha HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        answer.ends_with(&crate::common::sha256_hex(b"abc")),
        "{answer:?}"
    );
    let rec = h.upstream.requests_to("/sha");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].body_len, 3);
    assert!(rec[0].header("content-length").iter().all(|v| *v == "3"));
    assert!(h.upstream.requests_to("/smuggled").is_empty());
}

/// A broken chunk size is found while the body streams, after the head went upstream;
/// the client gets 400 (the pipeline's answer) and the bot an aborted request.
#[test]
fn a_broken_chunk_size_gets_400() {
    let h = Harness::start();
    let mut s = tls(&h, &[b"http/1.1"]);
    let answer = exchange(
        &mut s,
        b"POST /sha HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(h
        .upstream
        .requests_to("/sha")
        .iter()
        .all(|r| r.body_len == 0));
    assert!(eventually(5, || access_events(&h)
        .iter()
        .any(|e| e["status"] == 400)));
}

/// Malformed fields are stream errors (RST_STREAM, the connection goes on); a name h2's
/// HPACK decoder cannot take (uppercase) is a connection error (GOAWAY). Both counted.
#[test]
fn malformed_http2_requests_are_reset_and_counted() {
    let h = Harness::start();
    let mut s = tls(&h, &[b"h2"]);
    s.write_all(h2::PREFACE).unwrap();
    s.write_all(&h2::frame(h2::SETTINGS, 0, 0, &[])).unwrap();
    let bad: [(&str, &[(&str, &str)]); 2] = [
        (
            "connection-specific header",
            &[("connection", "keep-alive")],
        ),
        ("te other than trailers", &[("te", "gzip")]),
    ];
    let mut stream = 1;
    for (what, extra) in bad {
        s.write_all(&h2::get(stream, "/bad-h2", extra)).unwrap();
        s.flush().unwrap();
        let frames = h2::until_stream_ends(&mut s, stream);
        let reset = frames
            .iter()
            .find(|f| f.stream == stream && f.kind == h2::RST_STREAM);
        let code = reset.map(|f| u32::from_be_bytes(f.payload[..4].try_into().unwrap()));
        assert_eq!(code, Some(h2::PROTOCOL_ERROR), "{what}");
        stream += 2;
    }
    assert!(
        eventually(5, || h.metric(MALFORMED) == 2.0),
        "malformed_request: {}",
        h.metric(MALFORMED)
    );
    // The connection still serves a good request.
    s.write_all(&h2::get(stream, "/good-h2", &[])).unwrap();
    s.flush().unwrap();
    let frames = h2::until_stream_ends(&mut s, stream);
    let head = frames
        .iter()
        .find(|f| f.stream == stream && f.kind == h2::HEADERS)
        .expect("an answer");
    assert_eq!(head.payload[0], 0x88, ":status 200 (static index 8)");
    stream += 2;
    // An uppercase name ends the connection.
    s.write_all(&h2::get(stream, "/bad-h2", &[("X-Upper", "a")]))
        .unwrap();
    s.flush().unwrap();
    let frames = h2::until_stream_ends(&mut s, stream);
    let goaway = frames
        .iter()
        .find(|f| f.kind == h2::GOAWAY)
        .expect("GOAWAY");
    let code = u32::from_be_bytes(goaway.payload[4..8].try_into().unwrap());
    assert_eq!(code, h2::PROTOCOL_ERROR);
    assert!(
        eventually(5, || h.metric(MALFORMED) == 3.0),
        "malformed_request: {}",
        h.metric(MALFORMED)
    );
    assert!(h.upstream.requests_to("/bad-h2").is_empty());
    assert_eq!(h.upstream.requests_to("/good-h2").len(), 1);
    assert!(eventually(5, || access_events(&h)
        .iter()
        .filter(|e| e["status"] == 400 && e["http_version"] == "h2")
        .count()
        == 3));
}

/// We may answer before the client has sent its body (a 401 on the signature headers).
/// curl then stops uploading and ends the stream with an empty DATA frame, short of
/// the content-length it announced, and h2 resets the stream with PROTOCOL_ERROR for
/// that. The request was refused once, with its 401: that reset is no malformed
/// request (it made `dingtalk::signed_callbacks_are_forwarded_intact_and_bad_ones_
/// refused_with_401` count one now and then, whenever the 401 beat curl's body).
#[test]
fn a_stream_ended_short_after_our_early_answer_is_not_a_malformed_request() {
    let h = crate::setup::start(
        &Opts::default(),
        None,
        &[("DT_SECRET", "s3cret")],
        |_, text| {
            format!(
                "{text}[[route]]\nname = \"robot\"\npath_prefix = \"/robot/\"\n\
             verify = \"dingtalk-robot\"\napp_secrets = [\"${{env:DT_SECRET}}\"]\n"
            )
        },
    );
    let mut s = tls(&h, &[b"h2"]);
    s.write_all(h2::PREFACE).unwrap();
    s.write_all(&h2::frame(h2::SETTINGS, 0, 0, &[])).unwrap();
    let head = h2::block(&[
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", "/robot/early"),
        ("content-type", "application/json"),
        ("content-length", "64"),
        ("timestamp", "1700000000000"),
        ("sign", "bm90IHRoZSBzaWduYXR1cmU="),
    ]);
    // The head alone: the body is still to come when the answer goes out.
    s.write_all(&h2::frame(h2::HEADERS, h2::END_HEADERS, 1, &head))
        .unwrap();
    s.flush().unwrap();
    let answer = h2::until_stream_ends(&mut s, 1);
    assert!(answer
        .iter()
        .any(|f| f.stream == 1 && f.kind == h2::HEADERS));
    let body: Vec<u8> = answer
        .iter()
        .filter(|f| f.stream == 1 && f.kind == h2::DATA)
        .flat_map(|f| f.payload.clone())
        .collect();
    assert_eq!(body, b"invalid signature\n", "the 401's body");
    // Part of the body, then the end of the stream, short of the content-length.
    s.write_all(&h2::frame(h2::DATA, 0, 1, br#"{"msgId":"#))
        .unwrap();
    s.write_all(&h2::frame(h2::DATA, h2::END_STREAM, 1, b""))
        .unwrap();
    s.flush().unwrap();
    let reset = std::iter::from_fn(|| h2::read(&mut s))
        .find(|f| f.stream == 1 && f.kind == h2::RST_STREAM)
        .expect("h2 resets the stream it had answered");
    let code = u32::from_be_bytes(reset.payload[..4].try_into().unwrap());
    assert_eq!(code, h2::PROTOCOL_ERROR, "content-length underflow");

    // The connection goes on; by then the reset has been written and seen.
    s.write_all(&h2::get(3, "/after-early", &[])).unwrap();
    s.flush().unwrap();
    let frames = h2::until_stream_ends(&mut s, 3);
    assert!(frames
        .iter()
        .any(|f| f.stream == 3 && f.kind == h2::HEADERS && f.payload[0] == 0x88));
    assert!(eventually(5, || crate::setup::refused(
        &h,
        "signature_invalid"
    ) == 1.0));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        h.metric(MALFORMED),
        0.0,
        "the early answer's reset was counted"
    );
    let events = access_events(&h);
    let early: Vec<_> = events
        .iter()
        .filter(|e| e["path"] == "/robot/early" || e["reason"] == "malformed_request")
        .collect();
    assert_eq!(
        early.len(),
        1,
        "one event for the refused request: {early:#?}"
    );
    assert_eq!(early[0]["status"], 401, "{}", early[0]);
    assert!(h.upstream.requests_to("/robot/").is_empty());
}
