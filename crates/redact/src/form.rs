//! Query strings and `application/x-www-form-urlencoded` bodies, per parameter.

use std::borrow::Cow;

use crate::mask::Splice;
use crate::{scratch, Engine, Loc, Report};

/// Redacts `q` (`a=b&c=d`, optionally led by `?`); offsets are reported shifted
/// by `base`.
pub(crate) fn redact<'a>(
    eng: &Engine,
    q: &'a str,
    base: usize,
    report: &mut Report,
) -> Cow<'a, str> {
    let mut out = Splice::new(q);
    let (mut hits, spare) = scratch::take();
    let mut a = usize::from(q.starts_with('?'));
    while a <= q.len() {
        let b = q[a..].find('&').map_or(q.len(), |i| a + i);
        let seg = &q[a..b];
        match seg.find('=') {
            Some(i) => {
                let (ne, vs) = (a + i, a + i + 1);
                let name = decode(&q[a..ne]);
                let sensitive = eng
                    .sensitive_name(&name, true)
                    .filter(|n| !n.if_id || crate::rules::identifier(&decode(&q[vs..b])) > 0);
                match sensitive {
                    Some(crate::Sensitive { rule, hashable, .. }) if vs < b => {
                        report.record(rule, eng.rule_name(rule), base + vs, b - vs);
                        // The tag is keyed on the value, not its encoding: the same id
                        // gets the same tag here and in a JSON body.
                        let value = decode(&q[vs..b]);
                        let value = std::str::from_utf8(&value).unwrap_or(&q[vs..b]);
                        out.replace(vs, b, |o| eng.write_token(o, rule, value, hashable));
                    }
                    _ => {
                        component(eng, &mut out, q, a, ne, base, &mut hits, report);
                        component(eng, &mut out, q, vs, b, base, &mut hits, report);
                    }
                }
            }
            None => component(eng, &mut out, q, a, b, base, &mut hits, report),
        }
        a = b + 1;
    }
    scratch::give(hits, spare);
    out.finish()
}

/// Pattern-redacts `q[s..e]`, percent-decoding it first when needed.
#[allow(clippy::too_many_arguments)]
fn component(
    eng: &Engine,
    out: &mut Splice<'_>,
    q: &str,
    s: usize,
    e: usize,
    base: usize,
    hits: &mut Vec<crate::rules::Hit>,
    report: &mut Report,
) {
    let raw = &q[s..e];
    if raw.is_empty() {
        return;
    }
    let decoded = decode(raw);
    // undecodable bytes: match on the raw value instead
    let text = match &decoded {
        Cow::Owned(bytes) => std::str::from_utf8(bytes).unwrap_or(raw),
        Cow::Borrowed(_) => raw,
    };
    let is_raw = text.len() == raw.len() && text.as_ptr() == raw.as_ptr();
    eng.scanner().scan(text, hits);
    if hits.is_empty() {
        return;
    }
    if is_raw {
        eng.write_hits(out, raw, s, hits, Loc::Shift(base + s), report);
    } else {
        let mut sub = Splice::new(text);
        eng.write_hits(
            &mut sub,
            text,
            0,
            hits,
            Loc::Span(base + s, raw.len()),
            report,
        );
        let red = sub.finish();
        out.replace(s, e, |o| encode(o, &red));
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space; a malformed
/// `%` escape is kept as it is).
fn decode(s: &str) -> Cow<'_, [u8]> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some() => {
                out.push(hex(b[i + 1]).unwrap_or(0) << 4 | hex(b[i + 2]).unwrap_or(0));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Re-encodes a redacted value, escaping only what would change the structure.
fn encode(o: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' | '=' | '#' | '%' | '+' | '\u{7f}' | '\0'..=' ' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    o.push('%');
                    o.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
                    o.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
                }
            }
            c => o.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;

    fn red(q: &str) -> String {
        let eng = Engine::new(&EngineConfig::default()).unwrap();
        redact(&eng, q, 0, &mut Report::new()).into_owned()
    }

    #[test]
    fn a_percent_encoded_id_gets_the_tag_of_its_decoded_value() {
        let eng = Engine::new(&EngineConfig {
            hash_key: Some(b"a key of sixteen+ bytes".to_vec()),
            ..Default::default()
        })
        .unwrap();
        let query = |q: &str| eng.redact_query(q, &mut Report::new()).into_owned();
        let encoded = query("conversationId=cid%2FAbc%3D%3D");
        let tag = &encoded["conversationId=".len()..];
        assert!(tag.starts_with("[dingtalk:"), "{encoded}");
        let body = br#"{"conversationId":"cid/Abc=="}"#;
        let sample = eng.redact_body(
            body,
            Some("application/json"),
            None,
            4096,
            &mut Report::new(),
        );
        let crate::BodySample::Redacted { text, .. } = sample else {
            panic!("{sample:?}")
        };
        assert!(text.contains(tag), "{text} has not the query's tag {tag}");
    }

    #[test]
    fn sensitive_parameters_are_replaced_whole() {
        assert_eq!(
            red("access_token=abc&msg=hi"),
            "access_token=[REDACTED:url-secret]&msg=hi"
        );
        assert_eq!(
            red("?timestamp=1700000000000&sign=Xy%2Bz%3D"),
            "?timestamp=1700000000000&sign=[REDACTED:url-secret]"
        );
        assert_eq!(
            red("userid=manager4220&x="),
            "userid=[REDACTED:dingtalk]&x="
        );
        assert_eq!(red("password=&a=1"), "password=&a=1");
        assert_eq!(red("Pass%77ord=x"), "Pass%77ord=[REDACTED:url-secret]");
    }

    #[test]
    fn other_values_go_through_patterns() {
        assert_eq!(
            red("q=call+13812345678+now"),
            "q=call%20[REDACTED:phone]%20now"
        );
        assert_eq!(red("to=li.lei%40example.com"), "to=[REDACTED:email]");
        assert_eq!(red("to=li.lei@example.com&n=2"), "to=[REDACTED:email]&n=2");
        assert_eq!(red("13812345678"), "[REDACTED:phone]");
        assert_eq!(red("a=%zz&b=%E4%B8%AD"), "a=%zz&b=%E4%B8%AD");
        assert_eq!(red(""), "");
        assert_eq!(red("&&="), "&&=");
    }

    #[test]
    fn reports_offsets_in_the_input() {
        let eng = Engine::new(&EngineConfig::default()).unwrap();
        let mut r = Report::with_matches();
        let q = "a=1&token=secretvalue&to=x%40y.com";
        redact(&eng, q, 100, &mut r);
        let m: Vec<_> = r
            .matches()
            .iter()
            .map(|m| (&*m.rule, m.offset, m.len))
            .collect();
        assert_eq!(m, [("url-secret", 110, 11), ("email", 125, 9)]);
    }
}
