//! Tests for [`super::ReplayCache`] and its helpers.

use super::*;

const TS: &str = "1700000000000";
const SIGN: &str = "pzoqtttnUsYaZqblbrqtJEdOhhV5Ck7wsSsrnmYnAqk=";
const WINDOW: Duration = Duration::from_secs(120);

#[test]
fn digest_is_sha256() {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    let d = digest(b"abc");
    assert_eq!(d[..4], [0xba, 0x78, 0x16, 0xbf]);
    assert_eq!(d[28..], [0xf2, 0x00, 0x15, 0xad]);
    assert_ne!(digest(b"abc"), digest(b"abd"));
}

#[test]
fn fresh_same_other() {
    let c = ReplayCache::new(100);
    let t0 = Instant::now();
    let a = digest(b"{\"text\":\"a\"}");
    let b = digest(b"{\"text\":\"b\"}");
    assert_eq!(c.check_pair(TS, SIGN, a, t0, WINDOW), PairCheck::Fresh);
    assert_eq!(c.check_pair(TS, SIGN, a, t0, WINDOW), PairCheck::SameBody);
    assert_eq!(c.check_pair(TS, SIGN, b, t0, WINDOW), PairCheck::OtherBody);
    // The first body stays the recorded one.
    assert_eq!(c.check_pair(TS, SIGN, a, t0, WINDOW), PairCheck::SameBody);
    // Another pair is independent.
    assert_eq!(
        c.check_pair("1700000000001", SIGN, b, t0, WINDOW),
        PairCheck::Fresh
    );
    assert_eq!(c.check_pair(TS, "other", b, t0, WINDOW), PairCheck::Fresh);
    // A percent-encoded sign is the same pair.
    let encoded = "pzoqtttnUsYaZqblbrqtJEdOhhV5Ck7wsSsrnmYnAqk%3d";
    assert_eq!(
        c.check_pair(TS, encoded, b, t0, WINDOW),
        PairCheck::OtherBody
    );
    assert_eq!(
        c.check_pair(TS, encoded, a, t0, WINDOW),
        PairCheck::SameBody
    );
}

#[test]
fn expiry_after_window() {
    let c = ReplayCache::new(100);
    let t0 = Instant::now();
    let a = digest(b"a");
    let b = digest(b"b");
    assert_eq!(c.check_pair(TS, SIGN, a, t0, WINDOW), PairCheck::Fresh);
    // Exactly at the window edge it is still remembered; repeated checks do not extend it.
    assert_eq!(
        c.check_pair(TS, SIGN, b, t0 + WINDOW, WINDOW),
        PairCheck::OtherBody
    );
    let later = t0 + WINDOW + Duration::from_millis(1);
    assert_eq!(c.check_pair(TS, SIGN, b, later, WINDOW), PairCheck::Fresh);
    assert_eq!(
        c.check_pair(TS, SIGN, a, later, WINDOW),
        PairCheck::OtherBody
    );
    // Expired entries are dropped from memory, not only ignored.
    let much_later = later + WINDOW * 2;
    assert_eq!(
        c.check_pair("1", "x", a, much_later, WINDOW),
        PairCheck::Fresh
    );
    assert_eq!(c.sizes()[..2], [1, 1]);
    // An earlier `now` (another thread's clock reading) does not count as expired.
    assert_eq!(
        c.check_pair("1", "x", a, later, WINDOW),
        PairCheck::SameBody
    );
}

#[test]
fn capacity_evicts_oldest_first() {
    let c = ReplayCache::new(3);
    let t0 = Instant::now();
    let d = digest(b"body");
    for i in 0..3 {
        let ts = i.to_string();
        assert_eq!(c.check_pair(&ts, SIGN, d, t0, WINDOW), PairCheck::Fresh);
    }
    assert_eq!(c.check_pair("3", SIGN, d, t0, WINDOW), PairCheck::Fresh);
    assert_eq!(c.sizes()[..2], [3, 3]);
    // "0" was the oldest and is gone; "1".."3" remain.
    for ts in ["1", "2", "3"] {
        assert_eq!(
            c.check_pair(ts, SIGN, d, t0, WINDOW),
            PairCheck::SameBody,
            "{ts}"
        );
    }
    assert_eq!(c.check_pair("0", SIGN, d, t0, WINDOW), PairCheck::Fresh);
    // Re-recording "0" evicted "1".
    assert_eq!(c.check_pair("1", SIGN, d, t0, WINDOW), PairCheck::Fresh);

    // Zero capacity still remembers the latest entry.
    let z = ReplayCache::new(0);
    assert_eq!(z.check_pair(TS, SIGN, d, t0, WINDOW), PairCheck::Fresh);
    assert_eq!(z.check_pair(TS, SIGN, d, t0, WINDOW), PairCheck::SameBody);
}

#[test]
fn re_recording_keeps_bounds() {
    // Expired keys re-recorded in place leave stale order entries; both stay bounded.
    let c = ReplayCache::new(4);
    let t0 = Instant::now();
    let d = digest(b"x");
    let short = Duration::from_millis(1);
    for step in 0..50u32 {
        let now = t0 + Duration::from_millis(u64::from(step) * 2);
        assert_eq!(c.check_pair(TS, SIGN, d, now, short), PairCheck::Fresh);
        c.mark_delivered("m", now);
        let [pm, po, dm, dord] = c.sizes();
        assert!(pm <= 4 && po <= 4 && dm <= 4 && dord <= 4);
        assert!(pm <= po && dm <= dord);
    }
    assert_eq!(c.sizes()[2], 1);
}

#[test]
fn msg_id_marked_only_when_told() {
    let c = ReplayCache::new(100);
    let t0 = Instant::now();
    assert!(!c.seen_delivered("msgA", t0, WINDOW));
    // Checking does not mark: a failed upstream delivery can be retried.
    assert!(!c.seen_delivered("msgA", t0, WINDOW));
    c.mark_delivered("msgA", t0);
    assert!(c.seen_delivered("msgA", t0 + WINDOW, WINDOW));
    assert!(!c.seen_delivered("msgB", t0, WINDOW));
    assert!(!c.seen_delivered("msgA", t0 + WINDOW + Duration::from_nanos(1), WINDOW));
    // Marking again refreshes it.
    c.mark_delivered("msgA", t0 + WINDOW);
    assert!(c.seen_delivered("msgA", t0 + WINDOW * 2, WINDOW));
    // Pairs and msgIds are separate tables.
    assert_eq!(
        c.check_pair("msgA", "", [0; 32], t0, WINDOW),
        PairCheck::Fresh
    );

    // Capacity applies to msgIds too.
    let small = ReplayCache::new(2);
    for id in ["a", "b", "c"] {
        small.mark_delivered(id, t0);
    }
    assert!(!small.seen_delivered("a", t0, WINDOW));
    assert!(small.seen_delivered("b", t0, WINDOW));
    assert!(small.seen_delivered("c", t0, WINDOW));
}

#[test]
fn msg_id_from_body() {
    let body = br#"{"conversationId":"cid","msgId":"msgXYZ==","text":{"content":"hi"}}"#;
    assert_eq!(msg_id(body).as_deref(), Some("msgXYZ=="));
    for bad in [
        &b""[..],
        b"not json",
        b"[]",
        br#""msgId""#,
        br#"{"msgId":1}"#,
        br#"{"msgId":""}"#,
        br#"{"msgid":"x"}"#,
        br#"{"inner":{"msgId":"x"}}"#,
        br#"{"msgId":"x""#,
    ] {
        assert_eq!(msg_id(bad), None, "{}", String::from_utf8_lossy(bad));
    }
    // Deep nesting is refused by the parser's depth limit, not a stack overflow.
    let deep = format!(
        "{{\"msgId\":\"x\",\"a\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(msg_id(deep.as_bytes()), None);
}

#[test]
fn concurrent_use() {
    let c = ReplayCache::new(10_000);
    let t0 = Instant::now();
    let same = digest(b"same");
    let results: Vec<Vec<PairCheck>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|t| {
                let c = &c;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..200u32 {
                        out.push(c.check_pair(TS, SIGN, same, t0, WINDOW));
                        // Each thread also records its own pairs and msgIds.
                        let ts = format!("{t}-{i}");
                        assert_eq!(c.check_pair(&ts, SIGN, same, t0, WINDOW), PairCheck::Fresh);
                        c.mark_delivered(&ts, t0);
                        assert!(c.seen_delivered(&ts, t0, WINDOW));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<PairCheck> = results.into_iter().flatten().collect();
    assert_eq!(all.iter().filter(|r| **r == PairCheck::Fresh).count(), 1);
    assert_eq!(
        all.iter().filter(|r| **r == PairCheck::SameBody).count(),
        all.len() - 1
    );
    assert_eq!(c.sizes(), [1_601, 1_601, 1_600, 1_600]);

    // Under a small capacity, many threads together never exceed it.
    let small = ReplayCache::new(50);
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let small = &small;
            s.spawn(move || {
                for i in 0..500u32 {
                    let ts = format!("{t}-{i}");
                    small.check_pair(&ts, SIGN, same, t0, WINDOW);
                    small.mark_delivered(&ts, t0);
                }
            });
        }
    });
    assert_eq!(small.sizes(), [50, 50, 50, 50]);
}
