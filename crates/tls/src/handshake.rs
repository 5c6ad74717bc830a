//! What the https listener negotiates besides the certificate: the key-exchange groups
//! it offers, in order, and how sessions are resumed. Also the names the negotiated
//! group is logged and counted under (a fixed set, so metric labels stay bounded).

use std::sync::Arc;

use rustls::crypto::aws_lc_rs::kx_group;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::server::ServerSessionMemoryCache;
use rustls::{NamedGroup, ServerConfig};

/// The key-exchange groups the https listener accepts, most preferred first. Written out
/// here rather than taken from the provider's defaults, whose order depends on a rustls
/// cargo feature (`prefer-post-quantum`) that any crate in the tree can switch.
///
/// - `X25519MLKEM768` first: the hybrid post-quantum exchange browsers, Go and rustls
///   clients offer by default. A recording of today's traffic cannot be decrypted later
///   by a quantum computer; X25519 inside it keeps the classical security if ML-KEM is
///   ever broken.
/// - `X25519`, then `secp256r1` (P-256) and `secp384r1` for clients without ML-KEM
///   (OpenSSL before 3.5, older Java, curl builds on older distributions).
///
/// The server of rustls 0.23 takes the first group *of the client's list* that is also
/// in this one (choosing another could cost the client a HelloRetryRequest round trip):
/// this list decides what is accepted, and the clients that support ML-KEM (browsers,
/// Go 1.24+, rustls with its default features, OpenSSL 3.5+) list `X25519MLKEM768`
/// first, so they get it. The order is our preference wherever the server chooses.
pub static KX_GROUPS: [&dyn SupportedKxGroup; 4] = [
    kx_group::X25519MLKEM768,
    kx_group::X25519,
    kx_group::SECP256R1,
    kx_group::SECP384R1,
];

/// Every value of the `group` label of `clawveil_tls_handshakes_total` and of the
/// `tls_group` access-log field: one per entry of [`KX_GROUPS`], and `unknown` for a
/// failed handshake or one without a key exchange (a resumed TLS 1.2 session).
pub const GROUP_LABELS: [&str; 5] = [
    "X25519MLKEM768",
    "X25519",
    "secp256r1",
    "secp384r1",
    "unknown",
];

/// The label of a negotiated group (see [`GROUP_LABELS`]).
pub fn group_label(group: Option<&dyn SupportedKxGroup>) -> &'static str {
    match group.map(|g| g.name()) {
        Some(NamedGroup::X25519MLKEM768) => GROUP_LABELS[0],
        Some(NamedGroup::X25519) => GROUP_LABELS[1],
        Some(NamedGroup::secp256r1) => GROUP_LABELS[2],
        Some(NamedGroup::secp384r1) => GROUP_LABELS[3],
        _ => GROUP_LABELS[4],
    }
}

/// The aws-lc-rs provider with the groups of [`KX_GROUPS`], in that order.
pub fn server_provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: KX_GROUPS.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    })
}

/// How many TLS 1.2 sessions without tickets are remembered for resumption.
pub const SESSION_CACHE_ENTRIES: usize = 1024;

/// Turns on session resumption, bounded in memory.
///
/// TLS 1.3 (and TLS 1.2 clients that support tickets) get stateless tickets from
/// aws-lc-rs' `Ticketer`: the session state travels encrypted in the ticket, so the
/// server holds two keys however many clients there are. The key is random, lives only
/// in memory (a restart, or another replica, just means a full handshake) and is
/// replaced every 6 hours, the previous one still accepted for 6 more; a ticket is
/// therefore good for at most 12 hours, and a leaked key exposes only that window.
/// TLS 1.3 resumption still runs a fresh key exchange (rustls only does `psk_dhe_ke`),
/// so resumed sessions keep forward secrecy and show their group.
///
/// TLS 1.2 clients that do not take tickets are remembered by session id in a cache of
/// [`SESSION_CACHE_ENTRIES`] entries (a few hundred bytes each; the oldest is evicted).
///
/// 0-RTT early data stays off (`max_early_data_size` 0): it can be replayed, and the
/// requests here are webhook deliveries that must not run twice.
pub fn enable_resumption(cfg: &mut ServerConfig) {
    cfg.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    match rustls::crypto::aws_lc_rs::Ticketer::new() {
        Ok(ticketer) => cfg.ticketer = ticketer,
        // Only if the system's random source fails; the cache above still resumes.
        Err(e) => {
            tracing::warn!(error = %e, "cannot create TLS session-ticket keys; resuming from the session cache only")
        }
    }
    cfg.max_early_data_size = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_quantum_first_and_every_group_has_a_label() {
        let provider = server_provider();
        let names: Vec<_> = provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            names,
            [
                NamedGroup::X25519MLKEM768,
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
        for (g, label) in KX_GROUPS.iter().zip(GROUP_LABELS) {
            assert_eq!(group_label(Some(*g)), label);
        }
        assert_eq!(group_label(None), "unknown");
        assert_eq!(group_label(Some(kx_group::MLKEM768)), "unknown");
    }
}
