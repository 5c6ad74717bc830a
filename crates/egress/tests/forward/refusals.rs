//! Refusals: addresses, names, ports, request forms, tokens, and the listener itself.

use std::sync::atomic::Ordering;

use clawveil_config::Secret;
use clawveil_egress::{bind_loopback, ForwardPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{curl, echo_server, policy, Logs, Proxy};

#[tokio::test]
async fn without_the_exception_loopback_is_refused_and_counted() {
    let (logs, _g) = Logs::capture();
    let (echo, accepted) = echo_server().await;
    let proxy = Proxy::start(policy(&["127.0.0.1"], &[echo.port()], &[])).await;
    let (status, head, mut s) = proxy.connect(&echo.to_string(), "").await;
    assert_eq!(status, 403);
    assert!(head.contains("content-type: text/plain"), "{head}");
    let mut body = vec![0u8; "destination not allowed\n".len()];
    s.read_exact(&mut body).await.unwrap();
    assert_eq!(body, b"destination not allowed\n");

    assert_eq!(proxy.fail_closed("egress_denied"), 1);
    assert_eq!(proxy.decisions(), (0, 1));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "nothing was connected to"
    );
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["decision"], "denied");
    assert_eq!(ev["status"], 403);
    assert_eq!(ev["reason"], "egress_denied");
    assert_eq!(ev["detail"], "address_blocked");
    assert_eq!(ev["blocked"], "loopback");
    assert_eq!(ev["resolved"], "127.0.0.1");
}

#[tokio::test]
async fn an_allowed_name_that_resolves_to_loopback_is_refused() {
    let (logs, _g) = Logs::capture();
    let (echo, accepted) = echo_server().await;
    let proxy = Proxy::start(policy(&["localhost"], &[echo.port()], &[])).await;
    let (status, _, _) = proxy
        .connect(&format!("localhost:{}", echo.port()), "")
        .await;
    assert_eq!(status, 403);
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(
        (ev["detail"].as_str(), ev["blocked"].as_str()),
        (Some("address_blocked"), Some("loopback"))
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    // The same with curl, as an operator checks it.
    let url = format!("https://localhost:{}/", echo.port());
    let (_, connect_code) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_connect}",
        "-p",
        "-x",
        &proxy.url(),
        &url,
    ])
    .await;
    assert_eq!(connect_code, "403");
    assert_eq!(proxy.fail_closed("egress_denied"), 2);
}

#[tokio::test]
async fn ports_and_names_outside_the_lists_are_refused_before_any_lookup() {
    let (logs, _g) = Logs::capture();
    let (echo, accepted) = echo_server().await;
    let proxy = Proxy::start(policy(
        &["127.0.0.1", "*.dingtalk.com"],
        &[443],
        &["127.0.0.0/8"],
    ))
    .await;
    let (status, _, _) = proxy.connect(&echo.to_string(), "").await;
    assert_eq!(status, 403);
    // Not on the list: refused by name (the name is never looked up).
    let (status, _, _) = proxy.connect("internal.example.invalid:443", "").await;
    assert_eq!(status, 403);
    let (status, _, _) = proxy.connect("dingtalk.com:443", "").await;
    assert_eq!(status, 403);
    let events = logs.wait_events(3).await;
    let details: Vec<&str> = events
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        ["port_not_allowed", "host_not_allowed", "host_not_allowed"]
    );
    assert_eq!(proxy.fail_closed("egress_denied"), 3);
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_missing_or_wrong_token_gets_407() {
    let (logs, _g) = Logs::capture();
    let (echo, accepted) = echo_server().await;
    let proxy = Proxy::start(ForwardPolicy {
        token: Some(Secret::literal("s3cret-proxy-token")),
        ..policy(&["127.0.0.1"], &[echo.port()], &["127.0.0.0/8"])
    })
    .await;
    let target = echo.to_string();
    let (status, head, _) = proxy.connect(&target, "").await;
    assert_eq!(status, 407);
    assert!(head.contains("proxy-authenticate: Bearer"), "{head}");
    for wrong in [
        "Bearer nope",
        "Basic czNjcmV0LXByb3h5LXRva2Vu",
        "Bearer s3cret-proxy-toke",
        "s3cret-proxy-token",
    ] {
        let (status, _, _) = proxy
            .connect(&target, &format!("Proxy-Authorization: {wrong}\r\n"))
            .await;
        assert_eq!(status, 407, "{wrong}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let (status, _, _) = proxy
        .connect(
            &target,
            "Proxy-Authorization: bearer s3cret-proxy-token\r\n",
        )
        .await;
    assert_eq!(status, 200);
    // curl too
    let url = format!("http://{target}/");
    let (_, code) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_connect}",
        "-p",
        "-x",
        &proxy.url(),
        &url,
    ])
    .await;
    assert_eq!(code, "407");

    assert_eq!(proxy.fail_closed("egress_unauthorized"), 6);
    let events = logs.wait_events(6).await;
    let details: Vec<&str> = events
        .iter()
        .take(5)
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        [
            "token_missing",
            "token_wrong",
            "token_wrong",
            "token_wrong",
            "token_wrong"
        ]
    );
    assert!(!logs.text().contains("s3cret"), "{}", logs.text());
}

#[tokio::test]
async fn broken_and_origin_form_requests_are_refused() {
    let (logs, _g) = Logs::capture();
    let proxy = Proxy::start(policy(&["*.dingtalk.com"], &[443], &[])).await;
    // CONNECT without a port
    let (status, _, _) = proxy.connect("api.dingtalk.com", "").await;
    assert_eq!(status, 400);
    // origin form: nothing to forward it to
    let (_, code) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{}/v1/x", proxy.url()),
    ])
    .await;
    assert_eq!(code, "403");
    // https in absolute form (a client that does not tunnel)
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET https://api.dingtalk.com/ HTTP/1.1\r\nHost: api.dingtalk.com\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    let events = logs.wait_events(3).await;
    let details: Vec<&str> = events
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        ["bad_target", "not_a_proxy_request", "scheme_not_allowed"]
    );
    assert_eq!(proxy.fail_closed("malformed_request"), 1);
    assert_eq!(proxy.fail_closed("egress_denied"), 2);
}

#[tokio::test]
async fn the_listener_binds_only_to_loopback() {
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8089"] {
        let e = bind_loopback(addr.parse().unwrap()).await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
    }
    assert!(bind_loopback("127.0.0.1:0".parse().unwrap()).await.is_ok());
}

#[tokio::test]
async fn ipv4_inside_an_ipv6_literal_is_refused_as_its_ipv4() {
    let (logs, _g) = Logs::capture();
    let proxy = Proxy::start(policy(
        &["::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe"],
        &[443],
        &[],
    ))
    .await;
    for target in ["[::ffff:127.0.0.1]:443", "[64:ff9b::169.254.169.254]:443"] {
        let (status, _, _) = proxy.connect(target, "").await;
        assert_eq!(status, 403, "{target}");
    }
    let events = logs.wait_events(2).await;
    assert_eq!(events[0]["blocked"], "loopback (127.0.0.1 in ipv4_mapped)");
    assert_eq!(events[1]["blocked"], "metadata (169.254.169.254 in nat64)");
}
