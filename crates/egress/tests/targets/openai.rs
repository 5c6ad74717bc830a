//! The official `openai` SDK through a target, as the acceptance check
//! `shared/acceptance/dingtalk-egress.sh` drives it: its `upstream.py` as the model
//! gateway (TLS with a self-signed certificate given as `ca_roots`), `openai_through.py`
//! as the bot holding only the local client token, plain and streamed, directly and
//! with the listener as the SDK's HTTP proxy. Skipped (with a note) when python3, the
//! `openai` package or the acceptance folder is missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clawveil_config::Secret;

use crate::common::{self_signed_ca_leaf, target, Egress, Logs};

const MODEL_KEY: &str = "sk-injectedModelKey77";
const LOCAL_TOKEN: &str = "cv-local-bot-token-5521";

fn acceptance_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CLAWVEIL_ACCEPTANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/acceptance")
        });
    dir.join("openai_through.py").exists().then_some(dir)
}

fn python_has_openai() -> bool {
    Command::new("python3")
        .args(["-c", "import openai"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Ends the process it holds (by its own handle) when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_openai_sdk_streams_through_a_target_directly_and_via_the_proxy() {
    let Some(acceptance) = acceptance_dir() else {
        eprintln!("skipped: shared/acceptance/openai_through.py not found");
        return;
    };
    if !python_has_openai() {
        // scripts/test.sh installs it; in CI a missing SDK is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 has no openai package (scripts/test.sh installs it)"
        );
        eprintln!("skipped: python3 with the openai package is not available (pip install openai)");
        return;
    }
    let (logs, _g) = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let leaf = self_signed_ca_leaf(&["localhost", "127.0.0.1"]);
    let (cert, key, record) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("rec-t.jsonl"),
    );
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _upstream = Reaped(
        Command::new("python3")
            .arg(acceptance.join("upstream.py"))
            .arg(port.to_string())
            .arg(&record)
            .arg("--tls")
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "upstream.py did not listen");

    let mut spec = target("tok", &format!("https://localhost:{port}"), Some(&cert));
    spec.client_token = Some(Secret::literal(LOCAL_TOKEN));
    spec.inject_headers = vec![(
        "Authorization".into(),
        Secret::literal(format!("Bearer {MODEL_KEY}")),
    )];
    let egress = Egress::start(vec![spec]).await;

    for via_proxy in [false, true] {
        let mut cmd = Command::new("python3");
        cmd.arg(acceptance.join("openai_through.py"))
            .arg(egress.addr.port().to_string())
            .arg(LOCAL_TOKEN)
            .arg(&record);
        if via_proxy {
            cmd.arg("--via-proxy");
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "openai_through.py (via proxy: {via_proxy}) failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            logs.text()
        );
    }
    // Two calls each (plain and streamed), all through the target, the key never logged.
    let events = logs.wait_events(4).await;
    assert!(events
        .iter()
        .all(|e| e["route"] == "tok" && e["status"] == 200 && e["model"] == "qwen-max"));
    logs.assert_clean(&[MODEL_KEY, LOCAL_TOKEN]);
    let (first, _) = egress.model_hist("first_byte", "tok", "qwen-max");
    assert_eq!(first, 4);
}
