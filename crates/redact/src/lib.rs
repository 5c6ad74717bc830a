//! The clawveil redaction engine.
//!
//! clawveil promises that whatever a bot receives or sends, its log output never
//! contains a raw credential or personal identifier. This crate owns that promise:
//! everything the proxy is about to log (bodies, headers, query strings, error
//! texts) goes through one shared [`Engine`] first. It is pure (no I/O, no async,
//! no other clawveil crate), `Send + Sync`, and compiled once from the
//! `[redact]` section of `proxy.toml`.
//!
//! * **JSON** bodies are walked structurally: values under sensitive keys
//!   (DingTalk's `senderStaffId`, `senderNick`, `sessionWebhook`,
//!   `downloadCode`, …, credential names such as `access_token` or
//!   `appSecret`, and configured `json_keys`) are replaced whole; every other
//!   string, every key and every integer goes through the pattern rules. The
//!   output is valid JSON.
//! * **Form** bodies and **query strings** are redacted per parameter.
//! * **Text** (`text/*`, XML, NDJSON, …) goes through the pattern rules.
//! * Anything else (binary types, a content encoding, invalid UTF-8, a
//!   non-UTF-8 charset, JSON that does not parse) is **omitted**, with an
//!   [`OmitReason`], never logged raw.
//!
//! ## Rules
//!
//! | rule | catches |
//! |---|---|
//! | `email` | `local@domain.tld` |
//! | `phone` | mainland mobiles `1[3-9]…` (with `+86`/`0086`, spaces, dashes), E.164 `+<country><digits>` |
//! | `id-card` | 18-character resident IDs with a plausible birth date and a valid MOD 11-2 check character |
//! | `bank-card` | 13–19 digits (grouped or not) led by a card-network digit (2–6, 9), Luhn-valid |
//! | `bearer` | the credential after `Bearer`, `Basic`, `Token`, `Digest`, `Negotiate`, `NTLM`, `AWS4-HMAC-SHA256` |
//! | `api-key` | `sk-…`, `AKID…`, `LTAI…`, `AKIA…`/`ASIA…`, `ghp_…`/`github_pat_…`, `xox?-…`, `AIza…`, `glpat-…`; random-looking values ≥ 16 characters after `token=`, `secret:`, `api_key:`, …; any value after `password=`/`passwd:`/`pwd=` |
//! | `jwt` | `eyJ…` base64url JSON, with or without the other two segments |
//! | `url-secret` | values of `access_token`, `token`, `sign`, `signature`, `session`, `key`, `secret`, `password`, `code`, `ticket`, … parameters; `user:password@` in URLs |
//! | `dingtalk` | the DingTalk JSON keys (`senderStaffId`, `senderNick`, `senderId`, `…CorpId`, `…UserId`, `unionId`, `openId`, `conversationId`, `sessionWebhook`, `…DownloadCode`, `atUsers[].dingtalkId`, card callbacks' `outTrackId`, `spaceId`, …); `$:LWCP_v1:$…` ids, `cid…` conversation ids, `ding…` corp ids; in text, the value after any of those names (`senderStaffId=…`, `"downloadCode": "…"`), and an identifier after `user`/`uid` (`user=manager4711`, not `user: please help`) |
//!
//! Of a DingTalk callback (HTTP or Stream mode, every `msgtype`: `text`,
//! `richText`, `picture`, `file`, `audio`, `video`, and interactive-card
//! callbacks), the ids of people, conversations and organisations are
//! replaced whole (hashable), and download codes and session webhooks, which
//! are credentials, are masked; what people wrote (`text.content`,
//! `richText[].text`, `recognition`, `fileName`, `conversationTitle`, card
//! action `value`s) keeps its text and goes through the pattern rules; `msgId`,
//! `robotCode`, `msgtype`, `createAt` and the other fields describing the
//! message stay as they are. Generic names (`user`, `uid`) mark a value only
//! when it looks like an identifier: at least four of `A-Z a-z 0-9 _ $ : + / =
//! . -`, with a digit or a DingTalk id prefix (`ding…`, `cid…`, `$:LWCP…`).
//!
//! Numbers are validated, so look-alikes survive: order numbers, millisecond
//! timestamps, version strings, UUIDs, git SHAs (unless next to a key-like
//! name), 18-digit numbers with a bad check character, Luhn-invalid cards.
//! Custom rules (`[[redact.rule]]`) add regular expressions. Configured
//! `json_keys` are counted as `json-key`. Keys of JSON objects go through the
//! pattern rules too: maps keyed by phone number, e-mail or user id are common
//! (`{"13812345678": {...}}`), and a key is as visible in a log line as a value.
//!
//! A match becomes `[REDACTED:<rule>]`, or, with a hash key, `[<rule>:<first 10
//! hex of HMAC-SHA256(key, value)>]` for personal identifiers (phones and cards
//! are normalised first, so `+86 138-1234-5678` and `13812345678` get the same
//! tag), so one user can be followed across log lines without exposing who it
//! is; credentials are always masked. Every call fills a [`Report`] with counts
//! per rule, for `clawveil_redactions_total{rule}`, and, for `clawveil redact
//! --explain`, the rule and input span of each match (never the value).
//!
//! ## Cost
//!
//! Rules are compiled once into a few passes over the bytes: a SIMD-prefiltered
//! multi-literal automaton, `memchr` over separator bytes, a digit-run scanner
//! that validates checksums only on candidates, and one multi-pattern regex for
//! custom rules. Nothing is allocated unless something is replaced (text comes
//! back as a [`Cow`]). On one core, all built-in rules on: about 3 GB/s on text
//! without matches, about 500 MB/s on chat text, and about 350 MB/s on DingTalk
//! callbacks (JSON with a dozen replacements per kilobyte, each body validated);
//! see `benches/benches/redact.rs`.
//!
//! ## Truncation
//!
//! Samples are cut to a maximum length *after* redaction, so an identifier that
//! straddles the cut is already masked; a mask token split by the cut is dropped.
//! (Of a long body, a window of `4 × max_len + 64 KiB` is redacted before
//! cutting.) A body known to be only a prefix of the real one
//! ([`Engine::redact_body_prefix`]) is redacted as far as it goes instead of
//! being rejected as broken JSON, and its unfinished last token is dropped, since
//! it may be the start of an identifier too short to recognise.
//!
//! ## Example
//!
//! ```
//! use clawveil_redact::{BodySample, Engine, EngineConfig, Report};
//!
//! let engine = Engine::new(&EngineConfig::default())?;
//! let mut report = Report::new();
//!
//! let line = engine.redact_text("call 138 1234 5678 or mail li.lei@example.com", &mut report);
//! assert_eq!(line, "call [REDACTED:phone] or mail [REDACTED:email]");
//!
//! let body = br#"{"senderStaffId":"manager4220","text":{"content":"my card 4111111111111111"}}"#;
//! let sample = engine.redact_body(body, Some("application/json"), None, 16 * 1024, &mut report);
//! assert_eq!(
//!     sample,
//!     BodySample::Redacted {
//!         text: r#"{"senderStaffId":"[REDACTED:dingtalk]","text":{"content":"my card [REDACTED:bank-card]"}}"#.into(),
//!         truncated: false,
//!         json: true,
//!     }
//! );
//! assert_eq!(report.count("phone"), 1);
//! assert_eq!(report.total(), 4);
//! # Ok::<(), clawveil_redact::RedactError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod config;
mod error;
mod form;
mod header;
mod json;
mod mask;
mod report;
mod rules;
mod scratch;
mod truncate;

use std::borrow::Cow;
use std::sync::Arc;

pub use body::{BodySample, OmitReason};
pub use config::{CustomRule, EngineConfig, Replace};
pub use error::RedactError;
pub use report::{Match, Report};

use mask::Masker;
use rules::{Hit, Scanner};

/// A sensitive field or parameter name: what replaces its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sensitive {
    pub(crate) rule: rules::RuleId,
    pub(crate) hashable: bool,
    /// Only a value that looks like an identifier (`rules::identifier`) is
    /// replaced: the value of a generic name (`user`, `uid`).
    pub(crate) if_id: bool,
}

/// Where a replacement is reported in the caller's input.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loc {
    /// At the hit's own offset plus this base.
    Shift(usize),
    /// At this fixed span (for values that were decoded before matching).
    Span(usize, usize),
}

/// The compiled redaction rules. Build once, share (e.g. in an `Arc`) across all
/// requests: every method takes `&self`.
pub struct Engine {
    scanner: Scanner,
    masker: Masker,
    names: Vec<Arc<str>>,
    /// Per rule, its fixed mask `[REDACTED:<rule>]`, written as is whenever
    /// nothing is hashed.
    masks: Vec<Box<str>>,
    /// The same masks in quotes, `"[REDACTED:<rule>]"`: the whole string token
    /// that replaces a JSON value.
    quoted: Vec<Box<str>>,
    json_keys: Vec<rules::names::Norm>,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
};

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("rules", &self.rule_names().collect::<Vec<_>>())
            .field("hashing", &self.masker.hashing())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Compiles `cfg`. Fails on an unknown built-in name, a bad custom rule, a bad
    /// `json_keys` entry or a hash key shorter than 16 bytes.
    pub fn new(cfg: &EngineConfig) -> Result<Engine, RedactError> {
        let masker = Masker::new(cfg.hash_key.as_deref())?;
        let c = config::compile(cfg)?;
        let masks: Vec<Box<str>> = c
            .names
            .iter()
            .map(|n| {
                let mut m = String::new();
                masker.write(&mut m, n, "", false, mask::Canon::Raw);
                m.into_boxed_str()
            })
            .collect();
        let quoted = masks.iter().map(|m| format!("\"{m}\"").into()).collect();
        Ok(Engine {
            scanner: Scanner::new(c.enabled, c.custom),
            masker,
            names: c.names,
            masks,
            quoted,
            json_keys: c.json_keys,
        })
    }

    /// The names of the built-in rules, as accepted in `redact.builtin`.
    pub fn builtin_names() -> &'static [&'static str] {
        &rules::BUILTIN
    }

    /// Every rule name this engine can report: the enabled built-ins, `json-key`
    /// when `json_keys` are configured, and the custom rules. Handy for
    /// pre-registering metric labels.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> + '_ {
        let en = self.scanner.enabled();
        self.names.iter().enumerate().filter_map(move |(i, n)| {
            let id = i as rules::RuleId;
            let on = match id {
                rules::JSON_KEY => !self.json_keys.is_empty(),
                id if id < rules::JSON_KEY => en.has(id),
                _ => true,
            };
            on.then_some(&**n)
        })
    }

    /// Redacts free text by the pattern rules. Borrows `s` when nothing matched.
    pub fn redact_text<'a>(&self, s: &'a str, report: &mut Report) -> Cow<'a, str> {
        let (mut hits, spare) = scratch::take();
        let out = self.text_at(s, 0, &mut hits, report);
        scratch::give(hits, spare);
        out
    }

    /// Redacts a query string (`a=b&c=d`, with or without the leading `?`):
    /// values of sensitive parameters (`access_token`, `sign`, `password`,
    /// DingTalk ids, `json_keys`, …) are replaced whole, other values and bare
    /// names go through the pattern rules (percent-decoded first).
    pub fn redact_query<'a>(&self, q: &'a str, report: &mut Report) -> Cow<'a, str> {
        form::redact(self, q, 0, report)
    }

    /// Redacts one header value. `Authorization` and `Proxy-Authorization` keep
    /// their scheme (`Bearer [REDACTED:bearer]`); `Cookie`, `Set-Cookie`,
    /// `X-Api-Key` and other credential-named headers (`*-Token`, `*-Secret`,
    /// `sign`, …) are masked whole, whichever rules are enabled; the rest go
    /// through the pattern rules.
    pub fn redact_header<'a>(
        &self,
        name: &str,
        value: &'a str,
        report: &mut Report,
    ) -> Cow<'a, str> {
        header::redact(self, name, value, report)
    }

    /// Redacts a complete body for logging and cuts the result to at most
    /// `max_len` bytes. See [`BodySample`] for what comes back.
    pub fn redact_body(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        max_len: usize,
        report: &mut Report,
    ) -> BodySample {
        body::redact(
            self,
            body,
            content_type,
            content_encoding,
            max_len,
            false,
            report,
        )
    }

    /// Like [`redact_body`](Engine::redact_body) for a body of which only the
    /// first bytes were captured. A JSON prefix is redacted as far as it goes
    /// instead of being omitted as invalid, and the last, unfinished token (a
    /// number, word, or string tail that may be the start of an identifier) is
    /// dropped. The sample is always marked `truncated`.
    pub fn redact_body_prefix(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        max_len: usize,
        report: &mut Report,
    ) -> BodySample {
        body::redact(
            self,
            body,
            content_type,
            content_encoding,
            max_len,
            true,
            report,
        )
    }

    /// Pattern-redacts `s`, reporting offsets shifted by `base`; `hits` is scratch.
    pub(crate) fn text_at<'a>(
        &self,
        s: &'a str,
        base: usize,
        hits: &mut Vec<Hit>,
        report: &mut Report,
    ) -> Cow<'a, str> {
        self.scanner.scan(s, hits);
        if hits.is_empty() {
            return Cow::Borrowed(s);
        }
        let mut out = mask::Splice::new(s);
        self.write_hits(&mut out, s, 0, hits, Loc::Shift(base), report);
        out.finish()
    }

    /// Replaces `hits` (positions in `s`) in `out`, whose source holds `s` at
    /// offset `at`, and reports each at `loc`.
    pub(crate) fn write_hits(
        &self,
        out: &mut mask::Splice<'_>,
        s: &str,
        at: usize,
        hits: &[Hit],
        loc: Loc,
        report: &mut Report,
    ) {
        for h in hits {
            let name = &self.names[usize::from(h.rule)];
            match loc {
                Loc::Shift(base) => report.record(h.rule, name, base + h.start, h.end - h.start),
                Loc::Span(offset, len) => report.record(h.rule, name, offset, len),
            }
            out.replace(at + h.start, at + h.end, |o| {
                self.write_token(o, h.rule, &s[h.start..h.end], h.hashable)
            });
        }
    }

    /// Writes the token replacing `value` (found by `rule`, or under a name of `rule`).
    pub(crate) fn write_token(
        &self,
        out: &mut String,
        rule: rules::RuleId,
        value: &str,
        hashable: bool,
    ) {
        if hashable && self.masker.hashing() {
            let name = &self.names[usize::from(rule)];
            self.masker
                .write(out, name, value, hashable, rules::canon(rule));
        } else {
            out.push_str(&self.masks[usize::from(rule)]);
        }
    }

    /// Writes the JSON string token replacing the JSON value `value` (the
    /// token of [`write_token`](Engine::write_token), in quotes).
    pub(crate) fn write_quoted_token(
        &self,
        out: &mut String,
        rule: rules::RuleId,
        value: &str,
        hashable: bool,
    ) {
        if hashable && self.masker.hashing() {
            out.push('"');
            self.write_token(out, rule, value, hashable);
            out.push('"');
        } else {
            // the mask and its quotes in one copy
            out.push_str(&self.quoted[usize::from(rule)]);
        }
    }

    /// Is a field or parameter with this name sensitive? Covers at least every
    /// name whose value the free-text rules would catch after a `:` (see
    /// `rules::words`), since JSON scanning skips the colons that end keys.
    pub(crate) fn sensitive_name(&self, name: &[u8], param: bool) -> Option<Sensitive> {
        let class = rules::names::Class::of(name);
        if class.is_none() && self.json_keys.is_empty() {
            // most names are in no list: nothing below could say yes
            return None;
        }
        let en = self.scanner.enabled();
        let always = |rule, hashable| {
            Some(Sensitive {
                rule,
                hashable,
                if_id: false,
            })
        };
        if param && en.has(rules::URL_SECRET) && class.url_param() {
            return always(rules::URL_SECRET, false);
        }
        if en.has(rules::DINGTALK) {
            if let Some(hashable) = class.dingtalk_key().or(class.dingtalk_id()) {
                return always(rules::DINGTALK, hashable);
            }
        }
        if self.json_keys.iter().any(|k| k.matches(name)) {
            return always(rules::JSON_KEY, true);
        }
        if en.has(rules::API_KEY) && class.credential() {
            return always(rules::API_KEY, false);
        }
        (en.has(rules::DINGTALK) && class.dingtalk_if_id()).then_some(Sensitive {
            rule: rules::DINGTALK,
            hashable: true,
            if_id: true,
        })
    }

    /// Is `name` one of this engine's rule names (enabled or not)?
    pub(crate) fn has_rule(&self, name: &str) -> bool {
        self.names.iter().any(|n| &**n == name)
    }

    pub(crate) fn rule_name(&self, rule: rules::RuleId) -> &Arc<str> {
        &self.names[usize::from(rule)]
    }

    pub(crate) fn scanner(&self) -> &Scanner {
        &self.scanner
    }
}
