//! ACME for clawveil: with `tls.mode = "acme"` the operator names the domains and
//! clawveil obtains, stores, serves and renews one certificate for all of them, from
//! any RFC 8555 CA (Let's Encrypt, ZeroSSL with external account binding, a private
//! CA trusted through `acme.ca_roots`).
//!
//! * **Fail closed.** A stored valid certificate is served at once; without one the
//!   [`CertStore`] stays empty (handshakes refused, `/readyz` 503) until issuance
//!   succeeds. Nothing self-signed is ever installed.
//! * **Challenges.** `http-01` through [`Http01Tokens`] (the plain-HTTP listener),
//!   `tls-alpn-01` through [`CertStore::set_alpn_challenge`] with an RFC 8737
//!   certificate. Keys are P-256.
//! * **Profiles.** `acme.profile` (`shortlived`, `tlsserver`, ...) is checked against
//!   the directory's `meta.profiles` at start, sent on every order including renewals,
//!   and recorded beside the certificate for `cert status`.
//! * **IP addresses** in `acme.domains` are ordered as RFC 8738 identifiers; for
//!   TLS-ALPN-01 the challenge is answered under the reverse-DNS name
//!   (`7.113.0.203.in-addr.arpa`) with the address as the certificate's iPAddress.
//! * **Renewal.** ACME Renewal Information (RFC 9773) when the CA offers it: a random
//!   moment inside the suggested window, rechecked after `Retry-After`; otherwise when
//!   a third of the lifetime (or `renew_before`, if larger) remains. Failures back off
//!   exponentially with jitter (2 s → 30 s while nothing is served, 1 min → 1 h while
//!   a certificate is, the maximum at most a 48th of the certificate's lifetime), never
//!   sooner than the CA's `Retry-After` (honoured up to a 16th of the lifetime); rate
//!   limits are reported as such. The new certificate is swapped in without touching
//!   connections.
//! * **Storage** under `acme.storage`: directory 0700, files 0600, atomic writes; with
//!   `acme.storage_key` the private key and the account credentials are sealed with
//!   AES-256-GCM. A lock file keeps a second process from managing the same storage.
//! * **Metrics:** `clawveil_acme_orders_total{result}`,
//!   `clawveil_acme_next_renewal_timestamp_seconds{name}`,
//!   `clawveil_certificate_reloads_total{source="acme",result}`.
//!
//! Entry points: [`start`] (the `run` command), [`status`] (`cert status`),
//! [`renew_now`] (`cert renew`).

mod account;
mod ari;
mod challenge;
mod error;
mod http;
mod manager;
mod order;
mod renew;
mod responder;
mod schedule;
mod seal;
mod status;
mod storage;
mod verify;

use std::sync::Arc;

use clawveil_telemetry::Metrics;
use clawveil_tls::{CertStore, Http01Tokens};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::{AcmeError, OrderError, ProfileRefused, Step, RATE_LIMITED};
pub use renew::{renew_now, RenewOutcome};
pub use schedule::{Options, BACKOFF_ENV, MIN_RENEWAL_ENV};
pub use status::{status, when, CertStatus};

use account::AcmeClient;
use challenge::Responder;
use manager::Manager;
use storage::Storage;

/// Starts issuance and renewal in the background with [`Options::from_env`]:
/// [`AcmeManager::prepare`] then [`AcmeManager::spawn`].
///
/// Before returning, a stored valid certificate is installed into `store`. Errors only
/// for what can never succeed without the operator (see [`AcmeManager::prepare`]).
/// The task ends when `shutdown` turns true.
pub async fn start(
    cfg: &clawveil_config::Acme,
    store: Arc<CertStore>,
    http01: Http01Tokens,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, AcmeError> {
    start_with(cfg, store, http01, metrics, shutdown, Options::from_env()).await
}

/// [`start`] with explicit timing [`Options`].
pub async fn start_with(
    cfg: &clawveil_config::Acme,
    store: Arc<CertStore>,
    http01: Http01Tokens,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
    opts: Options,
) -> Result<JoinHandle<()>, AcmeError> {
    let mut manager = AcmeManager::prepare(cfg, store, http01, metrics, opts)?;
    manager.check_profile().await?;
    Ok(manager.spawn(shutdown))
}

/// A manager that holds the storage lock and has installed the stored certificate (if
/// usable), but has not contacted the CA yet. Lets the binary refuse to start before
/// binding any listener, and order only once the listeners answer challenges.
pub struct AcmeManager {
    manager: Manager,
}

impl std::fmt::Debug for AcmeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeManager").finish_non_exhaustive()
    }
}

impl AcmeManager {
    /// Checks the configuration, creates the storage directory (0700), takes the
    /// storage lock, reads the account file, and installs a stored valid certificate
    /// into `store`. No network. Errors for: no domains, a malformed or wrong
    /// `storage_key`, unreadable `ca_roots`, bad EAB credentials, a damaged account
    /// file, an unusable storage directory, the lock held by another process. A damaged
    /// or expired certificate is no error: it is reported and a new one is ordered.
    pub fn prepare(
        cfg: &clawveil_config::Acme,
        store: Arc<CertStore>,
        http01: Http01Tokens,
        metrics: Arc<Metrics>,
        opts: Options,
    ) -> Result<AcmeManager, AcmeError> {
        if cfg.domains.is_empty() {
            return Err(AcmeError::NoDomains);
        }
        let storage = Storage::new(cfg)?;
        let client = AcmeClient::new(cfg)?;
        storage.prepare()?;
        let lock = storage.lock()?;
        // A wrong key or a damaged account file will not heal by retrying.
        storage.load_account(&cfg.directory)?;
        let responder = Responder {
            kind: cfg.challenge,
            store: store.clone(),
            http01,
        };
        let mut manager = Manager::new(
            cfg.clone(),
            storage,
            lock,
            client,
            responder,
            store,
            metrics,
            opts,
        );
        manager.load_stored()?;
        Ok(AcmeManager { manager })
    }

    /// With `acme.profile` set, checks it against the profiles the CA's directory
    /// advertises (loading or creating the account): a profile the CA does not offer
    /// is an [`AcmeError::Profile`] naming the ones it does. A CA that cannot be
    /// reached within 15 s is no error; the profile is checked again before every order.
    pub async fn check_profile(&mut self) -> Result<(), AcmeError> {
        self.manager.check_profile_at_start().await
    }

    /// Runs issuance and renewal until `shutdown` turns true (must be called inside a
    /// tokio runtime). Challenges are answered through the store and tokens given to
    /// [`prepare`](Self::prepare), so the listeners should be serving by now.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let cfg = &self.manager.cfg;
        tracing::info!(domains = ?cfg.domains, directory = %cfg.directory, challenge = %cfg.challenge, profile = cfg.profile.as_deref(), storage = %cfg.storage.display(), sealed = cfg.storage_key.is_some(), "ACME manager started");
        tokio::spawn(self.manager.run(shutdown))
    }
}
