//! The walker's token readers: strings (checked against the grammar, then
//! redacted in place), keys, numbers and literals.

use super::strings::{decode, encode};
use super::{Stop, Walker};
use crate::mask::Splice;
use crate::rules::{self, in_range, Scan, LO};
use crate::{truncate, Loc};

impl Walker<'_, '_, '_> {
    /// Checks the string token at `self.pos` (an opening quote) up to its end:
    /// `(end after the closing quote, has escapes, what it holds)`.
    /// What it holds is noted only when it will be pattern-redacted (not
    /// inside a value that is replaced whole). Inlined into its two callers:
    /// called for every string, most of them a word or two long, its own call
    /// (registers saved, the result returned through memory) cost as much as
    /// its search.
    #[inline(always)]
    fn string_end(&self) -> Result<(usize, bool, Holds), Stop> {
        let b = self.b;
        let mut p = self.pos + 1;
        let mut escaped = false;
        let mut holds = Holds::default();
        let note = self.whole.is_none();
        loop {
            let at = if note {
                special::<true>(&b[p..], &mut holds)
            } else {
                special::<false>(&b[p..], &mut holds)
            };
            p += at.ok_or(Stop::Eof)?;
            match b[p] {
                b'"' => return Ok((p + 1, escaped, holds)),
                b'\\' => {}
                _ => return Err(Stop::Invalid), // control characters must be escaped
            }
            escaped = true;
            p += match b.get(p + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
                Some(b'u') => {
                    let hex = b.get(p + 2..(p + 6).min(b.len())).unwrap_or_default();
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Stop::Invalid);
                    }
                    if hex.len() < 4 {
                        return Err(Stop::Eof);
                    }
                    6
                }
                Some(_) => return Err(Stop::Invalid),
                None => return Err(Stop::Eof),
            };
        }
    }

    /// A key: decides whether the next value is sensitive; the key itself goes
    /// through the patterns.
    pub(super) fn key(&mut self) -> Result<(), Stop> {
        let start = self.pos;
        let (end, escaped, holds) = self.string_end().inspect_err(|_| self.drop_from(start))?;
        if self.whole.is_none() {
            let src = self.src;
            let content = &src[start + 1..end - 1];
            self.pending = if escaped {
                self.eng
                    .sensitive_name(decode(content, false).as_bytes(), false)
            } else {
                self.eng.sensitive_name(content.as_bytes(), false)
            };
            self.redact_string(start, end, escaped, holds);
        }
        self.pos = super::skip_blanks(self.b, end);
        match self.b.get(self.pos) {
            Some(b':') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(Stop::Invalid),
            None => Err(Stop::Eof),
        }
    }

    /// Whether the value at `self.pos`, under a name that is sensitive only
    /// for identifiers (`user`, `uid`), is one: a string whose contents start
    /// with an identifier, or a number of at least four characters. A string
    /// cut off by the end of a prefix counts, to be safe. Out of line: few
    /// keys get here.
    #[inline(never)]
    pub(super) fn id_value(&self) -> bool {
        let b = self.b;
        match b[self.pos] {
            b'"' => match self.string_end() {
                Ok((end, escaped, _)) => {
                    let content = &self.src[self.pos + 1..end - 1];
                    let id = if escaped {
                        rules::identifier(decode(content, false).as_bytes())
                    } else {
                        rules::identifier(content.as_bytes())
                    };
                    id > 0
                }
                Err(_) => true,
            },
            b'-' | b'0'..=b'9' => rules::identifier(&b[self.pos..]) > 0,
            _ => false,
        }
    }

    /// An unfinished token from `start` on is dropped from the output.
    fn drop_from(&mut self, start: usize) {
        if self.whole.is_none() {
            self.end = start;
        }
    }

    pub(super) fn string(&mut self) -> Result<(), Stop> {
        let start = self.pos;
        match self.string_end() {
            Ok((end, escaped, holds)) => {
                if self.whole.is_none() {
                    self.redact_string(start, end, escaped, holds);
                }
                self.pos = end;
                Ok(())
            }
            Err(Stop::Eof) => {
                if self.whole.is_none() {
                    self.unfinished_string(start);
                }
                Err(Stop::Eof)
            }
            Err(e) => Err(e),
        }
    }

    /// Pattern-redacts the string token `[start, end)` in place. The test for
    /// a string nothing can match (most of them) is inlined into the callers.
    #[inline(always)]
    fn redact_string(&mut self, start: usize, end: usize, escaped: bool, holds: Holds) {
        let raw = self.raw_in(start + 1, end - 1);
        if !escaped && !holds.any() && raw.is_empty() && !self.eng.scanner().has_custom() {
            // no separator or digit, no literal match, no custom rule: nothing
            // can match (most keys and short values), so skip the scratch list
            return;
        }
        self.redact_matches(start, end, escaped, holds, raw);
    }

    /// `redact_string` for a string something may match; `raw`: the literal
    /// matches in it.
    fn redact_matches(
        &mut self,
        start: usize,
        end: usize,
        escaped: bool,
        holds: Holds,
        raw: std::ops::Range<usize>,
    ) {
        let src = self.src;
        let content = &src[start + 1..end - 1];
        if !escaped {
            self.hits.clear();
            if holds.any() {
                self.eng.scanner().scan_others(
                    self.b,
                    start + 1..end - 1,
                    Scan::Json,
                    &mut self.hits,
                );
            }
            self.hits.extend_from_slice(&self.raw[raw]);
            // matches never run past a string's quotes; should one, only
            // what lies inside the string is this token's to replace
            self.hits.retain_mut(|h| {
                let (s, e) = (h.start.max(start + 1), h.end.min(end - 1));
                (h.start, h.end) = (s.saturating_sub(start + 1), e.saturating_sub(start + 1));
                s < e
            });
            self.eng.scanner().scan_custom(content, &mut self.hits);
            if self.hits.is_empty() {
                return;
            }
            rules::finish(&mut self.hits);
            let loc = Loc::Shift(start + 1);
            self.eng.write_hits(
                &mut self.out,
                content,
                start + 1,
                &self.hits,
                loc,
                self.report,
            );
            return;
        }
        // escapes may hide what the raw scan saw: match on the decoded text
        let decoded = decode(content, false);
        self.eng.scanner().scan(&decoded, &mut self.hits);
        if self.hits.is_empty() {
            return;
        }
        let mut sub = Splice::new(&decoded);
        let loc = Loc::Span(start + 1, content.len());
        self.eng
            .write_hits(&mut sub, &decoded, 0, &self.hits, loc, self.report);
        let red = sub.finish();
        self.out.replace(start + 1, end - 1, |o| encode(o, &red));
    }

    /// A string cut off by the end of a prefix: keep what is safe of it.
    fn unfinished_string(&mut self, start: usize) {
        let src = self.src;
        let decoded = decode(&src[start + 1..], true);
        let keep = &decoded[..truncate::safe_end(&decoded)];
        let red = self
            .eng
            .text_at(keep, start + 1, &mut self.hits, self.report);
        self.out.replace(start, src.len(), |o| {
            o.push('"');
            encode(o, &red);
        });
    }

    pub(super) fn number(&mut self) -> Result<(), Stop> {
        let start = self.pos;
        let b = self.b;
        let digits = |p: usize| {
            b.get(p..)
                .map_or(0, |t| t.iter().take_while(|c| c.is_ascii_digit()).count())
        };
        let mut p = start + usize::from(b[start] == b'-');
        match b.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => p += digits(p),
            Some(_) => return Err(Stop::Invalid),
            None => return Err(Stop::Eof).inspect_err(|_| self.drop_from(start)),
        }
        for (lead, signs) in [(&b"."[..], false), (&b"eE"[..], true)] {
            if b.get(p).is_some_and(|c| lead.contains(c)) {
                p += 1;
                if signs && matches!(b.get(p), Some(b'+' | b'-')) {
                    p += 1;
                }
                match digits(p) {
                    0 if p == b.len() => {
                        return Err(Stop::Eof).inspect_err(|_| self.drop_from(start))
                    }
                    0 => return Err(Stop::Invalid),
                    d => p += d,
                }
            }
        }
        self.pos = p;
        if p == b.len() && self.partial {
            // the number may go on in the part of the body we do not have
            self.drop_from(start);
            return Err(Stop::Eof);
        }
        if self.whole.is_some() {
            return Ok(());
        }
        self.hits.clear();
        // a number holds digits and no separator
        self.eng.scanner().scan_others_holding(
            b,
            start..p,
            Scan::Json,
            (false, true),
            &mut self.hits,
        );
        match self.hits.first() {
            Some(&h) => {
                // an integer that is a phone, ID or card number
                let src = self.src;
                let value = src[start..p].trim_start_matches('-');
                self.report
                    .record(h.rule, self.eng.rule_name(h.rule), start, p - start);
                let eng = self.eng;
                self.out.replace(start, p, |o| {
                    eng.write_quoted_token(o, h.rule, value, h.hashable);
                });
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub(super) fn literal(&mut self) -> Result<(), Stop> {
        let start = self.pos;
        let word: &[u8] = match self.b[start] {
            b't' => b"true",
            b'f' => b"false",
            _ => b"null",
        };
        let rest = &self.b[start..];
        if rest.starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else if word.starts_with(rest) {
            self.drop_from(start);
            Err(Stop::Eof)
        } else {
            Err(Stop::Invalid)
        }
    }
}

/// Whether the contents of a string may hold what the anchored and digit rules
/// look for, noted while its end is searched for (so that a string with none of
/// it, as most keys are, is never scanned again): the high bits of its bytes in
/// `(`..=`@`, which holds the separators `:`, `=`, `>`, `@`, the digits, `+`
/// and `(` (and `)`, `*`, `,`, `-`, `.`, `/`, `;`, `<`, `?`). One range test a
/// word; a string that passes it gets the finer tests of `scan_others`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Holds(u64);

impl Holds {
    pub(super) fn any(self) -> bool {
        self.0 != 0
    }
}

/// The high bits of the bytes of `x` that `Holds` notes, when `NOTE`.
#[inline(always)]
fn noted<const NOTE: bool>(x: u64) -> u64 {
    if NOTE {
        in_range(x, b'(', b'@')
    } else {
        0
    }
}

/// The bits of the bytes below the lowest byte whose high bit `m` (non-zero)
/// has set.
#[inline(always)]
fn below_first(m: u64) -> u64 {
    ((m & m.wrapping_neg()) >> 7) - 1
}

/// Position of the first `"`, `\` or control character: eight bytes at a time
/// (most strings end in their first word or two, so a wider step would mostly
/// test bytes past the end); the last few bytes are read as the end of the
/// word that ends where `s` does. What the bytes before it hold is added to
/// `holds`.
#[inline(always)]
fn special<const NOTE: bool>(s: &[u8], holds: &mut Holds) -> Option<usize> {
    let mut words = s.chunks_exact(8);
    let mut i = 0;
    for chunk in &mut words {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let m = stops(x);
        let h = noted::<NOTE>(x);
        if m != 0 {
            holds.0 |= h & below_first(m);
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        holds.0 |= h;
        i += 8;
    }
    let rest = words.remainder().len();
    if rest == 0 {
        return None;
    }
    let x = match s.len().checked_sub(8) {
        // the word ending with `s`, its bytes already tested shifted out (the
        // zeros shifted in are no stop: only the `rest` low bytes are tested)
        Some(from) => {
            let w = u64::from_le_bytes(s[from..].try_into().unwrap_or([0; 8]));
            w >> (8 * (8 - rest))
        }
        None => {
            let mut w = [0u8; 8];
            w[..rest].copy_from_slice(s);
            u64::from_le_bytes(w)
        }
    };
    let m = stops(x) & ((1u64 << (8 * rest)) - 1);
    let h = noted::<NOTE>(x);
    if m != 0 {
        holds.0 |= h & below_first(m);
        return Some(i + (m.trailing_zeros() / 8) as usize);
    }
    holds.0 |= h;
    None
}

/// The high bit of the first byte of `x` (little-endian) that is `"`, `\\` or
/// a control character (below 0x20), and maybe of some later bytes: a
/// subtraction borrows out of a byte only past one that it tests true, so the
/// lowest bit set is exact.
#[inline(always)]
fn stops(x: u64) -> u64 {
    const HI: u64 = LO << 7;
    let ctl = x.wrapping_sub(LO * 0x20);
    let quote = (x ^ (LO * u64::from(b'"'))).wrapping_sub(LO);
    let backslash = (x ^ (LO * u64::from(b'\\'))).wrapping_sub(LO);
    // a byte with its high bit set is none of them, and xor with a byte below
    // 0x80 keeps that bit
    (ctl | quote | backslash) & !x & HI
}

#[cfg(test)]
mod tests {
    use super::{special, Holds};

    /// What `special` must answer, a byte at a time: the first stop byte, and
    /// whether any byte before it is in `(`..=`@`.
    fn naive(s: &[u8]) -> (Option<usize>, bool) {
        let at = s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let before = &s[..at.unwrap_or(s.len())];
        (at, before.iter().any(|b| (b'('..=b'@').contains(b)))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// Any bytes, mostly from the edges of the stop and holds ranges, and
        /// any start in them (so every length of the last few bytes).
        #[test]
        fn special_agrees_with_a_byte_at_a_time(
            bytes in proptest::collection::vec(proptest::prop_oneof![
                proptest::sample::select(
                    b"aZ ~\x00\x01\x1f\x20\x21\x22\x23\x5b\x5c\x5d\x27\x28\x29\x3f\x40\x41\x7f\x80\x81\x9f\xa0\xa2\xdc\xe4\xff"
                        .to_vec()),
                proptest::num::u8::ANY,
            ], 0..40),
            from in 0..40usize,
        ) {
            let s = &bytes[from.min(bytes.len())..];
            let (at, any) = naive(s);
            let mut holds = Holds::default();
            proptest::prop_assert_eq!(special::<true>(s, &mut holds), at, "{:?}", s);
            proptest::prop_assert_eq!(holds.any(), any, "{:?}", s);
            let mut none = Holds::default();
            proptest::prop_assert_eq!(special::<false>(s, &mut none), at, "{:?}", s);
            proptest::prop_assert!(!none.any());
        }
    }

    #[test]
    fn special_finds_the_first_stop_byte() {
        let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"plain text, no stop".to_vec()];
        for stop in [b'"', b'\\', 0, 0x1f, b'\n'] {
            for at in 0..20 {
                for fill in [
                    b'a', 0x20, 0x21, 0x7f, 0x80, 0xe4, 0xff, b'5', b':', b'@', b'+',
                ] {
                    let mut v = vec![fill; 20];
                    v[at] = stop;
                    cases.push(v);
                }
            }
        }
        // one separator or digit before, at or after the stop
        for at in 0..20 {
            for mark_at in 0..20 {
                for mark in [b':', b'=', b'@', b'>', b'7', b'+', b'('] {
                    let mut v = vec![b'a'; 20];
                    v[mark_at] = mark;
                    v[at] = b'"';
                    cases.push(v);
                }
            }
        }
        for c in cases {
            let mut holds = Holds::default();
            let at = special::<true>(&c, &mut holds);
            assert_eq!(at, naive(&c), "{c:?}");
            // what the bytes before the stop hold, and nothing after it
            let before = &c[..at.unwrap_or(c.len())];
            let any = before.iter().any(|b| (b'('..=b'@').contains(b));
            assert_eq!(holds.any(), any, "{c:?}");
        }
    }
}
