//! A CONNECT tunnel: bytes both ways, never inspected and never logged, until both
//! sides have closed, nothing moved for the idle timeout, a side failed, or the drain
//! time after shutdown ran out. A close on one side is passed on as a half-close (FIN).

use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// How a tunnel ended (the access event's `close_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// Both sides closed, the client first.
    ClientClosed,
    /// Both sides closed, the destination first.
    DestinationClosed,
    /// No byte moved either way for the idle timeout (a side that stops reading
    /// counts as idle too).
    Idle,
    /// The drain time after shutdown ran out.
    Shutdown,
    /// A read or a write failed (a reset).
    Error,
}

impl Close {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::DestinationClosed => "upstream_closed",
            Self::Idle => "idle_timeout",
            Self::Shutdown => "shutdown",
            Self::Error => "error",
        }
    }
}

/// What a finished tunnel reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelEnd {
    /// Client → destination.
    pub bytes_in: u64,
    /// Destination → client.
    pub bytes_out: u64,
    pub close: Close,
}

const BUF: usize = 16 * 1024;
const NOBODY: u8 = 0;
const CLIENT: u8 = 1;
const DESTINATION: u8 = 2;

/// Copies between `client` and `dest` until the tunnel ends. `shutdown` turning true
/// (or its sender going away) leaves the tunnel `drain` more time.
pub async fn copy<C, D>(
    client: C,
    dest: D,
    idle: Duration,
    drain: Duration,
    shutdown: watch::Receiver<bool>,
) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    D: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut dr, mut dw) = tokio::io::split(dest);
    let start = Instant::now();
    let activity = Activity {
        start,
        last_ms: AtomicU64::new(0),
    };
    let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
    let first_eof = AtomicU8::new(NOBODY);
    let close = {
        let both = async {
            tokio::try_join!(
                pump(&mut cr, &mut dw, &up, &activity, &first_eof, CLIENT),
                pump(&mut dr, &mut cw, &down, &activity, &first_eof, DESTINATION),
            )
        };
        tokio::select! {
            r = both => match r {
                Err(_) => Close::Error,
                Ok(_) if first_eof.load(Ordering::SeqCst) == DESTINATION => Close::DestinationClosed,
                Ok(_) => Close::ClientClosed,
            },
            () = activity.idle_for(idle) => Close::Idle,
            () = drained(shutdown, drain) => Close::Shutdown,
        }
    };
    if !matches!(close, Close::ClientClosed | Close::DestinationClosed) {
        // End both sides with a FIN rather than just dropping them.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = tokio::join!(cw.shutdown(), dw.shutdown());
        })
        .await;
    }
    TunnelEnd {
        bytes_in: up.load(Ordering::SeqCst),
        bytes_out: down.load(Ordering::SeqCst),
        close,
    }
}

/// When a byte last moved, in milliseconds since the tunnel started.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis();
        self.last_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::SeqCst));
            let due = last + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

/// One direction: read, write all of it, count it; on end of input pass the FIN on.
async fn pump<R, W>(
    r: &mut R,
    w: &mut W,
    bytes: &AtomicU64,
    activity: &Activity,
    first_eof: &AtomicU8,
    side: u8,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            let _ = first_eof.compare_exchange(NOBODY, side, Ordering::SeqCst, Ordering::SeqCst);
            // The other side may already be gone; its own direction reports that.
            let _ = w.shutdown().await;
            return Ok(());
        }
        activity.touch();
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
        bytes.fetch_add(n as u64, Ordering::SeqCst);
        activity.touch();
    }
}

/// Resolves `drain` after shutdown began.
async fn drained(shutdown: watch::Receiver<bool>, drain: Duration) {
    stopping(shutdown).await;
    tokio::time::sleep(drain).await;
}

/// Resolves once shutdown has begun: the value turned true, or its sender went away.
pub(crate) async fn stopping(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Counts what is still running (connections and tunnels), so shutdown can wait for it.
#[derive(Debug, Clone, Default)]
pub struct Tracker(Arc<TrackerInner>);

#[derive(Debug, Default)]
struct TrackerInner {
    open: AtomicUsize,
    none_open: Notify,
}

/// Held while one connection or tunnel runs.
#[derive(Debug)]
pub struct Tracked(Arc<TrackerInner>);

impl Tracker {
    pub fn enter(&self) -> Tracked {
        self.0.open.fetch_add(1, Ordering::SeqCst);
        Tracked(self.0.clone())
    }

    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::SeqCst)
    }

    /// Resolves once nothing is open.
    pub async fn wait_closed(&self) {
        loop {
            let notified = self.0.none_open.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none_open.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_go_both_ways_and_half_closes_pass_on() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (dest, mut dest_peer) = tokio::io::duplex(64);
        let (_tx, rx) = watch::channel(false);
        let secs = Duration::from_secs(5);
        let t = tokio::spawn(copy(client, dest, secs, secs, rx));
        client_peer.write_all(b"ping from the bot").await.unwrap();
        let mut got = [0u8; 17];
        dest_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping from the bot");
        dest_peer.write_all(b"pong").await.unwrap();
        dest_peer.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"pong");
        // The destination closed first; the client's FIN reaches it afterwards.
        client_peer.shutdown().await.unwrap();
        let mut tail = Vec::new();
        dest_peer.read_to_end(&mut tail).await.unwrap();
        assert!(tail.is_empty());
        let end = t.await.unwrap();
        assert_eq!(
            end,
            TunnelEnd {
                bytes_in: 17,
                bytes_out: 4,
                close: Close::DestinationClosed
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_tunnels_end_after_the_idle_timeout_and_activity_resets_it() {
        let (client, mut client_peer) = tokio::io::duplex(64);
        let (dest, mut dest_peer) = tokio::io::duplex(64);
        let (_tx, rx) = watch::channel(false);
        let started = Instant::now();
        let t = tokio::spawn(copy(
            client,
            dest,
            Duration::from_secs(10),
            Duration::from_secs(1),
            rx,
        ));
        tokio::time::sleep(Duration::from_secs(8)).await;
        client_peer.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        dest_peer.read_exact(&mut b).await.unwrap();
        let end = t.await.unwrap();
        assert_eq!(end.close, Close::Idle);
        assert_eq!(end.bytes_in, 1);
        assert!(
            started.elapsed() >= Duration::from_secs(18),
            "{:?}",
            started.elapsed()
        );
        // Both peers see the tunnel closed.
        assert_eq!(client_peer.read(&mut b).await.unwrap(), 0);
        assert_eq!(dest_peer.read(&mut b).await.unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_leaves_the_drain_time_then_ends() {
        let (client, _c) = tokio::io::duplex(64);
        let (dest, _d) = tokio::io::duplex(64);
        let (tx, rx) = watch::channel(false);
        let t = tokio::spawn(copy(
            client,
            dest,
            Duration::from_secs(600),
            Duration::from_secs(3),
            rx,
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(true).unwrap();
        let at = Instant::now();
        assert_eq!(t.await.unwrap().close, Close::Shutdown);
        assert!(at.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test]
    async fn the_tracker_waits_for_what_is_open() {
        let tracker = Tracker::default();
        let guard = tracker.enter();
        let t2 = tracker.clone();
        let waiter = tokio::spawn(async move { t2.wait_closed().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(tracker.open(), 1);
        drop(guard);
        waiter.await.unwrap();
        assert_eq!(tracker.open(), 0);
    }
}
