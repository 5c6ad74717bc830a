//! Upgraded connections (WebSocket): bytes both ways, untouched and never logged, until
//! one side closes, nothing moves for `limits.tunnel_idle_timeout`, or shutdown's drain
//! time is over. Frames are not parsed; a close on one side is passed on as a
//! half-close (FIN), so the WebSocket closing handshake completes end to end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// Why a tunnel ended (the access event's `close_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides closed; the client closed first.
    ClientClosed,
    /// Both sides closed; the upstream closed first.
    UpstreamClosed,
    /// No byte either way for the idle timeout.
    Idle,
    /// The drain time after SIGTERM ran out.
    Shutdown,
    /// A read or write failed (a reset).
    Error,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::UpstreamClosed => "upstream_closed",
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
    let mut first_close = None;
    let mut last = Instant::now();
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let mut stop_at = if *shutdown.borrow() {
        Instant::now() + drain
    } else {
        far
    };
    let mut watching = stop_at == far;
    let reason = loop {
        if !client_open && !upstream_open {
            break first_close.unwrap_or(CloseReason::ClientClosed);
        }
        tokio::select! {
            r = cr.read(&mut cbuf), if client_open => match r {
                Ok(0) => {
                    client_open = false;
                    first_close.get_or_insert(CloseReason::ClientClosed);
                    let _ = uw.shutdown().await;
                }
                Ok(n) => {
                    if !write(&mut uw, &cbuf[..n], idle).await {
                        break CloseReason::Error;
                    }
                    end.bytes_up += n as u64;
                    last = Instant::now();
                }
                Err(_) => break CloseReason::Error,
            },
            r = ur.read(&mut ubuf), if upstream_open => match r {
                Ok(0) => {
                    upstream_open = false;
                    first_close.get_or_insert(CloseReason::UpstreamClosed);
                    let _ = cw.shutdown().await;
                }
                Ok(n) => {
                    if !write(&mut cw, &ubuf[..n], idle).await {
                        break CloseReason::Error;
                    }
                    end.bytes_down += n as u64;
                    last = Instant::now();
                }
                Err(_) => break CloseReason::Error,
            },
            _ = tokio::time::sleep_until(last + idle) => break CloseReason::Idle,
            _ = tokio::time::sleep_until(stop_at) => break CloseReason::Shutdown,
            changed = shutdown.changed(), if watching => {
                watching = false;
                if changed.is_err() || *shutdown.borrow() {
                    stop_at = Instant::now() + drain;
                }
            }
        }
    };
    if !matches!(
        reason,
        CloseReason::ClientClosed | CloseReason::UpstreamClosed
    ) {
        // Close both sides with a FIN rather than dropping them mid-way.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = cw.shutdown().await;
            let _ = uw.shutdown().await;
        })
        .await;
    }
    end.reason = reason;
    end
}

/// Writes all of `data`, giving up when the reader makes no progress for `idle`.
async fn write<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8], idle: Duration) -> bool {
    matches!(
        tokio::time::timeout(idle, async {
            w.write_all(data).await?;
            w.flush().await
        })
        .await,
        Ok(Ok(()))
    )
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
        assert_eq!(end.reason, CloseReason::ClientClosed);
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
