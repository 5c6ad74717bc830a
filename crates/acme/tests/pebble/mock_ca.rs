//! A scripted ACME server for what Pebble 2.4 cannot show: renewal information
//! (RFC 9773) with `replaces`, a CA that rate-limits with `Retry-After`, certificate
//! profiles (`meta.profiles`, `profile` in newOrder) and IP identifiers (RFC 8738).
//!
//! It records every newOrder payload. When issuing, it validates http-01 for real: it
//! connects to the identifier's address (every DNS name counts as 127.0.0.1) on the
//! configured port and compares the answer with `token.thumbprint` of the account key.
//! JWS signatures are not checked.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

/// What the CA does.
#[derive(Clone)]
pub struct Script {
    /// RFC 3339 start and end of the suggested ARI window.
    pub window: (SystemTime, SystemTime),
    /// Refuse every newOrder with rateLimited and `Retry-After: 3600`.
    pub rate_limit: bool,
    /// Advertised in `meta.profiles` (name, description); none: no `meta` at all.
    pub profiles: Vec<(&'static str, &'static str)>,
    /// Where http-01 answers are fetched (on the identifier's address).
    pub http_port: u16,
    /// Validity of issued certificates.
    pub lifetime: Duration,
}

impl Default for Script {
    fn default() -> Self {
        let now = SystemTime::now();
        Script {
            window: (
                now + Duration::from_secs(86400),
                now + Duration::from_secs(2 * 86400),
            ),
            rate_limit: false,
            profiles: Vec::new(),
            http_port: 0,
            lifetime: Duration::from_secs(160 * 3600),
        }
    }
}

struct Authz {
    identifier: Value,
    token: String,
    status: &'static str,
}

struct Order {
    identifiers: Vec<Value>,
    profile: Option<String>,
    replaces: Option<String>,
    authzs: Vec<usize>,
    status: &'static str,
    certificate: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub ari_hits: usize,
    /// Decoded payloads of newOrder requests.
    pub orders: Vec<Value>,
    /// `(identifier value, address connected to)` of each http-01 validation.
    pub validations: Vec<(String, SocketAddr)>,
    /// subjectAltNames the CSRs asked for.
    pub csr_names: Vec<Vec<String>>,
    thumbprint: Option<String>,
    authzs: Vec<Authz>,
    issued: Vec<Order>,
    issued_pem: HashMap<usize, String>,
}

pub struct MockCa {
    pub base: String,
    /// The CA's own TLS certificate (what `acme.ca_roots` trusts).
    pub tls_cert: PathBuf,
    /// The root of the certificates it issues.
    pub root: rustls_pki_types::CertificateDer<'static>,
    pub state: Arc<Mutex<State>>,
}

impl MockCa {
    pub fn directory(&self) -> String {
        format!("{}/dir", self.base)
    }
}

type Issuer = rcgen::CertifiedIssuer<'static, rcgen::KeyPair>;

struct Ca {
    base: String,
    script: Script,
    state: Arc<Mutex<State>>,
    issuer: Issuer,
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_default()
}

pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn reply(
    status: StatusCode,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("replay-nonce", "bm9uY2U");
    for (k, v) in headers {
        r = r.header(*k, v.as_str());
    }
    r.body(Full::new(body.into())).unwrap()
}

fn json_reply(status: StatusCode, location: Option<String>, body: Value) -> Response<Full<Bytes>> {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if let Some(l) = location {
        headers.push(("location", l));
    }
    reply(status, &headers, body.to_string())
}

fn problem(status: StatusCode, kind: &str, detail: &str) -> Response<Full<Bytes>> {
    let body = json!({"type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail, "status": status.as_u16()});
    reply(
        status,
        &[("content-type", "application/problem+json".into())],
        body.to_string(),
    )
}

/// RFC 7638 thumbprint of an EC P-256 JWK.
fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap_or_default(),
        jwk["kty"].as_str().unwrap_or_default(),
        jwk["x"].as_str().unwrap_or_default(),
        jwk["y"].as_str().unwrap_or_default(),
    );
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
}

/// A P-256 public key taken from a CSR, for rcgen to certify.
struct CsrKey(Vec<u8>);

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl Ca {
    fn order_json(&self, id: usize, o: &Order) -> Value {
        let mut v = json!({
            "status": o.status,
            "identifiers": o.identifiers,
            "authorizations": o.authzs.iter().map(|a| format!("{}/authz/{a}", self.base)).collect::<Vec<_>>(),
            "finalize": format!("{}/finalize/{id}", self.base),
        });
        if let Some(p) = &o.profile {
            v["profile"] = json!(p);
        }
        if let Some(r) = &o.replaces {
            v["replaces"] = json!(r);
        }
        if let Some(c) = &o.certificate {
            v["certificate"] = json!(c);
        }
        v
    }

    fn authz_json(&self, id: usize, a: &Authz) -> Value {
        let challenge_status = match a.status {
            "valid" => "valid",
            "invalid" => "invalid",
            _ => "pending",
        };
        json!({
            "identifier": a.identifier,
            "status": a.status,
            "challenges": [{
                "type": "http-01",
                "url": format!("{}/chall/{id}", self.base),
                "token": a.token,
                "status": challenge_status,
            }],
        })
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let jws: Value = serde_json::from_slice(&body).unwrap_or_default();
        let payload: Value =
            serde_json::from_slice(&unb64(jws["payload"].as_str().unwrap_or_default()))
                .unwrap_or_default();
        let path = parts.uri.path().to_owned();
        let (head, id) = match path[1..].split_once('/') {
            Some((h, rest)) => (h.to_owned(), rest.parse::<usize>().ok()),
            None => (path[1..].to_owned(), None),
        };
        match (&parts.method, head.as_str(), id) {
            (&Method::GET, "dir", _) => {
                let mut dir = json!({
                    "newNonce": format!("{}/nonce", self.base), "newAccount": format!("{}/acct", self.base),
                    "newOrder": format!("{}/order", self.base), "renewalInfo": format!("{}/ari", self.base),
                });
                if !self.script.profiles.is_empty() {
                    let profiles: BTreeMap<_, _> = self.script.profiles.iter().cloned().collect();
                    dir["meta"] = json!({ "profiles": profiles });
                }
                json_reply(StatusCode::OK, None, dir)
            }
            (_, "nonce", _) => reply(StatusCode::OK, &[], ""),
            (&Method::POST, "acct", None) => {
                let protected: Value =
                    serde_json::from_slice(&unb64(jws["protected"].as_str().unwrap_or_default()))
                        .unwrap_or_default();
                if protected["jwk"].is_object() {
                    self.state.lock().unwrap().thumbprint = Some(thumbprint(&protected["jwk"]));
                }
                json_reply(
                    StatusCode::CREATED,
                    Some(format!("{}/acct/1", self.base)),
                    json!({"status": "valid"}),
                )
            }
            (&Method::GET, "ari", _) => {
                self.state.lock().unwrap().ari_hits += 1;
                let info = json!({
                    "suggestedWindow": {"start": rfc3339(self.script.window.0), "end": rfc3339(self.script.window.1)},
                    "explanationURL": "https://ca.example/ari",
                });
                reply(
                    StatusCode::OK,
                    &[
                        ("retry-after", "21600".into()),
                        ("content-type", "application/json".into()),
                    ],
                    info.to_string(),
                )
            }
            (&Method::POST, "order", None) => self.new_order(payload),
            (&Method::POST, "order", Some(id)) => {
                let st = self.state.lock().unwrap();
                match st.issued.get(id) {
                    Some(o) => json_reply(StatusCode::OK, None, self.order_json(id, o)),
                    None => problem(StatusCode::NOT_FOUND, "malformed", "no such order"),
                }
            }
            (&Method::POST, "authz", Some(id)) => {
                let st = self.state.lock().unwrap();
                match st.authzs.get(id) {
                    Some(a) => json_reply(StatusCode::OK, None, self.authz_json(id, a)),
                    None => problem(StatusCode::NOT_FOUND, "malformed", "no such authorization"),
                }
            }
            (&Method::POST, "chall", Some(id)) => self.validate(id).await,
            (&Method::POST, "finalize", Some(id)) => self.finalize(id, &payload),
            (&Method::POST, "cert", Some(id)) => {
                let st = self.state.lock().unwrap();
                match st.issued_pem.get(&id) {
                    Some(pem) => reply(
                        StatusCode::OK,
                        &[("content-type", "application/pem-certificate-chain".into())],
                        pem.clone(),
                    ),
                    None => problem(StatusCode::NOT_FOUND, "malformed", "no certificate"),
                }
            }
            _ => reply(StatusCode::NOT_FOUND, &[], "not found"),
        }
    }

    fn new_order(&self, payload: Value) -> Response<Full<Bytes>> {
        let mut st = self.state.lock().unwrap();
        st.orders.push(payload.clone());
        if self.script.rate_limit {
            return reply(
                StatusCode::TOO_MANY_REQUESTS,
                &[
                    ("retry-after", "3600".into()),
                    ("content-type", "application/problem+json".into()),
                ],
                r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders recently","status":429}"#,
            );
        }
        let profile = payload["profile"].as_str().map(str::to_owned);
        if let Some(p) = &profile {
            if !self.script.profiles.iter().any(|(name, _)| name == p) {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "invalidProfile",
                    &format!("profile {p:?} is not offered"),
                );
            }
        }
        let identifiers: Vec<Value> = payload["identifiers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for i in &identifiers {
            let ok = match (i["type"].as_str(), i["value"].as_str()) {
                (Some("dns"), Some(_)) => true,
                (Some("ip"), Some(v)) => v.parse::<IpAddr>().is_ok_and(|ip| ip.to_string() == v),
                _ => false,
            };
            if !ok {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "rejectedIdentifier",
                    &format!("cannot issue for {i}"),
                );
            }
        }
        let mut authzs = Vec::new();
        for i in &identifiers {
            authzs.push(st.authzs.len());
            let token = b64(&rand::random::<[u8; 16]>());
            st.authzs.push(Authz {
                identifier: i.clone(),
                token,
                status: "pending",
            });
        }
        let id = st.issued.len();
        st.issued.push(Order {
            identifiers,
            profile,
            replaces: payload["replaces"].as_str().map(str::to_owned),
            authzs,
            status: "pending",
            certificate: None,
        });
        let body = self.order_json(id, &st.issued[id]);
        json_reply(
            StatusCode::CREATED,
            Some(format!("{}/order/{id}", self.base)),
            body,
        )
    }

    /// http-01: GET the answer from the identifier's address, as a CA does.
    async fn validate(&self, id: usize) -> Response<Full<Bytes>> {
        let (value, kind, token, thumb) = {
            let st = self.state.lock().unwrap();
            let Some(a) = st.authzs.get(id) else {
                return problem(StatusCode::NOT_FOUND, "malformed", "no such challenge");
            };
            (
                a.identifier["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                a.identifier["type"].as_str().unwrap_or_default().to_owned(),
                a.token.clone(),
                st.thumbprint.clone().unwrap_or_default(),
            )
        };
        let ip: IpAddr = match kind.as_str() {
            "ip" => value.parse().unwrap(),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let addr = SocketAddr::new(ip, self.script.http_port);
        let host = match ip {
            IpAddr::V6(_) if kind == "ip" => format!("[{value}]"),
            _ => value.clone(),
        };
        let got = http01_fetch(addr, &host, &token).await;
        let ok = got.as_deref() == Some(format!("{token}.{thumb}").as_str());
        let mut st = self.state.lock().unwrap();
        st.validations.push((value.clone(), addr));
        st.authzs[id].status = if ok { "valid" } else { "invalid" };
        for o in st.issued.iter_mut().filter(|o| o.authzs.contains(&id)) {
            if !ok {
                o.status = "invalid";
            }
        }
        let ready: Vec<usize> = (0..st.issued.len())
            .filter(|&o| {
                st.issued[o].status == "pending"
                    && st.issued[o]
                        .authzs
                        .iter()
                        .all(|a| st.authzs[*a].status == "valid")
            })
            .collect();
        for o in ready {
            st.issued[o].status = "ready";
        }
        let mut body = self.authz_json(id, &st.authzs[id])["challenges"][0].clone();
        if !ok {
            body["error"] = json!({"type": "urn:ietf:params:acme:error:unauthorized", "detail": format!("{value}: got {got:?}")});
        }
        json_reply(StatusCode::OK, None, body)
    }

    fn finalize(&self, id: usize, payload: &Value) -> Response<Full<Bytes>> {
        use x509_parser::prelude::FromDer;
        let csr_der = unb64(payload["csr"].as_str().unwrap_or_default());
        let Ok((_, csr)) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&csr_der)
        else {
            return problem(StatusCode::BAD_REQUEST, "badCSR", "cannot parse the CSR");
        };
        let mut names = Vec::new();
        for ext in csr.requested_extensions().into_iter().flatten() {
            if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) = ext {
                for n in &san.general_names {
                    match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            names.push((*d).to_owned())
                        }
                        x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                            4 => names
                                .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string()),
                            16 => names
                                .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string()),
                            _ => {}
                        },
                        _ => {}
                    }
                }
            }
        }
        let key = CsrKey(
            csr.certification_request_info
                .subject_pki
                .subject_public_key
                .data
                .to_vec(),
        );
        let mut st = self.state.lock().unwrap();
        st.csr_names.push(names);
        let Some(order) = st.issued.get(id) else {
            return problem(StatusCode::NOT_FOUND, "malformed", "no such order");
        };
        if order.status != "ready" {
            return problem(
                StatusCode::FORBIDDEN,
                "orderNotReady",
                "the order is not ready",
            );
        }
        let sans: Vec<rcgen::SanType> = order
            .identifiers
            .iter()
            .map(|i| {
                let v = i["value"].as_str().unwrap_or_default();
                match i["type"].as_str() {
                    Some("ip") => rcgen::SanType::IpAddress(v.parse().unwrap()),
                    _ => rcgen::SanType::DnsName(v.to_owned().try_into().unwrap()),
                }
            })
            .collect();
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = sans;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(1)).into();
        params.not_after = (now + self.script.lifetime).into();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let order = &mut st.issued[id];
        order.status = "valid";
        order.certificate = Some(format!("{}/cert/{id}", self.base));
        st.issued_pem
            .insert(id, format!("{}{}", cert.pem(), self.issuer.pem()));
        let body = self.order_json(id, &st.issued[id]);
        json_reply(
            StatusCode::OK,
            Some(format!("{}/order/{id}", self.base)),
            body,
        )
    }
}

async fn http01_fetch(addr: SocketAddr, host: &str, token: &str) -> Option<String> {
    let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(conn);
    let req = Request::get(format!("/.well-known/acme-challenge/{token}"))
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .ok()?;
    let resp = sender.send_request(req).await.ok()?;
    if resp.status() != StatusCode::OK {
        return None;
    }
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    String::from_utf8(body.to_vec()).ok()
}

/// Starts the CA on 127.0.0.1 with its own TLS certificate in `dir`.
pub async fn start(dir: &Path, script: Script) -> MockCa {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let tls_cert = dir.join("mock-ca.pem");
    std::fs::write(&tls_cert, cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(clawveil_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("https://{addr}");
    let mut root_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "clawveil scripted CA");
    root_params.distinguished_name = dn;
    let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let issuer = rcgen::CertifiedIssuer::self_signed(root_params, root_key).unwrap();
    let root = issuer.der().clone();
    let state = Arc::new(Mutex::new(State::default()));
    let ca = Arc::new(Ca {
        base: base.clone(),
        script,
        state: state.clone(),
        issuer,
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, ca) = (acceptor.clone(), ca.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| {
                    let ca = ca.clone();
                    async move { Ok::<_, Infallible>(ca.answer(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    MockCa {
        base,
        tls_cert,
        root,
        state,
    }
}
