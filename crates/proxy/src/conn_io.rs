//! A connection's IO as the idle watchdog ([`crate::idle`]) and the refusal counters see
//! it: which protocol the first bytes announce, when bytes move and when writes are
//! refused, and, on HTTP/2, every stream we reset with PROTOCOL_ERROR. h2 refuses a
//! malformed request (a connection-specific header, a bad pseudo-header, a body longer
//! than its content-length) on its own with such a reset and tells no one: the frames
//! we write are the only place it shows.
//!
//! Not every such reset is a malformed request. A stream we have answered already
//! (our HEADERS went out) has its own access event; h2 can still reset it with
//! PROTOCOL_ERROR for what the client sends after our answer. That is what happens
//! when we answer early (a 401 on the signature headers) while the client is still
//! uploading: curl stops sending and ends the stream with an empty DATA frame, short
//! of the content-length it announced, and h2 resets the stream for that. So the
//! frames both ways are followed, and only resets of streams we never answered count.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::idle::{Activity, Proto};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const END_STREAM: u8 = 1;
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
    /// HTTP/2: the frames both ways, when resets are counted.
    frames: Option<Streams>,
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

    /// Matches the first bytes read against the HTTP/2 preface; returns what follows the
    /// preface in `got` once it is complete (the client's first frames).
    fn sniff<'a>(&mut self, got: &'a [u8]) -> &'a [u8] {
        let want = &PREFACE[self.matched..];
        let n = got.len().min(want.len());
        if got[..n] != want[..n] {
            self.http1 = true;
            self.act.set_proto(Proto::Http1);
            return &[];
        }
        self.matched += n;
        if self.matched < PREFACE.len() {
            return &[];
        }
        self.act.set_proto(Proto::Http2);
        if self.on_reset.is_some() {
            self.frames.get_or_insert_with(Streams::default);
        }
        &got[n..]
    }

    fn sent(&mut self, bytes: &[u8]) {
        self.act.wrote();
        if self.frames.is_none() && self.on_reset.is_some() && self.matched > 0 && !self.http1 {
            // h2 may write its SETTINGS as soon as the protocol is chosen, before the
            // rest of the client's preface is read: our frames start with our first byte.
            self.frames = Some(Streams::default());
        }
        if let (Some(frames), Some(on_reset)) = (self.frames.as_mut(), self.on_reset.as_ref()) {
            frames.wrote(bytes, || on_reset());
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
                let frames = if this.act.proto() == Proto::Unknown {
                    this.sniff(got)
                } else {
                    got
                };
                if let Some(streams) = this.frames.as_mut() {
                    streams.read(frames);
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

/// One HTTP/2 frame, as far as [`FrameWalker`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    /// An RST_STREAM's error code.
    pub code: Option<u32>,
}

impl FrameHead {
    fn ends_stream(&self) -> bool {
        matches!(self.kind, DATA | HEADERS) && self.flags & END_STREAM != 0
    }
}

/// Follows one direction's HTTP/2 frames by their 9-byte headers, however the bytes
/// are cut, and reports each frame (an RST_STREAM once its error code is in).
#[derive(Debug, Default)]
pub struct FrameWalker {
    /// The frame header, and the error code of an RST_STREAM.
    head: [u8; 13],
    have: usize,
    /// Payload bytes of the current frame still to pass over.
    skip: usize,
}

impl FrameWalker {
    fn len(&self) -> usize {
        (self.head[0] as usize) << 16 | (self.head[1] as usize) << 8 | self.head[2] as usize
    }

    fn is_reset(&self) -> bool {
        self.head[3] == RST_STREAM && self.len() >= 4
    }

    pub fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(FrameHead)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let need = if self.have >= 9 && self.is_reset() {
                13
            } else {
                9
            };
            let n = (need - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < need || (need == 9 && self.is_reset()) {
                continue; // more header, or on to the reset's error code
            }
            let h = &self.head;
            frame(FrameHead {
                kind: h[3],
                flags: h[4],
                stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                code: (need == 13).then(|| u32::from_be_bytes([h[9], h[10], h[11], h[12]])),
            });
            self.skip = self.len() - (self.have - 9);
            self.have = 0;
        }
    }
}

/// Answered streams kept after both sides ended them (see [`Answered::closed`]).
const RECENTLY_CLOSED: usize = 1024;
/// Bounds on what a client that misbehaves can make [`Answered`] remember.
const MAX_TRACKED: usize = 4096;

const OURS: u8 = 1;
const THEIRS: u8 = 2;

/// The HTTP/2 frames both ways, to tell which of our PROTOCOL_ERROR resets refused a
/// request (a stream we never answered) and which came after our answer.
#[derive(Debug, Default)]
pub struct Streams {
    ours: FrameWalker,
    theirs: FrameWalker,
    answered: Answered,
}

impl Streams {
    /// Bytes the client sent (after the preface).
    pub fn read(&mut self, bytes: &[u8]) {
        let answered = &mut self.answered;
        self.theirs.feed(bytes, |f| {
            if f.ends_stream() {
                answered.ended(f.stream, THEIRS);
            } else if f.kind == RST_STREAM {
                answered.forget(f.stream);
            }
        });
    }

    /// Bytes we wrote; `refused` is called for each stream reset with PROTOCOL_ERROR
    /// that we had not answered.
    pub fn wrote(&mut self, bytes: &[u8], mut refused: impl FnMut()) {
        let answered = &mut self.answered;
        self.ours.feed(bytes, |f| {
            if f.kind == HEADERS {
                answered.answer(f.stream);
            }
            if f.ends_stream() {
                answered.ended(f.stream, OURS);
            } else if f.kind == RST_STREAM {
                if f.code == Some(PROTOCOL_ERROR) && !answered.is_answered(f.stream) {
                    refused();
                }
                answered.forget(f.stream);
            }
        });
    }
}

/// Which streams we answered, for as long as h2 may still reset them.
#[derive(Debug, Default)]
struct Answered {
    /// Answered streams still open, with the sides that have ended them.
    open: BTreeMap<u32, u8>,
    /// Streams the client ended before we answered them (a GET, a whole upload).
    ended_first: BTreeSet<u32>,
    /// Answered streams both sides have ended, the latest last. h2 may still reset
    /// one for the frame that ended it (short of its content-length) after we read
    /// it: the reset goes out after h2 has read what is there, and before the answers
    /// to streams it reads later.
    closed: VecDeque<u32>,
}

impl Answered {
    fn answer(&mut self, stream: u32) {
        if self.open.contains_key(&stream) {
            return; // trailers
        }
        let ended = if self.ended_first.remove(&stream) {
            THEIRS
        } else {
            0
        };
        self.open.insert(stream, ended);
        if self.open.len() > MAX_TRACKED {
            self.open.pop_first();
        }
    }

    fn ended(&mut self, stream: u32, side: u8) {
        match self.open.get_mut(&stream) {
            Some(ends) => {
                *ends |= side;
                if *ends == OURS | THEIRS {
                    self.open.remove(&stream);
                    self.closed.push_back(stream);
                    if self.closed.len() > RECENTLY_CLOSED {
                        self.closed.pop_front();
                    }
                }
            }
            None if side == THEIRS => {
                self.ended_first.insert(stream);
                if self.ended_first.len() > MAX_TRACKED {
                    self.ended_first.pop_first();
                }
            }
            None => {}
        }
    }

    /// The stream was reset: nothing more can come of it.
    fn forget(&mut self, stream: u32) {
        self.open.remove(&stream);
        self.ended_first.remove(&stream);
    }

    fn is_answered(&self, stream: u32) -> bool {
        self.open.contains_key(&stream) || self.closed.contains(&stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore};

    /// The dumb twin: the whole output at once, frame by frame.
    fn frames_of(all: &[u8]) -> Vec<FrameHead> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 9 <= all.len() {
            let len = (all[at] as usize) << 16 | (all[at + 1] as usize) << 8 | all[at + 2] as usize;
            let kind = all[at + 3];
            out.push(FrameHead {
                kind,
                flags: all[at + 4],
                stream: u32::from_be_bytes(all[at + 5..at + 9].try_into().unwrap()) & 0x7fff_ffff,
                code: (kind == RST_STREAM && len >= 4)
                    .then(|| u32::from_be_bytes(all[at + 9..at + 13].try_into().unwrap())),
            });
            at += 9 + len;
        }
        out
    }

    #[test]
    fn frames_are_found_however_they_are_cut() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let mut all = Vec::new();
            for _ in 0..rng.random_range(1..40) {
                let kind = rng.random_range(0..10u8);
                let len = match kind {
                    RST_STREAM => 4,
                    _ => rng.random_range(0..300usize),
                };
                all.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind]);
                all.push(rng.random());
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
                walker.feed(&rest[..n], |f| seen.push(f));
                rest = &rest[n..];
            }
            assert_eq!(seen, frames_of(&all));
        }
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn reset(stream: u32, code: u32) -> Vec<u8> {
        frame(RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    /// One direction's frames, as h2 writes them or the client sends them.
    enum Io {
        In(Vec<u8>),
        Out(Vec<u8>),
    }

    /// How many of our resets `Streams` counts, the bytes fed in pieces of `cut`.
    fn counted(script: &[Io], cut: usize) -> usize {
        let mut streams = Streams::default();
        let mut refused = 0;
        for io in script {
            match io {
                Io::In(b) => b.chunks(cut).for_each(|c| streams.read(c)),
                Io::Out(b) => b
                    .chunks(cut)
                    .for_each(|c| streams.wrote(c, || refused += 1)),
            }
        }
        refused
    }

    const SETTINGS: u8 = 4;
    const END_HEADERS: u8 = 4;
    const HEAD: &[u8] = &[0x83, 0x84]; // :method POST, :path / (never decoded here)

    /// What curl does when we answer before its upload: it ends the stream with an
    /// empty DATA frame short of its content-length, h2 resets the stream with
    /// PROTOCOL_ERROR for that (seen in h2's trace of
    /// `dingtalk::signed_callbacks_are_forwarded_intact_and_bad_ones_refused_with_401`).
    /// That reset refused no request: the 401 did, and has its own event.
    fn early_answer(stream: u32) -> Vec<Io> {
        vec![
            Io::In(frame(HEADERS, END_HEADERS, stream, HEAD)),
            Io::Out(
                [
                    frame(
                        HEADERS,
                        END_HEADERS,
                        stream,
                        &[0x48, 0x03, b'4', b'0', b'1'],
                    ),
                    frame(DATA, END_STREAM, stream, b"invalid signature\n"),
                ]
                .concat(),
            ),
            Io::In(frame(DATA, END_STREAM, stream, b"")),
            Io::Out(reset(stream, PROTOCOL_ERROR)),
        ]
    }

    #[test]
    fn a_reset_after_our_early_answer_is_not_a_malformed_request() {
        for cut in [1, 3, 7, 4096] {
            let mut script = vec![
                Io::Out(frame(SETTINGS, 0, 0, &[])),
                Io::In(frame(SETTINGS, 0, 0, &[])),
            ];
            script.extend(early_answer(1));
            assert_eq!(counted(&script, cut), 0, "cut every {cut}");
        }
    }

    #[test]
    fn resets_of_requests_never_answered_are_counted() {
        let script = [
            // A malformed head: h2 resets it before anyone sees it.
            Io::In(frame(HEADERS, END_STREAM | END_HEADERS, 1, HEAD)),
            Io::Out(reset(1, PROTOCOL_ERROR)),
            // A body longer than its content-length, before the answer.
            Io::In(frame(HEADERS, END_HEADERS, 3, HEAD)),
            Io::In(frame(DATA, 0, 3, b"more than announced")),
            Io::Out(reset(3, PROTOCOL_ERROR)),
            // Other resets are not refusals: a cancel, a refused stream.
            Io::In(frame(HEADERS, END_STREAM | END_HEADERS, 5, HEAD)),
            Io::Out(reset(5, 8)),
            Io::In(frame(HEADERS, END_STREAM | END_HEADERS, 7, HEAD)),
            Io::Out(reset(7, 7)),
        ];
        for cut in [1, 5, 4096] {
            assert_eq!(counted(&script, cut), 2, "cut every {cut}");
        }
    }

    #[test]
    fn answered_streams_are_forgotten_once_closed_and_recent_ones_still_known() {
        let mut streams = Streams::default();
        let mut refused = 0;
        // Many GETs, answered and closed.
        for s in (1..20_000u32).step_by(2) {
            streams.read(&frame(HEADERS, END_STREAM | END_HEADERS, s, HEAD));
            streams.wrote(&frame(HEADERS, END_HEADERS, s, &[0x88]), || refused += 1);
            streams.wrote(&frame(DATA, END_STREAM, s, b"ok"), || refused += 1);
        }
        let a = &streams.answered;
        assert!(a.open.is_empty() && a.ended_first.is_empty(), "{a:?}");
        assert_eq!(a.closed.len(), RECENTLY_CLOSED);
        // A stream answered early whose client goes on uploading while many others
        // come and go: the reset when it ends short is still after our answer.
        let script = early_answer(20_001);
        let [head, answer, end, last] = &script[..] else {
            unreachable!()
        };
        for io in [head, answer] {
            match io {
                Io::In(b) => streams.read(b),
                Io::Out(b) => streams.wrote(b, || refused += 1),
            }
        }
        for s in (20_003..40_000u32).step_by(2) {
            streams.read(&frame(DATA, 0, 20_001, b"uploading"));
            streams.read(&frame(HEADERS, END_STREAM | END_HEADERS, s, HEAD));
            streams.wrote(
                &frame(HEADERS, END_STREAM | END_HEADERS, s, &[0x88]),
                || refused += 1,
            );
        }
        let (Io::In(end), Io::Out(last)) = (end, last) else {
            unreachable!()
        };
        streams.read(end);
        streams.wrote(last, || refused += 1);
        assert_eq!(refused, 0);
        // Streams the client ended that h2 never answered (it reset them) are bounded.
        for s in (40_001..60_000u32).step_by(2) {
            streams.read(&frame(DATA, END_STREAM, s, b""));
        }
        assert!(streams.answered.ended_first.len() <= MAX_TRACKED);
    }

    /// A test IO: reads what the client sent, in pieces of `cut`; keeps what is written.
    struct Script {
        input: Vec<u8>,
        cut: usize,
        output: Vec<u8>,
    }

    impl AsyncRead for Script {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = self.cut.min(self.input.len()).min(buf.remaining());
            buf.put_slice(&self.input[..n]);
            self.input.drain(..n);
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Script {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.output.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Through the IO hyper is given: the client's frames start right after the
    /// preface, in the same read or a later one.
    #[tokio::test]
    async fn the_io_follows_both_directions_after_the_preface() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for cut in [1, 10, 24, 30, 4096] {
            let count = Arc::new(AtomicUsize::new(0));
            let c = count.clone();
            let on_reset: OnReset = Arc::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
            let script = Script {
                input: Vec::new(),
                cut,
                output: Vec::new(),
            };
            let mut w = Watched::new(script, Activity::new(), Some(on_reset));
            let mut buf = [0u8; 4096];
            let mut input = PREFACE.to_vec();
            input.extend(frame(SETTINGS, 0, 0, &[]));
            input.extend(frame(HEADERS, END_HEADERS, 1, HEAD)); // an upload
            input.extend(frame(HEADERS, END_STREAM | END_HEADERS, 3, HEAD)); // malformed
            w.io.input = input;
            while w.read(&mut buf).await.unwrap() > 0 {}
            w.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
            w.write_all(&frame(HEADERS, END_HEADERS, 1, &[0x88]))
                .await
                .unwrap();
            w.write_all(&frame(DATA, END_STREAM, 1, b"early"))
                .await
                .unwrap();
            w.write_all(&reset(3, PROTOCOL_ERROR)).await.unwrap();
            w.io.input = frame(DATA, END_STREAM, 1, b"");
            while w.read(&mut buf).await.unwrap() > 0 {}
            w.write_all(&reset(1, PROTOCOL_ERROR)).await.unwrap();
            assert_eq!(count.load(Ordering::SeqCst), 1, "reads cut every {cut}");
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
