//! `clawveil cert renew`: order a new certificate now.
//!
//! A running clawveil holds the storage lock and the listeners the CA must reach, so a
//! second process cannot answer challenges. Therefore:
//!
//! * **clawveil is running** (the lock is held): the CLI writes `renew-request` (a
//!   random id) into the storage directory; the running manager, which looks every
//!   `poll_interval` (2 s), removes it, orders at once, swaps the new certificate in
//!   and writes `renew-result.json` with the same id; the CLI waits for that and
//!   reports it.
//! * **nothing is running** (the lock is free): the CLI takes the lock, answers the
//!   challenge itself on `listen.http` (http-01) or `listen.https` (tls-alpn-01),
//!   orders, and stores the certificate, which the next start serves.

use std::sync::Arc;
use std::time::Duration;

use clawveil_telemetry::Metrics;
use clawveil_tls::{CertStore, Http01Tokens};
use serde::{Deserialize, Serialize};

use crate::account::AcmeClient;
use crate::challenge::Responder;
use crate::error::AcmeError;
use crate::manager::Manager;
use crate::schedule::Options;
use crate::status::{status, CertStatus};
use crate::storage::Storage;

pub(crate) const RENEW_REQUEST: &str = "renew-request";
pub(crate) const RENEW_RESULT: &str = "renew-result.json";

#[derive(Serialize, Deserialize)]
struct RenewRequest {
    id: String,
}

/// What the running manager answers to a request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RenewResult {
    id: String,
    ok: bool,
    message: String,
    not_after: Option<u64>,
}

impl RenewResult {
    pub(crate) fn ok(id: &str, not_after: Option<u64>) -> RenewResult {
        RenewResult {
            id: id.to_owned(),
            ok: true,
            message: "renewed".into(),
            not_after,
        }
    }

    pub(crate) fn failed(id: &str, message: &str) -> RenewResult {
        RenewResult {
            id: id.to_owned(),
            ok: false,
            message: message.to_owned(),
            not_after: None,
        }
    }
}

/// Removes and returns a pending request's id (manager side).
pub(crate) fn take_request(storage: &Storage) -> Option<String> {
    let path = storage.path(RENEW_REQUEST);
    let data = std::fs::read(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    match serde_json::from_slice::<RenewRequest>(&data) {
        Ok(r) => Some(r.id),
        Err(_) => Some(String::new()),
    }
}

/// Records the outcome of a request (manager side).
pub(crate) fn write_result(storage: &Storage, result: &RenewResult) {
    if let Ok(json) = serde_json::to_vec(result) {
        if let Err(e) = storage.write_plain(RENEW_RESULT, &json) {
            tracing::warn!(error = %e, "cannot write the answer to `cert renew`");
        }
    }
}

/// How `cert renew` got its certificate.
#[derive(Debug, Clone)]
pub enum RenewOutcome {
    /// The running clawveil ordered it and serves it now.
    ByRunningProcess(Vec<CertStatus>),
    /// No clawveil was running: this process ordered and stored it.
    Here(Vec<CertStatus>),
}

/// Orders a new certificate now (see the module documentation for how). Waits at
/// most `timeout` for the result.
pub async fn renew_now(
    config: &clawveil_config::Config,
    timeout: Duration,
) -> Result<RenewOutcome, AcmeError> {
    let acme = config.acme.as_ref().ok_or_else(|| AcmeError::Renew {
        reason: "the configuration has no [acme] section".into(),
    })?;
    if acme.domains.is_empty() {
        return Err(AcmeError::NoDomains);
    }
    let storage = Storage::new(acme)?;
    storage.prepare()?;
    match storage.lock() {
        Err(AcmeError::Locked { .. }) => delegate(acme, &storage, timeout).await,
        Err(e) => Err(e),
        Ok(lock) => {
            let client = AcmeClient::new(acme)?;
            let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
            let store = CertStore::new(metrics.clone());
            let responder = Responder {
                kind: acme.challenge,
                store: store.clone(),
                http01: Http01Tokens::default(),
            };
            let answering = crate::responder::answer_on(&responder, &config.listen).await?;
            let mut manager = Manager::new(
                acme.clone(),
                storage,
                lock,
                client,
                responder,
                store,
                metrics,
                Options::default(),
            );
            manager.load_stored()?;
            let outcome = tokio::time::timeout(timeout, manager.attempt()).await;
            // Free the listener before returning, so that `clawveil run` can bind it.
            answering.stop().await;
            drop(manager);
            match outcome {
                Ok(Ok(())) => Ok(RenewOutcome::Here(status(acme)?)),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(AcmeError::Renew {
                    reason: format!("no certificate within {timeout:?}"),
                }),
            }
        }
    }
}

async fn delegate(
    acme: &clawveil_config::Acme,
    storage: &Storage,
    timeout: Duration,
) -> Result<RenewOutcome, AcmeError> {
    let id = format!("{:032x}", rand::random::<u128>());
    let _ = std::fs::remove_file(storage.path(RENEW_RESULT));
    let request = serde_json::to_vec(&RenewRequest { id: id.clone() }).unwrap_or_default();
    storage.write_plain(RENEW_REQUEST, &request)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let result_path = storage.path(RENEW_RESULT);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(data) = std::fs::read(&result_path) else {
            continue;
        };
        let Ok(result) = serde_json::from_slice::<RenewResult>(&data) else {
            continue;
        };
        if result.id != id {
            continue;
        }
        let _ = std::fs::remove_file(&result_path);
        return match result.ok {
            true => Ok(RenewOutcome::ByRunningProcess(status(acme)?)),
            false => Err(AcmeError::Renew {
                reason: format!("the running clawveil could not renew: {}", result.message),
            }),
        };
    }
    let _ = std::fs::remove_file(storage.path(RENEW_REQUEST));
    Err(AcmeError::Renew {
        reason: format!(
            "another process holds {} but did not answer within {timeout:?}; is it a clawveil serving this configuration?",
            storage.path(crate::storage::LOCK).display()
        ),
    })
}
