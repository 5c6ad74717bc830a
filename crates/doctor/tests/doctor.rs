//! `clawveil doctor` against fixture bot homes, good and bad: the exact checklist, the
//! JSON, that no planted secret reaches the output, and that `--fix-perms` changes modes
//! and nothing else.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clawveil_doctor::{run, Hooks, Options, Outcome, Status};

/// Values planted in the fixtures; none may appear in any output.
const PLANTED: &[&str] = &[
    "sk-PLANTEDconfig1234567890abcdefXYZ",
    "sk-PLANTEDenv0987654321zyxwvuABC",
    "gw-PLANTEDtoken-5f3e2d1c0b9a",
    "sk-PLANTEDlog5555666677778888qq",
    "13812345678",
    "13987654321",
    "PLANTEDsecret-dingtalk-77aa",
    "PLANTEDpw-userinfo",
];

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mkdir(path: &Path, mode: u32) {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// A `/proc/net/tcp{,6}` pair with these LISTEN sockets.
fn proc_net(dir: &Path, listening: &[&str]) -> PathBuf {
    let net = dir.join("proc-net");
    std::fs::create_dir_all(&net).unwrap();
    let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    let (mut v4, mut v6) = (header.to_owned(), header.to_owned());
    for (i, a) in listening.iter().enumerate() {
        let a: SocketAddr = a.parse().unwrap();
        let words: Vec<[u8; 4]> = match a.ip() {
            std::net::IpAddr::V4(ip) => vec![ip.octets()],
            std::net::IpAddr::V6(ip) => ip
                .octets()
                .chunks(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
        };
        let hex: String = words
            .iter()
            .map(|w| format!("{:08X}", u32::from_ne_bytes(*w)))
            .collect();
        let zero = "0".repeat(hex.len());
        let line = format!(
            "{i:4}: {hex}:{:04X} {zero}:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 {i} 1 0 100 0 0 10 0\n",
            a.port()
        );
        if a.is_ipv4() {
            v4.push_str(&line);
        } else {
            v6.push_str(&line);
        }
    }
    std::fs::write(net.join("tcp"), v4).unwrap();
    std::fs::write(net.join("tcp6"), v6).unwrap();
    net
}

fn clawveil_config(dir: &Path, metrics: &str) -> PathBuf {
    let path = dir.join("clawveil/proxy.toml");
    write(
        &path,
        &format!(
            r#"[listen]
https   = "127.0.0.1:8443"
metrics = "{metrics}"

[upstream]
url = "http://127.0.0.1:8080"

[tls]
mode = "self-signed"
cert = "{d}/clawveil/certs/selfsigned.pem"
key  = "{d}/clawveil/certs/selfsigned.key"

[egress]
listen = "127.0.0.1:8089"
allow  = ["api.dingtalk.com"]
"#,
            d = dir.display(),
        ),
        0o600,
    );
    path
}

struct Fixture {
    dir: tempfile::TempDir,
    home: PathBuf,
    opts: Options,
}

impl Fixture {
    fn run(&self) -> Outcome {
        run(&self.opts, &Hooks::default()).unwrap()
    }

    /// The text checklist with the temporary directory written as `<T>`.
    fn text(&self) -> String {
        self.run()
            .to_text()
            .replace(&self.dir.path().display().to_string(), "<T>")
    }
}

/// A bot home set up the way the README says: nothing to fix.
fn good() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join(".openclaw");
    mkdir(&home, 0o700);
    write(
        &home.join("openclaw.json"),
        r#"{
  // JSON5, as OpenClaw writes it
  gateway: {
    port: 18789,
    bind: "loopback",
    auth: { mode: "token", token: "${OPENCLAW_GATEWAY_TOKEN}" },
    controlUi: { allowedOrigins: ["https://bot.example.com"] },
  },
  proxy: { enabled: true, proxyUrl: "http://127.0.0.1:8089" },
  models: {
    providers: {
      gateway: { baseUrl: "http://127.0.0.1:8089/models/v1", apiKey: "${CLAWVEIL_CLIENT_TOKEN}" },
      hosted: { baseUrl: "https://api.example-model-gateway.com/v1" },
    },
  },
  someFutureKey: { whatever: [1, 2, 3] },
}"#,
        0o600,
    );
    write(
        &home.join(".env"),
        "OPENCLAW_GATEWAY_TOKEN=gw-PLANTEDtoken-5f3e2d1c0b9a\n",
        0o600,
    );
    mkdir(&home.join("agents/main/sessions"), 0o700);
    mkdir(&home.join("agents/main"), 0o700);
    mkdir(&home.join("agents"), 0o700);
    write(
        &home.join("agents/main/sessions/clean.jsonl"),
        "{\"role\":\"user\",\"content\":\"what is the weather like\"}\n{\"role\":\"assistant\",\"content\":\"sunny, 23 degrees\"}\n",
        0o600,
    );
    let config = clawveil_config(dir.path(), "127.0.0.1:9464");
    let mut opts = Options::new(vec![home.clone()], config);
    opts.proc_net = proc_net(
        dir.path(),
        &["127.0.0.1:18789", "127.0.0.1:8080", "0.0.0.0:443"],
    );
    Fixture { dir, home, opts }
}

/// Everything the issue lists as bad.
fn bad() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join(".openclaw");
    mkdir(&home, 0o755);
    write(
        &home.join("openclaw.json"),
        r#"{
  gateway: { bind: "lan", auth: { mode: "none" } },
  proxy: { proxyUrl: "http://user:PLANTEDpw-userinfo@10.0.0.9:3128" },
  models: {
    providers: {
      internal: { baseUrl: "http://10.20.30.40:8000/v1", apiKey: "sk-PLANTEDconfig1234567890abcdefXYZ" },
    },
  },
  channels: { dingtalk: { clientSecret: "PLANTEDsecret-dingtalk-77aa" } },
}"#,
        0o644,
    );
    write(
        &home.join(".env"),
        "OPENAI_API_KEY=sk-PLANTEDenv0987654321zyxwvuABC\n",
        0o600,
    );
    mkdir(&home.join("agents/main/sessions"), 0o700);
    std::fs::set_permissions(home.join("agents"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        home.join("agents/main"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    write(
        &home.join("agents/main/sessions/leaky.jsonl"),
        "{\"role\":\"user\",\"content\":\"call me at 13812345678\"}\n\
         {\"role\":\"user\",\"content\":\"or my office +86 139 8765 4321\"}\n\
         {\"role\":\"user\",\"content\":\"here is my key sk-PLANTEDlog5555666677778888qq\"}\n",
        0o600,
    );
    mkdir(&home.join("logs"), 0o700);
    write(
        &home.join("logs/gateway.log"),
        "gateway started\nlistening\n",
        0o600,
    );
    let config = clawveil_config(dir.path(), "127.0.0.1:9464");
    let mut opts = Options::new(vec![home.clone()], config);
    opts.proc_net = proc_net(dir.path(), &["0.0.0.0:18789", "[::]:8080"]);
    Fixture { dir, home, opts }
}

#[test]
fn good_home_passes_with_the_exact_checklist() {
    let f = good();
    assert_eq!(
        f.text(),
        r#"
At rest
  pass  <T>/.openclaw: no file or directory is open to group or others
  pass  <T>/.openclaw/openclaw.json: no key or token in plain text

Exposure
  pass  <T>/.openclaw/openclaw.json: gateway.bind = "loopback"
  pass  <T>/.openclaw/openclaw.json: gateway.auth.mode = "token"
  pass  port 8080 (the bot, clawveil's upstream.url) listens on loopback only
  pass  port 18789 (the OpenClaw gateway) listens on loopback only
  pass  clawveil's metrics listener is on loopback (127.0.0.1:9464)

In transit
  pass  <T>/.openclaw/openclaw.json: models.providers.gateway.baseUrl goes through clawveil's egress (127.0.0.1:8089)
  pass  <T>/.openclaw/openclaw.json: models.providers.hosted.baseUrl is HTTPS (api.example-model-gateway.com)
  pass  <T>/.openclaw/openclaw.json: proxy.proxyUrl is clawveil's egress (127.0.0.1:8089)

Logs
  pass  scanned 1 log/session file(s), newest first: 0 with identifiers or credentials

clawveil
  pass  <T>/clawveil/proxy.toml: `clawveil check` passes
  skip  <T>/clawveil/certs/selfsigned.pem (tls.mode = "self-signed"): not generated yet (clawveil makes it on first start)
  skip  ACME is not configured: no storage to seal

0 fail, 0 warn, 12 pass, 2 skipped
"#
            .trim_start_matches('\n')
    );
    assert!(!f.run().failed());
}

#[test]
fn bad_home_fails_with_the_exact_checklist() {
    let f = bad();
    assert_eq!(
        f.text(),
        r#"
At rest
  FAIL  <T>/.openclaw/openclaw.json: config file with mode 0644: group and others can read it
        fix: chmod 600 <T>/.openclaw/openclaw.json
  warn  <T>/.openclaw: directory with mode 0755: group and others can read it
        fix: chmod 700 <T>/.openclaw
  warn  <T>/.openclaw/.env: model key(s) in plain text: OPENAI_API_KEY
        fix: let clawveil hold it: [[egress.target]] inject_headers = { Authorization = "Bearer ${file:/run/secrets/model_key}" }, then remove it here
  warn  <T>/.openclaw/openclaw.json: channels.dingtalk.clientSecret is stored in plain text
        fix: write "${OPENCLAW_CHANNELS_DINGTALK_CLIENT_SECRET}" instead and keep the value in the service's environment or ~/.openclaw/.env (mode 0600)
  warn  <T>/.openclaw/openclaw.json: models.providers.internal.apiKey is stored in plain text
        fix: let clawveil hold it: [[egress.target]] inject_headers = { Authorization = "Bearer ${file:/run/secrets/model_key}" }, then remove it here

Exposure
  FAIL  <T>/.openclaw/openclaw.json: gateway.bind = "lan": the gateway listens on every address (0.0.0.0) and can be reached without clawveil
        fix: set gateway.bind = "loopback" in openclaw.json and reach the gateway through clawveil
  FAIL  <T>/.openclaw/openclaw.json: gateway.auth.mode = "none": whoever reaches the gateway controls the bot
        fix: set gateway.auth.mode = "token" and gateway.auth.token = "${OPENCLAW_GATEWAY_TOKEN}"
  FAIL  port 8080 (the bot, clawveil's upstream.url) listens on [::]:8080: reachable without clawveil
        fix: bind the bot to 127.0.0.1:8080 only
  FAIL  port 18789 (the OpenClaw gateway) listens on 0.0.0.0:18789: reachable without clawveil
        fix: set gateway.bind = "loopback" in openclaw.json and restart the gateway
  pass  clawveil's metrics listener is on loopback (127.0.0.1:9464)

In transit
  FAIL  <T>/.openclaw/openclaw.json: models.providers.internal.baseUrl is plain http to 10.20.30.40:8000: prompts, answers and the key cross the network unencrypted
        fix: use https:// even for an internal endpoint, or send it through clawveil's egress: models.providers.internal.baseUrl = "http://127.0.0.1:8089/<target>/..." and [[egress.target]] url = "https://10.20.30.40:8000"
  warn  <T>/.openclaw/openclaw.json: proxy.proxyUrl points at 10.0.0.9:3128, not clawveil's egress (127.0.0.1:8089)
        fix: set proxy.proxyUrl = "http://127.0.0.1:8089" (and proxy.enabled = true)

Logs
  FAIL  <T>/.openclaw/agents/main/sessions/leaky.jsonl: 2 phone numbers, 1 api key
        fix: rotate the credential, delete or redact the file; keep keys out of the bot (egress inject_headers)
  warn  scanned 2 log/session file(s), newest first: 1 with identifiers or credentials

clawveil
  pass  <T>/clawveil/proxy.toml: `clawveil check` passes
  skip  <T>/clawveil/certs/selfsigned.pem (tls.mode = "self-signed"): not generated yet (clawveil makes it on first start)
  skip  ACME is not configured: no storage to seal

7 fail, 6 warn, 2 pass, 2 skipped
"#
            .trim_start_matches('\n')
    );
    assert!(f.run().failed());
}

#[test]
fn json_carries_every_status_and_the_counts() {
    let out = bad().run();
    let v: serde_json::Value = serde_json::from_str(&out.to_json()).unwrap();
    let checks = v["checks"].as_array().unwrap();
    let status_of = |id: &str| -> Vec<String> {
        checks
            .iter()
            .filter(|c| c["id"] == id)
            .map(|c| c["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(status_of("perms.file"), ["fail"]);
    assert_eq!(status_of("perms.dir"), ["warn"]);
    assert_eq!(status_of("gateway.bind"), ["fail"]);
    assert_eq!(status_of("gateway.auth"), ["fail"]);
    assert_eq!(status_of("listen"), ["fail", "fail"]);
    assert_eq!(status_of("models.base_url"), ["fail"]);
    assert_eq!(status_of("proxy.proxy_url"), ["warn"]);
    assert_eq!(status_of("secrets.config"), ["warn", "warn"]);
    assert_eq!(status_of("secrets.env"), ["warn"]);
    assert_eq!(status_of("logs.findings"), ["fail"]);
    assert_eq!(status_of("config"), ["pass"]);
    let finding = checks.iter().find(|c| c["id"] == "logs.findings").unwrap();
    assert_eq!(
        finding["counts"],
        serde_json::json!([{"rule": "phone", "count": 2}, {"rule": "api-key", "count": 1}])
    );
    assert_eq!(finding["section"], "logs");
    assert!(finding["fix"].is_string());
    assert_eq!(
        v["summary"],
        serde_json::json!({"pass": 2, "warn": 6, "fail": 7, "skipped": 2})
    );
    let good: serde_json::Value = serde_json::from_str(&good().run().to_json()).unwrap();
    assert_eq!(good["summary"]["fail"], 0);
    assert!(good["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "pass" || c["status"] == "skipped"));
}

/// The leak test: every planted value is searched for in every output.
#[test]
fn no_planted_secret_reaches_any_output() {
    for f in [good(), bad()] {
        let out = f.run();
        let mut fixed = bad();
        fixed.opts.fix_perms = true;
        for text in [
            out.to_text(),
            out.to_json(),
            fixed.run().to_text(),
            fixed.run().to_json(),
        ] {
            for secret in PLANTED {
                assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
            }
            // nor a recognisable part of one
            assert!(!text.contains("PLANTED"), "{text}");
        }
    }
}

#[test]
fn an_invalid_clawveil_config_fails_without_quoting_its_values() {
    let f = good();
    write(
        &f.opts.config,
        "[listen]\nhttps = \"127.0.0.1:8443\"\nmetrics = \"0.0.0.0:9464\"\n\n[upstream]\nurl = \"sk-PLANTEDconfig1234567890abcdefXYZ\"\n",
        0o600,
    );
    let out = f.run();
    let config: Vec<_> = out.checks.iter().filter(|c| c.id == "config").collect();
    assert_eq!(config.len(), 1);
    assert_eq!(config[0].status, Status::Fail);
    assert!(
        config[0].message.starts_with("`clawveil check`: "),
        "{}",
        config[0].message
    );
    assert!(!out.to_json().contains("PLANTED"), "{}", out.to_json());
    assert!(out.failed());
}

#[test]
fn a_missing_clawveil_config_is_skipped() {
    let mut f = good();
    f.opts.config = f.dir.path().join("nowhere/proxy.toml");
    let text = f.text();
    assert!(
        text.contains("  skip  <T>/nowhere/proxy.toml not found: clawveil's own checks skipped (pass --config)\n"),
        "{text}"
    );
    assert!(text.contains("  skip  <T>/.openclaw/openclaw.json: clawveil has no [egress] listener to compare proxy.proxyUrl with\n"), "{text}");
    assert!(!f.run().failed());
}

#[test]
fn a_real_listener_on_every_address_fails() {
    if !Path::new("/proc/net/tcp").exists() {
        return; // not Linux
    }
    let open = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let mut f = good();
    write(
        &f.home.join("openclaw.json"),
        &format!("{{ gateway: {{ port: {port} }} }}"),
        0o600,
    );
    f.opts.proc_net = PathBuf::from("/proc/net");
    let text = f.text();
    assert!(
        text.contains(&format!("  FAIL  port {port} (the OpenClaw gateway) listens on 0.0.0.0:{port}: reachable without clawveil\n")),
        "{text}"
    );
    drop(open);
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = local.local_addr().unwrap().port();
    write(
        &f.home.join("openclaw.json"),
        &format!("{{ gateway: {{ port: {port} }} }}"),
        0o600,
    );
    assert!(f.text().contains(&format!(
        "  pass  port {port} (the OpenClaw gateway) listens on loopback only\n"
    )));
}

#[test]
fn log_limits_keep_the_newest_files() {
    let mut f = bad();
    f.opts.log_limits.max_files = 1;
    // the clean log is the newest: the leaky session is left out
    let log = f.home.join("logs/gateway.log");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&log)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let text = f.text();
    assert!(text.contains("  pass  scanned 1 log/session file(s), newest first: 0 with identifiers or credentials\n"), "{text}");
    assert!(text.contains("  skip  1 older file(s) not scanned (limits: 1 files, 64 MiB; see --log-max-files, --log-max-mib)\n"), "{text}");
    assert!(!text.contains("leaky.jsonl"));
}

#[test]
fn a_broken_openclaw_config_fails_without_quoting_it() {
    let f = good();
    write(
        &f.home.join("openclaw.json"),
        "{ models: { providers: { x: { apiKey: \"sk-PLANTEDconfig1234567890abcdefXYZ\" ,, } } }",
        0o600,
    );
    let out = f.run();
    let c = out
        .checks
        .iter()
        .find(|c| c.id == "openclaw.config")
        .unwrap();
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.message.contains("not valid JSON5 at line 1 column"),
        "{}",
        c.message
    );
    assert!(!out.to_text().contains("PLANTED"));
}

/// Every regular file and directory under `root`, with its mode, contents and mtime.
fn snapshot(root: &Path) -> Vec<(PathBuf, u32, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let contents = if meta.is_file() {
            std::fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        out.push((
            p.clone(),
            meta.permissions().mode() & 0o7777,
            contents,
            meta.modified().unwrap(),
        ));
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fix_perms_changes_modes_and_nothing_else() {
    let mut f = bad();
    // a file outside, reachable through a symbolic link inside: never touched
    let outside = f.dir.path().join("outside.txt");
    write(&outside, "shared notes\n", 0o644);
    std::os::unix::fs::symlink(&outside, f.home.join("link-to-outside")).unwrap();
    write(&f.home.join("workspace/notes.md"), "notes\n", 0o664);
    std::fs::set_permissions(
        f.home.join("workspace"),
        std::fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    let before = snapshot(f.dir.path());

    f.opts.fix_perms = true;
    let out = f.run();
    let changed: Vec<(String, String, String)> = out
        .fixed
        .iter()
        .map(|c| {
            (
                c.path.strip_prefix(&f.home).unwrap().display().to_string(),
                c.from.clone(),
                c.to.clone(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        changed,
        [
            s("", "0755", "0700"),
            s("openclaw.json", "0644", "0600"),
            s("workspace", "0775", "0700"),
            s("workspace/notes.md", "0664", "0600"),
        ]
    );
    let text = out.to_text();
    assert!(
        text.starts_with("--fix-perms changed 4 mode(s):\n  0755 -> 0700  "),
        "{text}"
    );
    assert!(
        !text.contains("perms.file") && !text.contains("mode 0644: group"),
        "{text}"
    );

    let after = snapshot(f.dir.path());
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.0, a.0);
        assert_eq!(b.2, a.2, "{}: contents changed", b.0.display());
        assert_eq!(b.3, a.3, "{}: mtime changed", b.0.display());
        let expected = if b.0.starts_with(&f.home) && b.0 != f.home.join("link-to-outside") {
            b.1 & !0o077
        } else {
            b.1
        };
        assert_eq!(a.1, expected, "{}", b.0.display());
    }
    assert_eq!(mode(&outside), 0o644);
    // a second run has nothing to change
    assert!(f.run().fixed.is_empty());
}

#[test]
fn certificate_days_left_and_key_mode_are_read_from_the_files() {
    let f = good();
    let certs = f.dir.path().join("clawveil/certs");
    std::fs::create_dir_all(&certs).unwrap();
    let (cert, key) = (certs.join("selfsigned.pem"), certs.join("selfsigned.key"));
    clawveil_tls::ensure_self_signed(&cert, &key, &["localhost".to_owned()]).unwrap();
    let line = |f: &Fixture| {
        f.text()
            .lines()
            .filter(|l| l.contains("selfsigned"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let lines = line(&f);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("  warn  <T>/clawveil/certs/selfsigned.pem (tls.mode = \"self-signed\") is self-signed (development only), "), "{lines:?}");
    assert!(lines[0].ends_with(" day(s) left"), "{lines:?}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = f.run();
    let c = out
        .checks
        .iter()
        .find(|c| c.id == "cert.key_perms")
        .unwrap();
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.as_deref().unwrap().starts_with("chmod 600 "));
}
