//! WebSocket tunnels are not cut by the connection idle timeout (they have
//! `tunnel_idle_timeout`): neither an HTTP/1.1 upgrade nor an HTTP/2 extended CONNECT
//! stream, silent for longer than `idle_timeout`. Once an HTTP/2 tunnel has closed,
//! its connection is idle again like any other.

use std::io::Write;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::common::eventually;
use crate::rawconn::{h2, wait_closed, Tls, CLIENT_IDLE};
use crate::websocket::{runtime, Upstream, WsProxy, WsUpstream};

const FAST: &str = "header_read_timeout = \"1s\"\nidle_timeout = \"1s\"";

#[test]
fn an_http1_websocket_outlives_the_idle_timeout() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, FAST, "");
    runtime().block_on(async {
        let mut ws = p.ws("/ws/quiet", &[]).await.expect("upgrade");
        tokio::time::sleep(Duration::from_secs(3)).await;
        ws.send(Message::text("still here")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an echo")
            .expect("open")
            .expect("no error");
        assert_eq!(got, Message::text("still here"));
    });
    assert_eq!(p.metric(CLIENT_IDLE), 0.0);
}

/// An HTTP/2 connection with an extended CONNECT to `path`, answered 200.
fn h2_websocket(p: &WsProxy, path: &str) -> Tls {
    let h = crate::rawconn::TlsTarget {
        cert: &p.cert.cert,
        port: p.https,
    };
    let mut s = h.connect(&[b"h2"]);
    s.write_all(h2::PREFACE).unwrap();
    s.write_all(&h2::frame(h2::SETTINGS, 0, 0, &[])).unwrap();
    let connect = h2::block(&[
        (":method", "CONNECT"),
        (":protocol", "websocket"),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", path),
        ("sec-websocket-version", "13"),
    ]);
    s.write_all(&h2::frame(h2::HEADERS, h2::END_HEADERS, 1, &connect))
        .unwrap();
    s.flush().unwrap();
    let head = std::iter::from_fn(|| h2::read(&mut s))
        .find(|f| f.stream == 1 && (f.kind == h2::HEADERS || f.kind == h2::RST_STREAM))
        .expect("an answer");
    assert_eq!(
        (head.kind, head.payload[0]),
        (h2::HEADERS, 0x88),
        ":status 200"
    );
    s
}

/// Sends "hi" on the tunnel (a masked text frame, mask 0) and reads the echo.
fn echo(s: &mut Tls) {
    s.write_all(&h2::frame(
        h2::DATA,
        0,
        1,
        &[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'],
    ))
    .unwrap();
    s.flush().unwrap();
    let echo = std::iter::from_fn(|| h2::read(s))
        .find(|f| f.stream == 1 && f.kind == h2::DATA && !f.payload.is_empty())
        .expect("the tunnel is still open");
    assert_eq!(echo.payload, [0x81, 0x02, b'h', b'i']);
}

#[test]
fn an_http2_websocket_stream_outlives_the_idle_timeout() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, FAST, "");
    let mut s = h2_websocket(&p, "/ws/quiet-h2");
    std::thread::sleep(Duration::from_secs(3));
    echo(&mut s);
    assert_eq!(p.metric(CLIENT_IDLE), 0.0);
}

/// The exemption ends with the tunnel: an HTTP/2 connection whose WebSocket stream
/// closed is cut `idle_timeout` later (it used to stay exempt for ever), and the cut
/// is written as an access event.
#[test]
fn an_http2_connection_whose_websocket_closed_is_cut_when_idle() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, FAST, "");
    let mut s = h2_websocket(&p, "/ws/then-idle");
    std::thread::sleep(Duration::from_secs(2));
    echo(&mut s);
    // The client cancels the stream: the tunnel closes.
    s.write_all(&h2::frame(h2::RST_STREAM, 0, 1, &8u32.to_be_bytes()))
        .unwrap();
    s.flush().unwrap();
    let since = Instant::now();
    let cut = wait_closed(&mut s, since, Duration::from_secs(6)).expect("cut once idle");
    assert!(
        cut >= Duration::from_millis(700) && cut <= Duration::from_millis(3500),
        "cut {cut:?} after the tunnel closed (idle_timeout is 1 s)"
    );
    assert!(eventually(5, || p.metric(CLIENT_IDLE) == 1.0));
    let cuts = || {
        p.events()
            .into_iter()
            .filter(|e| e["reason"] == "client_idle")
            .collect::<Vec<_>>()
    };
    assert!(eventually(5, || cuts().len() == 1), "{:#?}", cuts());
    let cuts = cuts();
    assert_eq!(cuts[0]["http_version"], "h2", "{}", cuts[0]);
    assert_eq!(cuts[0]["status"], 0, "{}", cuts[0]);
}
