//! Idle connections are cut: no request head in time (on every listener, whatever the
//! ALPN), an HTTP/2 connection without a stream, keep-alive silence, a client that stops
//! reading its response; each cut written as one access event. And what is not idle is
//! not cut: a slow but steady reader, a request waiting for a slow upstream.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::{eventually, stdout, Harness, Opts};
use crate::rawconn::{
    access_events, big_upstream, h2, harness_for, tcp, tls, wait_closed, Tls, CLIENT_IDLE,
};

/// Far enough apart that a cut at the wrong one of the two shows.
const FAST: &str = "header_read_timeout = \"1s\"\nidle_timeout = \"3s\"";

fn fast() -> Harness {
    Harness::with(Opts {
        limits: FAST,
        ..Opts::default()
    })
}

/// Closed by the server between `min` and `max` after `since`.
fn assert_cut(what: &str, s: &mut impl Read, since: Instant, min: Duration, max: Duration) {
    match wait_closed(s, since, max + Duration::from_secs(3)) {
        Some(t) => assert!(
            t >= min && t <= max,
            "{what}: closed after {t:?}, expected between {min:?} and {max:?}"
        ),
        None => panic!(
            "{what}: still open after {:?}",
            max + Duration::from_secs(3)
        ),
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn silent_clients_are_cut_at_the_header_read_timeout_on_every_listener() {
    let h = fast();
    let alpns: [(&str, &[&[u8]]); 3] = [
        ("ALPN http/1.1", &[b"http/1.1"]),
        ("ALPN h2", &[b"h2"]),
        ("no ALPN", &[]),
    ];
    let mut cut = 0.0;
    for (what, alpn) in alpns {
        let mut s = tls(&h, alpn);
        assert_cut(what, &mut s, Instant::now(), secs(0.8), secs(2.2));
        cut += 1.0;
    }
    // The plain-HTTP and the metrics listeners, silent or with half a request line.
    for (what, port, send) in [
        ("http listener, silent", h.http, &b""[..]),
        ("http listener, partial head", h.http, b"GET /ind"),
        ("metrics listener, silent", h.metrics, b""),
        ("metrics listener, partial head", h.metrics, b"GET /metr"),
    ] {
        let mut s = tcp(port);
        let since = Instant::now();
        s.write_all(send).unwrap();
        assert_cut(what, &mut s, since, secs(0.8), secs(2.2));
        cut += 1.0;
    }
    assert!(
        eventually(5, || h.metric(CLIENT_IDLE) == cut),
        "client_idle counts each cut connection once: {}",
        h.metric(CLIENT_IDLE)
    );
    assert_eq!(stdout(&h.curl(&[&h.url("/after")])), "ok");
}

#[test]
fn a_head_sent_byte_by_byte_is_still_cut_at_the_header_read_timeout() {
    let h = fast();
    let mut s = tls(&h, &[b"http/1.1"]);
    let since = Instant::now();
    let head = b"GET /drip HTTP/1.1\r\nHost: localhost\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in head {
        if s.write_all(&[*b]).and_then(|()| s.flush()).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if since.elapsed() > secs(1.5) {
            break;
        }
    }
    assert_cut("byte by byte", &mut s, since, secs(0.8), secs(2.2));
    assert!(h.upstream.requests_to("/drip").is_empty());
}

#[test]
fn silent_clients_cannot_lock_real_clients_out() {
    let h = Harness::with(Opts {
        limits: "max_connections = 8\nheader_read_timeout = \"1s\"\nidle_timeout = \"3s\"",
        ..Opts::default()
    });
    let silent: Vec<Tls> = (0..8).map(|_| tls(&h, &[b"http/1.1"])).collect();
    let since = Instant::now();
    assert_eq!(
        stdout(&h.curl(&["--max-time", "10", &h.url("/real")])),
        "ok"
    );
    assert!(since.elapsed() < secs(5.0), "{:?}", since.elapsed());
    drop(silent);
}

#[test]
fn http2_without_a_stream_is_cut_at_the_idle_timeout() {
    let h = fast();
    let mut s = tls(&h, &[b"h2"]);
    let since = Instant::now();
    s.write_all(h2::PREFACE).unwrap();
    s.write_all(&h2::frame(h2::SETTINGS, 0, 0, &[])).unwrap();
    s.flush().unwrap();
    // The preface came in time: the idle timeout applies, not the header read timeout.
    assert_cut("h2, preface only", &mut s, since, secs(2.7), secs(4.5));

    // After a request, the connection is cut once it has had no stream for idle_timeout.
    let mut s = tls(&h, &[b"h2"]);
    s.write_all(h2::PREFACE).unwrap();
    s.write_all(&h2::frame(h2::SETTINGS, 0, 0, &[])).unwrap();
    s.write_all(&h2::get(1, "/h2", &[])).unwrap();
    s.flush().unwrap();
    let frames = h2::until_stream_ends(&mut s, 1);
    assert!(frames
        .iter()
        .any(|f| f.kind == h2::HEADERS && f.stream == 1));
    assert_cut(
        "h2, after a stream",
        &mut s,
        Instant::now(),
        secs(2.7),
        secs(4.5),
    );
    assert!(eventually(5, || h.metric(CLIENT_IDLE) == 2.0));
}

#[test]
fn keep_alive_connections_are_cut_after_the_idle_timeout_not_the_header_timeout() {
    let h = fast();
    let mut s = tls(&h, &[b"http/1.1"]);
    s.write_all(b"GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    s.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"ok") {
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before the answer"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let since = Instant::now();
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert_cut("keep-alive", &mut s, since, secs(2.7), secs(4.5));
    assert!(eventually(5, || h.metric(CLIENT_IDLE) == 1.0));

    // A second request that comes later than the header read timeout (but before the
    // idle timeout) is served on the same connection; the next head, once started,
    // has the header read timeout (and not what is left of the idle timeout).
    let mut s = tls(&h, &[b"http/1.1"]);
    for (path, pause) in [("/two", 1.5), ("/three", 0.2)] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        s.flush().unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"ok") {
            match s.read(&mut buf) {
                Ok(0) => panic!("closed before the answer to {path}"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        std::thread::sleep(secs(pause));
    }
    s.write_all(b"GET /four HTTP/1.1\r\n").unwrap();
    s.flush().unwrap();
    assert_cut(
        "half a second head",
        &mut s,
        Instant::now(),
        secs(0.8),
        secs(2.2),
    );
    assert_eq!(h.upstream.requests_to("/t").len(), 2);
}

/// Sends a GET for the big body and reads the head and a little of it.
fn start_download(h: &Harness) -> Tls {
    let mut s = tls(h, &[b"http/1.1"]);
    s.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    s.flush().unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < 4096 {
        match s.read(&mut buf) {
            Ok(0) => panic!("closed"),
            Ok(n) => got += n,
            Err(_) => {}
        }
    }
    s
}

const BIG: usize = 256 << 20;

#[test]
fn a_client_that_stops_reading_is_cut_after_the_idle_timeout() {
    let h = harness_for(
        &big_upstream(BIG),
        &Opts {
            limits: FAST,
            ..Opts::default()
        },
    );
    let mut s = start_download(&h);
    // Stop reading: the proxy's writes stall, and it gives up after idle_timeout.
    std::thread::sleep(secs(6.0));
    assert!(
        eventually(3, || h.metric(CLIENT_IDLE) == 1.0),
        "client_idle: {}",
        h.metric(CLIENT_IDLE)
    );
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let since = Instant::now();
    while since.elapsed() < secs(20.0) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    assert!(total < BIG / 2, "the body was cut: {total} of {BIG} bytes");
}

/// HTTP/2: a client that grants no flow-control window reads nothing, though the
/// socket never blocks.
#[test]
fn an_http2_client_that_grants_no_window_is_cut_after_the_idle_timeout() {
    let h = harness_for(
        &big_upstream(BIG),
        &Opts {
            limits: FAST,
            ..Opts::default()
        },
    );
    let mut s = tls(&h, &[b"h2"]);
    s.write_all(h2::PREFACE).unwrap();
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream may send DATA until we say so.
    s.write_all(&h2::frame(h2::SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]))
        .unwrap();
    s.write_all(&h2::get(1, "/big", &[])).unwrap();
    s.flush().unwrap();
    let head = std::iter::from_fn(|| h2::read(&mut s))
        .find(|f| f.stream == 1 && f.kind == h2::HEADERS)
        .expect("a response head");
    assert_eq!(head.payload[0], 0x88, ":status 200");
    assert_cut("no window", &mut s, Instant::now(), secs(2.7), secs(4.5));
    assert!(eventually(5, || h.metric(CLIENT_IDLE) == 1.0));
}

#[test]
fn slow_but_steady_readers_are_not_idle() {
    let h = harness_for(
        &big_upstream(BIG / 8),
        &Opts {
            limits: FAST,
            ..Opts::default()
        },
    );
    let mut s = start_download(&h);
    s.sock.set_read_timeout(Some(secs(5.0))).unwrap();
    // 512 KiB every 250 ms for 6 s: far slower than the proxy could send, never idle.
    let mut buf = vec![0u8; 64 * 1024];
    let since = Instant::now();
    let mut total = 4096;
    while since.elapsed() < secs(6.0) {
        let mut chunk = 0;
        while chunk < 512 * 1024 {
            let n = s.read(&mut buf).expect("still open");
            assert!(n > 0, "cut after {total} bytes");
            chunk += n;
        }
        total += chunk;
        std::thread::sleep(Duration::from_millis(250));
    }
    while total < BIG / 8 {
        let n = s.read(&mut buf).expect("still open");
        assert!(n > 0, "cut after {total} bytes");
        total += n;
    }
    assert_eq!(h.metric(CLIENT_IDLE), 0.0);
}

/// Nothing in flight is what idle means: an upstream slower than idle_timeout (but
/// within response_timeout, 2 s in the harness) is waited for.
#[test]
fn requests_waiting_for_a_slow_upstream_are_not_idle() {
    let h = Harness::with(Opts {
        limits: "header_read_timeout = \"1s\"\nidle_timeout = \"1s\"",
        ..Opts::default()
    });
    assert_eq!(
        stdout(&h.curl(&["--http1.1", &h.url("/slow?s=1.6")])),
        "slow"
    );
    assert_eq!(stdout(&h.curl(&["--http2", &h.url("/slow?s=1.6")])), "slow");
    assert_eq!(h.metric(CLIENT_IDLE), 0.0);
}

/// Every cut is counted and written as one access event, like the parser's refusals:
/// unrouted, method `-`, status 0 (nothing was answered: the socket was closed),
/// `reason: "client_idle"`, the client as every event shows it (hashed here). The
/// metrics listener writes no access events.
#[test]
fn each_idle_cut_writes_one_access_event() {
    let h = Harness::with(Opts {
        limits: FAST,
        extra: "level = \"debug\"\nhash_key = \"0123456789abcdef0123456789abcdef\"",
        ..Opts::default()
    });
    assert_eq!(stdout(&h.curl(&[&h.url("/who")])), "ok");
    let who = || access_events(&h).into_iter().find(|e| e["path"] == "/who");
    assert!(eventually(5, || who().is_some()), "the request's event");
    let client = who().unwrap()["client"].clone();
    assert!(
        client.as_str().is_some_and(|c| c.starts_with("[client:")),
        "{client}"
    );

    let silent = tls(&h, &[b"http/1.1"]);
    let mut streamless = tls(&h, &[b"h2"]);
    streamless.write_all(h2::PREFACE).unwrap();
    streamless
        .write_all(&h2::frame(h2::SETTINGS, 0, 0, &[]))
        .unwrap();
    streamless.flush().unwrap();
    let mut kept = tls(&h, &[b"http/1.1"]);
    kept.write_all(b"GET /kept HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    kept.flush().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"ok") {
        match kept.read(&mut buf) {
            Ok(0) => panic!("closed before the answer"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let mut plain = tcp(h.http);
    plain.write_all(b"GET /ind").unwrap();
    let metrics = tcp(h.metrics);
    let since = Instant::now();
    let conns: Vec<(&str, Box<dyn Read>)> = vec![
        ("https, silent", Box::new(silent)),
        ("https, h2 without a stream", Box::new(streamless)),
        ("https, keep-alive", Box::new(kept)),
        ("http, partial head", Box::new(plain)),
        ("metrics, silent", Box::new(metrics)),
    ];
    for (what, mut s) in conns {
        assert!(
            wait_closed(&mut s, since, secs(8.0)).is_some(),
            "{what}: not cut"
        );
    }
    assert!(eventually(5, || h.metric(CLIENT_IDLE) == 5.0));
    let cuts = || {
        access_events(&h)
            .into_iter()
            .filter(|e| e["reason"] == "client_idle")
            .collect::<Vec<_>>()
    };
    assert!(eventually(5, || cuts().len() == 4), "{:#?}", cuts());
    for e in cuts() {
        assert_eq!(e["route"], "unrouted", "{e}");
        assert_eq!(e["method"], "-", "{e}");
        assert_eq!(e["status"], 0, "{e}");
        assert_eq!(e["error"], "client_timeout", "{e}");
        assert_eq!(e["client"], client, "{e}");
        assert_eq!(e["trace_id"].as_str().map(str::len), Some(32), "{e}");
    }
    let mut seen: Vec<(String, String)> = cuts()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            (s("listener"), s("http_version"))
        })
        .collect();
    seen.sort();
    let want = [
        ("http", "http/1.1"),
        ("https", ""),
        ("https", "h2"),
        ("https", "http/1.1"),
    ];
    assert_eq!(
        seen,
        want.map(|(l, v)| (l.to_owned(), v.to_owned())),
        "{:#?}",
        cuts()
    );
    // Idle cuts are not requests.
    assert_eq!(
        h.metric("clawveil_requests_total{listener=\"https\",method=\"OTHER\",route=\"unrouted\",status_class=\"4xx\"}"),
        0.0
    );
}
