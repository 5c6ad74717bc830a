//! DingTalk event-subscription pushes (`verify = "dingtalk-event"`) through the real
//! binary: the SHA-1 signature over the sorted token, timestamp, nonce and `encrypt`,
//! and the AES-256-CBC envelope (format in `crates/proxy/src/dingtalk/event.rs`), all
//! built here.

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_256};
use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
use aws_lc_rs::iv::FixedLength;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::common::{sha256_hex, Harness, Opts};
use crate::dingtalk::{now_ms, post};
use crate::setup::{all_refusals, assert_one_refusal, start, still_serving};

const TOKEN: &str = "evtToken123";
const AES_TOKEN: &str = "evtToken456";
const OWNER: &str = "dingcorp0a1b2c3";
/// The raw AES-256 key; the configured `event_aes_key` is its Base64 without the `=`.
const KEY: [u8; 32] = *b"0123456789abcdefGHIJKLMNOPQRSTUV";

fn aes_key_text() -> String {
    STANDARD.encode(KEY).trim_end_matches('=').to_owned()
}

/// `hex(SHA1(concat(sorted([token, timestamp, nonce, encrypt]))))`.
fn event_signature(token: &str, ts: &str, nonce: &str, encrypt: &str) -> String {
    let mut parts = [token, ts, nonce, encrypt];
    parts.sort_unstable();
    digest(&SHA1_FOR_LEGACY_USE_ONLY, parts.concat().as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// AES-256-CBC (IV = the first 16 key bytes) of 16 random bytes, the message length
/// (4 bytes, big-endian), the message and the owner key, padded PKCS#7-style to 32.
fn seal(message: &[u8], owner: &[u8]) -> String {
    let mut plain = b"r4nd0m-16-bytes!".to_vec();
    plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
    plain.extend_from_slice(message);
    plain.extend_from_slice(owner);
    let pad = 32 - plain.len() % 32;
    plain.resize(plain.len() + pad, pad as u8);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&KEY[..16]);
    EncryptingKey::cbc(UnboundCipherKey::new(&AES_256, &KEY).unwrap())
        .unwrap()
        .less_safe_encrypt(&mut plain, EncryptionContext::Iv128(FixedLength::from(iv)))
        .unwrap();
    STANDARD.encode(plain)
}

/// A push: (path with its signed query, JSON body).
fn push(prefix: &str, token: &str, encrypt: &str, nonce: &str) -> (String, String) {
    let ts = now_ms().to_string();
    let sig = event_signature(token, &ts, nonce, encrypt);
    let body = serde_json::json!({ "encrypt": encrypt }).to_string();
    (
        format!("{prefix}sha?signature={sig}&timestamp={ts}&nonce={nonce}"),
        body,
    )
}

fn event_proxy() -> Harness {
    start(&Opts::default(), None, &[], |_, text| {
        format!(
            "{text}[[route]]\nname = \"event\"\npath_prefix = \"/event/\"\n\
             verify = \"dingtalk-event\"\nevent_token = \"{TOKEN}\"\nmax_skew = \"1h\"\n\
             [[route]]\nname = \"event-aes\"\npath_prefix = \"/event-aes/\"\n\
             verify = \"dingtalk-event\"\nevent_token = \"{AES_TOKEN}\"\nmax_skew = \"1h\"\n\
             event_aes_key = \"{}\"\nevent_owner_key = \"{OWNER}\"\n",
            aes_key_text()
        )
    })
}

#[test]
fn the_test_signer_matches_dingtalks_published_vector() {
    let encrypt = "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ==";
    assert_eq!(
        event_signature("123456", "1445827045067", "nEXhMP4r", encrypt),
        "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0"
    );
    assert_eq!(aes_key_text().len(), 43);
}

#[test]
fn signed_pushes_are_forwarded_and_tampered_ones_refused() {
    let h = event_proxy();
    let count = |prefix| h.upstream.requests_to(prefix).len();

    // Signature only (no AES key on this route): forwarded as sent.
    let (path, body) = push("/event/", TOKEN, "opaque-payload-1", "n0nce1");
    let (code, text) = post(&h, &path, &[], &body);
    assert_eq!((code, text), (200, sha256_hex(body.as_bytes())));
    assert_eq!(count("/event/"), 1);

    // The encrypted envelope, for the configured owner.
    let encrypt = seal(br#"{"EventType":"check_url"}"#, OWNER.as_bytes());
    let (path, body) = push("/event-aes/", AES_TOKEN, &encrypt, "n0nce2");
    let (code, text) = post(&h, &path, &[], &body);
    assert_eq!((code, text), (200, sha256_hex(body.as_bytes())));
    assert_eq!(count("/event-aes/"), 1);

    let mut refusals: Vec<(&str, String, String)> = Vec::new();
    // A signature with one digit changed.
    let (path, body) = push("/event/", TOKEN, "opaque-payload-2", "n0nce3");
    let i = path.find("signature=").unwrap() + "signature=".len();
    let flipped = if &path[i..=i] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &path[..i], &path[i + 1..]);
    refusals.push(("tampered signature", tampered, body));
    // A body other than the signed one.
    let (path, _) = push("/event/", TOKEN, "opaque-payload-3", "n0nce4");
    let other = serde_json::json!({ "encrypt": "opaque-payload-4" }).to_string();
    refusals.push(("substituted body", path, other));
    // Signed with another token.
    let (path, body) = push("/event/", "notTheToken", "opaque-payload-5", "n0nce5");
    refusals.push(("wrong token", path, body));
    // No query at all.
    let body = serde_json::json!({ "encrypt": "opaque-payload-6" }).to_string();
    refusals.push(("unsigned", "/event/sha".into(), body));
    // Correctly signed and encrypted, for another owner (corpId).
    let encrypt = seal(br#"{"EventType":"check_url"}"#, b"dingcorpOTHER");
    let (path, body) = push("/event-aes/", AES_TOKEN, &encrypt, "n0nce6");
    refusals.push(("wrong owner key", path, body));

    for (what, path, body) in refusals {
        let before = all_refusals(&h);
        let (code, text) = post(&h, &path, &[], &body);
        assert_eq!(
            (code, text.as_str()),
            (401, "invalid signature\n"),
            "{what}"
        );
        assert_eq!(
            (count("/event/"), count("/event-aes/")),
            (1, 1),
            "{what}: forwarded"
        );
        assert_one_refusal(&before, &all_refusals(&h), "signature_invalid");
        still_serving(&h);
    }

    // The same push again is acknowledged, not forwarded twice.
    let before = all_refusals(&h);
    let encrypt = seal(br#"{"EventType":"user_add_org"}"#, OWNER.as_bytes());
    let (path, body) = push("/event-aes/", AES_TOKEN, &encrypt, "n0nce7");
    assert_eq!(post(&h, &path, &[], &body).0, 200);
    assert_eq!(
        post(&h, &path, &[], &body),
        (200, "already delivered\n".into())
    );
    assert_eq!(count("/event-aes/"), 2);
    assert_one_refusal(&before, &all_refusals(&h), "replay");
}

#[test]
fn a_stale_push_is_refused_as_timestamp_skew() {
    let h = event_proxy();
    let ts = (now_ms() - 2 * 3600 * 1000).to_string();
    let sig = event_signature(TOKEN, &ts, "old1", "opaque");
    let path = format!("/event/sha?signature={sig}&timestamp={ts}&nonce=old1");
    let before = all_refusals(&h);
    let (code, _) = post(&h, &path, &[], r#"{"encrypt":"opaque"}"#);
    assert_eq!(code, 401);
    assert!(h.upstream.requests_to("/event/").is_empty());
    assert_one_refusal(&before, &all_refusals(&h), "timestamp_skew");
    still_serving(&h);
}
