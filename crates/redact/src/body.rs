//! Bodies: which content types are redacted how, what is omitted and why, and
//! the bounded sample that ends up in the log.

use std::fmt;

use crate::{form, json, truncate, Engine, Report};

/// What may be logged of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySample {
    /// The body was empty.
    Empty,
    /// The redacted body, cut to the maximum length.
    Redacted {
        /// Redacted text. Valid JSON when the input was complete JSON and nothing
        /// was cut.
        text: String,
        /// Whether the text is shorter than the redacted body would be: cut to the
        /// maximum length, or made from a prefix of the body.
        truncated: bool,
        /// Whether the text is one complete JSON document (a JSON body, nothing
        /// cut): valid JSON that a JSON log line may carry as a value, not a string.
        json: bool,
    },
    /// The body cannot be redacted safely, so none of it is logged.
    Omitted(OmitReason),
}

/// Why a body was omitted from the log. Counted as
/// `clawveil_fail_closed_total{reason="redaction_omitted"}`; the reason itself
/// ([`as_str`](OmitReason::as_str)) goes into the access event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OmitReason {
    /// Not a textual content type (images, octet streams, multipart, …), or none given.
    Binary,
    /// A `Content-Encoding` other than `identity` (gzip, br, …).
    Encoded,
    /// A declared charset other than UTF-8 / ASCII / Latin-1.
    Charset,
    /// A textual type whose bytes are not UTF-8 (or contain NUL bytes).
    InvalidUtf8,
    /// A JSON type whose body does not parse as JSON.
    InvalidJson,
}

impl OmitReason {
    /// A stable, lower-case name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OmitReason::Binary => "binary",
            OmitReason::Encoded => "content_encoding",
            OmitReason::Charset => "charset",
            OmitReason::InvalidUtf8 => "invalid_utf8",
            OmitReason::InvalidJson => "invalid_json",
        }
    }
}

impl fmt::Display for OmitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Json,
    Form,
    Text,
}

/// Classifies a `Content-Type` value. Kept out of line: inlined, it upset how
/// the JSON walker (inlined into the same caller) was compiled.
#[inline(never)]
pub(crate) fn kind(content_type: Option<&str>) -> Result<Kind, OmitReason> {
    let ct = content_type.ok_or(OmitReason::Binary)?;
    if ct == "application/json" {
        // what nearly every body the proxy logs says, compared at once rather
        // than part by part without case
        return Ok(Kind::Json);
    }
    // split by bytes, not `str::split`: its char searcher cost more than the
    // rest of the classification of a short value (`;` and `/` are ASCII, so
    // the halves stay valid strings)
    let b = ct.as_bytes();
    let (mime, params) = match b.iter().position(|&c| c == b';') {
        Some(i) => (&ct[..i], Some(&ct[i + 1..])),
        None => (ct, None),
    };
    let mime = trim(mime);
    for param in params.into_iter().flat_map(|p| p.split(';')) {
        if let Some((k, v)) = param.split_once('=') {
            if k.trim().eq_ignore_ascii_case("charset") {
                let v = v.trim().trim_matches('"');
                let ok = ["utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1"]
                    .iter()
                    .any(|c| v.eq_ignore_ascii_case(c));
                if !ok {
                    return Err(OmitReason::Charset);
                }
            }
        }
    }
    if mime == "application/json" {
        return Ok(Kind::Json);
    }
    let slash = mime.bytes().position(|c| c == b'/');
    let (top, sub) = slash
        .map(|i| (&mime[..i], &mime[i + 1..]))
        .ok_or(OmitReason::Binary)?;
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let ends = |s: &str, suffix: &str| {
        s.len() >= suffix.len()
            && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    const TEXT_APPS: &[&str] = &[
        "xml",
        "javascript",
        "ecmascript",
        "x-javascript",
        "x-ndjson",
        "ndjson",
        "jsonl",
        "x-jsonlines",
        "json-seq",
        "graphql",
        "yaml",
        "x-yaml",
        "toml",
        "sql",
        "csv",
        "x-sh",
    ];
    let kind =
        if (is(top, "application") || is(top, "text")) && is(sub, "json") || ends(sub, "+json") {
            Kind::Json
        } else if is(top, "application") && is(sub, "x-www-form-urlencoded") {
            Kind::Form
        } else if is(top, "text") && !sub.is_empty()
            || ends(sub, "+xml")
            || is(top, "application") && TEXT_APPS.iter().any(|t| is(sub, t))
        {
            Kind::Text
        } else {
            return Err(OmitReason::Binary);
        };
    Ok(kind)
}

/// `s.trim()`, skipping its char decoding when `s` neither starts nor ends
/// with a space or a non-ASCII byte, as content types almost never do.
fn trim(s: &str) -> &str {
    let plain = |c: &u8| c.is_ascii() && !c.is_ascii_whitespace() && *c != 0x0b;
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if plain(a) && plain(z) => s,
        _ => s.trim(),
    }
}

fn identity(encoding: Option<&str>) -> bool {
    encoding.is_none_or(|e| e.trim().is_empty() || e.trim().eq_ignore_ascii_case("identity"))
}

/// How much of a long body is redacted before cutting: the output is cut to
/// `max_len`, and masks can be shorter than what they replace, so look further.
fn window(max_len: usize) -> usize {
    max_len.saturating_mul(4).saturating_add(64 * 1024)
}

pub(crate) fn redact(
    eng: &Engine,
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    max_len: usize,
    prefix: bool,
    report: &mut Report,
) -> BodySample {
    if body.is_empty() {
        return BodySample::Empty;
    }
    if !identity(content_encoding) {
        return BodySample::Omitted(OmitReason::Encoded);
    }
    let kind = match kind(content_type) {
        Ok(k) => k,
        Err(r) => return BodySample::Omitted(r),
    };
    let win = window(max_len);
    let partial = prefix || body.len() > win;
    let bytes = &body[..body.len().min(win)];
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        // a prefix may end inside a multi-byte character
        Err(e) if partial && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return BodySample::Omitted(OmitReason::InvalidUtf8),
    };
    if kind != Kind::Json && memchr::memchr(0, text.as_bytes()).is_some() {
        return BodySample::Omitted(OmitReason::InvalidUtf8);
    }
    let out = match kind {
        Kind::Json => match json::redact(eng, text, partial, report) {
            Ok(out) => out,
            Err(r) => return BodySample::Omitted(r),
        },
        Kind::Form => {
            let end = if partial {
                truncate::safe_end(text)
            } else {
                text.len()
            };
            form::redact(eng, &text[..end], 0, report)
        }
        Kind::Text => {
            let end = if partial {
                truncate::safe_end(text)
            } else {
                text.len()
            };
            eng.redact_text(&text[..end], report)
        }
    };
    let mut text = out.into_owned();
    let cut = truncate::cut(&mut text, max_len, eng);
    BodySample::Redacted {
        text,
        truncated: cut || partial,
        json: kind == Kind::Json && !cut && !partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            kind(Some("application/json; charset=utf-8")),
            Ok(Kind::Json)
        );
        assert_eq!(kind(Some("application/problem+json")), Ok(Kind::Json));
        // spaces, as `str::trim` knows them, around the type
        assert_eq!(kind(Some(" application/json ; a=b;")), Ok(Kind::Json));
        assert_eq!(kind(Some("\u{a0}text/plain\u{b}")), Ok(Kind::Text));
        assert_eq!(kind(Some("\u{1f}text/plain")), Err(OmitReason::Binary));
        assert_eq!(
            kind(Some("Application/X-WWW-Form-Urlencoded")),
            Ok(Kind::Form)
        );
        assert_eq!(kind(Some("text/html; charset=\"UTF-8\"")), Ok(Kind::Text));
        assert_eq!(kind(Some("text/event-stream")), Ok(Kind::Text));
        assert_eq!(kind(Some("application/soap+xml")), Ok(Kind::Text));
        assert_eq!(
            kind(Some("application/octet-stream")),
            Err(OmitReason::Binary)
        );
        assert_eq!(
            kind(Some("multipart/form-data; boundary=x")),
            Err(OmitReason::Binary)
        );
        assert_eq!(kind(Some("image/png")), Err(OmitReason::Binary));
        assert_eq!(kind(Some("garbage")), Err(OmitReason::Binary));
        assert_eq!(kind(None), Err(OmitReason::Binary));
        assert_eq!(
            kind(Some("text/plain; charset=utf-16")),
            Err(OmitReason::Charset)
        );
        assert_eq!(
            kind(Some("text/plain; charset=gbk")),
            Err(OmitReason::Charset)
        );
    }

    #[test]
    fn reasons_have_stable_names() {
        assert_eq!(OmitReason::Encoded.as_str(), "content_encoding");
        assert_eq!(OmitReason::InvalidJson.to_string(), "invalid_json");
        assert!(identity(None) && identity(Some("identity")) && !identity(Some("gzip")));
    }
}
