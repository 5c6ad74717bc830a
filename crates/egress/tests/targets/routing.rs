//! Which requests are for a target: origin-form, and absolute-form addressed to the
//! listener itself (a client using the listener as its HTTP proxy); everything else
//! stays with the forward proxy.

use std::time::Duration;

use crate::common::{curl, raw, target, Behaviour, Egress, Logs, ModelServer, TestCa, CHAT_ANSWER};

async fn egress_with_models() -> (tempfile::TempDir, ModelServer, Egress) {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let server = ModelServer::start(&ca.leaf(&["localhost"], 4000), Behaviour::default()).await;
    let roots = ca.write(dir.path(), "ca.pem");
    let egress = Egress::start(vec![target("models", &server.url(), Some(&roots))]).await;
    (dir, server, egress)
}

#[tokio::test]
async fn absolute_form_to_the_listener_itself_is_a_target_request() {
    let (logs, _g) = Logs::capture();
    let (_dir, server, egress) = egress_with_models().await;
    let port = egress.addr.port();
    let body = r#"{"model":"qwen-max"}"#;
    for authority in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let req = format!(
            "POST http://{authority}/models/v1/chat/completions HTTP/1.1\r\nHost: {authority}\r\n\
             Proxy-Authorization: Bearer proxy-canary\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, text) = raw(egress.addr, &req).await;
        assert_eq!(status, 200, "{text}");
        assert!(text.ends_with(CHAT_ANSWER), "{text}");
    }
    // And as curl sends it with the listener as its proxy.
    let (code, out) = curl(&[
        "-x",
        &egress.url(""),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
        &format!("http://127.0.0.1:{port}/models/v1/chat/completions"),
    ])
    .await;
    assert_eq!((code, out.as_str()), (0, CHAT_ANSWER));
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.path, "/v1/chat/completions");
        assert!(!s.all_headers().contains("proxy-canary"));
    }
    let events = logs.wait_events(3).await;
    assert!(events
        .iter()
        .all(|e| e["route"] == "models" && e["status"] == 200));
    // Not counted as forward-proxy traffic.
    let tunnels = egress
        .metrics
        .egress_tunnels
        .with_label_values(&["allowed"])
        .get()
        + egress
            .metrics
            .egress_tunnels
            .with_label_values(&["denied"])
            .get();
    assert_eq!(tunnels, 0);
}

#[tokio::test]
async fn other_absolute_form_and_connect_stay_with_the_forward_proxy() {
    let (logs, _g) = Logs::capture();
    let (_dir, server, egress) = egress_with_models().await;
    let port = egress.addr.port();
    // Another port on loopback, and the model server's own address: plain http to
    // loopback, refused by the forward proxy.
    for authority in [
        format!("127.0.0.1:{}", port + 1),
        format!("127.0.0.2:{port}"),
        format!("127.0.0.1:{}", server.addr.port()),
    ] {
        let req = format!(
            "GET http://{authority}/models/v1/models HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        );
        let (status, _) = raw(egress.addr, &req).await;
        assert_eq!(status, 403, "{authority}");
    }
    // https in absolute form is not "the listener itself".
    let req = format!(
        "GET https://127.0.0.1:{port}/models/v1/models HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw(egress.addr, &req).await.0, 403);
    let req = "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n";
    assert_eq!(raw(egress.addr, req).await.0, 403);
    assert!(server.seen().is_empty());
    assert_eq!(egress.fail_closed("egress_denied"), 5);
    assert!(logs.target_events().is_empty());
}

#[tokio::test]
async fn a_name_no_target_has_is_refused() {
    let _g = Logs::capture();
    let (_dir, server, egress) = egress_with_models().await;
    for path in ["/unknown/v1/models", "/", "/modelsX/v1", "/MODELS/v1"] {
        let (status, _, body) = egress.send("GET", path, &[], b"").await;
        assert_eq!(
            (status, &body[..]),
            (403, &b"destination not allowed\n"[..]),
            "{path}"
        );
    }
    let port = egress.addr.port();
    let req = format!(
        "GET http://127.0.0.1:{port}/nothing/here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw(egress.addr, &req).await.0, 403);
    assert!(server.seen().is_empty());
    assert_eq!(egress.fail_closed("egress_denied"), 5);
}

#[tokio::test]
async fn shutdown_lets_a_stream_in_flight_finish_then_stops() {
    let _g = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let server = ModelServer::start(
        &ca.leaf(&["localhost"], 4000),
        Behaviour {
            delay: Duration::from_millis(800),
            ..Behaviour::default()
        },
    )
    .await;
    let roots = ca.write(dir.path(), "ca.pem");
    let mut egress = Egress::start(vec![target("models", &server.url(), Some(&roots))]).await;
    let url = egress.url("/models/v1/chat/completions");
    let in_flight =
        tokio::spawn(
            async move { curl(&["--data-binary", r#"{"model":"qwen-max"}"#, &url]).await },
        );
    // Stop once the request is at the model server, waiting for its answer.
    for _ in 0..500 {
        if !server.seen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.seen().len(), 1);
    egress.stop().await;
    let (code, out) = in_flight.await.unwrap();
    assert_eq!((code, out.as_str()), (0, CHAT_ANSWER));
    // No longer listening.
    assert!(tokio::net::TcpStream::connect(egress.addr).await.is_err());
}
