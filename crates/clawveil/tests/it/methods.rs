//! Methods the inbound listener never forwards: CONNECT (HTTP/1.1 and HTTP/2), TRACE
//! unless the route allows it, and asterisk-form targets (`OPTIONS *` answered here,
//! anything else malformed).

use hyper::http::{Method, Request};

use crate::common::{stdout, Harness, Opts};
use crate::setup::{
    all_refusals, assert_one_refusal, h2_request, raw, raw_status, start, still_serving,
};

const ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

fn proxy() -> Harness {
    start(&Opts::default(), None, &[], |_, text| {
        format!("{text}[[route]]\nname = \"diag\"\npath_prefix = \"/diag/\"\nallow_trace = true\n")
    })
}

/// The value of a header in a raw HTTP/1.1 answer (case-insensitive name).
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn connect_is_405_over_http1_and_http2_and_never_forwarded() {
    let h = proxy();
    let before = all_refusals(&h);
    let answer = raw(
        &h,
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(raw_status(&answer), 405, "{answer}");
    assert_eq!(header(&answer, "allow"), Some(ALLOW), "{answer}");
    assert!(answer.ends_with("method not allowed\n"), "{answer}");
    assert!(
        h.upstream.records().is_empty(),
        "forwarded: {:?}",
        h.upstream.records()
    );
    assert_one_refusal(&before, &all_refusals(&h), "method_not_allowed");
    still_serving(&h);

    // HTTP/2: a plain CONNECT (no :protocol), :authority only.
    let before = all_refusals(&h);
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri("evil.example:443")
        .body(())
        .unwrap();
    let resp = h2_request(&h, req).expect("h2 CONNECT answered");
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], ALLOW);
    assert_eq!(
        h.upstream.records().len(),
        1,
        "only the after-check reached the bot"
    );
    assert_one_refusal(&before, &all_refusals(&h), "method_not_allowed");
    still_serving(&h);
}

#[test]
fn trace_is_405_unless_the_route_allows_it() {
    let h = proxy();
    let before = all_refusals(&h);
    let out = h.curl(&[
        "-i",
        "-X",
        "TRACE",
        "-H",
        "Cookie: session=s3cr3t-cookie",
        &h.url("/"),
    ]);
    let text = stdout(&out);
    assert!(text.starts_with("HTTP/2 405"), "{text}");
    assert!(
        !text.contains("s3cr3t-cookie"),
        "the request was echoed: {text}"
    );
    assert!(text
        .to_ascii_lowercase()
        .contains(&format!("allow: {}", ALLOW.to_ascii_lowercase())));
    assert!(h.upstream.records().is_empty());
    assert_one_refusal(&before, &all_refusals(&h), "method_not_allowed");
    // Over HTTP/1.1 too.
    let before = all_refusals(&h);
    assert_eq!(h.status(&["--http1.1", "-X", "TRACE", &h.url("/x")]), 405);
    assert!(h.upstream.records().is_empty());
    assert_one_refusal(&before, &all_refusals(&h), "method_not_allowed");
    still_serving(&h);

    // The route that allows it forwards it.
    let before = all_refusals(&h);
    assert_eq!(h.status(&["-X", "TRACE", &h.url("/diag/t")]), 200);
    let rec = h.upstream.requests_to("/diag/t");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].method, "TRACE");
    assert_eq!(all_refusals(&h), before);
}

#[test]
fn options_asterisk_is_answered_here_and_other_asterisk_targets_are_400() {
    let h = proxy();
    let before = all_refusals(&h);
    let out = h.curl(&[
        "--http1.1",
        "-i",
        "-X",
        "OPTIONS",
        "--request-target",
        "*",
        &h.url(""),
    ]);
    let text = stdout(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let allow = format!("allow: {}", ALLOW.to_ascii_lowercase());
    assert!(text.to_ascii_lowercase().contains(&allow), "{text}");
    assert!(h.upstream.records().is_empty(), "forwarded");
    assert_eq!(all_refusals(&h), before, "not a refusal");

    let before = all_refusals(&h);
    let status = h.status(&["--http1.1", "--request-target", "*", &h.url("")]);
    assert_eq!(status, 400);
    assert!(h.upstream.records().is_empty());
    assert_one_refusal(&before, &all_refusals(&h), "malformed_request");
    still_serving(&h);
}

/// Over HTTP/2 every request has an authority (`:authority`), so an asterisk-form target
/// must be recognised by its path alone (regression: `OPTIONS *` and `GET *` over h2
/// were forwarded while the check also required no authority).
#[test]
fn asterisk_targets_over_http2_are_not_forwarded() {
    let h = proxy();
    for (method, want, reason) in [
        ("OPTIONS", 200, None),
        ("GET", 400, Some("malformed_request")),
    ] {
        let before = all_refusals(&h);
        let out = h.curl(&[
            "--http2",
            "-i",
            "-X",
            method,
            "--request-target",
            "*",
            &h.url(""),
        ]);
        let text = stdout(&out);
        assert!(
            h.upstream.records().is_empty(),
            "{method} *: forwarded {:?}",
            h.upstream.records()
        );
        assert!(
            text.starts_with(&format!("HTTP/2 {want}")),
            "{method} *: {text}"
        );
        match reason {
            Some(r) => assert_one_refusal(&before, &all_refusals(&h), r),
            None => assert_eq!(all_refusals(&h), before),
        }
    }
    still_serving(&h);
}
