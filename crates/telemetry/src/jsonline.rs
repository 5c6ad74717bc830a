//! JSON log lines, written here by hand: access events are the bulk of the log, and
//! tracing-subscriber's JSON format costs several microseconds per event (it goes
//! through serde and escapes every string twice over for long samples). Only events
//! bridged from the `log` crate go through that format (it knows how to unwrap them);
//! both produce the same shape: `timestamp`, `level`, the fields, `target`.
//!
//! Values are written as what they are, for log stores to query:
//! - the access event's fields whose values are JSON already (a redacted JSON body,
//!   the redacted headers) are JSON objects, not strings ([`JSON_VALUED`]);
//! - lists ([`LIST_FIELDS`]: `names`, `domains`, …, logged as `?vec`) are JSON arrays;
//! - a field whose value is the empty string is left out, as an absent `Option` is.

use std::cell::Cell;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::access::JSON_VALUED;

/// Fields that hold lists. Logged with `?` (`domains = ?cfg.domains`), their Debug text
/// is a JSON array when the items are plain strings; it is written as an array then,
/// and as a string otherwise.
pub const LIST_FIELDS: &[&str] = &["names", "domains", "contact", "targets", "paths"];

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
        // Events from the `log` crate carry their real target and location in `log.*`
        // fields, which tracing-subscriber's format unwraps.
        if event.metadata().fields().field("log.target").is_some() {
            return self.other.format_event(ctx, writer, event);
        }
        write_line(&mut writer, event)
    }
}

thread_local! {
    /// The line being built, kept per thread so a line costs no allocation.
    static LINE: Cell<String> = const { Cell::new(String::new()) };
    /// The timestamp up to the second (`2026-11-24T21:21:20`) and that second.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// One event as a JSON object on one line. It is built in a `String` of
/// our own and handed over in one piece: the writer tracing passes in forwards
/// every small write through a `dyn` call.
fn write_line(w: &mut Writer<'_>, event: &Event<'_>) -> fmt::Result {
    let mut line = LINE.try_with(Cell::take).unwrap_or_default();
    line.clear();
    line.push_str("{\"timestamp\":\"");
    timestamp(&mut line)?;
    line.push_str("\",\"level\":\"");
    line.push_str(event.metadata().level().as_str());
    line.push('"');
    let mut fields = Fields {
        line: &mut line,
        result: Ok(()),
    };
    event.record(&mut fields);
    let result = fields.result;
    line.push_str(",\"target\":");
    write_str(&mut line, event.metadata().target());
    line.push_str("}\n");
    let written = result.and_then(|()| w.write_str(&line));
    if line.capacity() <= 64 * 1024 {
        let _ = LINE.try_with(|l| l.set(line));
    }
    written
}

/// The current time as tracing-subscriber's JSON format writes it
/// (`2026-11-24T21:21:20.621923Z`, UTC); the part up to the second is formatted
/// once per second and thread.
fn timestamp(line: &mut String) -> fmt::Result {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    let mut cached = SECOND.try_with(Cell::get).unwrap_or((u64::MAX, [0; 19]));
    if cached.0 != secs {
        cached = (secs, civil(secs));
        let _ = SECOND.try_with(|c| c.set(cached));
    }
    line.push_str(std::str::from_utf8(&cached.1).unwrap_or("1970-01-01T00:00:00"));
    let mut frac = *b".000000Z";
    let mut m = micros;
    for d in frac[1..7].iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    line.push_str(std::str::from_utf8(&frac).unwrap_or(".000000Z"));
    Ok(())
}

/// `2026-12-31T00:00:00Z`: a time as RFC 3339 in UTC, to the second (dates in log
/// fields and in what clawveil prints, rather than Unix seconds).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = String::from(std::str::from_utf8(&civil(secs)).unwrap_or("1970-01-01T00:00:00"));
    out.push('Z');
    out
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) for seconds since the Unix epoch: days to a
/// proleptic Gregorian date by eras of 400 years (the usual civil-from-days).
fn civil(secs: u64) -> [u8; 19] {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for d in out[at..at + width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, rem / 3_600);
    put(14, 2, rem / 60 % 60);
    put(17, 2, rem % 60);
    out
}

/// Writes each field as `,"name":value`.
struct Fields<'l> {
    line: &'l mut String,
    result: fmt::Result,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) -> &mut String {
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            // the access event's names: nothing in them needs escaping
            self.line.push_str(",\"");
            self.line.push_str(name);
            self.line.push_str("\":");
        } else {
            self.line.push(',');
            write_str(self.line, name);
            self.line.push(':');
        }
        self.line
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if value.is_empty() {
            return;
        }
        let line = self.key(field);
        if JSON_VALUED.contains(&field.name()) {
            write_json(line, value);
        } else {
            write_str(line, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let line = self.key(field);
        line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let line = self.key(field);
        line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let line = self.key(field);
        if value.is_finite() {
            let r = write!(line, "{value}");
            self.result = self.result.and(r);
        } else {
            line.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let line = self.key(field);
        line.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if LIST_FIELDS.contains(&field.name()) {
            let text = format!("{value:?}");
            if is_json_array(&text) {
                self.key(field).push_str(&text);
            } else if !text.is_empty() {
                write_str(self.key(field), &text);
            }
            return;
        }
        // `message` arrives here; it is escaped as it is formatted, without a buffer
        let before = self.line.len();
        let line = self.key(field);
        line.push('"');
        let start = line.len();
        let r = write!(Escaper(line), "{value:?}");
        if line.len() == start {
            line.truncate(before);
        } else {
            line.push('"');
        }
        self.result = self.result.and(r);
    }
}

/// Whether `text` is one JSON array, with nothing around it.
fn is_json_array(text: &str) -> bool {
    text.starts_with('[')
        && serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_array())
}

/// Escapes whatever is written through it for the inside of a JSON string.
struct Escaper<'l>(&'l mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// A JSON string literal.
pub(crate) fn write_str(line: &mut String, s: &str) {
    line.push('"');
    escape_into(line, s);
    line.push('"');
}

/// `s` with what JSON requires escaped (quote, backslash, control characters),
/// looked for eight bytes at a time.
fn escape_into(line: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let word = match bytes.get(i..i + 8) {
            Some(chunk) => u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])),
            None => {
                // the last few bytes, padded with a byte that needs no escaping
                let mut w = [b' '; 8];
                w[..bytes.len() - i].copy_from_slice(&bytes[i..]);
                u64::from_le_bytes(w)
            }
        };
        let m = stops(word);
        if m == 0 {
            i += 8;
            continue;
        }
        i += (m.trailing_zeros() / 8) as usize;
        // every byte that needs escaping is ASCII, so `i` is a char boundary
        line.push_str(&s[start..i]);
        match bytes[i] {
            b'"' => line.push_str("\\\""),
            b'\\' => line.push_str("\\\\"),
            b'\n' => line.push_str("\\n"),
            b'\r' => line.push_str("\\r"),
            b'\t' => line.push_str("\\t"),
            b => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                line.push_str("\\u00");
                line.push(char::from(HEX[usize::from(b >> 4)]));
                line.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        i += 1;
        start = i;
    }
    line.push_str(&s[start..]);
}

/// The high bit of every byte of `x` that is `"`, `\\` or below 0x20: sums over the
/// low seven bits of each byte never carry into the next one.
fn stops(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = LO << 7;
    let low = x & !HI;
    let ctl = !(low + LO * (0x80 - 0x20));
    let quote = !((low ^ (LO * u64::from(b'"'))) + LO * 0x7f);
    let backslash = !((low ^ (LO * u64::from(b'\\'))) + LO * 0x7f);
    (ctl | quote | backslash) & !x & HI
}

/// A value that is JSON already. It is written as is, except that line breaks
/// (only possible as whitespace between tokens in valid JSON) become spaces so the
/// event stays on one line. Only objects are taken (a field keeps one type for log
/// stores that fix it); anything else is written as a string.
pub(crate) fn write_json(line: &mut String, s: &str) {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r']);
    if !t.starts_with('{') {
        return write_str(line, s);
    }
    let mut rest = t;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', rest.as_bytes()) {
        line.push_str(&rest[..i]);
        line.push(' ');
        rest = &rest[i + 1..];
    }
    line.push_str(rest);
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
            tls_group: "X25519MLKEM768",
            alpn: "h2",
            http_version: "h2",
            client: "[client:0123456789]",
            request_headers: Some(r#"{"content-type":"application/json"}"#),
            response_headers: None,
            request_body: Some(BodyField::Json("{\"a\":\n[1, \"[REDACTED:phone]\"]}")),
            response_body: Some(BodyField::Text("[omitted:binary]")),
            reason: Some("signature_invalid"),
            close_reason: Some("idle_timeout"),
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

    #[test]
    fn lists_are_arrays_and_empty_fields_are_left_out() {
        let out = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonLines::new())
            .finish();
        let names = vec!["localhost".to_owned(), "::1".to_owned()];
        let odd = vec!["esc\u{1b}ape".to_owned()];
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                names = ?names,
                domains = ?odd,
                domain = "",
                problem = None::<&str>,
                empty = format_args!(""),
                r#type = "kept",
                "started"
            )
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(line["names"], serde_json::json!(["localhost", "::1"]));
        // Debug text that is not JSON stays a string rather than breaking the line
        assert!(line["domains"].is_string(), "{text}");
        for absent in ["domain", "problem", "empty"] {
            assert!(!line.contains_key(absent), "{absent}: {text}");
        }
        assert_eq!(line["type"], "kept");
        assert_eq!(line["message"], "started");
        assert_eq!(line["target"], "clawveil_telemetry::jsonline::tests");
    }

    fn s(v: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, v);
        out
    }

    fn j(v: &str) -> String {
        let mut out = String::new();
        write_json(&mut out, v);
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
    fn escaping_holds_at_every_position_and_length() {
        for len in 0..40 {
            for at in 0..len {
                for special in ['"', '\\', '\n', '\u{0}', '\u{1f}', 'é', '中'] {
                    let v: String = (0..len)
                        .map(|i| if i == at { special } else { 'x' })
                        .collect();
                    assert_eq!(s(&v), serde_json::to_string(&v).unwrap(), "{v:?}");
                }
            }
        }
    }

    #[test]
    fn civil_dates_are_right_across_leap_years_and_centuries() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_709_164_800, "2024-02-29T00:00:00"),
            (1_798_142_053, "2026-12-24T19:54:13"),
            (4_102_444_800, "2100-01-01T00:00:00"),
        ] {
            assert_eq!(std::str::from_utf8(&super::civil(secs)).unwrap(), want);
        }
    }

    #[test]
    fn timestamps_look_like_tracing_subscribers() {
        use tracing_subscriber::fmt::time::FormatTime;
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut tracing_subscriber::fmt::format::Writer::new(
                &mut theirs,
            ))
            .unwrap();
        let mut ours = String::new();
        super::timestamp(&mut ours).unwrap();
        assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
        let shape = |t: &str| {
            t.bytes()
                .map(|b| if b.is_ascii_digit() { b'9' } else { b })
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&ours), shape(&theirs), "{ours} vs {theirs}");
        // the same year, month and day unless the test straddles midnight UTC
        assert!(
            ours[..10] == theirs[..10] || &ours[11..16] == "00:00",
            "{ours} vs {theirs}"
        );
        // and again within the same second, from the cached part
        let mut again = String::new();
        super::timestamp(&mut again).unwrap();
        assert_eq!(shape(&again), shape(&theirs));
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
