//! Sealing stored secrets (certificate private key, account credentials) with
//! AES-256-GCM from aws-lc-rs, keyed by `acme.storage_key`.
//!
//! A sealed file is binary: `MAGIC (8) | key id (8) | nonce (12) | ciphertext | tag (16)`.
//! The key id is a hash of the key, so a wrong key is told apart from a damaged file;
//! the header and the file's name are authenticated as associated data, so a sealed
//! file cannot be swapped for another one unnoticed.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest;

use crate::error::AcmeError;

const MAGIC: &[u8; 8] = b"CVSEAL1\n";
const KEY_ID_LEN: usize = 8;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;

/// Why a sealed file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Sealed with a different key.
    WrongKey,
    /// Sealed with this key, but damaged (or not a sealed file at all).
    Corrupted(&'static str),
}

/// The storage key. Its `Debug` never shows the key.
pub(crate) struct SealKey {
    key: LessSafeKey,
    id: [u8; KEY_ID_LEN],
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<secret>)")
    }
}

/// Whether `data` looks like a sealed file (starts with the magic bytes).
pub(crate) fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

impl SealKey {
    /// Parses 64 hex characters (32 bytes). Surrounding whitespace is ignored.
    pub(crate) fn from_hex(text: &str) -> Result<SealKey, AcmeError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(AcmeError::BadStorageKey {
                reason: format!("got {} characters", text.len()),
            });
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => bytes[i] = (h << 4) | l,
                _ => {
                    return Err(AcmeError::BadStorageKey {
                        reason: format!(
                            "character {} is not a hex digit",
                            i * 2 + usize::from(hi.is_some()) + 1
                        ),
                    })
                }
            }
        }
        SealKey::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8; 32]) -> Result<SealKey, AcmeError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| AcmeError::BadStorageKey {
                reason: "AES-256-GCM rejected the key".into(),
            })?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"clawveil acme storage key id\0");
        ctx.update(bytes);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&ctx.finish().as_ref()[..KEY_ID_LEN]);
        Ok(SealKey {
            key: LessSafeKey::new(unbound),
            id,
        })
    }

    /// Seals `plain`; `name` (the file name) is bound to the result.
    pub(crate) fn seal(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random generator works");
        let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        let aad = aad(&out, name);
        let mut body = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        out.extend_from_slice(&body);
        out
    }

    /// Opens what [`seal`](Self::seal) produced for the same `name`.
    pub(crate) fn open(&self, name: &str, data: &[u8]) -> Result<Vec<u8>, OpenError> {
        if !is_sealed(data) {
            return Err(OpenError::Corrupted("not a sealed file"));
        }
        if data.len() < HEADER_LEN + TAG_LEN {
            return Err(OpenError::Corrupted("sealed file is truncated"));
        }
        if data[MAGIC.len()..MAGIC.len() + KEY_ID_LEN] != self.id {
            return Err(OpenError::WrongKey);
        }
        let header = &data[..HEADER_LEN];
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[MAGIC.len() + KEY_ID_LEN..]);
        let aad = aad(header, name);
        let mut body = data[HEADER_LEN..].to_vec();
        let plain_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .map_err(|_| {
                OpenError::Corrupted("authentication failed: the sealed file was modified")
            })?
            .len();
        body.truncate(plain_len);
        Ok(body)
    }
}

fn aad(header: &[u8], name: &str) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const K2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    #[test]
    fn round_trip_and_no_plaintext() {
        let k = SealKey::from_hex(K1).unwrap();
        let plain = b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
        let sealed = k.seal("key.pem", plain);
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(11).any(|w| w == b"PRIVATE KEY"));
        assert_eq!(k.open("key.pem", &sealed).unwrap(), plain);
        // fresh nonce each time
        assert_ne!(k.seal("key.pem", plain), sealed);
    }

    #[test]
    fn wrong_key_is_told_apart_from_damage() {
        let k1 = SealKey::from_hex(K1).unwrap();
        let k2 = SealKey::from_hex(&K2.to_uppercase()).unwrap();
        let sealed = k1.seal("account.json", b"{}");
        assert_eq!(k2.open("account.json", &sealed), Err(OpenError::WrongKey));
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(matches!(
            k1.open("account.json", &damaged),
            Err(OpenError::Corrupted(_))
        ));
        assert!(matches!(
            k1.open("account.json", &sealed[..20]),
            Err(OpenError::Corrupted(_))
        ));
        // bound to the file name
        assert!(matches!(
            k1.open("key.pem", &sealed),
            Err(OpenError::Corrupted(_))
        ));
    }

    #[test]
    fn bad_keys_are_clear_errors() {
        let e = SealKey::from_hex("abcd").unwrap_err().to_string();
        assert!(e.contains("64 hex characters"), "{e}");
        let e = SealKey::from_hex(&K1.replace('a', "g"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a hex digit"), "{e}");
        assert!(!format!("{:?}", SealKey::from_hex(K1).unwrap()).contains("0123"));
    }
}
