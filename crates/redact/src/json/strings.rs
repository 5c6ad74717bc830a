//! JSON string contents: decoding escapes (to match on what the text says) and
//! encoding redacted text back.

/// Decodes the contents of a JSON string (escapes already validated). A lone
/// surrogate becomes U+FFFD. With `prefix`, an escape cut off by the end of the
/// input is dropped.
pub(super) fn decode(s: &str, prefix: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match escape(tail.as_bytes()) {
            Some((c, used)) => {
                out.push(c);
                rest = &tail[used..];
            }
            None if prefix => return out,
            None => {
                out.push('\u{fffd}');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// One escape at the start of `b` (which starts with `\`): the char and the
/// bytes used; `None` when the input ends inside it.
pub(super) fn escape(b: &[u8]) -> Option<(char, usize)> {
    const BAD: char = '\u{fffd}';
    let c = match *b.get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let Some(hi) = hex4(b.get(2..6)?) else {
                return Some((BAD, 2));
            };
            if !(0xD800..0xDC00).contains(&hi) {
                return Some((char::from_u32(hi).unwrap_or(BAD), 6));
            }
            let low = &b[6..];
            if low.len() < 6 && b"\\u".starts_with(&low[..low.len().min(2)]) {
                return None; // the low half may follow
            }
            let lo = low
                .strip_prefix(b"\\u")
                .and_then(|t| hex4(t.get(..4)?))
                .filter(|lo| (0xDC00..0xE000).contains(lo));
            return Some(match lo {
                Some(lo) => {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    (char::from_u32(c).unwrap_or(BAD), 12)
                }
                None => (BAD, 6),
            });
        }
        _ => BAD,
    };
    Some((c, 2))
}

fn hex4(b: &[u8]) -> Option<u32> {
    b.iter()
        .try_fold(0u32, |acc, &c| Some(acc << 4 | (c as char).to_digit(16)?))
}

/// Appends `s` as JSON string contents.
pub(super) fn encode(o: &mut String, s: &str) {
    let mut last = 0;
    for (i, c) in s.char_indices() {
        if c != '"' && c != '\\' && c >= ' ' {
            continue;
        }
        o.push_str(&s[last..i]);
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => {
                let n = c as u32;
                o.push_str("\\u00");
                o.push(char::from(b"0123456789abcdef"[(n >> 4) as usize]));
                o.push(char::from(b"0123456789abcdef"[(n & 15) as usize]));
            }
        }
        last = i + 1;
    }
    o.push_str(&s[last..]);
}
