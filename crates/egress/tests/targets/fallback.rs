//! The fallback: one replay on `connect`, `timeout` and `5xx`, each counted with its
//! cause; never for a body larger than the replay buffer.

use std::time::Duration;

use clawveil_config::EgressTarget;
use clawveil_config::FallbackCause;

use crate::common::{
    closed_port, target, Behaviour, Egress, Logs, ModelServer, TestCa, CHAT_ANSWER,
};

const BODY: &[u8] = br#"{"model":"qwen-max","messages":[{"role":"user","content":"hi"}]}"#;

struct Setup {
    _dir: tempfile::TempDir,
    primary: Option<ModelServer>,
    fallback: ModelServer,
    spec: EgressTarget,
}

/// A target whose primary behaves as told (`None`: nothing listens) and whose fallback
/// answers normally.
async fn setup(primary: Option<Behaviour>, fallback_on: &[FallbackCause]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let leaf = ca.leaf(&["localhost"], 4000);
    let roots = ca.write(dir.path(), "ca.pem");
    let primary = match primary {
        Some(b) => Some(ModelServer::start(&leaf, b).await),
        None => None,
    };
    let url = match &primary {
        Some(p) => p.url(),
        None => format!("https://localhost:{}", closed_port().await),
    };
    let fallback = ModelServer::start(&leaf, Behaviour::default()).await;
    let mut spec = target("models", &url, Some(&roots));
    spec.fallback = Some(fallback.url());
    spec.fallback_on = fallback_on.to_vec();
    Setup {
        _dir: dir,
        primary,
        fallback,
        spec,
    }
}

use FallbackCause::{Connect, Status5xx, Timeout};

#[tokio::test]
async fn a_primary_that_cannot_be_reached_falls_back_and_is_counted() {
    let (logs, _g) = Logs::capture();
    let s = setup(None, &[Connect, Timeout]).await;
    let egress = Egress::start(vec![s.spec.clone()]).await;
    // The series exist before anything happened.
    assert!(egress
        .metrics
        .encode()
        .contains("clawveil_fallback_total{cause=\"connect\",target=\"models\"} 0"));
    let (status, _, body) = egress
        .send("POST", "/models/v1/chat/completions", &[], BODY)
        .await;
    assert_eq!((status, &body[..]), (200, CHAT_ANSWER.as_bytes()));
    let seen = s.fallback.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].body, BODY);
    assert_eq!(egress.fallbacks("models", "connect"), 1);
    assert_eq!(egress.upstream_errors("models", "connect"), 1);
    assert_eq!(egress.upstream_errors("models/fallback", "connect"), 0);
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["upstream"], "fallback");
    assert_eq!(ev["fallback"], "connect");
    assert_eq!(ev["status"], 200);
    assert_eq!(ev["model"], "qwen-max");
    // Counted per model like any answer.
    assert_eq!(egress.model_hist("duration", "models", "qwen-max").0, 1);
}

#[tokio::test]
async fn a_primary_5xx_falls_back_only_when_configured_and_otherwise_passes_intact() {
    let _g = Logs::capture();
    let down = Behaviour {
        status: Some(503),
        ..Behaviour::default()
    };
    let s = setup(Some(down.clone()), &[Connect, Timeout, Status5xx]).await;
    let egress = Egress::start(vec![s.spec.clone()]).await;
    let (status, _, body) = egress
        .send("POST", "/models/v1/chat/completions", &[], BODY)
        .await;
    assert_eq!((status, &body[..]), (200, CHAT_ANSWER.as_bytes()));
    assert_eq!(s.primary.as_ref().unwrap().seen().len(), 1);
    assert_eq!(s.fallback.seen().len(), 1);
    assert_eq!(s.fallback.seen()[0].body, BODY);
    assert_eq!(egress.fallbacks("models", "5xx"), 1);

    // Without 5xx among the causes, the primary's answer is the bot's.
    let s = setup(Some(down), &[Connect, Timeout]).await;
    let egress = Egress::start(vec![s.spec.clone()]).await;
    let (status, _, body) = egress
        .send("POST", "/models/v1/chat/completions", &[], BODY)
        .await;
    assert_eq!(
        (status, &body[..]),
        (503, &b"status 503 from the model server"[..])
    );
    assert!(s.fallback.seen().is_empty());
    assert_eq!(egress.fallbacks("models", "5xx"), 0);
}

#[tokio::test]
async fn when_the_fallback_fails_after_a_primary_5xx_the_bot_gets_that_5xx() {
    let (logs, _g) = Logs::capture();
    let mut s = setup(
        Some(Behaviour {
            status: Some(502),
            ..Behaviour::default()
        }),
        &[Status5xx],
    )
    .await;
    s.spec.fallback = Some(format!("https://localhost:{}", closed_port().await));
    let egress = Egress::start(vec![s.spec.clone()]).await;
    let (status, _, body) = egress
        .send("POST", "/models/v1/chat/completions", &[], BODY)
        .await;
    assert_eq!(
        (status, &body[..]),
        (502, &b"status 502 from the model server"[..])
    );
    assert_eq!(egress.fallbacks("models", "5xx"), 1);
    assert_eq!(egress.upstream_errors("models/fallback", "connect"), 1);
    let ev = &logs.wait_events(1).await[0];
    assert_eq!(ev["upstream"], "primary");
    assert_eq!(ev["fallback"], "5xx");
    assert_eq!(ev["fallback_error"], "connect");
}

#[tokio::test]
async fn a_primary_that_does_not_answer_in_time_falls_back_and_counts_a_timeout() {
    let (logs, _g) = Logs::capture();
    let slow = Behaviour {
        delay: Duration::from_secs(3),
        ..Behaviour::default()
    };
    let mut s = setup(Some(slow.clone()), &[Connect, Timeout]).await;
    s.spec.response_timeout = Duration::from_millis(300);
    let egress = Egress::start(vec![s.spec.clone()]).await;
    let started = std::time::Instant::now();
    let (status, _, body) = egress
        .send("POST", "/models/v1/chat/completions", &[], BODY)
        .await;
    assert_eq!((status, &body[..]), (200, CHAT_ANSWER.as_bytes()));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(egress.fallbacks("models", "timeout"), 1);
    assert_eq!(egress.timeouts("models"), 1);
    assert_eq!(egress.upstream_errors("models", "timeout"), 1);
    assert_eq!(logs.wait_events(1).await[0]["fallback"], "timeout");

    // Without a fallback: 504, counted the same way.
    let mut s = setup(Some(slow), &[Connect, Timeout]).await;
    s.spec.fallback = None;
    s.spec.response_timeout = Duration::from_millis(300);
    let egress = Egress::start(vec![s.spec.clone()]).await;
    let (status, _, body) = egress
        .send("POST", "/models/v1/chat/completions", &[], BODY)
        .await;
    assert_eq!((status, &body[..]), (504, &b"upstream timed out\n"[..]));
    assert_eq!(egress.timeouts("models"), 1);
    let ev = &logs.wait_events(2).await[1];
    assert_eq!(
        (ev["status"].as_u64(), ev["error"].as_str()),
        (Some(504), Some("timeout"))
    );
}

#[tokio::test]
async fn a_body_larger_than_the_replay_buffer_is_streamed_once_and_never_replayed() {
    let (logs, _g) = Logs::capture();
    let s = setup(
        Some(Behaviour {
            status: Some(503),
            ..Behaviour::default()
        }),
        &[Connect, Timeout, Status5xx],
    )
    .await;
    let egress = Egress::start_with(vec![s.spec.clone()], 1024).await;
    let mut big = br#"{"model":"qwen-max","messages":[{"role":"user","content":""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend_from_slice(br#""}]}"#);
    let (status, _, _) = egress
        .send("POST", "/models/v1/chat/completions", &[], &big)
        .await;
    assert_eq!(status, 503);
    let primary = s.primary.as_ref().unwrap().seen();
    assert_eq!(primary.len(), 1);
    assert!(primary[0].body == big, "the primary got a different body");
    assert!(s.fallback.seen().is_empty());
    assert_eq!(egress.fallbacks("models", "5xx"), 0);
    let ev = &logs.wait_events(1).await[0];
    // The label comes from the buffered part.
    assert_eq!(ev["model"], "qwen-max");
    assert_eq!(ev["bytes_in"], big.len());

    // Nothing listens at all: no replay either, 502.
    let s = setup(None, &[Connect]).await;
    let egress = Egress::start_with(vec![s.spec.clone()], 1024).await;
    let (status, _, _) = egress
        .send("POST", "/models/v1/chat/completions", &[], &big)
        .await;
    assert_eq!(status, 502);
    assert!(s.fallback.seen().is_empty());
}
