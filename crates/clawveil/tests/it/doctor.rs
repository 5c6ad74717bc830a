//! `clawveil doctor`, the real binary, on a fixture bot home.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::bin;

const KEY: &str = "sk-ITplanted1234567890abcdefQRS";
const PHONE: &str = "13812345678";

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn doctor_json_reports_the_fixture_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("openclaw");
    write(
        &home.join("openclaw.json"),
        &format!(
            r#"{{
  gateway: {{ bind: "lan" }},
  proxy: {{ proxyUrl: "http://127.0.0.1:8089" }},
  models: {{ providers: {{ m: {{ baseUrl: "http://192.0.2.7/v1", apiKey: "{KEY}" }} }} }},
}}"#
        ),
        0o644,
    );
    write(
        &home.join("agents/main/sessions/s.jsonl"),
        &format!("{{\"content\":\"call {PHONE}\"}}\n"),
        0o600,
    );
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    for d in ["agents", "agents/main", "agents/main/sessions"] {
        std::fs::set_permissions(home.join(d), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let config = dir.path().join("proxy.toml");
    write(
        &config,
        &format!(
            "[listen]\nhttps = \"127.0.0.1:8443\"\n\n[upstream]\nurl = \"http://127.0.0.1:8080\"\n\n\
             [tls]\nmode = \"self-signed\"\ncert = \"{d}/c.pem\"\nkey = \"{d}/c.key\"\n\n\
             [egress]\nlisten = \"127.0.0.1:8089\"\nallow = [\"api.dingtalk.com\"]\n",
            d = dir.path().display()
        ),
        0o600,
    );
    let out = Command::new(bin())
        .args(["doctor", "--json", "--openclaw-dir"])
        .arg(&home)
        .arg("--config")
        .arg(&config)
        .env_remove("OPENCLAW_CONFIG_PATH")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for secret in [KEY, PHONE] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let status = |id: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("perms.file").as_deref(), Some("fail"));
    assert_eq!(status("secrets.config").as_deref(), Some("warn"));
    assert_eq!(status("gateway.bind").as_deref(), Some("fail"));
    assert_eq!(status("models.base_url").as_deref(), Some("fail"));
    assert_eq!(status("proxy.proxy_url").as_deref(), Some("pass"));
    assert_eq!(status("logs.findings").as_deref(), Some("warn"));
    // the binary plugs in the proxy's and egress's validation
    assert_eq!(status("config").as_deref(), Some("pass"));
    assert!(v["summary"]["fail"].as_u64().unwrap() >= 3);
}
