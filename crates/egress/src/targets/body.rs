//! Bodies on the target path.
//!
//! Requests: read into a bounded buffer first (the fallback's replay needs the bytes,
//! and the model label reads them). A body that fits is sent as it is, to the primary
//! and, if need be, again to the fallback; a larger one is sent once, the buffered part
//! first and the rest as it arrives, and never replayed. The bytes are never changed.
//!
//! Responses: passed on frame by frame as they arrive (server-sent events are never
//! held back), counted, with the time of the first byte, and reported once when the
//! body ends, fails, or the bot goes away.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::Instant;

use super::event::{End, Exchange};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a request to a target.
pub(crate) type UpstreamBody = BoxBody<Bytes, BoxError>;

/// A request body after the bounded read.
pub(crate) enum RequestBody {
    /// All of it: can be sent twice.
    Whole(Bytes),
    /// Larger than the buffer: what was read, then the rest (sent once).
    Partial { head: Bytes, rest: Incoming },
}

impl RequestBody {
    /// Reads until the end or until more than `limit` bytes have arrived.
    pub(crate) async fn read(
        mut body: Incoming,
        limit: usize,
    ) -> Result<RequestBody, hyper::Error> {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            // Trailers are not passed on.
            if let Ok(data) = frame?.into_data() {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    return Ok(RequestBody::Partial {
                        head: buf.freeze(),
                        rest: body,
                    });
                }
            }
        }
        Ok(RequestBody::Whole(buf.freeze()))
    }

    /// The bytes read so far (all of a whole body).
    pub(crate) fn head(&self) -> &[u8] {
        match self {
            RequestBody::Whole(b) | RequestBody::Partial { head: b, .. } => b,
        }
    }

    /// The bytes to send again, if the body can be replayed.
    pub(crate) fn replay(&self) -> Option<Bytes> {
        match self {
            RequestBody::Whole(b) => Some(b.clone()),
            RequestBody::Partial { .. } => None,
        }
    }

    /// The body for the first attempt; `sent` counts what of it went out.
    pub(crate) fn into_upstream(self, sent: Arc<AtomicU64>) -> UpstreamBody {
        match self {
            RequestBody::Whole(b) => {
                sent.store(b.len() as u64, Ordering::Relaxed);
                whole(b)
            }
            RequestBody::Partial { head, rest } => Prefixed {
                head: Some(head),
                rest,
                sent,
            }
            .boxed(),
        }
    }
}

/// A buffered body, as sent to the fallback.
pub(crate) fn whole(bytes: Bytes) -> UpstreamBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

/// The buffered part, then the rest of the client's body.
struct Prefixed {
    head: Option<Bytes>,
    rest: Incoming,
    sent: Arc<AtomicU64>,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(head) = this.head.take() {
            this.sent.fetch_add(head.len() as u64, Ordering::Relaxed);
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        loop {
            return match Pin::new(&mut this.rest).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    // Trailers are not passed on.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }
}

/// A target's response body on its way to the bot.
pub(crate) struct Metered {
    inner: Incoming,
    bytes: u64,
    first_byte: Option<Duration>,
    started: Instant,
    exchange: Option<Exchange>,
}

impl Metered {
    pub(crate) fn new(inner: Incoming, exchange: Exchange) -> Metered {
        Metered {
            inner,
            bytes: 0,
            first_byte: None,
            started: exchange.started,
            exchange: Some(exchange),
        }
    }

    fn end(&mut self, end: End) {
        if let Some(ex) = self.exchange.take() {
            ex.finished(self.bytes, self.first_byte, end);
        }
    }
}

impl Body for Metered {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if !data.is_empty() && this.first_byte.is_none() {
                        this.first_byte = Some(this.started.elapsed());
                    }
                    this.bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.end(End::Complete);
                }
            }
            Poll::Ready(Some(Err(_))) => this.end(End::UpstreamBroke),
            Poll::Ready(None) => this.end(End::Complete),
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

impl Drop for Metered {
    fn drop(&mut self) {
        // An empty body may never be polled; any other dropped before its end means
        // the bot went away (or its connection was cut).
        let end = if self.inner.is_end_stream() {
            End::Complete
        } else {
            End::ClientGone
        };
        self.end(end);
    }
}
