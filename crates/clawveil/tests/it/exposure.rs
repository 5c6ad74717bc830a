//! Bypass detection: a bot listening beyond loopback (where it is reachable without
//! clawveil) is found on the upstream's port — or, with `[egress]`, on another socket of
//! its process — and reported once in the log, in `clawveil_upstream_exposed`, and with
//! `upstream.require_loopback` by `/readyz` answering 503 with what to rebind. Real
//! listeners, a short `upstream.exposure_check`.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use clawveil_testkit::free_port;

use crate::common::{bin, eventually, stdout, Harness, Opts};
use crate::setup::start;

const EXPOSED: &str = "clawveil_upstream_exposed ";
const EVERY_200MS: &str = "exposure_check = \"200ms\"";

/// `/readyz`: (status, body).
fn readyz(h: &Harness) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/readyz", h.metrics))
        .output()
        .unwrap();
    let out = stdout(&out);
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.parse().unwrap_or(0), body.trim_end().to_owned())
}

/// The log lines at `level` (`ERROR`, `WARN`, `INFO`) that mention `text`.
fn lines(h: &Harness, level: &str, text: &str) -> usize {
    h.proxy
        .output()
        .lines()
        .filter(|l| l.contains(&format!("\"level\":\"{level}\"")) && l.contains(text))
        .count()
}

fn reason(addr: &str) -> String {
    format!("the bot listens on {addr}, reachable without clawveil; bind it to 127.0.0.1")
}

fn proxy_in_front_of(port: u16, upstream_keys: &'static str) -> Harness {
    let url = format!("http://127.0.0.1:{port}");
    start(
        &Opts {
            upstream: upstream_keys,
            ..Opts::default()
        },
        Some(&url),
        &[],
        |_, text| text,
    )
}

#[test]
fn a_bot_on_all_addresses_is_unready_until_it_rebinds_to_loopback() {
    let wide = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = wide.local_addr().unwrap().port();
    let exposed = format!("0.0.0.0:{port}");
    let h = proxy_in_front_of(port, EVERY_200MS);

    // The first check runs before the first accept.
    assert_eq!(h.metric(EXPOSED), 1.0, "{}", h.metrics_text());
    let (status, body) = readyz(&h);
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["reason"], reason(&exposed));

    // Said once, however many checks find the same thing.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(lines(&h, "ERROR", &exposed), 1, "{}", h.proxy.output());
    assert!(
        h.proxy.output().contains(&reason(&exposed)),
        "{}",
        h.proxy.output()
    );

    // The bot moves to loopback: ready again within a few checks.
    drop(wide);
    let _narrow = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let moved = Instant::now();
    assert!(eventually(5, || readyz(&h).0 == 200), "{:?}", readyz(&h));
    assert!(
        moved.elapsed() < Duration::from_secs(2),
        "{:?}",
        moved.elapsed()
    );
    assert_eq!(h.metric(EXPOSED), 0.0);
    assert_eq!(readyz(&h).1, "{\"ready\":true}");
    assert_eq!(
        lines(&h, "INFO", "the bot no longer listens beyond loopback"),
        1,
        "{}",
        h.proxy.output()
    );
    assert_eq!(lines(&h, "ERROR", &exposed), 1);
}

#[test]
fn a_bot_on_loopback_is_ready_and_not_exposed() {
    let h = Harness::with(Opts {
        upstream: EVERY_200MS,
        ..Opts::default()
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(readyz(&h), (200, "{\"ready\":true}".to_owned()));
    let text = h.metrics_text();
    assert!(
        text.lines().any(|l| l == "clawveil_upstream_exposed 0"),
        "{text}"
    );
    assert!(
        !h.proxy.output().contains("reachable without clawveil"),
        "{}",
        h.proxy.output()
    );
}

/// `require_loopback = false`: the gauge and a warning still say it; `/readyz` does not.
#[test]
fn require_loopback_false_reports_the_exposure_but_stays_ready() {
    let wide = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = wide.local_addr().unwrap().port();
    let exposed = format!("0.0.0.0:{port}");
    let h = proxy_in_front_of(port, "exposure_check = \"200ms\"\nrequire_loopback = false");
    assert_eq!(h.metric(EXPOSED), 1.0);
    assert_eq!(readyz(&h).0, 200);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(lines(&h, "WARN", &exposed), 1, "{}", h.proxy.output());
    assert_eq!(lines(&h, "ERROR", &exposed), 0, "{}", h.proxy.output());
    drop(wide);
}

/// A bot as its own process: its upstream port on loopback, another port on all
/// addresses. Without `[egress]` only the upstream's port is looked at; with it, every
/// listening socket of the process that owns that port.
#[test]
fn with_egress_the_bots_other_listening_sockets_count_too() {
    let (port, other) = (free_port(), free_port());
    let script = format!(
        "import socket, time\n\
         a = socket.socket(); a.bind(('127.0.0.1', {port})); a.listen(8)\n\
         b = socket.socket(); b.bind(('0.0.0.0', {other})); b.listen(8)\n\
         print('up', flush=True)\n\
         time.sleep(120)\n"
    );
    let mut bot = Bot(Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is installed"));
    let mut up = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(bot.0.stdout.as_mut().unwrap()),
        &mut up,
    )
    .unwrap();
    assert_eq!(up.trim(), "up");
    let exposed = format!("0.0.0.0:{other}");

    let alone = proxy_in_front_of(port, EVERY_200MS);
    assert_eq!(readyz(&alone).0, 200);
    assert_eq!(alone.metric(EXPOSED), 0.0);

    let egress = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let h = start(
        &Opts {
            upstream: EVERY_200MS,
            ..Opts::default()
        },
        Some(&url),
        &[],
        |_, text| format!("{text}\n[egress]\nlisten = \"127.0.0.1:{egress}\"\n"),
    );
    let (status, body) = readyz(&h);
    assert_eq!(status, 503, "{body}\n{}", h.proxy.output());
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["reason"], reason(&exposed));
    assert_eq!(h.metric(EXPOSED), 1.0);
    assert_eq!(lines(&h, "ERROR", &exposed), 1, "{}", h.proxy.output());
}

/// The bot's process, killed (by its PID) when the test ends.
struct Bot(std::process::Child);

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn check_refuses_a_loopback_requirement_that_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let check = |upstream: &str| {
        let path = dir.path().join("proxy.toml");
        std::fs::write(
            &path,
            format!("[listen]\nhttps = \"127.0.0.1:8443\"\n[upstream]\n{upstream}\n"),
        )
        .unwrap();
        let out = Command::new(bin())
            .args(["check", "--config", path.to_str().unwrap()])
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            stdout(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (upstream, expected) in [
        (
            "url = \"http://10.0.0.5:8080\"\nrequire_loopback = true",
            "proxy.toml:5:1: upstream.require_loopback: upstream.url \"http://10.0.0.5:8080\" is not on a loopback address",
        ),
        (
            "exposure_check = \"0s\"\nrequire_loopback = true",
            "proxy.toml:5:1: upstream.require_loopback: require_loopback = true needs the exposure check",
        ),
        (
            "exposure_check = \"50ms\"",
            "proxy.toml:4:1: upstream.exposure_check: \"50ms\" is out of range; expected 100ms to 1h",
        ),
    ] {
        let (code, _, err) = check(upstream);
        assert_eq!(code, Some(2), "{upstream}: {err}");
        assert!(err.contains(expected), "{upstream}: {err}");
    }
    // The effective configuration says what was decided.
    for (upstream, effective) in [
        ("", "exposure_check = \"30s\"\nrequire_loopback = true\n"),
        (
            "exposure_check = \"0s\"",
            "exposure_check = \"0s\"\nrequire_loopback = false\n",
        ),
        (
            "url = \"http://10.0.0.5:8080\"",
            "exposure_check = \"30s\"\nrequire_loopback = false\n",
        ),
    ] {
        let (code, out, err) = check(upstream);
        assert_eq!(code, Some(0), "{upstream}: {err}");
        assert!(out.contains(effective), "{upstream}: {out}");
    }
}
