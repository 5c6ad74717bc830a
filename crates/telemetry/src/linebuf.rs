//! The log writer. A request thread appends its finished line to a shared buffer
//! (a lock and a copy, no system call); one thread takes the whole buffer every few
//! milliseconds, or as soon as it is large, and writes it out in one go.
//!
//! A channel of lines with a thread that wakes for each one (what tracing-appender
//! does) costs a wake-up and a few context switches per request on a busy proxy.
//!
//! Nothing is dropped: when the output cannot keep up and the buffer reaches its
//! bound, writers wait for room. Lines reach the output at most [`INTERVAL`] late,
//! and every queued line is written when the [`Flusher`] is dropped.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a few lines may wait for more before they are written.
pub const INTERVAL: Duration = Duration::from_millis(20);
/// A buffer this large is written at once.
const EARLY: usize = 256 * 1024;
/// Writers wait for room beyond this.
const BOUND: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// The writer thread sleeps until a line arrives.
    idle: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer thread.
    wake: Condvar,
    /// Wakes writers waiting for room.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // a panic while holding the lock leaves a buffer of whole lines behind
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where tracing writes lines (`MakeWriter`).
#[derive(Clone)]
pub struct Lines(Arc<Shared>);

/// Writes what is queued and stops the writer thread when dropped.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread for `out`.
pub fn lines(out: Box<dyn Write + Send>) -> io::Result<(Lines, Flusher)> {
    let shared = Arc::new(Shared::default());
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("clawveil-log".into())
        .spawn(move || run(&s, out))?;
    Ok((
        Lines(shared.clone()),
        Flusher {
            shared,
            thread: Some(thread),
        },
    ))
}

fn run(shared: &Shared, mut out: Box<dyn Write + Send>) {
    let mut batch = Vec::new();
    loop {
        let mut st = shared.lock();
        loop {
            if st.closed || st.buf.len() >= EARLY {
                break;
            }
            if st.buf.is_empty() {
                st.idle = true;
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // a few lines: give others a moment to join them
            st = shared
                .wake
                .wait_timeout(st, INTERVAL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            break;
        }
        st.idle = false;
        std::mem::swap(&mut st.buf, &mut batch);
        let closed = st.closed && st.buf.is_empty();
        drop(st);
        shared.room.notify_all();
        if !batch.is_empty() {
            // A failing output (a closed pipe) cannot be reported through itself;
            // the lines are dropped rather than blocking the proxy.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

impl Write for Lines {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &*self.0;
        let mut st = shared.lock();
        while st.buf.len() >= BOUND && !st.closed {
            st = shared.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        let before = st.buf.len();
        st.buf.extend_from_slice(line);
        let wake = (st.idle && before == 0) || (before < EARLY && st.buf.len() >= EARLY);
        if wake {
            st.idle = false;
        }
        drop(st);
        if wake {
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An output that records what reached it, optionally slowly.
    #[derive(Clone, Default)]
    struct Sink {
        got: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Duration,
    }

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.delay);
            self.got.lock().unwrap().extend_from_slice(b);
            *self.writes.lock().unwrap() += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(s: &Sink) -> String {
        String::from_utf8(s.got.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn every_line_of_every_thread_arrives_whole_and_in_order() {
        let sink = Sink::default();
        let (lines, flusher) = lines(Box::new(sink.clone())).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = lines.clone();
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        w.write_all(
                            format!("thread {t} line {i} {}\n", "x".repeat(i % 300)).as_bytes(),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(flusher);
        let out = text(&sink);
        let mut next = [0usize; 4];
        for line in out.lines() {
            let mut parts = line.split(' ');
            let (_, t, _, i) = (parts.next(), parts.next(), parts.next(), parts.next());
            let t: usize = t.unwrap().parse().unwrap();
            let i: usize = i.unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t} out of order");
            assert_eq!(parts.next().unwrap().len(), i % 300, "{line}");
            next[t] += 1;
        }
        assert_eq!(next, [5000; 4]);
        // batched: far fewer writes than lines
        assert!(
            *sink.writes.lock().unwrap() < 2000,
            "{} writes",
            sink.writes.lock().unwrap()
        );
    }

    #[test]
    fn a_single_line_is_written_soon_without_more_traffic() {
        let sink = Sink::default();
        let (mut lines, _flusher) = lines(Box::new(sink.clone())).unwrap();
        lines.write_all(b"hello\n").unwrap();
        let start = Instant::now();
        while text(&sink).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "line never written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(text(&sink), "hello\n");
        // and again after the writer went idle
        lines.write_all(b"again\n").unwrap();
        while !text(&sink).ends_with("again\n") {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "second line never written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_slow_output_makes_writers_wait_and_loses_nothing() {
        let sink = Sink {
            delay: Duration::from_millis(30),
            ..Sink::default()
        };
        let (mut lines, flusher) = lines(Box::new(sink.clone())).unwrap();
        let line = vec![b'y'; 64 * 1024];
        let n = 2 * BOUND / line.len() + 10;
        for _ in 0..n {
            lines.write_all(&line).unwrap();
            lines.write_all(b"\n").unwrap();
        }
        drop(flusher);
        let out = text(&sink);
        assert_eq!(out.len(), n * (line.len() + 1));
        assert_eq!(out.lines().count(), n);
    }
}
