//! Fuzzes the DingTalk callback checks (`clawveil_proxy::dingtalk`): robot
//! signatures, event pushes (query parsing, signature, AES envelope), `msgId`
//! extraction and the replay cache. Nothing may panic, and what the module
//! promises must hold:
//!
//! * a `sign` made by `robot_sign` over any secret and any valid timestamp
//!   verifies (also percent-encoded, also as the second of two secrets) when the
//!   timestamp is within `max_skew` of now, is `Skew` just outside, and is refused
//!   with one byte changed;
//! * an event push signed with `event_signature` over any token, nonce and
//!   `encrypt` passes the signature check, and one sealed with the AES key round
//!   trips its message;
//! * a `msgId` put in a JSON object comes back out;
//! * the replay cache answers a pair checked again at once consistently, and
//!   remembers a delivery marked at once.
//!
//! Run: `cargo +nightly fuzz run dingtalk -- -max_total_time=30` (from the repo root).
//!
//! The input is read as fields: a flag byte, five little-endian integers, then
//! byte strings each led by a one-byte length (cut short where the input ends);
//! the rest is a body, also read as replay-cache operations.

#![no_main]

use std::time::{Duration, Instant};

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_256};
use aws_lc_rs::iv::FixedLength;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clawveil_proxy::dingtalk::{
    aes_key_bytes, digest, event_signature, msg_id, robot_sign, verify_event, verify_robot,
    EventError, EventParams, PairCheck, ReplayCache, RobotError,
};
use libfuzzer_sys::fuzz_target;

/// The fuzz input, read front to back; reads past the end give zeros / empty.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u64(&mut self, width: usize) -> u64 {
        let mut buf = [0u8; 8];
        let b = self.take(width);
        buf[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(buf)
    }

    /// A length byte, then that many bytes.
    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Seals `message` and `owner` in DingTalk's envelope: AES-256-CBC, IV = the
/// first 16 key bytes, 32-byte PKCS#7 padding.
fn seal(key: &[u8; 32], random: &[u8], message: &[u8], owner: &[u8]) -> String {
    let mut plain = vec![0u8; 16];
    let n = random.len().min(16);
    plain[..n].copy_from_slice(&random[..n]);
    plain.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    plain.extend_from_slice(message);
    plain.extend_from_slice(owner);
    let pad = 32 - plain.len() % 32;
    plain.resize(plain.len() + pad, u8::try_from(pad).unwrap());
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&key[..16]);
    let enc = EncryptingKey::cbc(UnboundCipherKey::new(&AES_256, key).unwrap()).unwrap();
    enc.less_safe_encrypt(&mut plain, EncryptionContext::Iv128(FixedLength::from(iv)))
        .unwrap();
    STANDARD.encode(plain)
}

fuzz_target!(|data: &[u8]| {
    let mut f = Fields(data);
    let flags = f.u8();
    let skew = Duration::from_millis(f.u64(4));
    let skew_ms = u64::try_from(skew.as_millis()).unwrap();
    let now_ms = f.u64(8);
    let ts_num = f.u64(8);
    let delta = f.u64(8);
    let window = Duration::from_millis(f.u64(2));
    let secret = f.bytes();
    let other = f.bytes();
    let raw_ts = f.bytes();
    let raw_sign = f.bytes();
    let query = f.text();
    let token = f.text();
    let nonce = f.text();
    let key_material = f.bytes();
    let raw_aes_key = f.text();
    let owner = f.text();
    let message = f.bytes();
    let body = f.rest();

    // Robot callbacks, on raw headers: no panic, and an accepted request is in range.
    for (ts, sign) in [
        (Some(raw_ts), Some(raw_sign)),
        (None, Some(raw_sign)),
        (Some(raw_ts), None),
    ] {
        for secrets in [&[][..], &[secret][..], &[other, secret][..]] {
            if verify_robot(ts, sign, secrets, now_ms, skew).is_ok() {
                let t: u64 = std::str::from_utf8(raw_ts).unwrap().parse().unwrap();
                assert!(t.abs_diff(now_ms) <= skew_ms);
            }
        }
    }

    // A sign made by robot_sign verifies when the timestamp is in range.
    let width = usize::from(flags & 0x0f) + 1;
    let ts_text = format!("{ts_num:0width$}");
    let sign = robot_sign(secret, ts_text.as_bytes());
    assert_eq!(sign.len(), 44);
    let d = delta % skew_ms.saturating_add(1);
    let inside = if flags & 0x10 == 0 {
        ts_num.saturating_add(d)
    } else {
        ts_num.saturating_sub(d)
    };
    let secrets: &[&[u8]] = if flags & 0x20 == 0 {
        &[secret]
    } else {
        &[other, secret]
    };
    let verify = |sign: &[u8], now: u64| {
        verify_robot(Some(ts_text.as_bytes()), Some(sign), secrets, now, skew)
    };
    assert_eq!(verify(sign.as_bytes(), inside), Ok(()), "{ts_text} {sign}");
    let encoded = sign
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3d");
    assert_eq!(verify(encoded.as_bytes(), inside), Ok(()), "{encoded}");
    // just outside, either way: correctly signed, so Skew
    if let Some(late) = ts_num
        .checked_add(skew_ms)
        .and_then(|t| t.checked_add(1 + delta % 1000))
    {
        assert_eq!(verify(sign.as_bytes(), late), Err(RobotError::Skew));
    }
    if let Some(early) = ts_num
        .checked_sub(skew_ms)
        .and_then(|t| t.checked_sub(1 + delta % 1000))
    {
        assert_eq!(verify(sign.as_bytes(), early), Err(RobotError::Skew));
    }
    // one byte changed: refused
    let mut changed = sign.clone().into_bytes();
    let at = usize::try_from(delta % 44).unwrap();
    changed[at] ^= (flags >> 1) | 1;
    if secrets
        .iter()
        .all(|s| robot_sign(s, ts_text.as_bytes()).as_bytes() != changed)
    {
        assert!(verify(&changed, inside).is_err());
    }

    // Event pushes on a raw query and body, with no, a valid and a raw AES key.
    let mut key = [0u8; 32];
    let n = key_material.len().min(32);
    key[..n].copy_from_slice(&key_material[..n]);
    let aes_key = STANDARD.encode(key)[..43].to_owned();
    assert_eq!(aes_key_bytes(&aes_key), Ok(key));
    let _ = aes_key_bytes(&raw_aes_key);
    let params = EventParams::from_query(&query);
    for aes in [None, Some(aes_key.as_str()), Some(raw_aes_key.as_str())] {
        for owner_key in [None, Some(owner.as_str())] {
            for max_skew in [None, Some(skew)] {
                let _ = verify_event(&params, body, &token, aes, owner_key, now_ms, max_skew);
            }
        }
    }

    // An event push signed over any token, nonce and `encrypt` passes the signature
    // check; sealed with the key, its message comes back.
    let sealed = flags & 0x40 == 0;
    let encrypt = if sealed {
        seal(&key, raw_ts, message, owner.as_bytes())
    } else if flags & 0x80 == 0 {
        STANDARD.encode(message)
    } else {
        String::from_utf8_lossy(message).into_owned()
    };
    let signature = event_signature(&token, &ts_text, &nonce, &encrypt);
    let (sig_name, ts_name) = if flags & 0x20 == 0 {
        ("signature", "timestamp")
    } else {
        ("msg_signature", "timeStamp")
    };
    let q = format!(
        "{sig_name}={signature}&{ts_name}={}&nonce={}",
        pct(&ts_text),
        pct(&nonce),
    );
    let params = EventParams::from_query(&q);
    assert_eq!(params.signature.as_deref(), Some(signature.as_str()));
    assert_eq!(params.timestamp.as_deref(), Some(ts_text.as_str()));
    assert_eq!(params.nonce.as_deref(), Some(nonce.as_str()));
    let push = serde_json::json!({ "encrypt": encrypt }).to_string();
    let check = |aes: Option<&str>, owner_key: Option<&str>| {
        verify_event(
            &params,
            push.as_bytes(),
            &token,
            aes,
            owner_key,
            inside,
            Some(skew),
        )
    };
    assert_eq!(check(None, None), Ok(None));
    let opened = check(Some(&aes_key), Some(&owner));
    if sealed {
        assert_eq!(opened, Ok(Some(message.to_vec())));
    } else {
        assert!(
            matches!(
                opened,
                Ok(_) | Err(EventError::Decrypt | EventError::OwnerMismatch)
            ),
            "{opened:?}"
        );
    }

    // msgId: never a panic; one put in an object comes back.
    let _ = msg_id(body);
    let id = String::from_utf8_lossy(message);
    let wrapped = serde_json::json!({ "msgId": id, "text": { "content": nonce } }).to_string();
    assert_eq!(
        msg_id(wrapped.as_bytes()),
        (!id.is_empty()).then(|| id.clone().into_owned())
    );

    // The replay cache, driven by the body: 3 bytes an operation.
    let cache = ReplayCache::new(usize::from(flags >> 4));
    let start = Instant::now();
    let mut at = Duration::ZERO;
    let timestamps = [ts_text.as_str(), "1700000000000", &token];
    let signs = [sign.as_str(), encoded.as_str(), &nonce];
    for op in body.chunks_exact(3) {
        at += Duration::from_millis(u64::from(op[2]) * 16);
        let now = start + at;
        let ts = timestamps[usize::from(op[1]) % 3];
        let sg = signs[usize::from(op[1] >> 2) % 3];
        let id = timestamps[usize::from(op[1] >> 4) % 3];
        match op[0] % 3 {
            0 => {
                let d = digest(&op[..usize::from(op[1] >> 6)]);
                let first = cache.check_pair(ts, sg, d, now, window);
                let again = cache.check_pair(ts, sg, d, now, window);
                let want = match first {
                    PairCheck::Fresh | PairCheck::SameBody => PairCheck::SameBody,
                    PairCheck::OtherBody => PairCheck::OtherBody,
                };
                assert_eq!(again, want, "{first:?}");
            }
            1 => {
                let _ = cache.seen_delivered(id, now, window);
            }
            _ => {
                cache.mark_delivered(id, now);
                assert!(cache.seen_delivered(id, now, window));
            }
        }
    }
});
