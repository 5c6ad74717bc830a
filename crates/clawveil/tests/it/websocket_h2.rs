//! WebSocket over HTTP/2 (RFC 8441): an extended CONNECT from the `h2` crate's client,
//! then a tokio-tungstenite client over the stream. The proxy asks the bot with an
//! HTTP/1.1 upgrade (the harness is in `websocket.rs`).

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::{SinkExt, StreamExt};
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use hyper::http::{Method, Request, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::websocket::{runtime, Upstream, WsProxy, WsUpstream};

/// One HTTP/2 stream as a byte stream: DATA frames in, DATA frames out, END_STREAM on
/// shutdown.
struct H2Io {
    send: SendStream<Bytes>,
    recv: RecvStream,
    unread: Bytes,
}

impl AsyncRead for H2Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.unread.is_empty() {
            match ready!(self.recv.poll_data(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Ok(chunk)) => {
                    let _ = self.recv.flow_control().release_capacity(chunk.len());
                    self.unread = chunk;
                }
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
        let n = out.remaining().min(self.unread.len());
        out.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.send.reserve_capacity(buf.len());
        loop {
            match ready!(self.send.poll_capacity(cx)) {
                Some(Ok(0)) => continue,
                Some(Ok(n)) => {
                    let n = n.min(buf.len());
                    self.send
                        .send_data(Bytes::copy_from_slice(&buf[..n]), false)
                        .map_err(io::Error::other)?;
                    return Poll::Ready(Ok(n));
                }
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(
            self.send
                .send_data(Bytes::new(), true)
                .map_err(io::Error::other),
        )
    }
}

/// An HTTP/2 connection to the proxy, once the server's SETTINGS allow extended CONNECT.
async fn h2_client(p: &WsProxy) -> SendRequest<Bytes> {
    let tls = p.tls(b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, conn) = h2::client::handshake(tls).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let client = client.ready().await.unwrap();
    for _ in 0..100 {
        if client.is_extended_connect_protocol_enabled() {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441)");
}

/// Sends an extended CONNECT for `path`; the response status and, on 200, the stream.
async fn open(
    client: &mut SendRequest<Bytes>,
    p: &WsProxy,
    path: &str,
    origin: Option<&str>,
) -> (StatusCode, hyper::http::HeaderMap, Option<H2Io>) {
    let headers: Vec<(&str, String)> = origin
        .map(|o| ("origin", o.to_owned()))
        .into_iter()
        .collect();
    open_with(client, p, path, &headers).await
}

/// [`open`] with any extra request headers.
async fn open_with(
    client: &mut SendRequest<Bytes>,
    p: &WsProxy,
    path: &str,
    extra: &[(&str, String)],
) -> (StatusCode, hyper::http::HeaderMap, Option<H2Io>) {
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://localhost:{}{path}", p.https))
        .extension(h2::ext::Protocol::from_static("websocket"))
        .header("sec-websocket-version", "13");
    for (name, value) in extra {
        req = req.header(*name, value.as_str());
    }
    let (resp, send) = client
        .send_request(req.body(()).unwrap(), false)
        .expect("request sent");
    let resp = tokio::time::timeout(Duration::from_secs(10), resp)
        .await
        .expect("an answer within 10 s")
        .expect("a response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let io = (status == StatusCode::OK).then(|| H2Io {
        send,
        recv: resp.into_body(),
        unread: Bytes::new(),
    });
    (status, headers, io)
}

async fn echo_once(ws: &mut WebSocketStream<H2Io>, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("echo within 10 s")
        .expect("stream open")
        .expect("no error");
    // Not assert_eq!: a failure would print the whole 200 kB message.
    assert!(
        got == Message::text(text),
        "the echo of a {}-byte message differs",
        text.len()
    );
}

#[test]
fn h2_extended_connect_websockets_echo_over_one_connection() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(&up, "", "");
    runtime().block_on(async {
        let mut client = h2_client(&p).await;
        let (status, headers, io) = open(&mut client, &p, "/ws/h2-a", None).await;
        assert_eq!(status, StatusCode::OK, "{headers:?}");
        assert!(!headers.contains_key("sec-websocket-accept"), "{headers:?}");
        let mut a = WebSocketStream::from_raw_socket(io.unwrap(), Role::Client, None).await;
        // A second WebSocket on the same connection, both open at once.
        let (status, _, io) = open(&mut client, &p, "/ws/h2-b", None).await;
        assert_eq!(status, StatusCode::OK);
        let mut b = WebSocketStream::from_raw_socket(io.unwrap(), Role::Client, None).await;
        echo_once(&mut a, "over h2, stream a").await;
        echo_once(&mut b, "over h2, stream b").await;
        p.metric_becomes("clawveil_websocket_tunnels_open{route=\"default\"}", 2.0)
            .await;
        echo_once(&mut a, &"x".repeat(200_000)).await;

        // The bot was asked with an HTTP/1.1 upgrade carrying a key of ours.
        let openings = up.seen.openings.lock().unwrap().clone();
        assert_eq!(openings.len(), 2);
        let (path, h) = openings.iter().find(|(p, _)| p == "/ws/h2-a").unwrap();
        assert_eq!(path, "/ws/h2-a");
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(
            get("upgrade").map(str::to_ascii_lowercase).as_deref(),
            Some("websocket")
        );
        assert_eq!(get("sec-websocket-version"), Some("13"));
        assert_eq!(get("sec-websocket-key").map(str::len), Some(24), "{h:?}");

        for ws in [&mut a, &mut b] {
            ws.close(None).await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await
            .expect("closing handshake over h2");
            // END_STREAM, as the client's FIN.
            tokio::io::AsyncWriteExt::shutdown(ws.get_mut())
                .await
                .unwrap();
        }
        assert_eq!(up.seen.closes.load(Ordering::SeqCst), 2);
        for path in ["/ws/h2-a", "/ws/h2-b"] {
            let e = p.event(path).await;
            assert_eq!(e["status"], 200, "{e}");
            assert_eq!(e["http_version"], "h2", "{e}");
            // Both sides closed (which first is the tunnel's call, see websocket.rs).
            let why = e["close_reason"].as_str().unwrap_or_default();
            assert!(["client_closed", "upstream_closed"].contains(&why), "{e}");
            assert!(e["bytes_in"].as_u64().unwrap() > 0, "{e}");
            assert!(e["bytes_out"].as_u64().unwrap() > 0, "{e}");
        }
        p.metric_becomes("clawveil_websocket_tunnels_open{route=\"default\"}", 0.0)
            .await;
    });
}

#[test]
fn h2_extended_connect_from_a_foreign_origin_is_refused_before_the_bot() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(
        &up,
        "",
        "[[route]]\nname = \"ws\"\npath_prefix = \"/ws\"\nallowed_origins = [\"https://ok.example\"]\n",
    );
    runtime().block_on(async {
        let mut client = h2_client(&p).await;
        let (status, _, _) = open(&mut client, &p, "/ws", Some("https://evil.example")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            p.metric("clawveil_fail_closed_total{reason=\"origin_not_allowed\"}"),
            1.0
        );
        assert_eq!(up.accepted(), 0, "a refused upgrade reached the bot");
        let (status, _, io) = open(&mut client, &p, "/ws", Some("https://ok.example")).await;
        assert_eq!(status, StatusCode::OK);
        let mut ws = WebSocketStream::from_raw_socket(io.unwrap(), Role::Client, None).await;
        echo_once(&mut ws, "allowed over h2").await;
        assert_eq!(up.accepted(), 1);
    });
}

/// Over HTTP/2 the opening's body is the tunnel itself: a verifying route must check the
/// signed headers and let it through without waiting for a body, and a route whose
/// signature covers a body (event pushes) must refuse it.
#[test]
fn h2_websockets_on_verifying_routes_pass_on_signed_headers_or_are_refused() {
    let up = WsUpstream::start(Upstream::Echo);
    let p = WsProxy::start(
        &up,
        "",
        "[[route]]\nname = \"robot\"\npath_prefix = \"/robot\"\nverify = \"dingtalk-robot\"\napp_secrets = [\"wsRobotSecret01\"]\n\
         [[route]]\nname = \"events\"\npath_prefix = \"/events\"\nverify = \"dingtalk-event\"\nevent_token = \"wsEventToken01\"\n",
    );
    runtime().block_on(async {
        let mut client = h2_client(&p).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .to_string();
        let sign = clawveil_proxy::dingtalk::robot_sign(b"wsRobotSecret01", now.as_bytes());
        let (status, _, _) = open_with(&mut client, &p, "/robot", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let signed = [("timestamp", now.clone()), ("sign", sign)];
        let (status, _, io) = open_with(&mut client, &p, "/robot", &signed).await;
        assert_eq!(status, StatusCode::OK);
        let mut ws = WebSocketStream::from_raw_socket(io.unwrap(), Role::Client, None).await;
        echo_once(&mut ws, "signed opening over h2").await;
        let (status, _, _) = open_with(&mut client, &p, "/events", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(up.accepted(), 1, "only the signed opening reached the bot");
        assert_eq!(
            p.metric("clawveil_fail_closed_total{reason=\"signature_invalid\"}"),
            2.0
        );
    });
}
