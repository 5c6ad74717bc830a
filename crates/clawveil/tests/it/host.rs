//! The request's one authority: a malformed, missing, doubled or contradicted `Host` is
//! 400; a host outside `[listen] server_names`, or other than the TLS SNI, is 421; what
//! goes upstream is exactly one `Host`, the validated one, with `X-Forwarded-Host` the
//! same.

use std::io::Write;
use std::process::{Command, Stdio};

use hyper::http::Request;

use crate::common::{Harness, Opts};
use crate::setup::{
    all_refusals, assert_one_refusal, h2_request, in_listen, raw, raw_status, start, still_serving,
};

fn proxy(server_names: Option<&str>) -> Harness {
    start(&Opts::default(), None, &[], |_, text| match server_names {
        Some(names) => in_listen(text, &format!("server_names = {names}")),
        None => text,
    })
}

/// `url` fetched by curl with extra `args`: the status.
fn status_at(h: &Harness, args: &[&str], url: &str) -> u16 {
    let mut all = args.to_vec();
    all.push(url);
    h.status(&all)
}

/// Asserts that `status` came with only `reason` counted and nothing forwarded.
fn refused_alone(
    h: &Harness,
    what: &str,
    before: &[(String, f64)],
    status: u16,
    want: u16,
    reason: &str,
) {
    assert_eq!(status, want, "{what}");
    assert!(
        h.upstream
            .records()
            .iter()
            .all(|r| r.target.starts_with("/after-check")),
        "{what}: forwarded {:?}",
        h.upstream.records()
    );
    assert_one_refusal(before, &all_refusals(h), reason);
    still_serving(h);
}

#[test]
fn malformed_missing_or_doubled_hosts_are_400_and_never_forwarded() {
    let h = proxy(None);
    let url = h.url("/host");
    for bad in [
        "a b",
        "a.example, for=6.6.6.6",
        "user@evil.example",
        "a.example:99999",
    ] {
        let before = all_refusals(&h);
        let header = format!("Host: {bad}");
        let out = h.curl(&["--http1.1", "-w", "\n%{http_code}", "-H", &header, &url]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // Our own answer (hyper's parser answers 400 with no body).
        let (body, status) = text.rsplit_once('\n').unwrap();
        assert_eq!(body, "bad request\n", "{bad}");
        refused_alone(
            &h,
            bad,
            &before,
            status.parse().unwrap(),
            400,
            "malformed_request",
        );
    }
    let port = h.https;
    let raws = [
        (
            "two Host headers",
            format!("GET /host HTTP/1.1\r\nHost: localhost:{port}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
        ),
        (
            "two identical Host headers",
            format!("GET /host HTTP/1.1\r\nHost: localhost:{port}\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"),
        ),
        (
            "HTTP/1.1 without Host",
            "GET /host HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
        ),
    ];
    for (what, req) in raws {
        let before = all_refusals(&h);
        let answer = raw(&h, req.as_bytes());
        assert!(answer.ends_with("bad request\n"), "{what}: {answer}");
        refused_alone(
            &h,
            what,
            &before,
            raw_status(&answer),
            400,
            "malformed_request",
        );
    }

    // HTTP/2: a host header that contradicts :authority.
    let before = all_refusals(&h);
    let req = Request::get("https://a.example/host")
        .header("host", "evil.example")
        .body(())
        .unwrap();
    let resp = h2_request(&h, req).expect("answered, not reset");
    let status = resp.status().as_u16();
    refused_alone(
        &h,
        "h2 host != :authority",
        &before,
        status,
        400,
        "malformed_request",
    );
}

#[test]
fn a_host_other_than_the_sni_is_misdirected() {
    let h = proxy(None);
    let ip_host = format!("Host: 127.0.0.1:{}", h.https);
    // curl connects to "localhost" (SNI localhost), and names another host.
    for http in ["--http1.1", "--http2"] {
        for host in [ip_host.as_str(), "Host: bot.example"] {
            let before = all_refusals(&h);
            let status = status_at(&h, &[http, "-H", host], &h.url("/sni"));
            refused_alone(&h, host, &before, status, 421, "misdirected_request");
        }
    }
    // The same name in another case, or with a trailing dot, is the same host.
    for same in [
        format!("Host: LOCALHOST:{}", h.https),
        format!("Host: localhost.:{}", h.https),
    ] {
        assert_eq!(
            status_at(&h, &["--http1.1", "-H", &same], &h.url("/sni")),
            200,
            "{same}"
        );
    }
    // No SNI (an IP address was dialled): nothing to compare, no server_names: served.
    let by_ip = format!("https://127.0.0.1:{}/sni-ip", h.https);
    assert_eq!(status_at(&h, &[], &by_ip), 200);
    assert_eq!(h.upstream.requests_to("/sni").len(), 3);
}

#[test]
fn hosts_outside_server_names_are_misdirected() {
    let h = proxy(Some("[\"localhost\"]"));
    let by_ip = format!("https://127.0.0.1:{}/names", h.https);
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "other host, SNI localhost",
            &["-H", "Host: other.example"],
            "localhost",
        ),
        ("other host, no SNI", &["-H", "Host: other.example"], "ip"),
        ("the IP itself, no SNI", &[], "ip"),
    ];
    for (what, args, via) in cases {
        let before = all_refusals(&h);
        let url = if via == "ip" {
            by_ip.clone()
        } else {
            h.url("/names")
        };
        let status = status_at(&h, args, &url);
        refused_alone(&h, what, &before, status, 421, "misdirected_request");
    }
    // The listed name, with or without SNI.
    let before = all_refusals(&h);
    let named = format!("Host: localhost:{}", h.https);
    assert_eq!(status_at(&h, &["-H", &named], &by_ip), 200);
    assert_eq!(status_at(&h, &[], &h.url("/names")), 200);
    assert_eq!(h.upstream.requests_to("/names").len(), 2);
    assert_eq!(all_refusals(&h), before);
}

#[test]
fn the_forwarded_request_carries_exactly_the_validated_host() {
    let h = proxy(Some("[\"localhost\"]"));
    let port = h.https;
    let authority = format!("localhost:{port}");
    let one_host = |path: &str| {
        let rec = h.upstream.requests_to(path);
        assert_eq!(rec.len(), 1, "{path} forwarded once");
        assert_eq!(rec[0].header("host"), [authority.as_str()], "{path}");
        assert_eq!(
            rec[0].header("x-forwarded-host"),
            [authority.as_str()],
            "{path}"
        );
    };

    // curl, HTTP/1.1 and HTTP/2 (:authority), with a forged X-Forwarded-Host.
    for (http, path) in [("--http1.1", "/one-h1"), ("--http2", "/one-h2")] {
        let url = h.url(path);
        let args = [http, "-H", "X-Forwarded-Host: evil.example", url.as_str()];
        assert_eq!(h.status(&args), 200);
        one_host(path);
    }
    // Absolute form: the target's authority wins over Host (RFC 9112 §3.2.2), and
    // only it goes upstream.
    let req = format!(
        "GET https://localhost:{port}/one-abs HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    );
    let answer = raw(&h, req.as_bytes());
    assert_eq!(raw_status(&answer), 200, "{answer}");
    one_host("/one-abs");
    // HTTP/2 with a host header that agrees with :authority (in another case).
    let req = Request::get(format!("https://{authority}/one-h2host"))
        .header("host", authority.to_ascii_uppercase())
        .body(())
        .unwrap();
    assert_eq!(h2_request(&h, req).unwrap().status(), 200);
    one_host("/one-h2host");
}

/// An HTTP/1.0 request over TLS with `sni` and no `Host`, by `openssl s_client` (which,
/// unlike curl, sends any SNI and accepts any certificate): the answer's status line.
fn http10_without_host(h: &Harness, sni: &str, path: &str) -> String {
    let mut c = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-ign_eof",
            "-alpn",
            "http/1.1",
            "-servername",
            sni,
        ])
        .args(["-connect", &format!("127.0.0.1:{}", h.https)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let req = format!("GET {path} HTTP/1.0\r\n\r\n");
    c.stdin.take().unwrap().write_all(req.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

/// HTTP/1.0 may omit `Host`; the TLS SNI is then held to `server_names` (regression: a
/// request without an authority once skipped both checks, so a client could name any
/// server in the handshake and still reach the bot).
#[test]
fn a_request_without_host_is_still_held_to_server_names_and_sni() {
    let h = proxy(Some("[\"localhost\"]"));
    // The same request to the served name is forwarded (the upstream gets hyper's Host).
    assert_eq!(
        http10_without_host(&h, "localhost", "/h10-ok"),
        "HTTP/1.0 200 OK"
    );
    assert_eq!(h.upstream.requests_to("/h10-ok").len(), 1);
    let before = all_refusals(&h);
    let status = http10_without_host(&h, "other.example", "/h10-other");
    assert!(
        h.upstream.requests_to("/h10-other").is_empty(),
        "forwarded ({status})"
    );
    assert!(status.starts_with("HTTP/1.0 421"), "{status}");
    assert_one_refusal(&before, &all_refusals(&h), "misdirected_request");
}
