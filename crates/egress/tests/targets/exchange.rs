//! What goes through a target: bodies and streams intact, the key injected, the client
//! token checked and swapped, the model label, secrets re-read on reload.

use std::sync::Arc;
use std::time::Duration;

use clawveil_config::Secret;
use http_body_util::BodyExt;
use tokio::sync::Semaphore;

use crate::common::{target, Behaviour, Egress, Logs, ModelServer, TestCa, CHAT_ANSWER, MODEL_KEY};

const BODY: &str =
    r#"{"model":"qwen-max","messages":[{"role":"user","content":"body-canary-5521 hi"}]}"#;

#[tokio::test]
async fn a_plain_request_arrives_intact_with_the_injected_key_and_never_the_bots() {
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let server = ModelServer::start(&ca.leaf(&["localhost"], 4000), Behaviour::default()).await;
    let roots = ca.write(dir.path(), "ca.pem");
    let egress = Egress::start(vec![target("models", &server.url(), Some(&roots))]).await;

    let (status, headers, body) = egress
        .send(
            "POST",
            "/models/v1/chat/completions?trace=q-canary",
            &[
                ("authorization", "Bearer bot-held-key"),
                ("content-type", "application/json"),
                ("x-request-tag", "kept"),
                ("connection", "keep-alive, x-hop"),
                ("x-hop", "dropped"),
                ("proxy-authorization", "Bearer proxy-canary"),
            ],
            BODY.as_bytes(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, CHAT_ANSWER.as_bytes());
    assert_eq!(headers["content-type"], "application/json");

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, "POST");
    assert_eq!(s.path, "/v1/chat/completions?trace=q-canary");
    assert_eq!(s.version, http::Version::HTTP_2, "h2 by ALPN");
    assert_eq!(s.body, BODY.as_bytes());
    assert_eq!(s.header("authorization"), [format!("Bearer {MODEL_KEY}")]);
    assert_eq!(s.header("x-request-tag"), ["kept"]);
    let all = s.all_headers();
    for gone in ["bot-held-key", "x-hop", "proxy-canary", "127.0.0.1"] {
        assert!(!all.contains(gone), "{gone} reached the target:\n{all}");
    }

    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["listener"], "egress");
    assert_eq!(ev["route"], "models");
    assert_eq!(ev["method"], "POST");
    assert_eq!(ev["status"], 200);
    assert_eq!(ev["model"], "qwen-max");
    assert_eq!(ev["upstream"], "primary");
    assert_eq!(ev["bytes_in"], BODY.len());
    assert_eq!(ev["bytes_out"], CHAT_ANSWER.len());
    assert_eq!(ev["close_reason"], "complete");
    assert!(ev.get("error").is_none(), "{ev}");
    logs.assert_clean(&[
        MODEL_KEY,
        "bot-held-key",
        "proxy-canary",
        "body-canary-5521",
        "chat/completions",
        "q-canary",
    ]);
    assert_eq!(egress.requests("models", "POST", "2xx"), 1);
    assert_eq!(egress.model_hist("duration", "models", "qwen-max").0, 1);
    assert_eq!(egress.model_hist("first_byte", "models", "qwen-max").0, 1);
}

#[tokio::test]
async fn an_sse_stream_passes_through_unbuffered_with_its_first_byte_time() {
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let gate = Arc::new(Semaphore::new(0));
    let server = ModelServer::start(
        &ca.leaf(&["localhost"], 4000),
        Behaviour {
            gate: Some(gate.clone()),
            // HTTP/1.1 upstream: chunked framing both ways.
            alpn: vec![b"http/1.1".to_vec()],
            ..Behaviour::default()
        },
    )
    .await;
    let roots = ca.write(dir.path(), "ca.pem");
    let egress = Egress::start(vec![target("models", &server.url(), Some(&roots))]).await;
    let body = r#"{"model":"qwen-max","stream":true,"messages":[]}"#;
    let resp = egress
        .request(
            "POST",
            "/models/v1/chat/completions",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut got = String::new();
    // The server sends the next event only once the bot has the previous one: a
    // buffering proxy would stall here.
    for i in 0..5 {
        let want = format!("part{i} ");
        while !got.contains(&want) {
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .unwrap_or_else(|_| panic!("event {i} held back; got so far: {got:?}"))
                .unwrap()
                .unwrap();
            if let Ok(data) = frame.into_data() {
                got.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
        // Time passes between events, so the first byte comes well before the last.
        tokio::time::sleep(Duration::from_millis(40)).await;
        gate.add_permits(1);
    }
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    assert!(got.ends_with("data: [DONE]\n\n"), "{got}");
    assert_eq!(got.matches("data: ").count(), 6);

    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["status"], 200);
    assert_eq!(ev["bytes_out"], got.len());
    let (first_n, first_sum) = egress.model_hist("first_byte", "models", "qwen-max");
    let (total_n, total_sum) = egress.model_hist("duration", "models", "qwen-max");
    assert_eq!((first_n, total_n), (1, 1));
    assert!(
        // Four pauses of 40 ms at least lie between the first event and the end.
        first_sum + 0.12 < total_sum,
        "first byte {first_sum}s, total {total_sum}s"
    );
    let metrics = egress.metrics.encode();
    assert!(metrics.contains("clawveil_model_first_byte_seconds_bucket{model=\"qwen-max\",target=\"models\",le=\"0.05\"}"), "{metrics}");
    assert!(metrics.contains("clawveil_model_request_duration_seconds_bucket{model=\"qwen-max\",target=\"models\",le=\"300\"} 1"), "{metrics}");
}

#[tokio::test]
async fn the_client_token_is_required_counted_and_swapped_for_the_key() {
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let server = ModelServer::start(&ca.leaf(&["localhost"], 4000), Behaviour::default()).await;
    let roots = ca.write(dir.path(), "ca.pem");
    let token = "cv-local-token-canary-9";
    let mut spec = target("tok", &server.url(), Some(&roots));
    spec.client_token = Some(Secret::literal(token));
    let egress = Egress::start(vec![spec]).await;

    let wrong_bearer = format!("Bearer {token}x");
    let refused: [&[(&str, &str)]; 5] = [
        &[],
        &[("authorization", "Bearer wrong")],
        &[("authorization", &wrong_bearer)],
        &[("authorization", token)],
        &[("x-api-key", "wrong")],
    ];
    for headers in refused {
        let (status, _, body) = egress.send("GET", "/tok/v1/models", headers, b"").await;
        assert_eq!(status, 401, "{headers:?}");
        assert_eq!(body, "invalid client token\n");
    }
    assert_eq!(egress.fail_closed("egress_unauthorized"), 5);
    assert!(server.seen().is_empty());

    let bearer = format!("Bearer {token}");
    let (status, _, _) = egress
        .send("GET", "/tok/v1/models", &[("authorization", &bearer)], b"")
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = egress
        .send("GET", "/tok/v1/models", &[("x-api-key", token)], b"")
        .await;
    assert_eq!(status, 200);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.header("authorization"), [format!("Bearer {MODEL_KEY}")]);
        assert!(s.header("x-api-key").is_empty());
        assert!(!s.all_headers().contains(token));
    }
    let events = logs.wait_events(7).await;
    assert!(events[..5].iter().all(|e| e["status"] == 401
        && e["reason"] == "egress_unauthorized"
        && e["error"] == "refused"));
    assert!(events[..5].iter().all(|e| e.get("upstream").is_none()));
    logs.assert_clean(&[token, MODEL_KEY, "wrong"]);
    assert_eq!(egress.requests("tok", "GET", "4xx"), 5);
    assert_eq!(egress.requests("tok", "GET", "2xx"), 2);
}

#[tokio::test]
async fn models_off_the_list_are_labelled_other_and_their_names_go_nowhere() {
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let server = ModelServer::start(&ca.leaf(&["localhost"], 4000), Behaviour::default()).await;
    let roots = ca.write(dir.path(), "ca.pem");
    let egress = Egress::start(vec![target("models", &server.url(), Some(&roots))]).await;
    let bodies: [&[u8]; 4] = [
        br#"{"model":"qwen-max","messages":[]}"#,
        br#"{"messages":[],"model":"user-chosen-xyz"}"#,
        b"not json at all",
        br#"{"model":"qwen-max-but-longer"}"#,
    ];
    for body in bodies {
        let (status, _, _) = egress
            .send("POST", "/models/v1/chat/completions", &[], body)
            .await;
        assert_eq!(status, 200);
    }
    // Bytes unchanged, whatever the label.
    let seen: Vec<_> = server.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(seen, bodies);
    assert_eq!(egress.model_hist("duration", "models", "qwen-max").0, 1);
    assert_eq!(egress.model_hist("duration", "models", "other").0, 3);
    let metrics = egress.metrics.encode();
    assert!(metrics.contains("model=\"other\""));
    assert!(!metrics.contains("user-chosen-xyz") && !metrics.contains("qwen-max-but-longer"));
    let models: Vec<_> = logs
        .wait_events(4)
        .await
        .iter()
        .map(|e| e["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models, ["qwen-max", "other", "other", "other"]);
    logs.assert_clean(&["user-chosen-xyz", "qwen-max-but-longer"]);
}

#[tokio::test]
async fn a_chunked_body_from_the_bot_and_a_large_answer_arrive_byte_for_byte() {
    let _g = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let server = ModelServer::start(
        &ca.leaf(&["localhost"], 4000),
        Behaviour {
            alpn: vec![b"http/1.1".to_vec()],
            ..Behaviour::default()
        },
    )
    .await;
    let roots = ca.write(dir.path(), "ca.pem");
    let egress = Egress::start(vec![target("models", &server.url(), Some(&roots))]).await;
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &big).unwrap();
    let out = dir.path().join("out.bin");
    let (code, _) = crate::common::curl(&[
        "-o",
        out.to_str().unwrap(),
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        &egress.url("/models/v1/echo"),
    ])
    .await;
    assert_eq!(code, 0);
    assert!(std::fs::read(&out).unwrap() == big, "echoed body differs");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].body == big, "the target got a different body");
}

#[tokio::test]
async fn injected_secrets_are_re_read_on_reload_and_kept_when_unreadable() {
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let server = ModelServer::start(&ca.leaf(&["localhost"], 4000), Behaviour::default()).await;
    let roots = ca.write(dir.path(), "ca.pem");
    let key_file = dir.path().join("model_key");
    let write_key = |k: &str| {
        std::fs::write(&key_file, k).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    };
    write_key("sk-first-1111\n");
    let mut spec = target("models", &server.url(), Some(&roots));
    spec.inject_headers = vec![(
        "Authorization".into(),
        Secret::resolve(
            &format!("Bearer ${{file:{}}}", key_file.display()),
            "egress.target[0].inject_headers.Authorization",
            false,
        )
        .unwrap(),
    )];
    let egress = Egress::start(vec![spec]).await;
    let auth = |i: usize| server.seen()[i].header("authorization");

    egress.send("GET", "/models/v1/models", &[], b"").await;
    assert_eq!(auth(0), ["Bearer sk-first-1111"]);

    write_key("sk-second-2222\n");
    // Until the reload signal, the old key stays.
    egress.send("GET", "/models/v1/models", &[], b"").await;
    assert_eq!(auth(1), ["Bearer sk-first-1111"]);
    egress.reload.send_modify(|g| *g += 1);
    let mut rotated = false;
    for i in 2..200 {
        egress.send("GET", "/models/v1/models", &[], b"").await;
        if auth(i) == ["Bearer sk-second-2222"] {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rotated, "the new key was never used");

    // An empty file cannot be used: the previous key stays, and the error is logged.
    write_key("");
    egress.reload.send_modify(|g| *g += 1);
    for _ in 0..200 {
        if logs.text().contains("could not be re-read") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        logs.text().contains("could not be re-read"),
        "{}",
        logs.text()
    );
    egress.send("GET", "/models/v1/models", &[], b"").await;
    assert_eq!(
        server.seen().last().unwrap().header("authorization"),
        ["Bearer sk-second-2222"]
    );
    logs.assert_clean(&["sk-first-1111", "sk-second-2222"]);
}
