//! The ACME account: created once (with external account binding when configured),
//! stored (sealed with a storage key), and restored from storage on later runs.

use base64::Engine as _;
use instant_acme::{Account, ExternalAccountKey, NewAccount};

use crate::error::{error_chain, AcmeError, OrderError, Step};
use crate::http::HttpSetup;
use crate::storage::{Storage, StoredAccount};

/// Everything needed to talk to one CA.
#[derive(Clone)]
pub(crate) struct AcmeClient {
    pub directory: String,
    contact: Vec<String>,
    eab: Option<(String, Vec<u8>)>,
    pub http: HttpSetup,
}

impl AcmeClient {
    /// Checks `ca_roots` and the EAB credentials; contacts nobody.
    pub(crate) fn new(cfg: &clawveil_config::Acme) -> Result<AcmeClient, AcmeError> {
        let eab = match (&cfg.eab_kid, &cfg.eab_hmac) {
            (None, None) => None,
            (Some(kid), Some(hmac)) => {
                Some((kid.expose().to_owned(), decode_eab_hmac(hmac.expose())?))
            }
            _ => {
                return Err(AcmeError::Eab {
                    reason: "set both eab_kid and eab_hmac, or neither".into(),
                });
            }
        };
        Ok(AcmeClient {
            directory: cfg.directory.clone(),
            contact: cfg.contact.clone(),
            eab,
            http: HttpSetup::new(cfg.ca_roots.as_deref())?,
        })
    }

    fn builder(&self) -> Result<instant_acme::AccountBuilder, OrderError> {
        let http = self
            .http
            .client()
            .map_err(|e| OrderError::new(Step::Directory, e.to_string()))?;
        Ok(Account::builder_with_http(http))
    }

    /// The stored account, or (when there is none, or `fresh`) a new one, stored.
    pub(crate) async fn account(
        &self,
        storage: &Storage,
        fresh: bool,
    ) -> Result<Account, OrderError> {
        if !fresh {
            let stored = storage
                .load_account(&self.directory)
                .map_err(|e| OrderError::new(Step::Account, e.to_string()))?;
            if let Some(stored) = stored {
                return self
                    .builder()?
                    .from_credentials(stored.credentials)
                    .await
                    .map_err(|e| self.classify(&e, Step::Account));
            }
        }
        let contact: Vec<&str> = self.contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let eab = self
            .eab
            .as_ref()
            .map(|(kid, key)| ExternalAccountKey::new(kid.clone(), key));
        let (account, credentials) = self
            .builder()?
            .create(&new, self.directory.clone(), eab.as_ref())
            .await
            .map_err(|e| self.classify(&e, Step::Account))?;
        storage
            .save_account(&StoredAccount {
                directory: self.directory.clone(),
                credentials,
            })
            .map_err(|e| OrderError::new(Step::Store, e.to_string()))?;
        tracing::info!(directory = %self.directory, "created and stored a new ACME account");
        Ok(account)
    }

    /// Problem documents belong to `api_step`; anything else means the directory
    /// could not be reached or read.
    fn classify(&self, e: &instant_acme::Error, api_step: Step) -> OrderError {
        let mut err = match e {
            instant_acme::Error::Api(_) => OrderError::from_acme(api_step, e),
            _ => OrderError::new(
                Step::Directory,
                format!("{}: {}", self.directory, error_chain(e)),
            ),
        };
        err.retry_after = self.http.take_retry_after();
        err
    }
}

/// The EAB HMAC key as CAs hand it out: base64url, with or without padding.
fn decode_eab_hmac(text: &str) -> Result<Vec<u8>, AcmeError> {
    let trimmed = text.trim().trim_end_matches('=');
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|e| AcmeError::Eab {
            reason: format!("eab_hmac is not base64url: {e}"),
        })?;
    if key.is_empty() {
        return Err(AcmeError::Eab {
            reason: "eab_hmac is empty".into(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eab_hmac_decoding() {
        assert_eq!(decode_eab_hmac("AQID").unwrap(), vec![1, 2, 3]);
        assert_eq!(decode_eab_hmac("-_8=").unwrap(), vec![0xfb, 0xff]);
        let e = decode_eab_hmac("not base64!").unwrap_err().to_string();
        assert!(e.contains("eab_hmac is not base64url"), "{e}");
        assert!(
            !e.contains("not base64!"),
            "the value must not be echoed: {e}"
        );
    }
}
