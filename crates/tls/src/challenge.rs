//! ACME challenge answers shared between the ACME manager and the listeners.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// HTTP-01 answers: token → key authorization, served by the plain-HTTP listener at
/// `/.well-known/acme-challenge/<token>`.
#[derive(Debug, Clone, Default)]
pub struct Http01Tokens {
    inner: Arc<RwLock<HashMap<String, String>>>,
}

impl Http01Tokens {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.write()
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    pub fn remove(&self, token: &str) {
        self.write().remove(token);
    }

    pub fn get(&self, token: &str) -> Option<String> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, String>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}
