//! Admitted destinations: tunnels, plain http when on, and how tunnels end.

use std::time::Duration;

use clawveil_config::Secret;
use clawveil_egress::ForwardPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{curl, echo_server, http_server, policy, Logs, Proxy};

#[tokio::test]
async fn connect_tunnels_to_a_local_echo_server_admitted_by_allow_cidrs() {
    let (logs, _g) = Logs::capture();
    let (echo, _) = echo_server().await;
    let proxy = Proxy::start(policy(&["127.0.0.1"], &[echo.port()], &["127.0.0.0/8"])).await;
    let (status, _, mut s) = proxy.connect(&echo.to_string(), "").await;
    assert_eq!(status, 200);
    s.write_all(b"hello through the tunnel").await.unwrap();
    let mut back = [0u8; 24];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello through the tunnel");
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());

    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["listener"], "egress");
    assert_eq!(ev["method"], "CONNECT");
    assert_eq!(ev["host"], "127.0.0.1");
    assert_eq!(ev["port"], echo.port());
    assert_eq!(ev["resolved"], "127.0.0.1");
    assert_eq!(ev["decision"], "allowed");
    assert_eq!(ev["status"], 200);
    assert_eq!(ev["bytes_in"], 24);
    assert_eq!(ev["bytes_out"], 24);
    assert_eq!(ev["close_reason"], "client_closed");
    assert!(ev["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(ev.get("reason").is_none(), "{ev}");
    assert_eq!(proxy.decisions(), (1, 0));
}

#[tokio::test]
async fn curl_reaches_a_local_server_by_name_through_the_tunnel() {
    let (logs, _g) = Logs::capture();
    let (web, heads) = http_server().await;
    // localhost may also resolve to ::1: both loopbacks are excepted.
    let cidrs = ["127.0.0.0/8", "::1/128"];
    let proxy = Proxy::start(policy(&["localhost"], &[web.port()], &cidrs)).await;
    let url = format!("http://localhost:{}/through-tunnel?secret=abc", web.port());
    let (code, body) = curl(&["-p", "-x", &proxy.url(), &url]).await;
    assert_eq!((code, body.as_str()), (0, "hello from upstream"));
    assert!(heads.lock().unwrap()[0].starts_with("GET /through-tunnel?secret=abc HTTP/1.1"));
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(
        (ev["host"].as_str(), ev["status"].as_u64()),
        (Some("localhost"), Some(200))
    );
    let text = logs.text();
    assert!(
        !text.contains("through-tunnel") && !text.contains("secret=abc"),
        "{text}"
    );
}

#[tokio::test]
async fn an_idle_tunnel_is_closed_after_its_timeout() {
    let (logs, _g) = Logs::capture();
    let (echo, _) = echo_server().await;
    let proxy = Proxy::start(ForwardPolicy {
        idle_timeout: Duration::from_millis(300),
        ..policy(&["127.0.0.1"], &[echo.port()], &["127.0.0.0/8"])
    })
    .await;
    let (status, _, mut s) = proxy.connect(&echo.to_string(), "").await;
    assert_eq!(status, 200);
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    let quiet = tokio::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
    assert_eq!(n.expect("closed within 5s").unwrap(), 0);
    assert!(
        quiet.elapsed() >= Duration::from_millis(250),
        "{:?}",
        quiet.elapsed()
    );
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["close_reason"], "idle_timeout");
    assert_eq!(
        (ev["bytes_in"].as_u64(), ev["bytes_out"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn shutdown_drains_open_tunnels_then_ends_them() {
    let (logs, _g) = Logs::capture();
    let (echo, _) = echo_server().await;
    let proxy = Proxy::start(ForwardPolicy {
        drain: Duration::from_millis(500),
        ..policy(&["127.0.0.1"], &[echo.port()], &["127.0.0.0/8"])
    })
    .await;
    let (status, _, mut s) = proxy.connect(&echo.to_string(), "").await;
    assert_eq!(status, 200);
    proxy.shutdown.send(true).unwrap();
    // The listener is gone; the tunnel still works during the drain.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(proxy.addr).await.is_err());
    s.write_all(b"still here").await.unwrap();
    let mut back = [0u8; 10];
    s.read_exact(&mut back).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
    assert_eq!(n.expect("closed after the drain").unwrap(), 0);
    tokio::time::timeout(Duration::from_secs(5), proxy.served)
        .await
        .expect("serve returns once everything is closed")
        .unwrap();
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["close_reason"], "shutdown");
}

#[tokio::test]
async fn an_unreachable_destination_is_502_and_counted_as_an_upstream_error() {
    let (logs, _g) = Logs::capture();
    // A port nothing listens on: bind, note it, close.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let proxy = Proxy::start(policy(&["127.0.0.1"], &[port], &["127.0.0.0/8"])).await;
    let (status, _, _) = proxy.connect(&format!("127.0.0.1:{port}"), "").await;
    assert_eq!(status, 502);
    let errors = proxy
        .metrics
        .upstream_errors
        .with_label_values(&["egress_forward", "connect"])
        .get();
    assert_eq!(errors, 1);
    assert_eq!(proxy.decisions(), (1, 0));
    assert_eq!(proxy.fail_closed("egress_denied"), 0);
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(
        (ev["detail"].as_str(), ev["error"].as_str()),
        (Some("connect_failed"), Some("connect"))
    );
    assert_eq!(ev["resolved"], "127.0.0.1");
}

#[tokio::test]
async fn absolute_form_is_refused_by_default_and_forwarded_only_when_allowed() {
    let (logs, _g) = Logs::capture();
    let (web, heads) = http_server().await;
    let url = format!("http://127.0.0.1:{}/plain?q=1", web.port());
    let allow = policy(&["127.0.0.1"], &[web.port()], &["127.0.0.0/8"]);
    let proxy = Proxy::start(allow.clone()).await;
    let (_, code) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-x",
        &proxy.url(),
        &url,
    ])
    .await;
    assert_eq!(code, "403");
    assert!(heads.lock().unwrap().is_empty());
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(
        (ev["detail"].as_str(), ev["method"].as_str()),
        (Some("plain_http_refused"), Some("GET"))
    );
    assert_eq!(proxy.fail_closed("egress_denied"), 1);

    // plain_http on: forwarded in origin form, without the proxy's own headers.
    let token = Secret::literal("plain-token-123");
    let on = ForwardPolicy {
        plain_http: true,
        token: Some(token),
        ..allow
    };
    let proxy = Proxy::start(on).await;
    let auth = "Proxy-Authorization: Bearer plain-token-123";
    let (code, body) = curl(&["--proxy-header", auth, "-x", &proxy.url(), &url]).await;
    assert_eq!((code, body.as_str()), (0, "hello from upstream"));
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.starts_with("get /plain?q=1 http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("host: 127.0.0.1:{}\r\n", web.port())),
        "{head}"
    );
    assert!(
        !head.contains("proxy-") && !head.contains("plain-token"),
        "{head}"
    );
    // ...but never to a refused address, even then.
    let (_, code) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--proxy-header",
        auth,
        "-x",
        &proxy.url(),
        "http://169.254.169.254/latest/meta-data/",
    ])
    .await;
    assert_eq!(code, "403");
    assert_eq!(proxy.decisions(), (1, 1));
    let text = logs.text();
    assert!(
        !text.contains("plain?q") && !text.contains("plain-token") && !text.contains("meta-data"),
        "{text}"
    );
}
