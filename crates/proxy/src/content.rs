//! What of a request's content may reach the log, and only after redaction: the path,
//! the query string and (with `log.bodies = "redacted"`) headers and body samples.
//! Nothing here runs unless the access event is actually going to be written.

use std::sync::Arc;

use clawveil_config::{BodyLog, Config, Replace};
use clawveil_redact::{BodySample, CustomRule, Engine, EngineConfig, RedactError, Report};
use clawveil_telemetry::{BodyField, FailReason, IntCounter, Metrics};
use http::header::HeaderMap;

use crate::capture::Capture;

/// A redacted body sample for the access event.
pub struct Sample {
    pub text: String,
    /// `text` is a complete JSON object, logged as an object.
    pub json: bool,
}

impl Sample {
    pub fn field(&self) -> BodyField<'_> {
        if self.json {
            BodyField::Json(&self.text)
        } else {
            BodyField::Text(&self.text)
        }
    }
}

/// The redaction engine plus what the configuration says to log.
pub struct ContentLog {
    engine: Engine,
    /// `log.bodies = "redacted"`: body samples and headers are logged (redacted).
    pub bodies: bool,
    body_max: usize,
    /// `redact.headers`: extra header names whose values are always masked whole.
    extra_headers: Vec<String>,
    /// `log.hash_key`, for client addresses.
    client_key: Option<aws_lc_rs::hmac::Key>,
    /// `clawveil_redactions_total{rule}` per rule name, resolved once: counting
    /// the redactions of every logged request should not hash label values.
    counters: Vec<(String, IntCounter)>,
    metrics: Arc<Metrics>,
}

/// Builds the engine configuration from `[redact]` and `log.hash_key`.
pub fn engine_config(cfg: &Config) -> EngineConfig {
    EngineConfig {
        builtin: cfg.redact.builtin.clone(),
        json_keys: cfg.redact.json_keys.clone(),
        custom: cfg
            .redact
            .rules
            .iter()
            .map(|r| CustomRule {
                name: r.name.clone(),
                pattern: r.pattern.clone(),
                replace: match r.replace {
                    Replace::Mask => clawveil_redact::Replace::Mask,
                    Replace::Hash => clawveil_redact::Replace::Hash,
                },
            })
            .collect(),
        hash_key: cfg
            .log
            .hash_key
            .as_ref()
            .map(|k| k.expose().as_bytes().to_vec()),
    }
}

impl ContentLog {
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Result<Self, RedactError> {
        let engine = Engine::new(&engine_config(cfg))?;
        let counters = engine
            .rule_names()
            .chain(["header"])
            .map(|rule| {
                (
                    rule.to_owned(),
                    metrics.redactions.with_label_values(&[rule]),
                )
            })
            .collect();
        Ok(ContentLog {
            counters,
            engine,
            bodies: cfg.log.bodies == BodyLog::Redacted,
            body_max: usize::try_from(cfg.log.body_max).unwrap_or(usize::MAX),
            extra_headers: cfg
                .redact
                .headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            client_key: cfg.log.hash_key.as_ref().map(|k| {
                aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, k.expose().as_bytes())
            }),
            metrics,
        })
    }

    /// A capture buffer for one body direction, when bodies are logged.
    pub fn capture(&self) -> Option<Capture> {
        // Capture a little more than is logged: redaction can shorten text.
        self.bodies
            .then(|| Capture::new(self.body_max.saturating_mul(2).max(1024)))
    }

    pub fn text(&self, s: &str, report: &mut Report) -> String {
        self.engine.redact_text(s, report).into_owned()
    }

    pub fn query(&self, q: &str, report: &mut Report) -> String {
        self.engine.redact_query(q, report).into_owned()
    }

    /// Headers as one JSON object string, every value redacted.
    pub fn headers(&self, headers: &HeaderMap, report: &mut Report) -> String {
        let mut map = serde_json::Map::new();
        let mut masked = 0;
        for (name, value) in headers {
            let name = name.as_str();
            let shown = match value.to_str() {
                Err(_) => "[omitted:binary]".to_owned(),
                Ok(_) if self.extra_headers.iter().any(|h| h == name) => {
                    masked += 1;
                    "[REDACTED:header]".to_owned()
                }
                Ok(v) => self.engine.redact_header(name, v, report).into_owned(),
            };
            map.entry(name.to_owned())
                .and_modify(|prior| {
                    if let serde_json::Value::String(s) = prior {
                        s.push_str(", ");
                        s.push_str(&shown);
                    }
                })
                .or_insert(serde_json::Value::String(shown.clone()));
        }
        if masked > 0 {
            self.add("header", masked);
        }
        serde_json::Value::Object(map).to_string()
    }

    /// The client address as logged: a keyed tag when `log.hash_key` is set.
    pub fn client(&self, ip: std::net::IpAddr) -> String {
        match &self.client_key {
            Some(key) => {
                let tag = aws_lc_rs::hmac::sign(key, ip.to_string().as_bytes());
                let hex: String = tag.as_ref()[..5]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("[client:{hex}]")
            }
            None => ip.to_string(),
        }
    }

    /// The redacted sample of a captured body, or why it was omitted.
    pub fn body(
        &self,
        capture: &Capture,
        ctype: Option<&str>,
        cenc: Option<&str>,
        report: &mut Report,
    ) -> Sample {
        let (data, cut) = capture.take();
        let sample = if cut {
            self.engine
                .redact_body_prefix(&data, ctype, cenc, self.body_max, report)
        } else {
            self.engine
                .redact_body(&data, ctype, cenc, self.body_max, report)
        };
        let text = |text| Sample { text, json: false };
        match sample {
            BodySample::Empty => text(String::new()),
            BodySample::Redacted {
                text: t, truncated, ..
            } if truncated => text(format!("{t}…[truncated]")),
            BodySample::Redacted { text: t, json, .. } => Sample {
                // objects only: a log field keeps one type
                json: json && t.trim_start().starts_with('{'),
                text: t,
            },
            BodySample::Omitted(reason) => {
                self.metrics.fail_closed(FailReason::RedactionOmitted);
                text(format!("[omitted:{}]", reason.as_str()))
            }
        }
    }

    /// Adds a report's counts to `clawveil_redactions_total`.
    pub fn count(&self, report: &Report) {
        for (rule, n) in report.iter() {
            self.add(rule, n);
        }
    }

    /// Counts `n` redactions of `rule` (a rule the engine reports is always
    /// among the resolved ones; anything else is looked up).
    fn add(&self, rule: &str, n: u64) {
        match self.counters.iter().find(|(r, _)| r == rule) {
            Some((_, c)) => c.inc_by(n),
            None => self.metrics.redactions.with_label_values(&[rule]).inc_by(n),
        }
    }
}
