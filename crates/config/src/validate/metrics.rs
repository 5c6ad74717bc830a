//! `[metrics]`: the bearer tokens `/metrics` accepts. `token` is one secret or an array
//! of them (the new and the old one during a rotation); every entry is a secret, none
//! empty, none the same as another.

use super::Ctx;
use crate::error::{ConfigError, ErrorKind};
use crate::raw::RawMetrics;
use crate::secret::Secret;
use crate::Metrics;

const KEY: &str = "metrics.token";
const EXPECTED: &str = "a secret string, or an array of secret strings during a rotation";
const ROTATION: &str =
    "token = [\"${file:/run/secrets/metrics_new}\", \"${file:/run/secrets/metrics_old}\"]";

pub(crate) fn metrics(cx: &mut Ctx<'_>, raw: &RawMetrics) -> Result<Metrics, ConfigError> {
    let tokens = match &raw.token {
        None => Vec::new(),
        Some(toml::Value::String(template)) => vec![cx.secret(KEY, template)?],
        Some(toml::Value::Array(items)) if items.is_empty() => {
            return Err(cx.err(
                KEY,
                ErrorKind::Empty {
                    hint: format!("list one or more secrets, e.g. {ROTATION}, or remove token (only on a loopback listen.metrics)"),
                },
            ))
        }
        Some(toml::Value::Array(items)) => {
            let mut tokens: Vec<Secret> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("{KEY}[{i}]");
                let Some(template) = item.as_str() else {
                    return Err(cx.err(&at, wrong_type(item)));
                };
                let secret = cx.secret(&at, template)?;
                if let Some(first) = tokens.iter().position(|t| t.expose() == secret.expose()) {
                    return Err(cx.err(
                        &at,
                        ErrorKind::BadSecret {
                            reason: format!("is the same as {KEY}[{first}]"),
                            expected: "a different secret in each entry (the new one and the old one during a rotation)".into(),
                        },
                    ));
                }
                tokens.push(secret);
            }
            tokens
        }
        Some(other) => return Err(cx.err(KEY, wrong_type(other))),
    };
    Ok(Metrics { tokens })
}

/// Names the type only: a number written as a token is still a token.
fn wrong_type(value: &toml::Value) -> ErrorKind {
    ErrorKind::WrongType {
        found: value.type_str().to_owned(),
        expected: EXPECTED.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_unsupported;

    const HTTPS: &str = "[listen]\nhttps = \"127.0.0.1:8443\"\n";

    fn with(metrics: &str) -> String {
        format!("{HTTPS}[metrics]\n{metrics}\n")
    }

    #[track_caller]
    fn refused(metrics: &str, expected: &str) {
        match parse_unsupported(&with(metrics)) {
            Ok(c) => panic!("expected an error for {metrics:?}, got {c:?}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }

    #[test]
    fn one_token_is_a_string() {
        let c = parse_unsupported(&with("token = \"scrape-token-one\"")).unwrap();
        let tokens: Vec<&str> = c.metrics.tokens.iter().map(|t| t.expose()).collect();
        assert_eq!(tokens, ["scrape-token-one"]);
        let out = c.effective_toml();
        assert!(
            out.contains("[metrics]\ntoken = \"<literal, masked>\"\n") && !out.contains("scrape"),
            "{out}"
        );
    }

    #[test]
    fn several_tokens_are_an_array_in_file_order() {
        std::env::set_var("CLAWVEIL_TEST_METRICS_NEW", "scrape-token-new");
        let c = parse_unsupported(&with(
            "token = [\"${env:CLAWVEIL_TEST_METRICS_NEW}\", \"scrape-token-old\"]",
        ))
        .unwrap();
        let tokens: Vec<&str> = c.metrics.tokens.iter().map(|t| t.expose()).collect();
        assert_eq!(tokens, ["scrape-token-new", "scrape-token-old"]);
        let out = c.effective_toml();
        assert!(
            out.contains(
                "[metrics]\ntoken = [\"${env:CLAWVEIL_TEST_METRICS_NEW}\", \"<literal, masked>\"]\n"
            ),
            "{out}"
        );
        assert!(!out.contains("scrape-token"), "{out}");
        assert!(!format!("{c:?}").contains("scrape-token"));
        let again = parse_unsupported(&out).unwrap();
        assert_eq!(again.metrics.tokens.len(), 2);
        assert_eq!(again.effective_toml(), out);
        // A one-element array is one token.
        let c = parse_unsupported(&with("token = [\"scrape-token-one\"]")).unwrap();
        assert_eq!(c.metrics.tokens.len(), 1);
        // Without the key, /metrics is open (loopback only, see server::cross_checks).
        let c = parse_unsupported(HTTPS).unwrap();
        assert!(c.metrics.tokens.is_empty());
        assert!(!c.effective_toml().contains("token"));
    }

    #[test]
    fn empty_duplicate_and_mistyped_tokens_are_refused_with_file_line_and_key() {
        refused(
            "token = []",
            "proxy.toml:4:1: metrics.token: must not be empty; list one or more secrets, e.g. token = [\"${file:/run/secrets/metrics_new}\", \"${file:/run/secrets/metrics_old}\"], or remove token (only on a loopback listen.metrics)",
        );
        refused(
            "token = \"\"",
            "proxy.toml:4:1: metrics.token: must not be empty; a secret needs a value, e.g. \"${env:NAME}\" or \"${file:/run/secrets/name}\"",
        );
        refused(
            "token = [\"scrape-token-one\", \"\"]",
            "proxy.toml:4:30: metrics.token[1]: must not be empty; a secret needs a value, e.g. \"${env:NAME}\" or \"${file:/run/secrets/name}\"",
        );
        // The message names the first entry, never the value.
        refused(
            "token = [\n  \"scrape-token-one\",\n  \"scrape-token-two\",\n  \"scrape-token-one\",\n]",
            "proxy.toml:7:3: metrics.token[2]: the secret is the same as metrics.token[0]; expected a different secret in each entry (the new one and the old one during a rotation)",
        );
        std::env::set_var("CLAWVEIL_TEST_METRICS_DUP", "scrape-token-one");
        refused(
            "token = [\"scrape-token-one\", \"${env:CLAWVEIL_TEST_METRICS_DUP}\"]",
            "proxy.toml:4:30: metrics.token[1]: the secret is the same as metrics.token[0]; expected a different secret in each entry (the new one and the old one during a rotation)",
        );
        refused(
            "token = 12345678",
            "proxy.toml:4:1: metrics.token: wrong type: integer; expected a secret string, or an array of secret strings during a rotation",
        );
        refused(
            "token = [\"scrape-token-one\", 12345678]",
            "proxy.toml:4:30: metrics.token[1]: wrong type: integer; expected a secret string, or an array of secret strings during a rotation",
        );
        refused(
            "token = [\"${env:CLAWVEIL_TEST_METRICS_NEVER_SET}\"]",
            "proxy.toml:4:10: metrics.token[0]: environment variable CLAWVEIL_TEST_METRICS_NEVER_SET is not set (referenced as ${env:CLAWVEIL_TEST_METRICS_NEVER_SET}); set it or change the key",
        );
    }

    #[test]
    fn a_non_loopback_listener_needs_at_least_one_token() {
        let src = "[listen]\nhttps = \"127.0.0.1:8443\"\nmetrics = \"0.0.0.0:9464\"\n";
        let e = parse_unsupported(src).unwrap_err().to_string();
        assert!(e.contains("so metrics.token is required"), "{e}");
        let c = parse_unsupported(&format!(
            "{src}[metrics]\ntoken = [\"scrape-token-new\", \"scrape-token-old\"]\n"
        ))
        .unwrap();
        assert_eq!(c.metrics.tokens.len(), 2);
    }
}
