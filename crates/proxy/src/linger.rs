//! Lingering close. When a connection ends while the client is still sending (hyper
//! answered 431 to a head that is too large and gave up on the rest), closing the
//! socket with unread data makes the kernel send a reset, and the client, busy
//! writing, may never read the answer: it sees "connection reset" or "broken pipe"
//! instead of 431. So a connection that we end while the client has not ended its
//! side is handed to a short task that ends ours (FIN after the answer) and reads and
//! discards what the client still sends, until it closes too, for at most
//! [`LINGER_TIME`] and [`LINGER_BYTES`]. nginx does the same (`lingering_close`).
//! Most connections are closed by their clients first and close at once.
//!
//! The wrapper also carries the connection's [`Slot`] (its place under
//! `limits.max_connections` and in `clawveil_connections_open`), so the slot is given
//! back when the socket closes, not when hyper is done with it: an HTTP/1.1 upgrade
//! hands the socket to a tunnel that may outlive hyper's connection by hours, and a
//! lingering close keeps it a little after hyper dropped it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::listener::Slot;

/// How long a closing connection keeps reading what its client still sends.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much it reads at most before closing anyway.
pub const LINGER_BYTES: usize = 8 << 20;

/// A connection stream that can be taken apart to its TCP socket.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn tcp(&self) -> &TcpStream;
    fn into_tcp(self) -> TcpStream;
}

impl Stream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
    fn into_tcp(self) -> TcpStream {
        self
    }
}

impl Stream for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
    fn into_tcp(self) -> TcpStream {
        self.into_inner().0
    }
}

/// `io` for hyper; when hyper (or the tunnel it handed the connection to) drops it, a
/// client still sending gets a lingering close.
pub struct Lingering<T: Stream> {
    io: Option<T>,
    /// Given back when the socket closes (after the lingering close, if any).
    slot: Option<Slot>,
}

impl<T: Stream> Lingering<T> {
    /// A connection that holds no slot (the metrics listener's).
    pub fn new(io: T) -> Self {
        Lingering {
            io: Some(io),
            slot: None,
        }
    }

    /// A connection that holds `slot` for as long as its socket is open.
    pub fn holding(io: T, slot: Slot) -> Self {
        Lingering {
            io: Some(io),
            slot: Some(slot),
        }
    }

    fn io(&mut self) -> io::Result<&mut T> {
        self.io
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection closed"))
    }
}

impl<T: Stream> AsyncRead for Lingering<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: Stream> AsyncWrite for Lingering<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().io() {
            Ok(io) => Pin::new(io).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: Stream> Drop for Lingering<T> {
    fn drop(&mut self) {
        // Whatever returns early here closes the socket, and gives the slot back with it.
        let slot = self.slot.take();
        let Some(io) = self.io.take() else { return };
        // A client that closed first (it reads as 0) or a broken socket needs none.
        // Data may also still be on its way with nothing readable yet, so "nothing
        // to read now" lingers too.
        let mut probe = [0u8; 512];
        match io.tcp().try_read(&mut probe) {
            Ok(0) => return,
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return,
            _ => {}
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(linger(io.into_tcp(), slot));
        }
    }
}

/// Ends our side, then reads and discards until the client stops or a bound is hit;
/// the slot goes when the socket does.
async fn linger(mut tcp: TcpStream, _slot: Option<Slot>) {
    let _ = tcp.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 16 * 1024];
    let mut read = 0;
    while read < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => read += n,
            _ => return,
        }
    }
}
