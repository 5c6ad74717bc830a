//! A connection's IO as the idle watchdog ([`crate::idle`]) and the refusal counters see
//! it: which protocol the first bytes announce, when bytes move and when writes are
//! refused, and, on HTTP/2, every stream we reset with PROTOCOL_ERROR. h2 refuses a
//! malformed request (a connection-specific header, a bad pseudo-header, a body longer
//! than its content-length) on its own with such a reset and tells no one: the frames
//! we write are the only place it shows.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::idle::{Activity, Proto};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const RST_STREAM: u8 = 3;
const PROTOCOL_ERROR: u32 = 1;

/// Called for each HTTP/2 stream we reset with PROTOCOL_ERROR.
pub type OnReset = Arc<dyn Fn() + Send + Sync>;

/// The IO hyper serves, reporting to the connection's [`Activity`].
pub struct Watched<T> {
    io: T,
    act: Arc<Activity>,
    /// Preface bytes seen so far, while the protocol is unknown.
    matched: usize,
    /// The first bytes were not the HTTP/2 preface.
    http1: bool,
    /// HTTP/2: where we are in the frames we write.
    frames: Option<FrameWalker>,
    on_reset: Option<OnReset>,
}

impl<T> Watched<T> {
    pub fn new(io: T, act: Arc<Activity>, on_reset: Option<OnReset>) -> Self {
        Watched {
            io,
            act,
            matched: 0,
            http1: false,
            frames: None,
            on_reset,
        }
    }

    fn sniff(&mut self, got: &[u8]) {
        let want = &PREFACE[self.matched..];
        let n = got.len().min(want.len());
        if got[..n] != want[..n] {
            self.http1 = true;
            self.act.set_proto(Proto::Http1);
            return;
        }
        self.matched += n;
        if self.matched == PREFACE.len() {
            self.act.set_proto(Proto::Http2);
            self.frames.get_or_insert_with(FrameWalker::default);
        }
    }

    fn sent(&mut self, bytes: &[u8]) {
        self.act.wrote();
        if self.frames.is_none() && self.matched > 0 && !self.http1 {
            // h2 may write its SETTINGS as soon as the protocol is chosen, before the
            // rest of the client's preface is read: our frames start with our first byte.
            self.frames = Some(FrameWalker::default());
        }
        if let (Some(walker), Some(on_reset)) = (self.frames.as_mut(), self.on_reset.as_ref()) {
            walker.feed(bytes, |code| {
                if code == PROTOCOL_ERROR {
                    on_reset();
                }
            });
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let got = &buf.filled()[before..];
            if !got.is_empty() {
                if this.act.proto() == Proto::Unknown {
                    this.sniff(got);
                }
                this.act.read();
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        match polled {
            Poll::Ready(Ok(n)) if n > 0 => this.sent(&buf[..n]),
            Poll::Pending => this.act.blocked(),
            _ => {}
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        match polled {
            Poll::Ready(Ok(n)) if n > 0 => {
                let mut left = n;
                for b in bufs {
                    let k = b.len().min(left);
                    this.sent(&b[..k]);
                    left -= k;
                    if left == 0 {
                        break;
                    }
                }
            }
            Poll::Pending => this.act.blocked(),
            _ => {}
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        match polled {
            Poll::Ready(Ok(())) => this.act.unblocked(),
            Poll::Pending => this.act.blocked(),
            _ => {}
        }
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Follows the HTTP/2 frames we write, by their 9-byte headers, and reports the error
/// code of every RST_STREAM.
#[derive(Debug, Default)]
pub struct FrameWalker {
    /// The frame header, and the error code of an RST_STREAM.
    head: [u8; 13],
    have: usize,
    /// Payload bytes of the current frame still to pass over.
    skip: usize,
}

impl FrameWalker {
    pub fn feed(&mut self, mut bytes: &[u8], mut reset: impl FnMut(u32)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let len = |h: &[u8; 13]| (h[0] as usize) << 16 | (h[1] as usize) << 8 | h[2] as usize;
            let is_reset = self.have >= 9 && self.head[3] == RST_STREAM && len(&self.head) >= 4;
            let need = if is_reset { 13 } else { 9 };
            let n = (need - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < need {
                continue;
            }
            if need == 9 && self.head[3] == RST_STREAM && len(&self.head) >= 4 {
                continue; // on to its error code
            }
            if need == 13 {
                reset(u32::from_be_bytes([
                    self.head[9],
                    self.head[10],
                    self.head[11],
                    self.head[12],
                ]));
            }
            self.skip = len(&self.head) - (self.have - 9);
            self.have = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore};

    /// The dumb twin: the whole output at once, frame by frame.
    fn resets_of(all: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 9 <= all.len() {
            let len = (all[at] as usize) << 16 | (all[at + 1] as usize) << 8 | all[at + 2] as usize;
            if all[at + 3] == RST_STREAM && len >= 4 {
                out.push(u32::from_be_bytes(all[at + 9..at + 13].try_into().unwrap()));
            }
            at += 9 + len;
        }
        out
    }

    #[test]
    fn resets_are_found_however_the_frames_are_cut() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let mut all = Vec::new();
            for _ in 0..rng.random_range(1..40) {
                let kind = rng.random_range(0..10u8);
                let len = match kind {
                    RST_STREAM => 4,
                    _ => rng.random_range(0..300usize),
                };
                all.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, 0]);
                all.extend_from_slice(&rng.next_u32().to_be_bytes());
                let mut payload = vec![0u8; len];
                rng.fill_bytes(&mut payload);
                if kind == RST_STREAM {
                    payload.copy_from_slice(&rng.random_range(0..3u32).to_be_bytes());
                }
                all.extend_from_slice(&payload);
            }
            let mut walker = FrameWalker::default();
            let mut seen = Vec::new();
            let mut rest = &all[..];
            while !rest.is_empty() {
                let n = rng.random_range(1..=rest.len().min(20));
                walker.feed(&rest[..n], |c| seen.push(c));
                rest = &rest[n..];
            }
            assert_eq!(seen, resets_of(&all));
        }
    }

    #[tokio::test]
    async fn the_preface_tells_the_protocol() {
        use tokio::io::AsyncReadExt;
        for (input, proto) in [
            (&PREFACE[..], Proto::Http2),
            (&b"GET / HTTP/1.1\r\n\r\n"[..], Proto::Http1),
            (&b"PRI * HTTP/1.1\r\n"[..], Proto::Http1),
            (&PREFACE[..10], Proto::Unknown),
        ] {
            let act = Activity::new();
            let mut w = Watched::new(input, act.clone(), None);
            let mut buf = [0u8; 3];
            while w.read(&mut buf).await.unwrap() > 0 {}
            assert_eq!(act.proto(), proto, "{input:?}");
        }
    }
}
