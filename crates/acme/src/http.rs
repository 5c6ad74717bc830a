//! The HTTP client instant-acme talks through: rustls with aws-lc-rs, the platform's
//! roots or exactly the certificates in `acme.ca_roots`, connect and request timeouts,
//! and a record of the last `Retry-After` that an error response carried (instant-acme
//! returns only the problem document, and backoff must respect the CA's wish).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::error::AcmeError;
use crate::verify::RootsVerifier;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type Slot = Arc<Mutex<Option<SystemTime>>>;

/// Builds clients for one ACME directory and collects `Retry-After`.
#[derive(Clone)]
pub(crate) struct HttpSetup {
    roots: Option<Arc<RootsVerifier>>,
    retry_after: Slot,
}

impl HttpSetup {
    /// With `ca_roots`, trusts exactly the certificates in that PEM file; otherwise
    /// the platform's trust store.
    pub(crate) fn new(ca_roots: Option<&Path>) -> Result<HttpSetup, AcmeError> {
        let roots = match ca_roots {
            None => {
                // Fail now, not at the first order, if the platform verifier is unusable.
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_platform_verifier(clawveil_tls::provider())
                    .map_err(|e| AcmeError::Client {
                        reason: e.to_string(),
                    })?;
                None
            }
            Some(path) => Some(Arc::new(load_roots(path)?)),
        };
        Ok(HttpSetup {
            roots,
            retry_after: Arc::default(),
        })
    }

    pub(crate) fn client(&self) -> Result<Box<dyn HttpClient>, AcmeError> {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match &self.roots {
            None => builder
                .with_provider_and_platform_verifier(clawveil_tls::provider())
                .map_err(|e| AcmeError::Client {
                    reason: e.to_string(),
                })?,
            Some(verifier) => builder.with_tls_config(
                rustls::ClientConfig::builder_with_provider(clawveil_tls::provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| AcmeError::Client {
                        reason: e.to_string(),
                    })?
                    .dangerous()
                    .with_custom_certificate_verifier(verifier.clone())
                    .with_no_client_auth(),
            ),
        };
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = builder.https_only().enable_http1().wrap_connector(tcp);
        let inner = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Box::new(RecordingClient {
            inner,
            retry_after: self.retry_after.clone(),
        }))
    }

    /// The `Retry-After` of the most recent error response, consumed.
    pub(crate) fn take_retry_after(&self) -> Option<SystemTime> {
        self.retry_after
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

fn load_roots(path: &Path) -> Result<RootsVerifier, AcmeError> {
    let err = |reason: String| AcmeError::CaRoots {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    RootsVerifier::new(certs).map_err(err)
}

struct RecordingClient {
    inner: HyperClient<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    retry_after: Slot,
}

impl HttpClient for RecordingClient {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = HttpClient::request(&self.inner, req);
        let slot = self.retry_after.clone();
        Box::pin(async move {
            let rsp = match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(instant_acme::Error::Str(
                        "the ACME server did not answer in time",
                    ))
                }
            };
            let status = rsp.parts.status;
            if status.is_client_error() || status.is_server_error() {
                if let Some(at) = parse_retry_after(&rsp.parts.headers, SystemTime::now()) {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(at);
                }
            }
            Ok(rsp)
        })
    }
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP-date>` (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<SystemTime> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = u64::from_str(value) {
        return Some(now + Duration::from_secs(secs));
    }
    httpdate::parse_http_date(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h, now), None);
        h.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(
            parse_retry_after(&h, now),
            Some(now + Duration::from_secs(120))
        );
        h.insert(
            RETRY_AFTER,
            "Fri, 31 Dec 1999 23:59:59 GMT".parse().unwrap(),
        );
        assert_eq!(
            parse_retry_after(&h, now),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_799))
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&h, now), None);
    }

    #[test]
    fn ca_roots_errors_are_clear() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope.pem");
        let e = HttpSetup::new(Some(&missing)).err().unwrap().to_string();
        assert!(
            e.contains("acme.ca_roots") && e.contains("cannot read"),
            "{e}"
        );
        let empty = tmp.path().join("empty.pem");
        std::fs::write(&empty, "hello").unwrap();
        let e = HttpSetup::new(Some(&empty)).err().unwrap().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
