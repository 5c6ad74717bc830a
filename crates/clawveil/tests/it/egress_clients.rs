//! Real clients through the real binary's egress listener, on loopback, as an OpenClaw
//! bot's traffic would go (`proxy.proxyUrl` / `HTTPS_PROXY` = the egress listener):
//!
//! - the Python `websockets` client (HTTP CONNECT proxy support, websockets >= 15) to a
//!   local `wss://` echo server (the `websockets` server), admitted only by `allow_cidrs`;
//! - the official DingTalk Stream SDK (PyPI `dingtalk-stream`) to a fake Stream gateway:
//!   its `requests` POST to open the connection and its WebSocket both go through
//!   clawveil, found in the environment as a bot's would be.
//!
//! A CA and a `localhost` leaf are made by openssl at test time; the clients trust only
//! that CA. The Python helpers are in `tests/python/`. A missing Python package skips a
//! test locally and fails it in CI (`CI=true`); `scripts/test.sh` installs them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clawveil_testkit::{free_port, wait_port, ProxyProcess, TestCert};
use serde_json::Value;

use crate::common::{bin, eventually, metric_value, write_config, Opts};

const PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
const ALLOWED: &str = "clawveil_egress_tunnels_total{decision=\"allowed\"}";
const DENIED: &str = "clawveil_egress_tunnels_total{decision=\"denied\"}";
const EGRESS_DENIED: &str = "clawveil_fail_closed_total{reason=\"egress_denied\"}";

/// Whether python3 imports every module; a missing one fails the test in CI.
fn python_has(modules: &[&str]) -> bool {
    let code = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    let out = Command::new("python3").args(["-c", &code]).output();
    let missing = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => format!("python3: {e}"),
    };
    let msg = format!(
        "python3 cannot import {modules:?} (scripts/test.sh installs them): {}",
        missing.trim()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("skipped: {msg}");
    false
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("openssl is installed");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a leaf it signed for `localhost` and 127.0.0.1 (openssl, made per test).
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn make(dir: &Path) -> Pki {
        let p = |name: &str| dir.join(name);
        let s = |name: &str| p(name).to_str().unwrap().to_owned();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run_ok(
            Command::new("openssl")
                .args(["req", "-x509"])
                .args(ec)
                .args([
                    "-keyout",
                    &s("ca.key"),
                    "-out",
                    &s("ca.pem"),
                    "-days",
                    "2",
                    "-subj",
                    "/CN=clawveil egress test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ]),
        );
        run_ok(Command::new("openssl").arg("req").args(ec).args([
            "-keyout",
            &s("leaf.key"),
            "-out",
            &s("leaf.csr"),
            "-subj",
            "/CN=localhost",
        ]));
        std::fs::write(
            p("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run_ok(Command::new("openssl").args([
            "x509",
            "-req",
            "-in",
            &s("leaf.csr"),
            "-CA",
            &s("ca.pem"),
            "-CAkey",
            &s("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &s("leaf.ext"),
            "-out",
            &s("leaf.pem"),
        ]));
        Pki {
            ca: p("ca.pem"),
            cert: p("leaf.pem"),
            key: p("leaf.key"),
        }
    }
}

/// clawveil with an `[egress]` section, its own directory and ports.
struct Clawveil {
    proxy: ProxyProcess,
    egress: u16,
    metrics: u16,
}

impl Clawveil {
    /// `egress` is the body of `[egress]` without `listen`.
    fn start(dir: &Path, name: &str, egress: &str) -> Clawveil {
        let dir = dir.join(name);
        std::fs::create_dir(&dir).unwrap();
        let cert = TestCert::localhost(&dir);
        let (https, http, metrics, port) = (free_port(), free_port(), free_port(), free_port());
        let upstream = format!("http://127.0.0.1:{}", free_port());
        let config = write_config(
            &dir,
            https,
            http,
            metrics,
            &upstream,
            &cert,
            &Opts::default(),
        );
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[egress]\nlisten = \"127.0.0.1:{port}\"\n{egress}\n"
        ));
        std::fs::write(&config, text).unwrap();
        let proxy = ProxyProcess::start(&bin(), &config, &dir, https);
        assert!(
            wait_port(port, Duration::from_secs(20)),
            "egress listener not up:\n{}",
            proxy.output()
        );
        Clawveil {
            proxy,
            egress: port,
            metrics,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.egress)
    }

    fn metric(&self, series: &str) -> f64 {
        let out = Command::new("curl")
            .args(["-sS", &format!("http://127.0.0.1:{}/metrics", self.metrics)])
            .output()
            .unwrap();
        metric_value(&String::from_utf8_lossy(&out.stdout), series)
    }

    /// The egress listener's access events so far.
    fn events(&self) -> Vec<Value> {
        self.proxy
            .output()
            .lines()
            .filter(|l| l.contains("\"target\":\"access\""))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["listener"] == "egress")
            .collect()
    }

    /// Waits (up to 10 s) for `n` egress access events.
    fn wait_events(&self, n: usize) -> Vec<Value> {
        assert!(
            eventually(10, || self.events().len() >= n),
            "fewer than {n} egress events:\n{}",
            self.proxy.output()
        );
        self.events()
    }

    /// Asserts that none of `needles` appears anywhere in clawveil's output.
    fn assert_silent_about(&self, needles: &[&str]) {
        let out = self.proxy.output();
        for n in needles {
            assert!(!out.contains(n), "{n:?} in clawveil's output:\n{out}");
        }
    }
}

/// A Python helper: JSON lines on stdout, stderr kept in a file, killed when dropped.
struct Helper {
    name: String,
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    stderr: PathBuf,
}

impl Helper {
    fn spawn(dir: &Path, script: &str, args: &[&str], env: &[(&str, &str)]) -> Helper {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let stderr = dir.join(format!("{script}-{n}.stderr"));
        let mut cmd = Command::new("python3");
        cmd.arg(Path::new(PY).join(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1");
        // Nothing from the outer environment decides where the helpers' traffic goes or
        // what they trust: only what a test passes.
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "WS_PROXY",
            "WSS_PROXY",
            "SOCKS_PROXY",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
        ] {
            cmd.env_remove(var).env_remove(var.to_ascii_lowercase());
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "event": "raw", "line": line }));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Helper {
            name: script.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Takes in whatever lines arrived, waiting up to `wait` for more.
    fn pump(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => self.seen.push(v),
                Err(_) => return,
            }
        }
    }

    /// The events named `event` seen so far.
    fn events(&mut self, event: &str) -> Vec<Value> {
        self.pump(Duration::ZERO);
        self.seen
            .iter()
            .filter(|v| v["event"] == event)
            .cloned()
            .collect()
    }

    /// The first event named `event`, waiting up to `secs` seconds for it.
    fn wait_event(&mut self, event: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = self.events(event).into_iter().next() {
                return v;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: no {event:?} event in {secs} s\n{}",
                    self.name,
                    self.report()
                );
            }
            self.pump(Duration::from_millis(100));
        }
    }

    /// The first `n` events named `event`, waiting up to `secs` seconds for them.
    fn wait_count(&mut self, event: &str, n: usize, secs: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found = self.events(event);
            if found.len() >= n {
                return found;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: {} {event:?} events, not {n}\n{}",
                    self.name,
                    found.len(),
                    self.report()
                );
            }
            self.pump(Duration::from_millis(100));
        }
    }

    /// Waits (up to `secs`) for the helper to exit; its events are in `seen`.
    fn finish(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader thread ends at EOF; take in what is left.
                self.pump(Duration::from_millis(500));
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: still running after {secs} s\n{}",
                    self.name,
                    self.report()
                );
            }
            self.pump(Duration::from_millis(100));
        }
    }

    /// Its last event.
    fn last(&self) -> Value {
        self.seen.last().cloned().unwrap_or(Value::Null)
    }

    fn report(&self) -> String {
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("stdout: {:#?}\nstderr:\n{err}", self.seen)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_of(v: &Value, key: &str) -> u16 {
    u16::try_from(v[key].as_u64().expect("a port")).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const WS_TEXT: &str = "canary-ws-text-5be1c0 hello through clawveil";
const WS_QUERY: &str = "access_token=canary-ws-query-77d2e9";
const BINARY: usize = 256 * 1024;

/// Runs the `websockets` client against `wss://localhost:<port>/...` through `proxy`.
fn ws_client(dir: &Path, pki: &Pki, port: u16, proxy: &str) -> (ExitStatus, Value, String) {
    let url = format!("wss://localhost:{port}/stream?{WS_QUERY}");
    let size = BINARY.to_string();
    let args = [
        "--url",
        &url,
        "--proxy",
        proxy,
        "--ca",
        s(&pki.ca),
        "--text",
        WS_TEXT,
        "--binary-size",
        &size,
    ];
    let mut client = Helper::spawn(dir, "ws_client.py", &args, &[]);
    let status = client.finish(60);
    (status, client.last(), client.report())
}

#[test]
fn the_websockets_client_tunnels_to_a_local_wss_server_only_with_the_loopback_exception() {
    if !python_has(&["websockets"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let mut echo = Helper::spawn(
        dir.path(),
        "ws_echo_server.py",
        &["--cert", s(&pki.cert), "--key", s(&pki.key)],
        &[],
    );
    let w = port_of(&echo.wait_event("ready", 20), "port");

    // localhost may also resolve to ::1 elsewhere; every resolved address is checked.
    let allowed = Clawveil::start(
        dir.path(),
        "allowed",
        &format!(
            "allow = [\"localhost\"]\nallow_cidrs = [\"127.0.0.0/8\", \"::1/128\"]\nports = [{w}]"
        ),
    );
    let (status, result, report) = ws_client(dir.path(), &pki, w, &allowed.url());
    assert!(
        status.success(),
        "client failed: {report}\nclawveil:\n{}",
        allowed.proxy.output()
    );
    assert_eq!(result["ok"], true, "{report}");
    assert_eq!(result["text_ok"], true, "{report}");
    assert_eq!(result["binary_ok"], true, "{report}");
    assert_eq!(result["binary_len"], BINARY, "{report}");

    // The echo server saw one connection, the path the client asked for, both messages
    // (each event is printed before the next step, so waiting for the last suffices).
    let echoed: Vec<(Value, Value)> = echo
        .wait_count("echo", 2, 5)
        .into_iter()
        .map(|e| (e["kind"].clone(), e["len"].clone()))
        .collect();
    assert_eq!(
        echoed,
        [
            ("text".into(), WS_TEXT.len().into()),
            ("binary".into(), BINARY.into())
        ]
    );
    assert_eq!(echo.events("accept").len(), 1, "{}", echo.report());
    let open = echo.events("open");
    assert_eq!(open.len(), 1, "{}", echo.report());
    assert_eq!(open[0]["path"], format!("/stream?{WS_QUERY}"));

    // One tunnel, one access event: destination, decision, bytes each way.
    let events = allowed.wait_events(1);
    assert_eq!(events.len(), 1, "{events:#?}");
    let ev = &events[0];
    assert_eq!(ev["route"], "forward", "{ev}");
    assert_eq!(ev["method"], "CONNECT", "{ev}");
    assert_eq!(ev["host"], "localhost", "{ev}");
    assert_eq!(ev["port"], w, "{ev}");
    assert_eq!(ev["resolved"], "127.0.0.1", "{ev}");
    assert_eq!(ev["decision"], "allowed", "{ev}");
    assert_eq!(ev["status"], 200, "{ev}");
    assert_eq!(ev["detail"], "allowed", "{ev}");
    assert!(ev.get("reason").is_none(), "{ev}");
    // TLS and WebSocket framing on top of 256 KiB each way, and not much more.
    let bytes = |k: &str| ev[k].as_u64().unwrap_or_else(|| panic!("{k} in {ev}"));
    let (up, down) = (bytes("bytes_in"), bytes("bytes_out"));
    let range = BINARY as u64..BINARY as u64 + 64 * 1024;
    assert!(range.contains(&up) && range.contains(&down), "{ev}");
    assert!(
        ["client_closed", "upstream_closed"].contains(&ev["close_reason"].as_str().unwrap()),
        "{ev}"
    );
    assert_eq!(allowed.metric(ALLOWED), 1.0);
    assert_eq!(allowed.metric(EGRESS_DENIED), 0.0);
    allowed.assert_silent_about(&[WS_TEXT, "canary-ws", "/stream", "access_token"]);

    // The same without the allow_cidrs exception: loopback is refused, nothing connects.
    let denied = Clawveil::start(
        dir.path(),
        "denied",
        &format!("allow = [\"localhost\"]\nports = [{w}]"),
    );
    assert_eq!(denied.metric(EGRESS_DENIED), 0.0);
    let (status, result, report) = ws_client(dir.path(), &pki, w, &denied.url());
    assert!(!status.success(), "{report}");
    assert_eq!(result["error"], "InvalidProxyStatus", "{report}");
    assert_eq!(result["status"], 403, "{report}");
    assert_eq!(denied.metric(EGRESS_DENIED), 1.0);
    assert_eq!(denied.metric(DENIED), 1.0);
    assert_eq!(denied.metric(ALLOWED), 0.0);
    let events = denied.wait_events(1);
    assert_eq!(events.len(), 1, "{events:#?}");
    let ev = &events[0];
    assert_eq!(ev["host"], "localhost", "{ev}");
    assert_eq!(ev["port"], w, "{ev}");
    assert_eq!(ev["decision"], "denied", "{ev}");
    assert_eq!(ev["status"], 403, "{ev}");
    assert_eq!(ev["reason"], "egress_denied", "{ev}");
    assert_eq!(ev["detail"], "address_blocked", "{ev}");
    // The first refused address: 127.0.0.1, or ::1 where localhost has both.
    assert!(
        ["127.0.0.1", "::1"].contains(&ev["resolved"].as_str().unwrap()),
        "{ev}"
    );
    assert_eq!(ev["blocked"], "loopback", "{ev}");
    assert!(ev.get("bytes_in").is_none(), "{ev}");
    echo.pump(Duration::from_millis(500));
    assert_eq!(echo.events("accept").len(), 1, "{}", echo.report());
    denied.assert_silent_about(&[WS_TEXT, "canary-ws", "/stream", "access_token"]);
}

const DT_CLIENT_ID: &str = "dingcanaryclientid0001";
const DT_SECRET: &str = "canary-client-secret-6a0f3d9e2b7c";
const DT_TEXT: &str = "canary-stream-text-41c9 what the user wrote";

/// The SDK, configured as a bot behind clawveil would be: the proxy and the CA from the
/// environment, no `NO_PROXY`.
fn dingtalk_bot(dir: &Path, pki: &Pki, gateway: u16, proxy: &str, expect: &str) -> Helper {
    let gw = format!("https://localhost:{gateway}");
    let args = [
        "--gateway",
        &gw,
        "--client-id",
        DT_CLIENT_ID,
        "--client-secret",
        DT_SECRET,
        "--expect",
        expect,
    ];
    let env = [
        ("HTTPS_PROXY", proxy),
        ("REQUESTS_CA_BUNDLE", s(&pki.ca)),
        ("SSL_CERT_FILE", s(&pki.ca)),
    ];
    Helper::spawn(dir, "dingtalk_bot.py", &args, &env)
}

#[test]
fn the_dingtalk_stream_sdk_opens_its_connection_and_stream_through_the_egress_listener() {
    if !python_has(&["websockets", "requests", "dingtalk_stream"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let mut gateway = Helper::spawn(
        dir.path(),
        "dingtalk_gateway.py",
        &[
            "--cert",
            s(&pki.cert),
            "--key",
            s(&pki.key),
            "--client-id",
            DT_CLIENT_ID,
            "--client-secret",
            DT_SECRET,
            "--text",
            DT_TEXT,
        ],
        &[],
    );
    let ready = gateway.wait_event("ready", 20);
    let (https, wss) = (port_of(&ready, "https_port"), port_of(&ready, "wss_port"));
    let section = |allow: &str| {
        format!(
            "allow = [{allow}]\nallow_cidrs = [\"127.0.0.0/8\", \"::1/128\"]\nports = [{https}, {wss}]"
        )
    };

    let allowed = Clawveil::start(dir.path(), "allowed", &section("\"localhost\""));
    let mut bot = dingtalk_bot(dir.path(), &pki, https, &allowed.url(), "acked");
    let status = bot.finish(60);
    assert!(
        status.success(),
        "SDK: {}\ngateway: {}\nclawveil:\n{}",
        bot.report(),
        gateway.report(),
        allowed.proxy.output()
    );
    // The gateway saw the open call with the app's credentials and subscription, then the
    // stream with the ticket it handed out, and the SDK's ACK of its frame.
    let open = gateway.wait_event("open", 5);
    assert_eq!(open["credentials_ok"], true, "{open}");
    assert_eq!(
        open["subscriptions"],
        serde_json::json!([{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}])
    );
    assert!(
        open["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("DingTalkStream/1.0 SDK/"),
        "{open}"
    );
    assert_eq!(gateway.wait_event("ws_connect", 5)["ticket_ok"], true);
    let sent = gateway.wait_event("frame_sent", 5);
    let ack = gateway.wait_event("ack", 5)["ack"].clone();
    assert_eq!(ack["code"], 200, "{ack}");
    assert_eq!(ack["headers"]["messageId"], sent["message_id"], "{ack}");
    assert_eq!(
        serde_json::from_str::<Value>(ack["data"].as_str().unwrap()).unwrap(),
        serde_json::json!({"response": "OK"}),
        "{ack}"
    );
    // The SDK's handler got the robot message.
    let msg = bot.wait_event("message", 0);
    assert_eq!(msg["topic"], "/v1.0/im/bot/messages/get");
    assert_eq!(msg["frame_message_id"], sent["message_id"]);
    assert_eq!(msg["msgtype"], "text");
    assert_eq!(msg["text"], DT_TEXT);
    assert_eq!(bot.events("open_failed").len(), 0, "{}", bot.report());

    // Both went through clawveil: the POST's tunnel and the stream's.
    assert!(
        eventually(10, || allowed.events().len() >= 2),
        "not two tunnels\nSDK: {}\nclawveil:\n{}",
        bot.report(),
        allowed.proxy.output()
    );
    let events = allowed.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    let mut ports: Vec<u64> = events.iter().map(|e| e["port"].as_u64().unwrap()).collect();
    ports.sort_unstable();
    let mut want = vec![u64::from(https), u64::from(wss)];
    want.sort_unstable();
    assert_eq!(ports, want, "{events:#?}");
    for ev in &events {
        assert_eq!(ev["method"], "CONNECT", "{ev}");
        assert_eq!(ev["host"], "localhost", "{ev}");
        assert_eq!(ev["decision"], "allowed", "{ev}");
        assert_eq!(ev["status"], 200, "{ev}");
        assert!(ev["bytes_in"].as_u64().unwrap() > 0, "{ev}");
        assert!(ev["bytes_out"].as_u64().unwrap() > 0, "{ev}");
    }
    assert_eq!(allowed.metric(ALLOWED), 2.0);
    assert_eq!(allowed.metric(EGRESS_DENIED), 0.0);
    allowed.assert_silent_about(&[DT_TEXT, DT_SECRET, "canary-stream", "ticket-"]);

    // With localhost off the allow-list the SDK cannot open its connection.
    let denied = Clawveil::start(dir.path(), "denied", &section("\"api.dingtalk.com\""));
    let mut bot = dingtalk_bot(dir.path(), &pki, https, &denied.url(), "refused");
    let status = bot.finish(60);
    assert!(status.success(), "SDK: {}", bot.report());
    let failed = bot.wait_event("open_failed", 0);
    assert!(
        failed["error"].as_str().unwrap().contains("403"),
        "{failed}"
    );
    assert_eq!(bot.events("message").len(), 0, "{}", bot.report());
    assert_eq!(denied.metric(EGRESS_DENIED), 1.0);
    assert_eq!(denied.metric(ALLOWED), 0.0);
    let events = denied.wait_events(1);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["port"], https, "{events:#?}");
    assert_eq!(events[0]["decision"], "denied");
    assert_eq!(events[0]["detail"], "host_not_allowed");
    gateway.pump(Duration::from_millis(500));
    assert_eq!(gateway.events("open").len(), 1, "{}", gateway.report());
    assert_eq!(gateway.events("ws_accept").len(), 1, "{}", gateway.report());
    denied.assert_silent_about(&[DT_TEXT, DT_SECRET, "canary-stream", "ticket-"]);
}
