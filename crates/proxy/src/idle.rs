//! Idle connections are cut. hyper bounds none of this by itself: hyper-util's auto
//! builder waits for the first bytes (to tell HTTP/1 from HTTP/2) without a deadline,
//! HTTP/2 connections may sit without a stream for ever, and hyper's own HTTP/1 header
//! timer restarts as soon as a response is out, so it would cut keep-alive connections
//! at `header_read_timeout` instead of `idle_timeout`. One watchdog per connection
//! decides instead, from what the connection's IO ([`crate::conn_io::Watched`]) and its
//! service ([`Activity::request`]) report:
//!
//! - nothing in flight yet: the first request head (or the HTTP/2 preface) must arrive
//!   within `header_read_timeout` of the accept (after the TLS handshake); an HTTP/2
//!   connection whose preface came gets `idle_timeout` for its first stream;
//! - nothing in flight after a request: `idle_timeout`, from the end of the last
//!   response (HTTP/1.1: from the last byte written); once the next HTTP/1.1 head has
//!   started, `header_read_timeout` for the rest of it;
//! - a request in flight is never idle, however slow its upstream (its own timeouts
//!   apply), unless the client stops reading its response: writes blocked, or (HTTP/2
//!   flow control) a response body not asked for its next frame, for `idle_timeout`;
//! - while a tunnel (HTTP/1.1 101, HTTP/2 extended CONNECT) is open, nothing: the
//!   tunnel has its own idle timeout. The tunnel holds a [`TunnelHold`], taken from
//!   the [`Tunnels`] token the listener puts in each request's extensions; once the
//!   last one is dropped, an HTTP/2 connection is idle from then on like any other
//!   (an HTTP/1.1 connection has left hyper, and its watchdog, at the upgrade).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Response;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The two deadlines of `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

/// Why a connection was cut (all counted as `client_idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// No (complete) first request head, or no HTTP/2 preface, in time.
    NoRequest,
    /// An HTTP/2 connection without a stream for the idle timeout.
    NoStream,
    /// Nothing in flight for the idle timeout.
    KeepAlive,
    /// The next HTTP/1.1 head started and did not finish in time.
    SlowHead,
    /// The client stopped reading its response.
    NotReading,
}

impl Cut {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoRequest => "no request head within header_read_timeout",
            Self::NoStream => "no HTTP/2 stream within idle_timeout",
            Self::KeepAlive => "nothing in flight for idle_timeout",
            Self::SlowHead => "request head not complete within header_read_timeout",
            Self::NotReading => "client read nothing of its response for idle_timeout",
        }
    }
}

/// The protocol, as the first bytes read tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Unknown = 0,
    Http1 = 1,
    Http2 = 2,
}

/// What one connection is doing, shared by its IO, its service and its watchdog.
/// Instants are microseconds since the accept, plus one (0: never).
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    proto: AtomicU8,
    in_flight: AtomicUsize,
    served: AtomicBool,
    /// Tunnels open on this connection ([`TunnelHold`]s alive).
    tunnels: AtomicUsize,
    /// When the last request finished.
    idle_since: AtomicU64,
    /// When the first byte after `idle_since` came (HTTP/1.1: a new head began).
    head_since: AtomicU64,
    last_write: AtomicU64,
    /// Since when writes have been refused (0: they are not).
    blocked_since: AtomicU64,
    /// Response bodies whose next frame has not been asked for since `last_frame`.
    waiting: AtomicUsize,
    last_frame: AtomicU64,
    wake: Notify,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            proto: AtomicU8::new(Proto::Unknown as u8),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            tunnels: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            blocked_since: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            last_frame: AtomicU64::new(0),
            wake: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64 + 1
    }

    fn at(&self, stamp: u64, plus: Duration) -> Instant {
        self.start + Duration::from_micros(stamp.saturating_sub(1)) + plus
    }

    pub fn proto(&self) -> Proto {
        match self.proto.load(SeqCst) {
            1 => Proto::Http1,
            2 => Proto::Http2,
            _ => Proto::Unknown,
        }
    }

    pub(crate) fn set_proto(&self, p: Proto) {
        self.proto.store(p as u8, SeqCst);
    }

    /// Bytes came in.
    pub(crate) fn read(&self) {
        if self.served.load(SeqCst)
            && self.in_flight.load(SeqCst) == 0
            && self.head_since.load(SeqCst) == 0
            && self.proto() == Proto::Http1
        {
            self.head_since.store(self.now(), SeqCst);
            self.wake.notify_one();
        }
    }

    /// Bytes went out (or a flush completed).
    pub(crate) fn wrote(&self) {
        self.last_write.store(self.now(), SeqCst);
        self.unblocked();
    }

    /// A flush completed: nothing is waiting to go out.
    pub(crate) fn unblocked(&self) {
        if self.blocked_since.load(SeqCst) != 0 {
            self.blocked_since.store(0, SeqCst);
        }
    }

    /// A write or flush could not proceed.
    pub(crate) fn blocked(&self) {
        if self.blocked_since.load(SeqCst) == 0 {
            self.blocked_since.store(self.now(), SeqCst);
            self.wake.notify_one();
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, SeqCst);
        self.served.store(true, SeqCst);
        self.head_since.store(0, SeqCst);
        Busy {
            act: self.clone(),
            waiting: false,
        }
    }

    /// A request starts: it is in flight until its response body has ended or is
    /// dropped (see [`InFlight::respond`]).
    pub fn request(self: &Arc<Self>) -> InFlight {
        InFlight { busy: self.begin() }
    }

    /// The token a listener that serves upgrades puts in each request's extensions, for
    /// the tunnel the request may open.
    pub fn tunnels(self: &Arc<Self>) -> Tunnels {
        Tunnels(self.clone())
    }

    /// When the connection is to be cut if nothing changes, and why.
    fn deadline(&self, t: &Timeouts) -> Option<(Instant, Cut)> {
        let mut due: Option<(Instant, Cut)> = None;
        let mut consider = |at: Instant, why: Cut| {
            if due.is_none_or(|(d, _)| at < d) {
                due = Some((at, why));
            }
        };
        let blocked = self.blocked_since.load(SeqCst);
        if blocked != 0 {
            consider(self.at(blocked, t.idle), Cut::NotReading);
        }
        let proto = self.proto();
        if self.in_flight.load(SeqCst) > 0 {
            if proto == Proto::Http2 && self.waiting.load(SeqCst) > 0 {
                consider(
                    self.at(self.last_frame.load(SeqCst), t.idle),
                    Cut::NotReading,
                );
            }
        } else if !self.served.load(SeqCst) {
            match proto {
                Proto::Http2 => consider(self.at(1, t.idle), Cut::NoStream),
                _ => consider(self.at(1, t.header_read), Cut::NoRequest),
            }
        } else {
            let head = self.head_since.load(SeqCst);
            let idle = self.idle_since.load(SeqCst);
            match proto {
                Proto::Http1 if head != 0 => consider(self.at(head, t.header_read), Cut::SlowHead),
                // The end of the last response may still be on its way out.
                Proto::Http1 => consider(
                    self.at(idle.max(self.last_write.load(SeqCst)), t.idle),
                    Cut::KeepAlive,
                ),
                _ => consider(self.at(idle, t.idle), Cut::KeepAlive),
            }
        }
        due
    }

    /// Resolves when the connection has been idle for too long (never while a tunnel is
    /// open on it).
    ///
    /// Only changes that bring the deadline closer than `idle_timeout` wake it (a head
    /// that starts, a write that blocks); otherwise it looks again at least every
    /// `idle_timeout`, which is soon enough for anything due `idle_timeout` after it
    /// happened (a request that ended, a response waiting for its reader), and keeps
    /// the hot path free of wake-ups.
    pub async fn watchdog(self: Arc<Self>, t: Timeouts) -> Cut {
        loop {
            let changed = self.wake.notified();
            if self.tunnels.load(SeqCst) > 0 {
                // The last tunnel to close wakes us.
                changed.await;
                continue;
            }
            let at = match self.deadline(&t) {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => at,
                None => Instant::now() + t.idle,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = changed => {}
            }
        }
    }
}

/// A request on its way through the service.
pub struct InFlight {
    busy: Busy,
}

/// In each request's extensions: what a tunnel opened by the request holds on to
/// ([`Tunnels::hold`]) so that its connection is not cut as idle while it is open.
#[derive(Clone)]
pub struct Tunnels(Arc<Activity>);

impl Tunnels {
    pub fn hold(&self) -> TunnelHold {
        self.0.tunnels.fetch_add(1, SeqCst);
        TunnelHold(self.0.clone())
    }
}

impl std::fmt::Debug for Tunnels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tunnels")
    }
}

/// Held by an open tunnel: its connection is not idle. When the last one is dropped
/// the connection is idle from then on (HTTP/2: it may carry more streams).
pub struct TunnelHold(Arc<Activity>);

impl Drop for TunnelHold {
    fn drop(&mut self) {
        let act = &self.0;
        // Before the count drops, so the watchdog never pairs 0 with an old time.
        act.idle_since.store(act.now(), SeqCst);
        if act.tunnels.fetch_sub(1, SeqCst) == 1 {
            act.wake.notify_one();
        }
    }
}

impl InFlight {
    /// Awaits the service's answer; its body keeps the request in flight. (A tunnel the
    /// answer opens keeps the connection from being idle by its own [`TunnelHold`].)
    pub async fn respond<B, E>(
        self,
        answer: impl Future<Output = Result<Response<B>, E>>,
    ) -> Result<Response<Tracked<B>>, E> {
        let InFlight { mut busy } = self;
        let resp = answer.await?;
        busy.set_waiting(true);
        Ok(resp.map(|body| Tracked {
            body,
            busy: Some(busy),
        }))
    }
}

/// One request in flight.
struct Busy {
    act: Arc<Activity>,
    /// Whether this response counts in `waiting`.
    waiting: bool,
}

impl Busy {
    /// A response body frame went out (or the head): the next one is up to the client.
    fn set_waiting(&mut self, waiting: bool) {
        if waiting {
            self.act.last_frame.store(self.act.now(), SeqCst);
        }
        if waiting != self.waiting {
            self.waiting = waiting;
            if waiting {
                self.act.waiting.fetch_add(1, SeqCst);
            } else {
                self.act.waiting.fetch_sub(1, SeqCst);
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.set_waiting(false);
        // Before the count drops, so the watchdog never pairs 0 with an old time.
        self.act.idle_since.store(self.act.now(), SeqCst);
        self.act.in_flight.fetch_sub(1, SeqCst);
    }
}

/// A response body that keeps its request in flight until it ends.
pub struct Tracked<B> {
    body: B,
    busy: Option<Busy>,
}

impl<B> Body for Tracked<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        if let Some(b) = this.busy.as_mut() {
            b.set_waiting(false);
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) if !this.body.is_end_stream() => {
                if let Some(b) = this.busy.as_mut() {
                    b.set_waiting(true);
                }
            }
            Poll::Pending => {}
            _ => this.busy = None,
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    async fn cut_after(act: &Arc<Activity>) -> (Duration, Cut) {
        let start = Instant::now();
        let why = act.clone().watchdog(T).await;
        (start.elapsed(), why)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_request_gets_the_header_read_timeout() {
        let act = Activity::new();
        assert_eq!(
            cut_after(&act).await,
            (Duration::from_secs(10), Cut::NoRequest)
        );
        let act = Activity::new();
        act.set_proto(Proto::Http2);
        assert_eq!(
            cut_after(&act).await,
            (Duration::from_secs(60), Cut::NoStream)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_are_never_idle_and_keep_alive_counts_from_their_end() {
        let act = Activity::new();
        act.set_proto(Proto::Http1);
        let busy = act.begin();
        let dog = tokio::spawn(act.clone().watchdog(T));
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(!dog.is_finished());
        drop(busy);
        let started = Instant::now();
        assert_eq!(dog.await.unwrap(), Cut::KeepAlive);
        assert_eq!(started.elapsed(), Duration::from_secs(60));

        // A head that starts after the request has the header read timeout.
        let act = Activity::new();
        act.set_proto(Proto::Http1);
        drop(act.begin());
        tokio::time::sleep(Duration::from_secs(30)).await;
        act.read();
        assert_eq!(
            cut_after(&act).await,
            (Duration::from_secs(10), Cut::SlowHead)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_a_response_still_going_out_is_not_idle() {
        let act = Activity::new();
        act.set_proto(Proto::Http1);
        drop(act.begin());
        let dog = tokio::spawn(act.clone().watchdog(T));
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            act.wrote();
        }
        assert!(!dog.is_finished());
        let started = Instant::now();
        assert_eq!(dog.await.unwrap(), Cut::KeepAlive);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn blocked_writes_are_cut_unless_they_move() {
        let act = Activity::new();
        act.set_proto(Proto::Http1);
        let _busy = act.begin();
        let dog = tokio::spawn(act.clone().watchdog(T));
        for _ in 0..10 {
            act.blocked();
            tokio::time::sleep(Duration::from_secs(50)).await;
            act.wrote();
        }
        assert!(!dog.is_finished());
        act.blocked();
        let started = Instant::now();
        assert_eq!(dog.await.unwrap(), Cut::NotReading);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_response_nobody_asks_for_is_cut_on_time() {
        let act = Activity::new();
        act.set_proto(Proto::Http2);
        let mut busy = act.begin();
        let dog = tokio::spawn(act.clone().watchdog(T));
        tokio::time::sleep(Duration::from_secs(90)).await;
        // The body yields a frame; the client grants no window for the next one.
        busy.set_waiting(true);
        let started = Instant::now();
        assert_eq!(dog.await.unwrap(), Cut::NotReading);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn connections_with_an_open_tunnel_are_left_alone_until_it_closes() {
        let act = Activity::new();
        act.set_proto(Proto::Http2);
        let in_flight = act.request();
        let token = act.tunnels();
        let (one, two) = (token.hold(), token.hold());
        // The CONNECT stream's response is over; its tunnels go on.
        drop(in_flight);
        let dog = tokio::spawn(act.clone().watchdog(T));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(one);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!dog.is_finished());
        // Idle from when the last tunnel closed.
        drop(two);
        let closed = Instant::now();
        assert_eq!(dog.await.unwrap(), Cut::KeepAlive);
        assert_eq!(closed.elapsed(), Duration::from_secs(60));
    }
}
