//! Replay protection for robot callbacks (`replay = true`).
//!
//! The robot `sign` covers only the timestamp, so a captured `(timestamp, sign)` pair
//! authenticates *any* body while the timestamp is within `max_skew`. [`ReplayCache`]
//! remembers every accepted pair with the digest of its body, so a reused pair with a
//! different body can be refused, and remembers the `msgId`s the bot has already
//! accepted, so a redelivery is not passed on twice.
//!
//! Memory is bounded: each of the two tables holds at most `capacity` entries (oldest
//! evicted first), and entries older than the window are dropped. Keys are stored as
//! SHA-256 digests, so an entry has a fixed size whatever the header or body sent.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{self as sha, SHA256};

use super::percent_decode;

/// What [`ReplayCache::check_pair`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairCheck {
    /// Not seen within the window; it is now recorded with this body's digest.
    Fresh,
    /// Seen within the window with the same body: a redelivery (deduplicate it by
    /// `msgId`, see [`ReplayCache::seen_delivered`]).
    SameBody,
    /// Seen within the window with a different body: a replayed signature carrying a
    /// substituted body. Refuse it.
    OtherBody,
}

/// SHA-256 of `body`, the digest [`ReplayCache::check_pair`] takes.
pub fn digest(body: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(sha::digest(&SHA256, body).as_ref());
    out
}

/// The top-level string `msgId` of a robot callback body, if the body is a JSON object
/// that has one and it is not empty. `None` for anything else (not JSON, not an
/// object, missing, not a string). The caller bounds the body size; `serde_json` bounds
/// the nesting depth.
pub fn msg_id(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Object(mut map) => match map.remove("msgId")? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// One remembered key.
struct Entry<V> {
    seq: u64,
    at: Instant,
    value: V,
}

/// A map with insertion order, bounded in size and age.
struct Table<V> {
    map: HashMap<[u8; 32], Entry<V>>,
    /// Insertion order. An element whose `seq` differs from the map entry's is stale
    /// (the key was inserted again later) and removes nothing when popped. Its length
    /// is kept `<= capacity`, which also bounds the map (every map entry has one).
    order: VecDeque<(u64, [u8; 32], Instant)>,
}

impl<V> Table<V> {
    fn new() -> Self {
        Table {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn pop_front(&mut self) {
        if let Some((seq, key, _)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
            }
        }
    }

    /// Drops entries older than `window` from the front of the insertion order.
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(_, _, at)) = self.order.front() {
            if now.saturating_duration_since(at) <= window {
                break;
            }
            self.pop_front();
        }
    }

    /// The value for `key` if it was recorded at most `window` before `now`.
    fn get(&self, key: &[u8; 32], now: Instant, window: Duration) -> Option<&V> {
        self.map
            .get(key)
            .filter(|e| now.saturating_duration_since(e.at) <= window)
            .map(|e| &e.value)
    }

    /// Records (or re-records) `key`, evicting the oldest entries beyond `capacity`.
    fn insert(&mut self, key: [u8; 32], value: V, now: Instant, seq: u64, capacity: usize) {
        self.map.insert(
            key,
            Entry {
                seq,
                at: now,
                value,
            },
        );
        self.order.push_back((seq, key, now));
        while self.order.len() > capacity {
            self.pop_front();
        }
    }
}

struct Inner {
    seq: u64,
    pairs: Table<[u8; 32]>,
    delivered: Table<()>,
}

/// A bounded, thread-safe memory of recent robot `(timestamp, sign)` pairs and of
/// delivered `msgId`s.
///
/// All methods take `&self` (a `std::sync::Mutex` inside, held only for a few map
/// operations) and never block on anything else. Use one cache per route, with one
/// `window` per cache: expiry walks the insertion order with the `window` of the
/// current call, so mixing windows on one cache can forget entries early.
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The key of a pair: SHA-256 of the length-prefixed timestamp and the sign with any
/// percent-encoding removed, so `...%3D` and `...=` (which both verify) are one pair.
fn pair_key(timestamp: &str, sign: &str) -> [u8; 32] {
    let decoded = if sign.contains('%') {
        percent_decode(sign.as_bytes(), false)
    } else {
        None
    };
    let sign = decoded.as_deref().unwrap_or(sign.as_bytes());
    let mut ctx = sha::Context::new(&SHA256);
    ctx.update(&(timestamp.len() as u64).to_be_bytes());
    ctx.update(timestamp.as_bytes());
    ctx.update(sign);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl ReplayCache {
    /// A cache holding at most `capacity` pairs and, separately, at most `capacity`
    /// delivered `msgId`s (a `capacity` of 0 is treated as 1, so the cache never
    /// silently stops protecting). Memory is allocated as entries arrive.
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                seq: 0,
                pairs: Table::new(),
                delivered: Table::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the tables inconsistent in a
        // way that matters here (at worst an entry is missing), so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a verified robot `(timestamp, sign)` pair against the pairs seen in the
    /// last `window`, recording it with `body_digest` (see [`digest`]) if it is new.
    ///
    /// Guarantees: for a given pair within `window` exactly one caller (across threads)
    /// gets [`PairCheck::Fresh`]; later callers get [`PairCheck::SameBody`] or
    /// [`PairCheck::OtherBody`] by comparing digests. A repeated call does not extend
    /// the entry's life. A pair older than `window`, or evicted because `capacity`
    /// newer pairs arrived since, is `Fresh` again, so `window` should be at least the
    /// time a pair stays valid: `2 × max_skew` covers a DingTalk clock ahead of ours.
    /// Percent-encoding in `sign` is removed before comparing.
    pub fn check_pair(
        &self,
        timestamp: &str,
        sign: &str,
        body_digest: [u8; 32],
        now: Instant,
        window: Duration,
    ) -> PairCheck {
        let key = pair_key(timestamp, sign);
        let mut inner = self.lock();
        inner.pairs.expire(now, window);
        match inner.pairs.get(&key, now, window) {
            Some(seen) if *seen == body_digest => PairCheck::SameBody,
            Some(_) => PairCheck::OtherBody,
            None => {
                inner.seq += 1;
                let seq = inner.seq;
                inner
                    .pairs
                    .insert(key, body_digest, now, seq, self.capacity);
                PairCheck::Fresh
            }
        }
    }

    /// True when `msg_id` was passed to [`mark_delivered`](Self::mark_delivered) at most
    /// `window` before `now` (and not evicted since by `capacity` newer marks).
    ///
    /// This only reads: two concurrent deliveries of one `msgId` can both see `false`
    /// before either is marked; the pair check is what stops concurrent replays.
    pub fn seen_delivered(&self, msg_id: &str, now: Instant, window: Duration) -> bool {
        let key = digest(msg_id.as_bytes());
        let mut inner = self.lock();
        inner.delivered.expire(now, window);
        inner.delivered.get(&key, now, window).is_some()
    }

    /// Records `msg_id` as delivered at `now` (refreshing an earlier mark). Call it only
    /// after the bot answered 2xx: a delivery that failed upstream must stay retryable.
    pub fn mark_delivered(&self, msg_id: &str, now: Instant) {
        let key = digest(msg_id.as_bytes());
        let mut inner = self.lock();
        inner.seq += 1;
        let seq = inner.seq;
        inner.delivered.insert(key, (), now, seq, self.capacity);
    }

    /// (pairs, delivered) entry counts and insertion-order lengths, for tests.
    #[cfg(test)]
    fn sizes(&self) -> [usize; 4] {
        let inner = self.lock();
        [
            inner.pairs.map.len(),
            inner.pairs.order.len(),
            inner.delivered.map.len(),
            inner.delivered.order.len(),
        ]
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
