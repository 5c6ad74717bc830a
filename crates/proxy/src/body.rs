//! Body wrappers. Bodies stream through frame by frame and are never buffered whole;
//! these wrappers only count bytes, enforce the request limits, and report the end of
//! a response so the access event carries the full latency and size.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use tokio::time::Sleep;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body clawveil sends, to the client or upstream.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// How a request body ended (or why it was cut).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BodyState {
    Streaming = 0,
    TooLarge = 1,
    TimedOut = 2,
    ClientError = 3,
}

/// Shared between the request body (which the upstream client consumes) and the
/// service (which decides the status when forwarding fails).
#[derive(Debug, Default)]
pub struct BodyStats {
    bytes: AtomicU64,
    state: AtomicU8,
    /// When the whole body had arrived (the upstream's response time counts from here).
    done_at: OnceLock<Instant>,
}

impl BodyStats {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// Counts bytes that went upstream outside a body (a tunnel's).
    pub fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    /// When the whole body had arrived, if it has.
    pub fn done_at(&self) -> Option<Instant> {
        self.done_at.get().copied()
    }
    /// Notes that the whole body has arrived.
    pub fn done(&self) {
        let _ = self.done_at.set(Instant::now());
    }
    pub fn state(&self) -> BodyState {
        match self.state.load(Ordering::Relaxed) {
            1 => BodyState::TooLarge,
            2 => BodyState::TimedOut,
            3 => BodyState::ClientError,
            _ => BodyState::Streaming,
        }
    }
    fn set(&self, s: BodyState) {
        self.state.store(s as u8, Ordering::Relaxed);
    }
}

/// Why a request body stopped; surfaces to the upstream client as a body error.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("request body did not arrive within the request timeout")]
    TimedOut,
    #[error("client body error")]
    Client(#[source] hyper::Error),
}

/// The client's body on its way upstream: counted, limited to `limits.max_body`, and
/// required to arrive within `limits.request_timeout`.
pub struct RequestBody<B> {
    /// Taken out when the limit is crossed, to be drained (see [`drain`]).
    inner: Option<B>,
    stats: Arc<BodyStats>,
    limit: u64,
    deadline: Pin<Box<Sleep>>,
    tee: Option<crate::capture::Capture>,
}

impl<B> RequestBody<B> {
    pub fn new(
        inner: B,
        stats: Arc<BodyStats>,
        limit: u64,
        timeout: Duration,
        tee: Option<crate::capture::Capture>,
    ) -> Self {
        RequestBody {
            inner: Some(inner),
            stats,
            limit,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            tee,
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin + Send + 'static,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = this
                        .stats
                        .bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if total > this.limit {
                        this.stats.set(BodyState::TooLarge);
                        if let Some(rest) = this.inner.take() {
                            drain(rest);
                        }
                        return Poll::Ready(Some(Err(RequestBodyError::TooLarge {
                            limit: this.limit,
                        }
                        .into())));
                    }
                    if let Some(t) = &this.tee {
                        t.push(data);
                    }
                }
                if this.inner.as_ref().is_some_and(|b| b.is_end_stream()) {
                    this.stats.done();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.stats.set(BodyState::ClientError);
                Poll::Ready(Some(Err(RequestBodyError::Client(e).into())))
            }
            Poll::Ready(None) => {
                this.stats.done();
                Poll::Ready(None)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.stats.set(BodyState::TimedOut);
                    Poll::Ready(Some(Err(RequestBodyError::TimedOut.into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_default()
    }
}

/// How much of a refused body is read and thrown away, at most.
const DRAIN_MAX_BYTES: u64 = 64 * 1024 * 1024;
const DRAIN_MAX_TIME: Duration = Duration::from_secs(5);

/// Reads and discards the rest of a refused request body (bounded in bytes and time),
/// so the client gets to read the 413 instead of a connection reset: closing a socket
/// with unread data makes the kernel send RST, and the client loses the response.
pub fn drain<B>(body: B)
where
    B: Body<Data = Bytes, Error = hyper::Error> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut body = body;
        let mut seen = 0u64;
        let _ = tokio::time::timeout(DRAIN_MAX_TIME, async {
            while seen < DRAIN_MAX_BYTES {
                match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                    Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => break,
                }
            }
        })
        .await;
    });
}

/// What the response body reports when it ends (or is dropped before its end).
#[derive(Debug, Clone, Copy)]
pub struct BodyEnd {
    pub bytes: u64,
    /// False when the client went away or the upstream broke off mid-body.
    pub complete: bool,
    /// True when the upstream broke off mid-body (rather than the client leaving).
    pub upstream_failed: bool,
}

type OnEnd = Box<dyn FnOnce(BodyEnd) + Send + Sync>;

/// The response on its way to the client: counted, and `on_end` runs exactly once.
pub struct ObservedBody {
    inner: ProxyBody,
    bytes: u64,
    failed: bool,
    on_end: Option<OnEnd>,
    tee: Option<crate::capture::Capture>,
}

impl ObservedBody {
    pub fn new(inner: ProxyBody, tee: Option<crate::capture::Capture>, on_end: OnEnd) -> Self {
        ObservedBody {
            inner,
            bytes: 0,
            failed: false,
            on_end: Some(on_end),
            tee,
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(f) = self.on_end.take() {
            f(BodyEnd {
                bytes: self.bytes,
                complete: complete && !self.failed,
                upstream_failed: self.failed,
            });
        }
    }
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                    if let Some(t) = &this.tee {
                        t.push(data);
                    }
                }
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.failed = true;
                this.finish(false);
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}
