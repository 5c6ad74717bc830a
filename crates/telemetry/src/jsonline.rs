//! JSON log lines. Access events, one per request, are written here by hand: they are
//! the bulk of the log, and tracing-subscriber's JSON format costs several
//! microseconds per event (it goes through serde and escapes every string twice over
//! for long samples). Every other event goes through that format unchanged, and both
//! produce the same shape: `timestamp`, `level`, the fields, `target`.
//!
//! The access event can carry fields whose values are JSON already (a redacted JSON
//! body, the redacted headers); those are written as JSON values, not as strings.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::access::{ACCESS_TARGET, JSON_VALUED};

/// The event format of `log.format = "json"`.
pub struct JsonLines {
    other: Format<Json, SystemTime>,
}

impl JsonLines {
    pub fn new() -> Self {
        JsonLines {
            other: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_target(true),
        }
    }
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != ACCESS_TARGET {
            return self.other.format_event(ctx, writer, event);
        }
        write_line(&mut writer, event)
    }
}

/// One access event as a JSON object on one line.
fn write_line(w: &mut Writer<'_>, event: &Event<'_>) -> fmt::Result {
    w.write_str("{\"timestamp\":\"")?;
    SystemTime.format_time(w)?;
    w.write_str("\",\"level\":\"")?;
    w.write_str(event.metadata().level().as_str())?;
    w.write_char('"')?;
    let mut fields = Fields { w, result: Ok(()) };
    event.record(&mut fields);
    fields.result?;
    w.write_str(",\"target\":")?;
    write_str(w, event.metadata().target())?;
    w.write_str("}\n")
}

/// Writes each field as `,"name":value`.
struct Fields<'w, 'a> {
    w: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.w.write_char(',')?;
                write_str(self.w, field.name())?;
                self.w.write_char(':')?;
                value(self.w)
            })();
        }
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if JSON_VALUED.contains(&field.name()) {
            self.field(field, |w| write_json(w, value));
        } else {
            self.field(field, |w| write_str(w, value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.field(field, |w| write!(w, "{value}"));
        } else {
            self.field(field, |w| w.write_str("null"));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `message` arrives here; it is escaped as it is formatted, without a buffer
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaper(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// Escapes whatever is written through it for the inside of a JSON string.
struct Escaper<'w, W>(&'w mut W);

impl<W: fmt::Write> fmt::Write for Escaper<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s)
    }
}

/// A JSON string literal.
pub(crate) fn write_str(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    escape_into(w, s)?;
    w.write_char('"')
}

/// `s` with what JSON requires escaped (quote, backslash, control characters).
fn escape_into(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // every byte that needs escaping is ASCII, so `i` is a char boundary
        w.write_str(&s[start..i])?;
        match b {
            b'"' => w.write_str("\\\"")?,
            b'\\' => w.write_str("\\\\")?,
            b'\n' => w.write_str("\\n")?,
            b'\r' => w.write_str("\\r")?,
            b'\t' => w.write_str("\\t")?,
            _ => write!(w, "\\u{b:04x}")?,
        }
        start = i + 1;
    }
    w.write_str(&s[start..])
}

/// A value that is JSON already. It is written as is, except that line breaks
/// (only possible as whitespace between tokens in valid JSON) become spaces so the
/// event stays on one line. Only objects are taken (a field keeps one type for log
/// stores that fix it); anything else is written as a string.
pub(crate) fn write_json(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r']);
    if !t.starts_with('{') {
        return write_str(w, s);
    }
    let mut rest = t;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', rest.as_bytes()) {
        w.write_str(&rest[..i])?;
        w.write_char(' ')?;
        rest = &rest[i + 1..];
    }
    w.write_str(rest)
}

#[cfg(test)]
mod tests {
    use super::{write_json, write_str, JsonLines};
    use crate::access::{AccessEvent, BodyField, ErrorClass};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    fn event() -> AccessEvent<'static> {
        AccessEvent {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            listener: "https",
            route: "dingtalk",
            method: "POST",
            path: Some("/dingtalk/\"quoted\"\n"),
            query: Some("access_token=[REDACTED:url-secret]"),
            status: 502,
            latency: std::time::Duration::from_micros(1234),
            bytes_in: 523,
            bytes_out: 0,
            upstream: "127.0.0.1:8080",
            error: Some(ErrorClass::Connect),
            tls_version: "TLSv1.3",
            alpn: "h2",
            http_version: "h2",
            client: "[client:0123456789]",
            request_headers: Some(r#"{"content-type":"application/json"}"#),
            response_headers: None,
            request_body: Some(BodyField::Json("{\"a\":\n[1, \"[REDACTED:phone]\"]}")),
            response_body: Some(BodyField::Text("[omitted:binary]")),
        }
    }

    /// The line the given event format writes for `event()`, parsed.
    fn line<E>(format: E) -> serde_json::Map<String, serde_json::Value>
    where
        E: tracing_subscriber::fmt::FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::JsonFields,
            > + Send
            + Sync
            + 'static,
    {
        let out = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, || event().emit());
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn access_lines_match_the_general_json_format() {
        let ours = line(JsonLines::new());
        let general = line(
            tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false),
        );
        let keys =
            |m: &serde_json::Map<String, serde_json::Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ours), keys(&general));
        for (k, v) in &general {
            match k.as_str() {
                "timestamp" => assert!(ours[k].as_str().unwrap().ends_with('Z')),
                // JSON-valued fields: the general format has them as strings
                "request_json" | "request_headers" => assert_eq!(
                    ours[k],
                    serde_json::from_str::<serde_json::Value>(v.as_str().unwrap()).unwrap(),
                    "{k}"
                ),
                _ => assert_eq!(&ours[k], v, "{k}"),
            }
        }
        assert_eq!(ours["target"], "access");
        assert_eq!(ours["response_body"], "[omitted:binary]");
        assert!(ours["request_json"].is_object());
    }

    fn s(v: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, v).unwrap();
        out
    }

    fn j(v: &str) -> String {
        let mut out = String::new();
        write_json(&mut out, v).unwrap();
        out
    }

    #[test]
    fn strings_are_escaped_like_serde_json_does() {
        for v in [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "line\nbreak\r\ttab \u{1} \u{1f} \u{7f}",
            "中文 and emoji 🦀",
            "\"\\\"",
        ] {
            assert_eq!(s(v), serde_json::to_string(v).unwrap(), "{v:?}");
            assert_eq!(
                serde_json::from_str::<String>(&s(v)).unwrap(),
                v,
                "round trip {v:?}"
            );
        }
    }

    #[test]
    fn json_objects_stay_objects_on_one_line() {
        assert_eq!(j(r#"{"a":[1,2]}"#), r#"{"a":[1,2]}"#);
        let pretty = "{\r\n  \"a\": \"x\",\n  \"b\": [1,\n 2]\n}\n";
        let out = j(pretty);
        assert!(!out.contains(['\n', '\r']), "{out:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap(),
            serde_json::from_str::<serde_json::Value>(pretty).unwrap()
        );
    }

    #[test]
    fn what_is_not_an_object_is_written_as_a_string() {
        for v in [
            "",
            "   ",
            "42",
            "\"str\"",
            "[1,2]",
            "[omitted:binary]",
            "not json",
        ] {
            let out = j(v);
            assert_eq!(
                serde_json::from_str::<String>(&out).unwrap(),
                v,
                "{v:?} -> {out}"
            );
        }
    }
}
