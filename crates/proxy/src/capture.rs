//! A bounded copy of a body's first bytes, taken while it streams, for the redacted
//! body sample in the access log (`log.bodies = "redacted"`). Forwarding never waits on
//! it and it never grows past its limit.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

#[derive(Debug, Default)]
struct Buf {
    data: BytesMut,
    truncated: bool,
}

/// Shared by the body that fills it and the access event that reads it.
#[derive(Debug, Clone)]
pub struct Capture {
    buf: Arc<Mutex<Buf>>,
    max: usize,
}

impl Capture {
    pub fn new(max: usize) -> Self {
        Capture {
            buf: Arc::new(Mutex::new(Buf::default())),
            max,
        }
    }

    pub fn push(&self, chunk: &[u8]) {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.max.saturating_sub(b.data.len());
        if chunk.len() > room {
            b.truncated = true;
        }
        let take = chunk.len().min(room);
        b.data.extend_from_slice(&chunk[..take]);
    }

    /// The captured prefix and whether the body was longer than that.
    pub fn take(&self) -> (Bytes, bool) {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let data = std::mem::take(&mut b.data).freeze();
        (data, b.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::Capture;

    #[test]
    fn keeps_at_most_max_bytes_and_says_so() {
        let c = Capture::new(5);
        c.push(b"abc");
        c.push(b"defgh");
        let (data, truncated) = c.take();
        assert_eq!(&data[..], b"abcde");
        assert!(truncated);
    }
}
