//! Integration tests of clawveil-config: one test binary (see STYLE.md).

mod bounds;
mod errors;
mod full;
mod fuzz;
mod not_supported;
mod secrets;
mod sections;

use std::path::{Path, PathBuf};

use clawveil_config::{Config, ConfigError, LoadOptions};

/// The smallest valid config.
pub const HTTPS: &str = "[listen]\nhttps = \"127.0.0.1:8443\"\n";

pub const FULL: &str = include_str!("../full.toml");

/// `[egress]` and `upstream.fallback`, refused as "not supported yet".
pub const EGRESS: &str = include_str!("../egress.toml");

/// The design contract's `[egress]` section with every optional key set.
pub const EGRESS_EXAMPLE: &str = include_str!("../egress_example.toml");

/// Whether `[egress]` is enforced: the one switch, `EGRESS_SUPPORTED` in the crate's
/// `reference.rs`. The tests of its refusal follow it, so flipping the switch needs no
/// other change here.
pub fn egress_supported() -> bool {
    clawveil_config::supported_keys()
        .iter()
        .any(|k| k == "egress.listen")
}

/// Secret values the full config resolves to; none may ever appear in output.
pub const SECRET_VALUES: &[(&str, &str)] = &[
    ("ACME_EAB_KID", "kid-1234567890"),
    ("ACME_EAB_HMAC", "hmac-secret-value-abcdef"),
    (
        "CLAWVEIL_STORAGE_KEY",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    ),
    ("CLAWVEIL_METRICS_TOKEN", "metrics-token-value-xyz"),
    ("DINGTALK_APP_SECRET", "app-secret-current-value"),
    ("DINGTALK_APP_SECRET_PREVIOUS", "app-secret-previous-value"),
    ("DINGTALK_EVENT_TOKEN", "event-token-value-xyz"),
    (
        "DINGTALK_EVENT_AES_KEY",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    ),
];

/// What `log.hash_key = "${file:@DIR@/hash_key}"` of the full config resolves to.
pub const FILE_SECRET: &str = "hash-key-file-value";

pub fn opts() -> LoadOptions {
    LoadOptions::default()
}

pub fn parse(src: &str) -> Result<Config, ConfigError> {
    clawveil_config::parse(src, Path::new("proxy.toml"), &opts())
}

/// The error message for `src`, which must be refused.
pub fn err(src: &str) -> String {
    match parse(src) {
        Ok(c) => panic!("expected an error for:\n{src}\ngot {c:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

/// Sets the environment the full config needs (same values in every test).
pub fn set_env() {
    for (k, v) in SECRET_VALUES {
        std::env::set_var(k, v);
    }
}

/// Writes a 0600 file.
pub fn private_file(path: &Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The full config with its `hash_key` file in a fresh temporary directory.
pub fn full_in_tempdir() -> (tempfile::TempDir, String) {
    set_env();
    let dir = tempfile::tempdir().unwrap();
    private_file(
        &dir.path().join("hash_key"),
        &format!("{FILE_SECRET}\n"),
        0o600,
    );
    let src = FULL.replace("@DIR@", &dir.path().display().to_string());
    (dir, src)
}

pub fn tmp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
