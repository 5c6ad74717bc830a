//! Certificates for clawveil: loading PEM chains and keys (with `rustls-pki-types`),
//! the [`CertStore`] that rustls asks for a certificate on every handshake (so a reload
//! swaps certificates without touching sockets), hot reload of files, the self-signed
//! development certificate, atomic private-file writes, the ACME challenge answers
//! that the listeners serve, and the handshake itself: key-exchange groups
//! (post-quantum `X25519MLKEM768` first) and session resumption.
//!
//! The store **fails closed**: with no certificate, or only an expired one, it gives
//! rustls nothing and the handshake is refused; `/readyz` reports why.

mod atomic;
mod challenge;
mod handshake;
mod load;
mod reload;
mod selfsigned;
mod store;

pub use atomic::{write_private, write_public};
pub use challenge::{Http01Tokens, ACME_TLS_ALPN};
pub use handshake::{group_label, GROUP_LABELS, KX_GROUPS};
pub use load::{check_private_mode, CertError, CertInfo, LoadedCert};
pub use reload::{spawn_file_watcher, FileReloader};
pub use selfsigned::ensure_self_signed;
pub use store::{server_config, CertSource, CertStore};

/// The crypto provider clawveil uses everywhere (aws-lc-rs, as rustls' default).
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
