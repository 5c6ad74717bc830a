//! WebSocket tunnels are not cut by the connection idle timeout (they have
//! `tunnel_idle_timeout`): neither an HTTP/1.1 upgrade nor an HTTP/2 extended CONNECT
//! stream, silent for longer than `idle_timeout`.

use std::io::Write;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::rawconn::{h2, CLIENT_IDLE};
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

#[test]
fn an_http2_websocket_stream_outlives_the_idle_timeout() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, FAST, "");
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
        (":path", "/ws/quiet-h2"),
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

    std::thread::sleep(Duration::from_secs(3));
    // A masked text frame (mask 0) "hi" in a DATA frame; the echo comes back unmasked.
    s.write_all(&h2::frame(
        h2::DATA,
        0,
        1,
        &[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'],
    ))
    .unwrap();
    s.flush().unwrap();
    let echo = std::iter::from_fn(|| h2::read(&mut s))
        .find(|f| f.stream == 1 && f.kind == h2::DATA && !f.payload.is_empty())
        .expect("the tunnel is still open");
    assert_eq!(echo.payload, [0x81, 0x02, b'h', b'i']);
    assert_eq!(p.metric(CLIENT_IDLE), 0.0);
}
