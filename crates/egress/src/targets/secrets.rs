//! A target's secrets: the headers it injects (the model key) and the token the bot
//! must present instead of that key. Resolved values live behind one `ArcSwap`, so a
//! SIGHUP re-reads `${file:..}`/`${env:..}` without touching a connection; a value that
//! cannot be re-read leaves the previous ones in place. Values are never logged: header
//! values are marked sensitive, and errors name the key, never the value.

use std::sync::Arc;

use arc_swap::ArcSwap;
use clawveil_config::{ConfigError, Secret};
use http::header::{HeaderName, AUTHORIZATION};
use http::{HeaderMap, HeaderValue};

/// `x-api-key`: how Anthropic-style SDKs send their key (and so the client token).
pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Headers a target may not inject: they frame the message or name the host, and are
/// the connection's to set.
const NOT_INJECTABLE: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-connection",
];

/// Why a target's secrets are unusable. Never carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("inject_headers: {name:?} is not a valid header name")]
    BadName { name: String },
    #[error("inject_headers: {name} cannot be injected (it belongs to the connection)")]
    NotInjectable { name: String },
    #[error("inject_headers.{name}: the value is not a valid header value (control characters or a line break)")]
    BadValue { name: String },
    #[error("client_token: the value is not a valid header value")]
    BadToken,
    #[error(transparent)]
    Unreadable(#[from] ConfigError),
}

/// What the templates resolve to now.
struct Live {
    inject: Vec<(HeaderName, HeaderValue)>,
    client_token: Option<Secret>,
}

pub(crate) struct Secrets {
    inject: Vec<(HeaderName, Secret)>,
    client_token: Option<Secret>,
    live: ArcSwap<Live>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("inject", &self.inject)
            .field("client_token", &self.client_token)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    pub(crate) fn new(
        inject: &[(String, Secret)],
        client_token: Option<Secret>,
    ) -> Result<Secrets, SecretError> {
        let mut templates = Vec::with_capacity(inject.len());
        for (name, secret) in inject {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SecretError::BadName { name: name.clone() })?;
            if NOT_INJECTABLE.contains(&header.as_str()) || header.as_str().starts_with("proxy-") {
                return Err(SecretError::NotInjectable {
                    name: header.to_string(),
                });
            }
            templates.push((header, secret.clone()));
        }
        let live = resolve(&templates, client_token.as_ref(), false)?;
        Ok(Secrets {
            inject: templates,
            client_token,
            live: ArcSwap::from_pointee(live),
        })
    }

    /// Re-reads every secret; on any error the previous values stay.
    pub(crate) fn reload(&self) -> Result<(), SecretError> {
        let live = resolve(&self.inject, self.client_token.as_ref(), true)?;
        self.live.store(Arc::new(live));
        Ok(())
    }

    /// Whether the bot may use this target: always without a client token; with one,
    /// when `Authorization: Bearer <token>` or `x-api-key: <token>` carries it.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let live = self.live.load();
        let Some(token) = &live.client_token else {
            return true;
        };
        let bearer = headers.get_all(AUTHORIZATION).iter().any(|v| {
            let v = v.as_bytes();
            v.len() > 7
                && v[..6].eq_ignore_ascii_case(b"bearer")
                && v[6] == b' '
                && token.ct_eq(v[7..].trim_ascii())
        });
        bearer
            || headers
                .get_all(X_API_KEY)
                .iter()
                .any(|v| token.ct_eq(v.as_bytes().trim_ascii()))
    }

    /// The credentials for the target: with a client token, the bot's `Authorization`
    /// and `x-api-key` (which carry it) are dropped; every injected header replaces
    /// whatever the bot sent under that name.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let live = self.live.load();
        if live.client_token.is_some() {
            headers.remove(AUTHORIZATION);
            headers.remove(X_API_KEY);
        }
        for (name, value) in &live.inject {
            headers.insert(name.clone(), value.clone());
        }
    }
}

fn resolve(
    inject: &[(HeaderName, Secret)],
    client_token: Option<&Secret>,
    reread: bool,
) -> Result<Live, SecretError> {
    let fresh = |s: &Secret| if reread { s.reload() } else { Ok(s.clone()) };
    let mut values = Vec::with_capacity(inject.len());
    for (name, template) in inject {
        let secret = fresh(template)?;
        let mut value =
            HeaderValue::from_str(secret.expose()).map_err(|_| SecretError::BadValue {
                name: name.to_string(),
            })?;
        value.set_sensitive(true);
        values.push((name.clone(), value));
    }
    let client_token = client_token.map(fresh).transpose()?;
    if let Some(t) = &client_token {
        HeaderValue::from_str(t.expose()).map_err(|_| SecretError::BadToken)?;
    }
    Ok(Live {
        inject: values,
        client_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_client_token_is_checked_and_swapped_for_the_key() {
        let s = Secrets::new(
            &[("Authorization".into(), Secret::literal("Bearer sk-real"))],
            Some(Secret::literal("local-tok")),
        )
        .unwrap();
        assert!(!s.admits(&headers(&[])));
        assert!(!s.admits(&headers(&[("authorization", "Bearer wrong")])));
        assert!(!s.admits(&headers(&[("authorization", "local-tok")])));
        assert!(!s.admits(&headers(&[("authorization", "Basic local-tok")])));
        assert!(s.admits(&headers(&[("authorization", "Bearer local-tok")])));
        assert!(s.admits(&headers(&[("authorization", "bearer  local-tok ")])));
        assert!(s.admits(&headers(&[("x-api-key", "local-tok")])));
        let mut h = headers(&[
            ("authorization", "Bearer local-tok"),
            ("x-api-key", "local-tok"),
        ]);
        s.apply(&mut h);
        assert_eq!(h.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(h[AUTHORIZATION], "Bearer sk-real");
        assert!(h[AUTHORIZATION].is_sensitive());
        assert!(!h.contains_key(X_API_KEY));
    }

    #[test]
    fn without_a_client_token_injected_headers_replace_the_bots() {
        let s = Secrets::new(&[("x-api-key".into(), Secret::literal("sk-real"))], None).unwrap();
        assert!(s.admits(&headers(&[])));
        let mut h = headers(&[
            ("x-api-key", "bot-1"),
            ("x-api-key", "bot-2"),
            ("accept", "*/*"),
        ]);
        s.apply(&mut h);
        assert_eq!(h.get_all(X_API_KEY).iter().collect::<Vec<_>>(), ["sk-real"]);
        assert_eq!(h["accept"], "*/*");
    }

    #[test]
    fn bad_names_and_values_are_refused_without_quoting_the_value() {
        let e = Secrets::new(&[("Host".into(), Secret::literal("x"))], None).unwrap_err();
        assert!(e.to_string().contains("cannot be injected"), "{e}");
        let e = Secrets::new(&[("bad name".into(), Secret::literal("x"))], None).unwrap_err();
        assert!(e.to_string().contains("not a valid header name"), "{e}");
        let e = Secrets::new(
            &[("Authorization".into(), Secret::literal("Bearer sk-1\nX: y"))],
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("sk-1"), "{e}");
    }
}
