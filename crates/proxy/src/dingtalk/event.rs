//! Event-subscription pushes (`verify = "dingtalk-event"`).
//!
//! DingTalk POSTs `{"encrypt": "<base64>"}` with query parameters `signature` (older
//! pushes: `msg_signature`), `timestamp` (older: `timeStamp`) and `nonce`. The
//! signature is `hex(SHA1(concat(sorted([token, timestamp, nonce, encrypt]))))`.
//!
//! With an AES key, `encrypt` is AES-256-CBC (key = Base64(aes_key + "="), IV = the
//! first 16 key bytes) of: 16 random bytes, a 4-byte big-endian length `N`, `N` bytes
//! of message, then the owner key (corpId / suiteKey / appKey), padded PKCS#7-style
//! to a multiple of **32** bytes (pad byte 1..=32).

use std::borrow::Cow;
use std::time::Duration;

use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey, AES_256};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{self, SHA1_FOR_LEGACY_USE_ONLY, SHA1_OUTPUT_LEN};
use aws_lc_rs::iv::FixedLength;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine as _;

use super::{hex_value, parse_millis, percent_decode, within_skew};

/// The padding block size DingTalk uses (not AES's 16).
const PAD_BLOCK: usize = 32;
/// 16 random bytes, then the 4-byte length.
const HEADER_LEN: usize = 20;

/// Decodes the 43-character AES key with `=` appended. DingTalk's own SDKs decode it
/// leniently, and its published key has non-zero trailing bits, so those are allowed
/// here; the padding must still be canonical.
const AES_KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Why an event push was refused.
///
/// The checks run in this order: [`BadAesKey`](Self::BadAesKey) (configuration),
/// [`Missing`](Self::Missing), [`BadBody`](Self::BadBody),
/// [`BadTimestamp`](Self::BadTimestamp), [`BadSignature`](Self::BadSignature),
/// [`Skew`](Self::Skew), [`Decrypt`](Self::Decrypt),
/// [`OwnerMismatch`](Self::OwnerMismatch). As for robot callbacks, the signature comes
/// before the clock, so only a correctly signed request can be reported as skew, and
/// nothing is decrypted before the signature is known to be good (no padding oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A query parameter (`signature`/`msg_signature`, `timestamp`/`timeStamp`,
    /// `nonce`) is absent, given twice with different values, or not decodable.
    #[error("dingtalk event: signature, timestamp or nonce parameter missing")]
    Missing,
    /// The body is not JSON, not an object, or has no string `encrypt`.
    #[error("dingtalk event: body is not JSON with a string \"encrypt\"")]
    BadBody,
    /// `timestamp` is not a plain decimal millisecond count fitting a `u64`.
    #[error("dingtalk event: timestamp is not a decimal millisecond count")]
    BadTimestamp,
    /// The SHA-1 signature does not match.
    #[error("dingtalk event: signature mismatch")]
    BadSignature,
    /// Correctly signed, but the timestamp is farther than `max_skew` from now.
    #[error("dingtalk event: timestamp outside the allowed clock skew")]
    Skew,
    /// `encrypt` is not Base64, not a whole number of 32-byte blocks, has invalid
    /// padding, or its length field runs past the end.
    #[error("dingtalk event: encrypted payload does not decrypt")]
    Decrypt,
    /// The decrypted trailer is not the configured owner key.
    #[error("dingtalk event: owner key (corpId/suiteKey/appKey) mismatch")]
    OwnerMismatch,
    /// The configured AES key is not 43 Base64 characters decoding to 32 bytes.
    #[error("dingtalk event: configured aes_key is not 43 Base64 characters")]
    BadAesKey,
}

/// The query parameters of one push. `None` means absent (or ambiguous, see
/// [`EventParams::from_query`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventParams<'a> {
    /// `signature`, or the older `msg_signature`.
    pub signature: Option<Cow<'a, str>>,
    /// `timestamp`, or the older `timeStamp`.
    pub timestamp: Option<Cow<'a, str>>,
    /// `nonce`.
    pub nonce: Option<Cow<'a, str>>,
}

/// One parameter slot while parsing a query: unset, set, or set twice differently.
enum Slot<'a> {
    Unset,
    Set(Cow<'a, str>),
    Conflict,
}

impl<'a> Slot<'a> {
    fn put(&mut self, value: Option<Cow<'a, str>>) {
        *self = match (std::mem::replace(self, Slot::Conflict), value) {
            (_, None) | (Slot::Conflict, _) => Slot::Conflict,
            (Slot::Unset, Some(v)) => Slot::Set(v),
            (Slot::Set(old), Some(v)) if old == v => Slot::Set(old),
            (Slot::Set(_), Some(_)) => Slot::Conflict,
        };
    }

    fn get(self) -> Option<Cow<'a, str>> {
        match self {
            Slot::Set(v) => Some(v),
            Slot::Unset | Slot::Conflict => None,
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space),
/// borrowing when nothing needs decoding. `None` on a bad escape or non-UTF-8 result.
fn form_decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains(['%', '+']) {
        return Some(Cow::Borrowed(raw));
    }
    let bytes = percent_decode(raw.as_bytes(), true)?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

impl<'a> EventParams<'a> {
    /// Reads the three parameters from a raw query string (without the `?`).
    ///
    /// Guarantees:
    /// * keys and values are form-decoded (`%XX`, either hex case, and `+` as space);
    /// * `signature` and `msg_signature` fill the same field, as do `timestamp` and
    ///   `timeStamp`; other keys are ignored;
    /// * a field given more than once (under either spelling) is kept only if every
    ///   occurrence has the same decoded value; conflicting values, a malformed escape
    ///   or non-UTF-8 leave it `None`, so verification fails closed with
    ///   [`EventError::Missing`] instead of guessing which copy the bot will read.
    pub fn from_query(query: &'a str) -> Self {
        let (mut signature, mut timestamp, mut nonce) = (Slot::Unset, Slot::Unset, Slot::Unset);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let Some(key) = form_decode(raw_key) else {
                continue;
            };
            let slot = match key.as_ref() {
                "signature" | "msg_signature" => &mut signature,
                "timestamp" | "timeStamp" => &mut timestamp,
                "nonce" => &mut nonce,
                _ => continue,
            };
            slot.put(form_decode(raw_value));
        }
        EventParams {
            signature: signature.get(),
            timestamp: timestamp.get(),
            nonce: nonce.get(),
        }
    }
}

/// Decodes a configured `aes_key`: exactly 43 standard-alphabet Base64 characters,
/// decoded with `=` appended, giving the 32-byte AES-256 key. Use it to validate
/// configuration up front; [`verify_event`] calls it on every request.
pub fn aes_key_bytes(aes_key: &str) -> Result<[u8; 32], EventError> {
    if aes_key.len() != 43 {
        return Err(EventError::BadAesKey);
    }
    let mut padded = String::with_capacity(44);
    padded.push_str(aes_key);
    padded.push('=');
    let bytes = AES_KEY_ENGINE
        .decode(padded)
        .map_err(|_| EventError::BadAesKey)?;
    bytes.try_into().map_err(|_| EventError::BadAesKey)
}

/// The raw SHA-1 over the byte-wise sorted concatenation of the four strings.
fn signature_digest(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> digest::Digest {
    let mut parts = [token, timestamp, nonce, encrypt];
    // `str` ordering is byte-wise lexicographic.
    parts.sort_unstable();
    let mut ctx = digest::Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        ctx.update(p.as_bytes());
    }
    ctx.finish()
}

/// The `signature` DingTalk computes: lowercase
/// `hex(SHA1(concat(sorted([token, timestamp, nonce, encrypt]))))`, sorted byte-wise.
pub fn event_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    signature_digest(token, timestamp, nonce, encrypt)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decodes a 40-digit hex signature, either case. `None` on anything else.
fn decode_sha1_hex(text: &str) -> Option<[u8; SHA1_OUTPUT_LEN]> {
    let text = text.as_bytes();
    if text.len() != 2 * SHA1_OUTPUT_LEN {
        return None;
    }
    let mut out = [0u8; SHA1_OUTPUT_LEN];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(out)
}

/// Reads the string `encrypt` from a top-level JSON object.
fn encrypt_field(body: &[u8]) -> Result<String, EventError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => match map.remove("encrypt") {
            Some(serde_json::Value::String(s)) => Ok(s),
            _ => Err(EventError::BadBody),
        },
        _ => Err(EventError::BadBody),
    }
}

/// Decrypts `encrypt` and splits the envelope into (message, owner key).
fn open(key: &[u8; 32], encrypt: &str) -> Result<(Vec<u8>, Vec<u8>), EventError> {
    let mut buf = STANDARD.decode(encrypt).map_err(|_| EventError::Decrypt)?;
    if buf.is_empty() || buf.len() % PAD_BLOCK != 0 {
        return Err(EventError::Decrypt);
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&key[..16]);
    let plain = UnboundCipherKey::new(&AES_256, key)
        .and_then(DecryptingKey::cbc)
        .and_then(|k| k.decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv))))
        .map_err(|_| EventError::Decrypt)?;

    // PKCS#7 with a 32-byte block: the last byte p is 1..=32 and the last p bytes all
    // equal p. (The signature is already verified, so this is not an oracle.)
    let pad = usize::from(*plain.last().ok_or(EventError::Decrypt)?);
    if pad == 0
        || pad > PAD_BLOCK
        || plain[plain.len() - pad..]
            .iter()
            .any(|&b| usize::from(b) != pad)
    {
        return Err(EventError::Decrypt);
    }
    let content = &plain[..plain.len() - pad];
    if content.len() < HEADER_LEN {
        return Err(EventError::Decrypt);
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&content[16..HEADER_LEN]);
    let rest = &content[HEADER_LEN..];
    let n = usize::try_from(u32::from_be_bytes(len)).map_err(|_| EventError::Decrypt)?;
    if n > rest.len() {
        return Err(EventError::Decrypt);
    }
    Ok((rest[..n].to_vec(), rest[n..].to_vec()))
}

/// Verifies one event push: its query parameters, its JSON body and, with an AES key,
/// its encrypted envelope.
///
/// Returns `Ok(Some(message))` with the decrypted message when `aes_key` is given,
/// `Ok(None)` when it is not (signature checked only). Guarantees on success:
/// * all three parameters are present, `timestamp` is a plain decimal `u64`;
/// * the body is a JSON object with a string `encrypt`;
/// * `signature` (40 hex digits, either case) equals [`event_signature`] of `token`,
///   the timestamp and nonce *as sent*, and `encrypt`, compared in constant time;
/// * with `max_skew`, `|now_ms - timestamp| <= max_skew` (inclusive, milliseconds);
///   with `None` the clock is not consulted and `now_ms` is ignored;
/// * with `aes_key`, `encrypt` is canonical Base64 of a whole number of 32-byte blocks
///   that decrypts with strictly valid 32-byte PKCS#7 padding and a length field that
///   fits; with `owner_key` as well, the bytes after the message equal it exactly.
///
/// See [`EventError`] for the order of the checks.
pub fn verify_event(
    params: &EventParams<'_>,
    body: &[u8],
    token: &str,
    aes_key: Option<&str>,
    owner_key: Option<&str>,
    now_ms: u64,
    max_skew: Option<Duration>,
) -> Result<Option<Vec<u8>>, EventError> {
    let key = aes_key.map(aes_key_bytes).transpose()?;
    let (Some(signature), Some(timestamp), Some(nonce)) =
        (&params.signature, &params.timestamp, &params.nonce)
    else {
        return Err(EventError::Missing);
    };
    let encrypt = encrypt_field(body)?;
    let ts_ms = parse_millis(timestamp.as_bytes()).ok_or(EventError::BadTimestamp)?;

    let expected = signature_digest(token, timestamp, nonce, &encrypt);
    let presented = decode_sha1_hex(signature).ok_or(EventError::BadSignature)?;
    verify_slices_are_equal(expected.as_ref(), &presented).map_err(|_| EventError::BadSignature)?;

    if let Some(skew) = max_skew {
        if !within_skew(ts_ms, now_ms, skew) {
            return Err(EventError::Skew);
        }
    }

    let Some(key) = key else {
        return Ok(None);
    };
    let (message, owner) = open(&key, &encrypt)?;
    if let Some(want) = owner_key {
        verify_slices_are_equal(&owner, want.as_bytes()).map_err(|_| EventError::OwnerMismatch)?;
    }
    Ok(Some(message))
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
