//! Upgraded connections (WebSocket): bytes both ways, untouched and never logged, until
//! one side closes, nothing moves for `limits.tunnel_idle_timeout`, or shutdown's drain
//! time is over. A close on one side is passed on as a half-close (FIN), so the
//! WebSocket closing handshake completes end to end.
//!
//! Payloads are never parsed; the frame headers of each direction are followed
//! ([`crate::wsframe`]) only to see which side sent the first Close frame, because the
//! order of the TCP closes says nothing about that: after a closing handshake the
//! server always closes TCP first (RFC 6455 §7.1.1). The access event's `close_reason`:
//!
//! - `client_closed` / `upstream_closed`: that side sent the first Close frame (it
//!   started the closing handshake), and the tunnel then ended with both sides gone.
//! - `client_dropped` / `upstream_dropped`: no Close frame was seen (or the frames could
//!   not be followed), and that side's connection ended first: a FIN, a TLS end with or
//!   without close_notify, a reset, an HTTP/2 stream cancelled.
//! - `idle_timeout`: no byte either way for `limits.tunnel_idle_timeout`.
//! - `shutdown`: the drain time after SIGTERM ran out.
//! - `error`: a read or write failed for another reason than a peer going away (a TLS
//!   protocol error, say), or a write made no progress for the idle timeout.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::wsframe::FrameScanner;

/// Why a tunnel ended (the access event's `close_reason`).
///
/// `client_closed`, `upstream_closed`: who sent the first Close frame.
/// `client_dropped`, `upstream_dropped`: no Close frame; whose connection ended first.
/// `idle_timeout`, `shutdown`, `error`: the proxy ended it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent the first Close frame.
    ClientClosed,
    /// The upstream sent the first Close frame.
    UpstreamClosed,
    /// No Close frame; the client's connection ended first (FIN, TLS end, reset).
    ClientDropped,
    /// No Close frame; the upstream's connection ended first (FIN, reset).
    UpstreamDropped,
    /// No byte either way for the idle timeout.
    Idle,
    /// The drain time after SIGTERM ran out.
    Shutdown,
    /// A read or write failed other than by a peer going away, or a write stalled.
    Error,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::UpstreamClosed => "upstream_closed",
            Self::ClientDropped => "client_dropped",
            Self::UpstreamDropped => "upstream_dropped",
            Self::Idle => "idle_timeout",
            Self::Shutdown => "shutdown",
            Self::Error => "error",
        }
    }
}

/// What a finished tunnel reports.
#[derive(Debug, Clone, Copy)]
pub struct TunnelEnd {
    /// Client → upstream.
    pub bytes_up: u64,
    /// Upstream → client.
    pub bytes_down: u64,
    pub reason: CloseReason,
}

/// Open tunnels, so shutdown can wait for them (they have left hyper's connection
/// tracking once upgraded).
#[derive(Debug, Default)]
pub struct Tunnels {
    open: AtomicUsize,
    idle: Notify,
}

/// Held by a running tunnel.
pub struct TunnelGuard(Arc<Tunnels>);

impl Tunnels {
    pub fn enter(self: &Arc<Self>) -> TunnelGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        TunnelGuard(self.clone())
    }

    /// Resolves once no tunnel is open.
    pub async fn wait_closed(&self) {
        loop {
            let notified = self.idle.notified();
            if self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

const BUF: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Upstream,
}

/// Who sent the first Close frame, from the frame headers of both directions.
#[derive(Debug, Default)]
struct FirstClose {
    up: FrameScanner,
    down: FrameScanner,
    first: Option<Side>,
}

impl FirstClose {
    /// Follows bytes `from` one side. Once the first Close is known, or either direction
    /// could not be followed (a Close in it might have been missed), nothing more is
    /// looked at.
    fn bytes(&mut self, from: Side, data: &[u8]) {
        if self.first.is_some() || self.up.is_lost() || self.down.is_lost() {
            return;
        }
        let scanner = match from {
            Side::Client => &mut self.up,
            Side::Upstream => &mut self.down,
        };
        if scanner.saw_close(data) {
            self.first = Some(from);
        }
    }

    /// The close reason once both sides are gone, `ended_first` the side whose
    /// connection ended first.
    fn reason(&self, ended_first: Option<Side>) -> CloseReason {
        match (self.first, ended_first) {
            (Some(Side::Client), _) => CloseReason::ClientClosed,
            (Some(Side::Upstream), _) => CloseReason::UpstreamClosed,
            (None, Some(Side::Upstream)) => CloseReason::UpstreamDropped,
            (None, _) => CloseReason::ClientDropped,
        }
    }
}

/// Whether an IO error only means the peer went away: a TLS end without close_notify,
/// a reset, a write to a closed connection, an HTTP/2 stream closed under us.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// How a loop step ended the tunnel.
enum Stop {
    /// Both sides are gone (closed, or one went away): [`FirstClose::reason`] tells.
    Ended,
    Idle,
    Shutdown,
    Error,
}

/// Copies both ways until both sides have closed, or idle, or the drain time after
/// `shutdown` turned true is over.
pub async fn run<C, U>(
    client: C,
    upstream: U,
    idle: Duration,
    drain: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let (mut cbuf, mut ubuf) = (vec![0u8; BUF], vec![0u8; BUF]);
    let mut end = TunnelEnd {
        bytes_up: 0,
        bytes_down: 0,
        reason: CloseReason::Error,
    };
    let (mut client_open, mut upstream_open) = (true, true);
    // Whose connection ended first (FIN, or gone).
    let mut ended_first = None;
    let mut closes = FirstClose::default();
    let mut last = Instant::now();
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let mut stop_at = if *shutdown.borrow() {
        Instant::now() + drain
    } else {
        far
    };
    let mut watching = stop_at == far;
    let stop = loop {
        if !client_open && !upstream_open {
            break Stop::Ended;
        }
        tokio::select! {
            r = cr.read(&mut cbuf), if client_open => match r {
                Ok(0) => {
                    client_open = false;
                    ended_first.get_or_insert(Side::Client);
                    let _ = uw.shutdown().await;
                }
                Ok(n) => {
                    closes.bytes(Side::Client, &cbuf[..n]);
                    match write(&mut uw, &cbuf[..n], idle).await {
                        Ok(()) => {}
                        Err(WriteFail::Gone) => {
                            ended_first.get_or_insert(Side::Upstream);
                            break Stop::Ended;
                        }
                        Err(WriteFail::Failed) => break Stop::Error,
                    }
                    end.bytes_up += n as u64;
                    last = Instant::now();
                }
                // Nothing more can reach the client: the upstream gets a FIN below.
                Err(e) if peer_gone(&e) => {
                    ended_first.get_or_insert(Side::Client);
                    break Stop::Ended;
                }
                Err(_) => break Stop::Error,
            },
            r = ur.read(&mut ubuf), if upstream_open => match r {
                Ok(0) => {
                    upstream_open = false;
                    ended_first.get_or_insert(Side::Upstream);
                    let _ = cw.shutdown().await;
                }
                Ok(n) => {
                    closes.bytes(Side::Upstream, &ubuf[..n]);
                    match write(&mut cw, &ubuf[..n], idle).await {
                        Ok(()) => {}
                        Err(WriteFail::Gone) => {
                            ended_first.get_or_insert(Side::Client);
                            break Stop::Ended;
                        }
                        Err(WriteFail::Failed) => break Stop::Error,
                    }
                    end.bytes_down += n as u64;
                    last = Instant::now();
                }
                Err(e) if peer_gone(&e) => {
                    ended_first.get_or_insert(Side::Upstream);
                    break Stop::Ended;
                }
                Err(_) => break Stop::Error,
            },
            _ = tokio::time::sleep_until(last + idle) => break Stop::Idle,
            _ = tokio::time::sleep_until(stop_at) => break Stop::Shutdown,
            changed = shutdown.changed(), if watching => {
                watching = false;
                if changed.is_err() || *shutdown.borrow() {
                    stop_at = Instant::now() + drain;
                }
            }
        }
    };
    if client_open || upstream_open {
        // Close both sides with a FIN rather than dropping them mid-way.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = cw.shutdown().await;
            let _ = uw.shutdown().await;
        })
        .await;
    }
    end.reason = match stop {
        Stop::Ended => closes.reason(ended_first),
        Stop::Idle => CloseReason::Idle,
        Stop::Shutdown => CloseReason::Shutdown,
        Stop::Error => CloseReason::Error,
    };
    end
}

/// Why a write failed.
enum WriteFail {
    /// The reader went away ([`peer_gone`]).
    Gone,
    /// Another error, or no progress for the idle timeout.
    Failed,
}

/// Writes all of `data`, giving up when the reader makes no progress for `idle`.
async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
    idle: Duration,
) -> Result<(), WriteFail> {
    match tokio::time::timeout(idle, async {
        w.write_all(data).await?;
        w.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if peer_gone(&e) => Err(WriteFail::Gone),
        _ => Err(WriteFail::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_both_ways_and_passes_half_closes_on() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (upstream, mut upstream_peer) = tokio::io::duplex(64);
        let (_tx, rx) = watch::channel(false);
        let t = tokio::spawn(run(
            client,
            upstream,
            Duration::from_secs(5),
            Duration::from_secs(5),
            rx,
        ));
        client_peer.write_all(b"hello upstream").await.unwrap();
        let mut buf = [0u8; 14];
        upstream_peer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello upstream");
        upstream_peer.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        client_peer.read_exact(&mut buf).await.unwrap();
        client_peer.shutdown().await.unwrap();
        // The upstream sees the client's FIN, then closes too.
        let mut rest = Vec::new();
        upstream_peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        upstream_peer.shutdown().await.unwrap();
        let end = t.await.unwrap();
        assert_eq!((end.bytes_up, end.bytes_down), (14, 2));
        // Not WebSocket frames, so no Close was seen: the client's FIN came first.
        assert_eq!(end.reason, CloseReason::ClientDropped);
    }

    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{DuplexStream, ReadBuf};
    use tokio::task::JoinHandle;

    /// A frame as an endpoint sends it: FIN set, masked from the client.
    fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        let mask = if masked { 0x80 } else { 0 };
        if payload.len() <= 125 {
            out.push(mask | payload.len() as u8);
        } else {
            out.push(mask | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        let key = [0x81, 0x7e, 0x88, 0x00];
        if masked {
            out.extend_from_slice(&key);
        }
        out.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| if masked { b ^ key[i % 4] } else { *b }),
        );
        out
    }

    const CLOSE: u8 = 0x8;
    const TEXT: u8 = 0x1;

    /// A running tunnel and the far ends of its two sides.
    fn start() -> (JoinHandle<TunnelEnd>, DuplexStream, DuplexStream) {
        let (client, client_peer) = tokio::io::duplex(64);
        let (upstream, upstream_peer) = tokio::io::duplex(64);
        let (tx, rx) = watch::channel(false);
        let t = tokio::spawn(async move {
            let end = run(
                client,
                upstream,
                Duration::from_secs(5),
                Duration::from_secs(5),
                rx,
            )
            .await;
            drop(tx);
            end
        });
        (t, client_peer, upstream_peer)
    }

    /// Sends `data` in 3-byte writes; checks the other end gets it byte for byte.
    async fn pass(from: &mut DuplexStream, to: &mut DuplexStream, data: &[u8]) {
        let send = async {
            for piece in data.chunks(3) {
                from.write_all(piece).await.unwrap();
            }
        };
        let mut got = vec![0u8; data.len()];
        let ((), read) = tokio::join!(send, to.read_exact(&mut got));
        read.unwrap();
        assert_eq!(got, data);
    }

    /// Half-closes `first`, then `second` once it has seen the FIN; the tunnel's end.
    async fn close_in_order(
        t: JoinHandle<TunnelEnd>,
        first: &mut DuplexStream,
        second: &mut DuplexStream,
    ) -> TunnelEnd {
        first.shutdown().await.unwrap();
        let mut rest = Vec::new();
        second.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        second.shutdown().await.unwrap();
        t.await.unwrap()
    }

    #[tokio::test]
    async fn a_close_the_client_starts_is_client_closed_though_the_server_ends_tcp_first() {
        let (t, mut c, mut u) = start();
        let mut up = frame(TEXT, b"hello", true);
        up.extend(frame(TEXT, &[b'x'; 300], true));
        up.extend(frame(CLOSE, &1000u16.to_be_bytes(), true));
        pass(&mut c, &mut u, &up).await;
        let down = frame(CLOSE, &1000u16.to_be_bytes(), false);
        pass(&mut u, &mut c, &down).await;
        let end = close_in_order(t, &mut u, &mut c).await;
        assert_eq!(end.reason, CloseReason::ClientClosed);
        assert_eq!(
            (end.bytes_up, end.bytes_down),
            (up.len() as u64, down.len() as u64)
        );
    }

    #[tokio::test]
    async fn a_close_the_upstream_starts_is_upstream_closed_whoever_ends_tcp_first() {
        let (t, mut c, mut u) = start();
        pass(&mut u, &mut c, &frame(TEXT, b"hi", false)).await;
        pass(&mut u, &mut c, &frame(CLOSE, b"", false)).await;
        pass(&mut c, &mut u, &frame(CLOSE, b"", true)).await;
        let end = close_in_order(t, &mut c, &mut u).await;
        assert_eq!(end.reason, CloseReason::UpstreamClosed);
    }

    #[tokio::test]
    async fn without_a_close_frame_the_side_that_ends_first_dropped_the_connection() {
        let (t, mut c, mut u) = start();
        pass(&mut c, &mut u, &frame(TEXT, b"hi", true)).await;
        let end = close_in_order(t, &mut u, &mut c).await;
        assert_eq!(end.reason, CloseReason::UpstreamDropped);

        let (t, mut c, mut u) = start();
        pass(&mut u, &mut c, &frame(TEXT, b"hi", false)).await;
        let end = close_in_order(t, &mut c, &mut u).await;
        assert_eq!(end.reason, CloseReason::ClientDropped);
    }

    #[tokio::test]
    async fn after_an_invalid_frame_header_the_tcp_order_decides() {
        // A reserved opcode (0x3) from the client: its later Close is not believed, but
        // every byte still goes through.
        let (t, mut c, mut u) = start();
        let mut up = frame(0x3, b"what", true);
        up.extend(frame(CLOSE, b"", true));
        pass(&mut c, &mut u, &up).await;
        let end = close_in_order(t, &mut u, &mut c).await;
        assert_eq!(end.reason, CloseReason::UpstreamDropped);
        assert_eq!(end.bytes_up, up.len() as u64);

        // A 126-byte ping from the upstream: a Close the client sends after it might
        // have been answered by one we missed, so it does not count either.
        let (t, mut c, mut u) = start();
        pass(&mut u, &mut c, &frame(0x9, &[0; 126], false)).await;
        pass(&mut c, &mut u, &frame(CLOSE, b"", true)).await;
        let end = close_in_order(t, &mut u, &mut c).await;
        assert_eq!(end.reason, CloseReason::UpstreamDropped);

        // Once the first Close is known, later garbage changes nothing.
        let (t, mut c, mut u) = start();
        pass(&mut c, &mut u, &frame(CLOSE, b"", true)).await;
        pass(&mut u, &mut c, b"\xff\xff not a frame").await;
        let end = close_in_order(t, &mut u, &mut c).await;
        assert_eq!(end.reason, CloseReason::ClientClosed);
    }

    /// Reads `data`, then fails with `kind`; writes fail with `kind` too.
    struct Breaks {
        data: &'static [u8],
        kind: io::ErrorKind,
    }

    impl AsyncRead for Breaks {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.data.is_empty() {
                return Poll::Ready(Err(self.kind.into()));
            }
            let n = self.data.len().min(buf.remaining());
            buf.put_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Breaks {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(self.kind.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn run_with_client(client: Breaks) -> (TunnelEnd, Vec<u8>) {
        let (upstream, mut upstream_peer) = tokio::io::duplex(1024);
        let (_tx, rx) = watch::channel(false);
        let end = run(
            client,
            upstream,
            Duration::from_secs(5),
            Duration::from_secs(5),
            rx,
        )
        .await;
        // The upstream got everything, then a FIN.
        let mut got = Vec::new();
        upstream_peer.read_to_end(&mut got).await.unwrap();
        (end, got)
    }

    #[tokio::test]
    async fn a_peer_going_away_is_not_an_error() {
        const HI: &[u8] = &[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'];
        const BYE: &[u8] = &[0x88, 0x80, 0, 0, 0, 0];
        // A reset, or a TLS end without close_notify, with no Close frame.
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::UnexpectedEof] {
            let (end, got) = run_with_client(Breaks { data: HI, kind }).await;
            assert_eq!(end.reason, CloseReason::ClientDropped, "{kind:?}");
            assert_eq!(got, HI);
        }
        // A browser that sent its Close and then left without close_notify.
        let (end, _) = run_with_client(Breaks {
            data: BYE,
            kind: io::ErrorKind::UnexpectedEof,
        })
        .await;
        assert_eq!(end.reason, CloseReason::ClientClosed);
        // Anything else is still an error.
        let (end, _) = run_with_client(Breaks {
            data: HI,
            kind: io::ErrorKind::InvalidData,
        })
        .await;
        assert_eq!(end.reason, CloseReason::Error);

        // An upstream that is gone when written to.
        let (client, mut client_peer) = tokio::io::duplex(64);
        let upstream = Breaks {
            data: b"",
            kind: io::ErrorKind::BrokenPipe,
        };
        let (_tx, rx) = watch::channel(false);
        let t = tokio::spawn(run(
            client,
            tokio::io::join(tokio::io::duplex(8).0, upstream),
            Duration::from_secs(5),
            Duration::from_secs(5),
            rx,
        ));
        client_peer.write_all(HI).await.unwrap();
        let end = t.await.unwrap();
        assert_eq!(end.reason, CloseReason::UpstreamDropped);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_tunnels_and_drains_end() {
        let (client, _c) = tokio::io::duplex(64);
        let (upstream, _u) = tokio::io::duplex(64);
        let (_tx, rx) = watch::channel(false);
        let end = run(
            client,
            upstream,
            Duration::from_secs(3),
            Duration::from_secs(1),
            rx,
        )
        .await;
        assert_eq!(end.reason, CloseReason::Idle);

        let (client, _c) = tokio::io::duplex(64);
        let (upstream, _u) = tokio::io::duplex(64);
        let (tx, rx) = watch::channel(false);
        let t = tokio::spawn(run(
            client,
            upstream,
            Duration::from_secs(300),
            Duration::from_secs(2),
            rx,
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(true).unwrap();
        let started = Instant::now();
        let end = t.await.unwrap();
        assert_eq!(end.reason, CloseReason::Shutdown);
        assert!(started.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn tunnels_are_waited_for() {
        let tunnels = Arc::new(Tunnels::default());
        let g = tunnels.enter();
        let t2 = tunnels.clone();
        let waiter = tokio::spawn(async move { t2.wait_closed().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(g);
        waiter.await.unwrap();
    }
}
