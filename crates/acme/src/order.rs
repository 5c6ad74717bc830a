//! One order: a single certificate for all configured names, a fresh P-256 key, the
//! challenges answered through the [`Responder`], and the result checked before it
//! is stored or served. Requests the CA refused for a stale nonce (`badNonce`) are
//! repeated; such a request was not processed, so repeating it is safe.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use clawveil_tls::LoadedCert;
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, Identifier, NewOrder, Order, OrderStatus,
    RetryPolicy,
};

use crate::account::AcmeClient;
use crate::challenge::Responder;
use crate::error::{OrderError, ProfileRefused, Step};
use crate::storage::missing_name;

const BAD_NONCE: &str = "urn:ietf:params:acme:error:badNonce";
/// Extra rounds on top of instant-acme's own three tries per request.
const NONCE_ROUNDS: u32 = 5;

/// A certificate fresh from the CA, checked against its key and the names.
pub(crate) struct Issued {
    /// The profile the CA says it applied (or, if it does not say, the one asked for).
    pub profile: Option<String>,
    pub chain_pem: String,
    pub key_pem: String,
    pub cert: LoadedCert,
}

fn is_bad_nonce(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p) if p.r#type.as_deref() == Some(BAD_NONCE))
}

/// Evaluates `$e` (an expression ending in `.await`) again while the CA says badNonce.
macro_rules! nonce_retry {
    ($e:expr) => {{
        let mut round = 0;
        loop {
            match $e {
                Err(err) if is_bad_nonce(&err) && round < NONCE_ROUNDS => round += 1,
                other => break other,
            }
        }
    }};
}

/// Refuses a profile the account's directory does not advertise.
pub(crate) fn check_profile(
    account: &Account,
    profile: &str,
    directory: &str,
) -> Result<(), ProfileRefused> {
    let mut offered: Vec<String> = account.profiles().map(|p| p.name.to_owned()).collect();
    if offered.iter().any(|p| p == profile) {
        return Ok(());
    }
    offered.sort();
    Err(ProfileRefused {
        profile: profile.to_owned(),
        directory: directory.to_owned(),
        offered,
    })
}

fn identifiers(domains: &[String]) -> Vec<Identifier> {
    domains
        .iter()
        .map(|d| match d.parse::<IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(d.clone()),
        })
        .collect()
}

/// Runs one order to the end. `profile` is asked for on every order (first issuance and
/// renewals alike); `replaces` names the certificate being renewed (ARI).
pub(crate) async fn issue(
    account: &Account,
    client: &AcmeClient,
    domains: &[String],
    profile: Option<&str>,
    responder: &Responder,
    replaces: Option<CertificateIdentifier<'static>>,
    poll_timeout: Duration,
) -> Result<Issued, OrderError> {
    let http = &client.http;
    let fail = |step: Step| {
        move |e: instant_acme::Error| {
            let mut err = OrderError::from_acme(step, &e);
            err.retry_after = http.take_retry_after();
            err
        }
    };
    let ids = identifiers(domains);
    let mut new_order = NewOrder::new(&ids);
    if let Some(p) = profile {
        // The CA may have changed its offer since the start.
        check_profile(account, p, &client.directory)
            .map_err(|e| OrderError::new(Step::NewOrder, e.to_string()))?;
        new_order = new_order.profile(p);
    }
    if let Some(r) = replaces {
        new_order = new_order.replaces(r);
    }
    let mut order =
        nonce_retry!(account.new_order(&new_order).await).map_err(fail(Step::NewOrder))?;
    let applied = order
        .state()
        .profile
        .clone()
        .or_else(|| profile.map(str::to_owned));

    let mut armed = responder.arm();
    let mut done: HashSet<String> = HashSet::new();
    let mut rounds = 0;
    'pass: loop {
        let mut authzs = order.authorizations();
        while let Some(next) = authzs.next().await {
            let mut authz = match next {
                Ok(a) => a,
                Err(e) if is_bad_nonce(&e) && rounds < NONCE_ROUNDS => {
                    rounds += 1;
                    continue 'pass;
                }
                Err(e) => return Err(fail(Step::Authorization)(e)),
            };
            let url = authz.url().to_owned();
            if done.contains(&url) {
                continue;
            }
            let domain = authz.identifier().to_string();
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => {
                    done.insert(url);
                    continue;
                }
                other => {
                    return Err(OrderError::new(
                        Step::Authorization,
                        format!("the authorization is {other:?}"),
                    )
                    .for_domain(&domain))
                }
            }
            let Some(mut challenge) = authz.challenge(responder.challenge_type()) else {
                return Err(OrderError::new(
                    Step::Challenge,
                    format!("the CA offers no {} challenge", responder.kind),
                )
                .for_domain(&domain));
            };
            let key_auth = challenge.key_authorization();
            let token = challenge.token.clone();
            armed
                .answer(&domain, &token, &key_auth)
                .map_err(|e| OrderError::new(Step::Challenge, e).for_domain(&domain))?;
            tracing::debug!(domain = %domain, challenge = %responder.kind, "challenge answer published; telling the CA it is ready");
            nonce_retry!(challenge.set_ready().await).map_err(|e| {
                fail(Step::Challenge)(e)
                    .for_domain(&domain)
                    .scrub(&armed.secrets)
            })?;
            done.insert(url);
        }
        break;
    }

    let policy = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(poll_timeout);
    match nonce_retry!(order.poll_ready(&policy).await) {
        Ok(OrderStatus::Ready) => {}
        Ok(_) | Err(instant_acme::Error::Api(_)) => {
            return Err(validation_error(&mut order).await.scrub(&armed.secrets));
        }
        Err(e) => return Err(fail(Step::Validation)(e).scrub(&armed.secrets)),
    }

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| {
        OrderError::new(Step::Finalize, format!("cannot generate a P-256 key: {e}"))
    })?;
    let mut params = rcgen::CertificateParams::new(domains.to_vec())
        .map_err(|e| OrderError::new(Step::Finalize, format!("cannot build the CSR: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| OrderError::new(Step::Finalize, format!("cannot sign the CSR: {e}")))?;
    nonce_retry!(order.finalize_csr(csr.der()).await).map_err(fail(Step::Finalize))?;
    let chain_pem =
        nonce_retry!(order.poll_certificate(&policy).await).map_err(fail(Step::Download))?;
    drop(armed);

    let key_pem = key.serialize_pem();
    let cert = LoadedCert::from_pem(
        chain_pem.as_bytes(),
        key_pem.as_bytes(),
        Path::new("<issued certificate>"),
        Path::new("<new key>"),
    )
    .map_err(|e| OrderError::new(Step::Verify, e.to_string()))?;
    if let Some(missing) = missing_name(&cert.info, domains) {
        return Err(
            OrderError::new(Step::Verify, "the issued certificate does not name it")
                .for_domain(missing),
        );
    }
    Ok(Issued {
        profile: applied,
        chain_pem,
        key_pem,
        cert,
    })
}

/// Why an order became invalid: the first failed challenge, with the CA's problem.
async fn validation_error(order: &mut Order) -> OrderError {
    let order_problem = order.state().error.clone();
    let mut authzs = order.authorizations();
    while let Some(Ok(mut authz)) = authzs.next().await {
        let domain = authz.identifier().to_string();
        if let Ok(state) = authz.refresh().await {
            if let Some(p) = state.challenges.iter().find_map(|c| c.error.clone()) {
                return OrderError::from_acme(Step::Validation, &instant_acme::Error::Api(p))
                    .for_domain(&domain);
            }
            if state.status == AuthorizationStatus::Invalid {
                return OrderError::new(Step::Validation, "the authorization is invalid")
                    .for_domain(&domain);
            }
        }
    }
    match order_problem {
        Some(p) => OrderError::from_acme(Step::Validation, &instant_acme::Error::Api(p)),
        None => OrderError::new(Step::Validation, "the order became invalid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_identifiers() {
        let ids = identifiers(&["bot.example.com".into(), "127.0.0.1".into()]);
        assert_eq!(ids[0], Identifier::Dns("bot.example.com".into()));
        assert_eq!(ids[1], Identifier::Ip("127.0.0.1".parse().unwrap()));
    }
}
