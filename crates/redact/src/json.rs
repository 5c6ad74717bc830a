//! JSON bodies, walked structurally.
//!
//! A small zero-copy walker checks the document against the JSON grammar (RFC
//! 8259, with serde_json's nesting limit; the tests hold it to serde_json's
//! verdicts) and copies it through, applying to each token the matches of the
//! built-in pattern rules inside it (in [`Scan::Json`] mode, where no match runs
//! past a `"`), so only what must change is rewritten. The literal-triggered
//! rules are searched for in the whole document at once, where their SIMD
//! search is fastest; the others look only inside the tokens that need it, so
//! neither key colons nor the values of sensitive keys, which are replaced
//! whole, are ever scanned:
//!
//! * the value of a sensitive key (any type but `null`) becomes a string token;
//!   under a generic one (`user`, `uid`) only a string or number that starts
//!   with an identifier (`rules::identifier`) does;
//! * keys and other strings keep their contents but for the matches (strings
//!   with escapes are decoded, matched and re-encoded);
//! * integers that are phone, ID or card numbers become string tokens.
//!
//! The output is valid JSON whenever the input was. Walking ourselves rather
//! than through `serde_json` keeps the input's bytes and offsets (for
//! `--explain`), allocates only for what changes, and lets a body known to be a
//! prefix be redacted as far as it goes: the walker stops where the input does,
//! drops an unfinished key, number or literal, and keeps an unfinished string
//! only up to [`truncate::safe_end`].

mod strings;
mod tokens;

use std::borrow::Cow;

use crate::mask::Splice;
use crate::rules::{Hit, RuleId, Scan};
use crate::{scratch, Engine, OmitReason, Report, Sensitive};

/// Deepest nesting accepted; the same limit as serde_json's.
const MAX_DEPTH: u32 = 128;

pub(crate) fn redact<'a>(
    eng: &Engine,
    src: &'a str,
    partial: bool,
    report: &mut Report,
) -> Result<Cow<'a, str>, OmitReason> {
    let (mut raw, hits) = scratch::take();
    eng.scanner()
        .scan_literals(src.as_bytes(), Scan::Json, &mut raw);
    let mut w = Walker {
        eng,
        src,
        b: src.as_bytes(),
        pos: 0,
        out: Splice::new(src),
        raw,
        next_raw: 0,
        hits,
        report,
        end: src.len(),
        partial,
        pending: None,
        whole: None,
    };
    let walked = match w.walk() {
        Ok(()) => Ok(()),
        Err(Stop::Eof) if partial => {
            w.stop_at_eof();
            Ok(())
        }
        Err(_) => Err(OmitReason::InvalidJson),
    };
    scratch::give(w.raw, w.hits);
    walked?;
    Ok(w.out.finish_at(w.end))
}

/// The position of the first byte from `pos` on that is not JSON whitespace.
#[inline]
fn skip_blanks(b: &[u8], mut pos: usize) -> usize {
    // most tokens follow each other with no blank, or one space, between them
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(pos) {
        pos += 1;
    }
    pos
}

/// Why the walk stopped early.
#[derive(Debug)]
enum Stop {
    /// The input ended inside a value.
    Eof,
    /// Not JSON.
    Invalid,
}

#[derive(Debug, Clone, Copy)]
enum St {
    Value,
    ValueOrClose,
    Key,
    KeyOrClose,
    After,
}

/// A value under a sensitive key, being walked (and checked) to its end.
#[derive(Debug, Clone, Copy)]
struct Whole {
    start: usize,
    depth: u32,
    rule: RuleId,
    hashable: bool,
}

struct Walker<'e, 'a, 'r> {
    eng: &'e Engine,
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    out: Splice<'a>,
    /// Matches of the literal rules in the whole document, sorted.
    raw: Vec<Hit>,
    /// The first of `raw` not yet applied.
    next_raw: usize,
    /// Scratch for the matches of one token.
    hits: Vec<Hit>,
    report: &'r mut Report,
    /// Output ends here (before a dropped unfinished token).
    end: usize,
    /// The input is a prefix of the body.
    partial: bool,
    /// The last key read was sensitive.
    pending: Option<Sensitive>,
    whole: Option<Whole>,
}

impl Walker<'_, '_, '_> {
    fn walk(&mut self) -> Result<(), Stop> {
        let mut objects: u128 = 0; // bit d: the container at depth d is an object
        let mut depth: u32 = 0;
        let mut st = St::Value;
        loop {
            self.pos = skip_blanks(self.b, self.pos);
            let Some(&c) = self.b.get(self.pos) else {
                return match (depth, st) {
                    (0, St::After) => Ok(()),
                    _ => Err(Stop::Eof),
                };
            };
            // whether the innermost container is an object (only asked at its end
            // and at a comma)
            let in_object = || depth > 0 && objects & (1u128 << (depth - 1)) != 0;
            match (st, c) {
                (St::ValueOrClose, b']') | (St::KeyOrClose, b'}') | (St::After, b']' | b'}') => {
                    if depth == 0 || in_object() != (c == b'}') {
                        return Err(Stop::Invalid);
                    }
                    depth -= 1;
                    self.pos += 1;
                    st = St::After;
                    self.value_done(depth);
                }
                (St::After, b',') if depth > 0 => {
                    self.pos += 1;
                    st = if in_object() { St::Key } else { St::Value };
                }
                (St::Key | St::KeyOrClose, b'"') => {
                    self.key()?;
                    st = St::Value;
                }
                (St::Value | St::ValueOrClose, _) => {
                    if let Some(name) = self.pending.take() {
                        if c != b'n' && self.whole.is_none() && (!name.if_id || self.id_value()) {
                            let start = self.pos;
                            self.whole = Some(Whole {
                                start,
                                depth,
                                rule: name.rule,
                                hashable: name.hashable,
                            });
                        }
                    }
                    match c {
                        b'{' | b'[' => {
                            if depth >= MAX_DEPTH {
                                return Err(Stop::Invalid);
                            }
                            if c == b'{' {
                                objects |= 1u128 << depth;
                                st = St::KeyOrClose;
                            } else {
                                objects &= !(1u128 << depth);
                                st = St::ValueOrClose;
                            }
                            depth += 1;
                            self.pos += 1;
                            continue;
                        }
                        b'"' => self.string()?,
                        b'-' | b'0'..=b'9' => self.number()?,
                        b't' | b'f' | b'n' => self.literal()?,
                        _ => return Err(Stop::Invalid),
                    }
                    st = St::After;
                    self.value_done(depth);
                }
                _ => return Err(Stop::Invalid),
            }
        }
    }

    /// A value at `depth` ended: if it was a sensitive one, replace it whole.
    fn value_done(&mut self, depth: u32) {
        match self.whole {
            Some(w) if w.depth == depth => {
                self.whole = None;
                self.replace_whole(w, self.pos);
            }
            _ => {}
        }
    }

    fn replace_whole(&mut self, w: Whole, end: usize) {
        let src = self.src;
        let raw = &src[w.start..end];
        let value = match raw.strip_prefix('"') {
            Some(v) => v.strip_suffix('"').unwrap_or(v),
            None => raw,
        };
        self.report
            .record(w.rule, self.eng.rule_name(w.rule), w.start, end - w.start);
        let eng = self.eng;
        self.out.replace(w.start, end, |o| {
            eng.write_quoted_token(o, w.rule, value, w.hashable);
        });
    }

    /// A prefix ended: finish a sensitive value that was cut off.
    fn stop_at_eof(&mut self) {
        if let Some(w) = self.whole.take() {
            self.replace_whole(w, self.src.len());
            self.end = self.src.len();
        }
    }

    /// The raw matches overlapping `[s, e)`, which are then consumed.
    fn raw_in(&mut self, s: usize, e: usize) -> std::ops::Range<usize> {
        let mut i = self.next_raw;
        while i < self.raw.len() && self.raw[i].end <= s {
            i += 1;
        }
        let mut j = i;
        while j < self.raw.len() && self.raw[j].start < e {
            j += 1;
        }
        self.next_raw = j;
        i..j
    }
}

#[cfg(test)]
mod tests;
