//! Tests for [`super`]: DingTalk's published vector, tampering, envelopes built here.

use super::*;
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext};

const TOKEN: &str = "123456";
const AES_KEY: &str = "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij";
const OWNER: &str = "suite4xxxxxxxxxxxxxxx";
const TIMESTAMP: &str = "1445827045067";
const NONCE: &str = "nEXhMP4r";
const SIGNATURE: &str = "5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0";
const ENCRYPT: &str = "1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JVYa9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0pZcy0w9lQ==";
const MESSAGE: &str = r#"{"EventType":"check_create_suite_url","Random":"LPIdSnlF","TestSuiteKey":"suite4xxxxxxxxxxxxxxx"}"#;
const VECTOR_NOW: u64 = 1_445_827_045_067;

fn params<'a>(signature: &'a str, timestamp: &'a str, nonce: &'a str) -> EventParams<'a> {
    EventParams {
        signature: Some(signature.into()),
        timestamp: Some(timestamp.into()),
        nonce: Some(nonce.into()),
    }
}

fn body(encrypt: &str) -> Vec<u8> {
    serde_json::json!({ "encrypt": encrypt })
        .to_string()
        .into_bytes()
}

/// Verifies with the vector's token, AES key and owner, and no skew check.
fn check(p: &EventParams<'_>, encrypt: &str) -> Result<Option<Vec<u8>>, EventError> {
    verify_event(
        p,
        &body(encrypt),
        TOKEN,
        Some(AES_KEY),
        Some(OWNER),
        0,
        None,
    )
}

/// Encrypts an already padded plaintext with `aes_key` the way DingTalk does.
fn seal_raw(aes_key: &str, mut plain: Vec<u8>) -> String {
    let key = aes_key_bytes(aes_key).unwrap();
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&key[..16]);
    let enc = EncryptingKey::cbc(UnboundCipherKey::new(&AES_256, &key).unwrap()).unwrap();
    enc.less_safe_encrypt(&mut plain, EncryptionContext::Iv128(FixedLength::from(iv)))
        .unwrap();
    STANDARD.encode(plain)
}

/// The unpadded envelope: 16 "random" bytes, length, message, owner.
fn envelope(message: &[u8], owner: &[u8]) -> Vec<u8> {
    let mut p = b"0123456789abcdef".to_vec();
    p.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    p.extend_from_slice(message);
    p.extend_from_slice(owner);
    p
}

/// Correct 32-byte PKCS#7 padding.
fn pad32(mut p: Vec<u8>) -> Vec<u8> {
    let n = 32 - p.len() % 32;
    p.resize(p.len() + n, u8::try_from(n).unwrap());
    p
}

/// Seals `plain` and returns (encrypt, signature over it with the vector's token).
fn signed(plain: Vec<u8>) -> (String, String) {
    let encrypt = seal_raw(AES_KEY, plain);
    let sig = event_signature(TOKEN, TIMESTAMP, NONCE, &encrypt);
    (encrypt, sig)
}

#[test]
fn published_vector() {
    assert_eq!(event_signature(TOKEN, TIMESTAMP, NONCE, ENCRYPT), SIGNATURE);
    let p = params(SIGNATURE, TIMESTAMP, NONCE);
    let msg = check(&p, ENCRYPT).unwrap().unwrap();
    assert_eq!(msg.len(), 97);
    assert_eq!(msg, MESSAGE.as_bytes());
    // At the vector's own time, with a skew check.
    let skew = Some(Duration::from_secs(300));
    let out = verify_event(
        &p,
        &body(ENCRYPT),
        TOKEN,
        Some(AES_KEY),
        Some(OWNER),
        VECTOR_NOW,
        skew,
    );
    assert_eq!(out.unwrap().as_deref(), Some(MESSAGE.as_bytes()));
    // Without an owner key the trailer is not checked.
    let out = verify_event(&p, &body(ENCRYPT), TOKEN, Some(AES_KEY), None, 0, None);
    assert_eq!(out.unwrap().as_deref(), Some(MESSAGE.as_bytes()));
    // Without an AES key only the signature is checked.
    let out = verify_event(&p, &body(ENCRYPT), TOKEN, None, Some(OWNER), 0, None);
    assert_eq!(out, Ok(None));
}

#[test]
fn published_vector_is_stale_today() {
    let p = params(SIGNATURE, TIMESTAMP, NONCE);
    let skew = Some(Duration::from_secs(300));
    let now = 1_700_000_000_000;
    let out = verify_event(
        &p,
        &body(ENCRYPT),
        TOKEN,
        Some(AES_KEY),
        Some(OWNER),
        now,
        skew,
    );
    assert_eq!(out, Err(EventError::Skew));
    // Both directions, inclusive bound.
    let b = body(ENCRYPT);
    let at = |now| verify_event(&p, &b, TOKEN, None, None, now, skew);
    assert_eq!(at(VECTOR_NOW + 300_000), Ok(None));
    assert_eq!(at(VECTOR_NOW - 300_000), Ok(None));
    assert_eq!(at(VECTOR_NOW + 300_001), Err(EventError::Skew));
    assert_eq!(at(VECTOR_NOW - 300_001), Err(EventError::Skew));
}

#[test]
fn tampered_ciphertext_is_bad_signature() {
    let p = params(SIGNATURE, TIMESTAMP, NONCE);
    let mut raw = STANDARD.decode(ENCRYPT).unwrap();
    raw[40] ^= 0x01;
    assert_eq!(
        check(&p, &STANDARD.encode(&raw)),
        Err(EventError::BadSignature)
    );
    let mut text = ENCRYPT.to_owned();
    text.replace_range(0..1, "2");
    assert_eq!(check(&p, &text), Err(EventError::BadSignature));
    // Also refused when stale: forgery is reported first.
    let out = verify_event(&p, &body(&text), TOKEN, None, None, 0, Some(Duration::ZERO));
    assert_eq!(out, Err(EventError::BadSignature));
}

#[test]
fn tampered_or_malformed_signature() {
    let mut sig = SIGNATURE.to_owned();
    sig.replace_range(39..40, "1");
    assert_eq!(
        check(&params(&sig, TIMESTAMP, NONCE), ENCRYPT),
        Err(EventError::BadSignature)
    );
    for bad in [
        "",
        "5a65",
        &SIGNATURE[..39],
        &format!("{SIGNATURE}0"),
        &SIGNATURE.replace('a', "g"),
    ] {
        assert_eq!(
            check(&params(bad, TIMESTAMP, NONCE), ENCRYPT),
            Err(EventError::BadSignature),
            "{bad}"
        );
    }
    // Upper-case hex is accepted.
    let upper = SIGNATURE.to_ascii_uppercase();
    assert!(check(&params(&upper, TIMESTAMP, NONCE), ENCRYPT).is_ok());
    // The timestamp and nonce are covered.
    assert_eq!(
        check(&params(SIGNATURE, "1445827045068", NONCE), ENCRYPT),
        Err(EventError::BadSignature)
    );
    assert_eq!(
        check(&params(SIGNATURE, TIMESTAMP, "nEXhMP4s"), ENCRYPT),
        Err(EventError::BadSignature)
    );
    // So is the token.
    let p = params(SIGNATURE, TIMESTAMP, NONCE);
    let out = verify_event(&p, &body(ENCRYPT), "654321", Some(AES_KEY), None, 0, None);
    assert_eq!(out, Err(EventError::BadSignature));
}

#[test]
fn wrong_owner_key() {
    let p = params(SIGNATURE, TIMESTAMP, NONCE);
    let b = body(ENCRYPT);
    for owner in [
        "suite4xxxxxxxxxxxxxxy",
        "suite4xxxxxxxxxxxxxx",
        "suite4xxxxxxxxxxxxxxxx",
        "",
    ] {
        let out = verify_event(&p, &b, TOKEN, Some(AES_KEY), Some(owner), 0, None);
        assert_eq!(out, Err(EventError::OwnerMismatch), "{owner}");
    }
}

#[test]
fn wrong_aes_key_with_valid_signature_is_decrypt() {
    let other = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    assert!(aes_key_bytes(other).is_ok());
    let p = params(SIGNATURE, TIMESTAMP, NONCE);
    let out = verify_event(&p, &body(ENCRYPT), TOKEN, Some(other), Some(OWNER), 0, None);
    assert_eq!(out, Err(EventError::Decrypt));
}

#[test]
fn own_envelope_round_trips() {
    for msg in [&b""[..], b"x", &[b'm'; 31], &[b'm'; 32], &[b'm'; 1000]] {
        let (encrypt, sig) = signed(pad32(envelope(msg, OWNER.as_bytes())));
        let out = check(&params(&sig, TIMESTAMP, NONCE), &encrypt);
        assert_eq!(out.unwrap().as_deref(), Some(msg));
    }
    // An envelope with no owner trailer passes only when no owner key is configured.
    let (encrypt, sig) = signed(pad32(envelope(b"hi", b"")));
    let p = params(&sig, TIMESTAMP, NONCE);
    assert_eq!(check(&p, &encrypt), Err(EventError::OwnerMismatch));
    let out = verify_event(&p, &body(&encrypt), TOKEN, Some(AES_KEY), None, 0, None);
    assert_eq!(out.unwrap().as_deref(), Some(&b"hi"[..]));
}

#[test]
fn bad_padding_is_decrypt() {
    let base = envelope(b"hello", OWNER.as_bytes()); // 46 bytes; 18 bytes of pad needed
    let with_pad = |fill: &[u8]| {
        let mut p = base.clone();
        p.extend_from_slice(fill);
        p
    };
    let cases: Vec<Vec<u8>> = vec![
        // Pad byte 0.
        with_pad(&[0u8; 18]),
        // Consistent bytes but the value does not match the count.
        with_pad(&[19u8; 18]),
        // One wrong byte inside the padding.
        with_pad(&{
            let mut f = [18u8; 18];
            f[3] = 19;
            f
        }),
        // Pad value over 32: 64 bytes of 0x21 after a 64-byte-aligned body.
        {
            let mut p = pad32(base.clone());
            p.extend_from_slice(&[33u8; 32]);
            let n = p.len();
            p[n - 33..].fill(33);
            p
        },
        // Valid 16-byte-block PKCS#7 (pad 2), but not a 32-byte multiple.
        with_pad(&[2u8; 2]),
    ];
    for plain in cases {
        assert_eq!(plain.len() % 16, 0);
        let (encrypt, sig) = signed(plain.clone());
        let out = check(&params(&sig, TIMESTAMP, NONCE), &encrypt);
        assert_eq!(out, Err(EventError::Decrypt), "{plain:?}");
    }
}

#[test]
fn bad_envelope_is_decrypt() {
    // Length field runs past the end.
    let mut p = envelope(b"hello", b"");
    p[16..20].copy_from_slice(&6u32.to_be_bytes());
    let (encrypt, sig) = signed(pad32(p));
    assert_eq!(
        check(&params(&sig, TIMESTAMP, NONCE), &encrypt),
        Err(EventError::Decrypt)
    );
    // Shorter than the 20-byte header after unpadding.
    let (encrypt, sig) = signed(pad32(b"0123456789abcdef\0\0\0".to_vec()));
    assert_eq!(
        check(&params(&sig, TIMESTAMP, NONCE), &encrypt),
        Err(EventError::Decrypt)
    );
    // Not Base64, empty, and not a whole block.
    for encrypt in ["not base64!", "", "AAAA", "1a3NBxmCFwkCJvfo"] {
        let sig = event_signature(TOKEN, TIMESTAMP, NONCE, encrypt);
        assert_eq!(
            check(&params(&sig, TIMESTAMP, NONCE), encrypt),
            Err(EventError::Decrypt),
            "{encrypt}"
        );
    }
}

#[test]
fn missing_params_and_bad_body() {
    let b = body(ENCRYPT);
    let full = params(SIGNATURE, TIMESTAMP, NONCE);
    let mut p = full.clone();
    p.signature = None;
    assert_eq!(
        verify_event(&p, &b, TOKEN, None, None, 0, None),
        Err(EventError::Missing)
    );
    let mut p = full.clone();
    p.timestamp = None;
    assert_eq!(
        verify_event(&p, &b, TOKEN, None, None, 0, None),
        Err(EventError::Missing)
    );
    let mut p = full.clone();
    p.nonce = None;
    assert_eq!(
        verify_event(&p, &b, TOKEN, None, None, 0, None),
        Err(EventError::Missing)
    );
    let none = EventParams::default();
    assert_eq!(
        verify_event(&none, &b, TOKEN, None, None, 0, None),
        Err(EventError::Missing)
    );

    for bad in [
        &b""[..],
        b"encrypt",
        b"[]",
        br#""x""#,
        b"{}",
        br#"{"encrypt":1}"#,
        br#"{"encrypt":null}"#,
        br#"{"Encrypt":"x"}"#,
        b"{\"encrypt\":\"x\"",
    ] {
        let out = verify_event(&full, bad, TOKEN, None, None, 0, None);
        assert_eq!(
            out,
            Err(EventError::BadBody),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // Extra fields are fine.
    let extra = format!(r#"{{"other":[1,2],"encrypt":"{ENCRYPT}"}}"#);
    assert!(verify_event(&full, extra.as_bytes(), TOKEN, None, None, 0, None).is_ok());
}

#[test]
fn bad_timestamp_and_bad_aes_key() {
    let b = body(ENCRYPT);
    for ts in ["", "abc", "+1445827045067", "1445827045067 "] {
        let sig = event_signature(TOKEN, ts, NONCE, ENCRYPT);
        let out = verify_event(&params(&sig, ts, NONCE), &b, TOKEN, None, None, 0, None);
        assert_eq!(out, Err(EventError::BadTimestamp), "{ts:?}");
    }
    let p = params(SIGNATURE, TIMESTAMP, NONCE);
    for key in [
        "",
        &AES_KEY[..42],
        &format!("{AES_KEY}="),
        &format!("{AES_KEY}a"),
        &AES_KEY.replace('4', "*"),
    ] {
        assert_eq!(aes_key_bytes(key), Err(EventError::BadAesKey), "{key}");
        let out = verify_event(&p, &b, TOKEN, Some(key), None, 0, None);
        assert_eq!(out, Err(EventError::BadAesKey));
    }
}

#[test]
fn from_query_both_spellings() {
    let new = format!("signature={SIGNATURE}&timestamp={TIMESTAMP}&nonce={NONCE}");
    let old = format!("nonce={NONCE}&msg_signature={SIGNATURE}&timeStamp={TIMESTAMP}&x=1");
    for q in [&new, &old] {
        let p = EventParams::from_query(q);
        assert_eq!(p, params(SIGNATURE, TIMESTAMP, NONCE));
        assert!(check(&p, ENCRYPT).is_ok());
    }
    // Mixed spellings of the same value, and a repeated identical value, are fine.
    let q = format!("signature={SIGNATURE}&msg_signature={SIGNATURE}&timeStamp={TIMESTAMP}&nonce={NONCE}&nonce={NONCE}");
    assert!(check(&EventParams::from_query(&q), ENCRYPT).is_ok());
}

#[test]
fn from_query_decodes_and_fails_closed() {
    let p = EventParams::from_query("nonce=a%2Bb+c%3d&%74imestamp=1&signature=AB");
    assert_eq!(p.nonce.as_deref(), Some("a+b c="));
    assert_eq!(p.timestamp.as_deref(), Some("1"));
    assert_eq!(p.signature.as_deref(), Some("AB"));
    assert!(matches!(p.signature, Some(Cow::Borrowed(_))));
    // Conflicting duplicates, across spellings too, become None.
    let p =
        EventParams::from_query("signature=aa&msg_signature=bb&timestamp=1&timestamp=2&nonce=n");
    assert_eq!(
        (p.signature, p.timestamp, p.nonce.as_deref()),
        (None, None, Some("n"))
    );
    // Malformed escapes and non-UTF-8 become None, even after a good copy.
    let p = EventParams::from_query("nonce=ok&nonce=%zz&timestamp=%FF&signature");
    assert_eq!((p.nonce, p.timestamp), (None, None));
    assert_eq!(p.signature.as_deref(), Some(""));
    assert_eq!(EventParams::from_query(""), EventParams::default());
    assert_eq!(EventParams::from_query("&&=&a"), EventParams::default());
}
