//! The `model` of a JSON request body, for the metric label and the access event.
//!
//! The body is never changed: this reads the bytes the request buffer already holds
//! (the whole body, or its first part when the body is larger than the buffer) and finds
//! the top-level `"model"` string without building a document. A cut, broken or
//! non-JSON body simply has no model. Like the JSON parsers model gateways use, the last
//! of repeated keys wins.
//!
//! Only names on the target's `models` list become labels; anything else is `other`,
//! so a label never carries a name the bot (or its user) chose.

/// The label of every model not on a target's `models` list (and of bodies without one).
pub const OTHER: &str = "other";

/// The configured name `found` is, if it is on `models` (`None`: the label is [`OTHER`]).
pub(crate) fn listed<'a, S: AsRef<str>>(models: &'a [S], found: Option<&str>) -> Option<&'a S> {
    found.and_then(|f| models.iter().find(|m| m.as_ref() == f))
}

/// The value of the top-level `"model"` key when it is a string without escapes.
pub(crate) fn find(body: &[u8]) -> Option<&str> {
    let mut s = Scan { b: body, i: 0 };
    s.ws();
    s.eat(b'{')?;
    let mut found = None;
    s.ws();
    if s.peek() == Some(b'}') {
        return None;
    }
    loop {
        s.ws();
        let key = s.string()?;
        s.ws();
        s.eat(b':')?;
        s.ws();
        if key == b"model" && s.peek() == Some(b'"') {
            let value = s.string();
            // A value with escapes is not a name on anyone's allow-list.
            found = value
                .filter(|v| !v.contains(&b'\\'))
                .and_then(|v| std::str::from_utf8(v).ok());
            value?;
        } else if s.value().is_none() {
            return found;
        }
        s.ws();
        // `}` ends the object; anything else than `,` ends what can be read.
        if s.next() != Some(b',') {
            return found;
        }
    }
}

/// A cursor over JSON bytes; every method returns `None` at the end of the input or on
/// anything that is not JSON.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

/// Nesting deeper than this is not a request anyone sends; it ends the scan.
const MAX_DEPTH: usize = 128;

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string; returns its raw contents (escapes not decoded).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match self.next()? {
                b'"' => return Some(&self.b[start..self.i - 1]),
                b'\\' => {
                    self.next()?;
                }
                c if c < 0x20 => return None,
                _ => {}
            }
        }
    }

    /// Skips one value of any kind.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => self.nested(),
            _ => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')) {
                        break;
                    }
                    self.i += 1;
                }
                // Stopped by a delimiter, not by the end of a cut body.
                (self.i > start && self.peek().is_some()).then_some(())
            }
        }
    }

    /// Skips an object or array: brackets counted, strings skipped whole.
    fn nested(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return None;
                    }
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_level_model_is_found_wherever_it_is() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"model":"qwen-max","messages":[]}"#, Some("qwen-max")),
            (
                r#" { "messages" : [ {"role":"user","content":"say \"model\": \"x\" {[" } ],
                   "n": -1.5e3, "stream": true, "x": null, "model" : "gpt-4o" } "#,
                Some("gpt-4o"),
            ),
            (
                r#"{"meta":{"model":"inner"},"model":"outer"}"#,
                Some("outer"),
            ),
            (r#"{"meta":{"model":"inner"}}"#, None),
            (r#"{"model":"a","model":"b"}"#, Some("b")),
            (r#"{"model":42}"#, None),
            (r#"{"model":"esc\"aped"}"#, None),
            (r#"{}"#, None),
            (r#"[{"model":"x"}]"#, None),
            ("not json", None),
            ("", None),
            (r#"{"model":"qwen-max""#, Some("qwen-max")),
            (r#"{"model":"qwen-"#, None),
            (r#"{"messages":[{"content":"long"#, None),
            (
                r#"{"model":"m1","messages":[{"content":"cut here"#,
                Some("m1"),
            ),
            (r#"{"a":1"#, None),
            (r#"{"a":tru"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(find(body.as_bytes()), *want, "{body}");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_whole_documents_and_never_panics_on_their_prefixes() {
        let docs = [
            r#"{"model":"qwen-max","messages":[{"role":"user","content":"hi"}],"stream":true}"#,
            r#"{"temperature":0.2,"model":"glm-4","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"model":{"type":"string"}}}}}]}"#,
            r#"{"input":"\u00e9\\\"","model":"text-embedding-3-small","dimensions":256,"user":null}"#,
            r#"{"nested":[[[[{"model":"deep"}]]]],"flag":false}"#,
            r#"{"model":"中文模型","x":[1,2,3]}"#,
            r#"{"stop":["}","]","\""],"model":"after-tricky-strings"}"#,
        ];
        for doc in docs {
            let v: serde_json::Value = serde_json::from_str(doc).unwrap();
            assert_eq!(find(doc.as_bytes()), v["model"].as_str(), "{doc}");
            for cut in 0..doc.len() {
                // A prefix either has no model or the right one (the key came first).
                if let Some(m) = find(&doc.as_bytes()[..cut]) {
                    assert_eq!(Some(m), v["model"].as_str(), "{cut}: {doc}");
                }
            }
        }
    }

    #[test]
    fn deep_nesting_ends_the_scan() {
        let mut doc = String::from(r#"{"a":"#);
        doc.push_str(&"[".repeat(10_000));
        doc.push_str(&"]".repeat(10_000));
        doc.push_str(r#","model":"m"}"#);
        assert_eq!(find(doc.as_bytes()), None);
    }

    #[test]
    fn only_listed_models_become_labels() {
        let models = ["qwen-max", "gpt-4o"];
        assert_eq!(listed(&models, Some("qwen-max")), Some(&"qwen-max"));
        assert_eq!(listed(&models, Some("user-chosen-xyz")), None);
        assert_eq!(listed(&models, Some("QWEN-MAX")), None);
        assert_eq!(listed(&models, None), None);
        assert_eq!(listed::<&str>(&[], Some("qwen-max")), None);
    }
}
