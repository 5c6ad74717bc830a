//! A `${file:..}` secret rotated on disk is re-read without a signal, as Kubernetes
//! rotates a Secret volume: a new timestamped directory, then the `..data` symlink
//! swapped onto it in one rename. clawveil polls every `tls.watch_interval`.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::common::{eventually, stdout, Harness, Opts};

/// One version of the Secret volume: `..<stamp>/metrics_token`, then `..data` pointed at
/// it through a temporary symlink renamed over the old one (the kubelet's atomic swap).
fn publish(volume: &Path, stamp: &str, token: &str, mode: u32) {
    let dir = volume.join(format!("..{stamp}"));
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("metrics_token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    let tmp = volume.join("..data_tmp");
    symlink(format!("..{stamp}"), &tmp).unwrap();
    std::fs::rename(&tmp, volume.join("..data")).unwrap();
}

fn status(h: &Harness, token: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://127.0.0.1:{}/metrics", h.metrics))
        .output()
        .unwrap();
    stdout(&out)
}

#[test]
fn a_rotated_secret_file_is_reloaded_without_a_signal() {
    const OLD: &str = "scrape-token-before-0001";
    const NEW: &str = "scrape-token-after-0002";
    const BROKEN: &str = "scrape-token-broken-0003";
    let volume = tempfile::tempdir().unwrap();
    publish(volume.path(), "2025_01_01_00_00_00.1", OLD, 0o600);
    let path = volume.path().join("metrics_token");
    symlink("..data/metrics_token", &path).unwrap();
    let extra = format!("[metrics]\ntoken = \"${{file:{}}}\"", path.display());
    let h = Harness::with(Opts {
        extra: Box::leak(extra.into_boxed_str()),
        ..Opts::default()
    });
    assert_eq!(status(&h, OLD), "200");
    assert_eq!(status(&h, NEW), "401");

    // The harness's tls.watch_interval is 200ms; no signal is sent.
    publish(volume.path(), "2025_01_01_01_00_00.2", NEW, 0o600);
    std::fs::remove_dir_all(volume.path().join("..2025_01_01_00_00_00.1")).unwrap();
    assert!(
        eventually(10, || status(&h, NEW) == "200"),
        "{}",
        h.proxy.output()
    );
    assert_eq!(status(&h, OLD), "401");

    // The line is written after the swap, by the log writer thread: wait for it too.
    let reload_line = || {
        h.proxy
            .output()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .find(|v: &serde_json::Value| {
                v["fields"]["message"]
                    .as_str()
                    .or(v["message"].as_str())
                    .is_some_and(|m| m.starts_with("secret file changed"))
            })
    };
    assert!(
        eventually(5, || reload_line().is_some()),
        "no reload line: {}",
        h.proxy.output()
    );
    let line = reload_line().unwrap();
    let output = h.proxy.output();
    let text = line.to_string();
    assert!(
        text.contains(&serde_json::json!([path.display().to_string()]).to_string()),
        "{text}"
    );
    assert!(!output.contains(OLD) && !output.contains(NEW), "{output}");

    // A rotation to a file clawveil refuses keeps the last good token, and says why.
    publish(volume.path(), "2025_01_01_02_00_00.3", BROKEN, 0o644);
    assert!(
        eventually(10, || h
            .proxy
            .output()
            .contains("could not be re-read; keeping the previous value")),
        "{}",
        h.proxy.output()
    );
    assert_eq!(status(&h, NEW), "200");
    assert_eq!(status(&h, BROKEN), "401");
    assert!(h.proxy.output().contains("chmod 600"));
}
