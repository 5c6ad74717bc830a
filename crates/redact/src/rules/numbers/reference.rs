#![allow(clippy::all)]
use super::{NumRules, MAX_GROUPS};
use crate::rules::{in_range, is_alnum, run, word_at, Hit, LO};

/// The high bit of every byte of the word `x` (eight bytes, little-endian) that
/// can start a candidate: a digit not preceded by an ASCII letter or digit
/// (`prev_alnum` tells about the byte before the word), a `+` or a `(`.
/// `digit` is `in_range(x, b'0', b'9')`, which the caller has at hand.
fn starts(x: u64, digit: u64, prev_alnum: bool) -> u64 {
    // setting 0x20 maps `A-Z` onto `a-z` and nothing else there
    let alnum = digit | in_range(x | (LO * 0x20), b'a', b'z');
    let sign = in_range(x, b'+', b'+') | in_range(x, b'(', b'(');
    let alnum_before = (alnum << 8) | if prev_alnum { 0x80 } else { 0 };
    (digit & !alnum_before) | sign
}

/// Appends the digit-rule hits of the candidates starting in `range`.
pub(super) fn scan(
    hay: &[u8],
    range: std::ops::Range<usize>,
    rules: NumRules,
    hits: &mut Vec<Hit>,
) {
    let (mut i, n) = (range.start, range.end);
    'words: while i < n {
        // eight bytes at a time (zero-padded at the end)
        let x = word_at(hay, i);
        // most words have no digit, `+` or `(` at all: a cheaper test first
        // (`(`..=`+` also holds `)` and `*`, which `starts` then drops)
        let digit = in_range(x, b'0', b'9');
        if digit | in_range(x, b'(', b'+') == 0 {
            i += 8;
            continue;
        }
        let prev_alnum = i > 0 && is_alnum(hay[i - 1]);
        let mut m = starts(x, digit, prev_alnum);
        while m != 0 {
            let pos = i + (m.trailing_zeros() / 8) as usize;
            if pos >= n {
                break;
            }
            let next = at(hay, pos, rules, hits);
            if next >= i + 8 {
                i = next;
                continue 'words;
            }
            m &= !((1u64 << ((next - i) * 8)) - 1);
        }
        i += 8;
    }
}

/// A possible start at `i`; returns where scanning resumes.
fn at(hay: &[u8], i: usize, rules: NumRules, hits: &mut Vec<Hit>) -> usize {
    let b = hay[i];
    if !b.is_ascii_digit() && i + 1 == hay.len() {
        return i + 1;
    }
    if b.is_ascii_digit() && i >= 2 && hay[i - 1] == b'.' && hay[i - 2].is_ascii_digit() {
        // a decimal fraction or the tail of a version string
        return i + 1 + run(hay, i + 1, |c| c.is_ascii_digit());
    }
    candidate(hay, i, rules, hits)
}

/// Parses the run starting at `start`; returns where scanning resumes.
fn candidate(hay: &[u8], start: usize, rules: NumRules, hits: &mut Vec<Hit>) -> usize {
    let n = hay.len();
    let mut p = start;
    let mut plus = false;
    if hay[p] == b'(' {
        p += 1;
        if p < n && hay[p] == b'+' {
            plus = true;
            p += 1;
        }
    } else if hay[p] == b'+' {
        plus = true;
        p += 1;
        if p < n && hay[p] == b'(' {
            p += 1;
        }
    }
    if p >= n || !hay[p].is_ascii_digit() {
        return start + 1;
    }
    let mut groups = [(0usize, 0usize); MAX_GROUPS];
    let mut g = 0;
    loop {
        let gs = p;
        p += run(hay, p, |c| c.is_ascii_digit());
        let digits = p - gs;
        if p < n
            && (hay[p] == b'X' || hay[p] == b'x')
            && (digits == 17 || (digits == 3 && g == 2))
            && !hay.get(p + 1).is_some_and(|&c| is_alnum(c))
        {
            p += 1; // an ID card's check character ends the run
            groups[g] = (gs, p);
            g += 1;
            break;
        }
        groups[g] = (gs, p);
        g += 1;
        let sep = run(hay, p, |c| matches!(c, b' ' | b'-' | b'(' | b')')).min(4);
        if g == MAX_GROUPS
            || sep == 0
            || sep > 3
            || !hay.get(p + sep).is_some_and(u8::is_ascii_digit)
        {
            break;
        }
        p += sep;
    }
    let end = p;
    // a group glued to letters is part of a word, not a number
    if hay.get(end).is_some_and(|&c| is_alnum(c)) {
        g -= 1;
        p = end + run(hay, end, is_alnum);
    }
    // how a run splits into numbers is not what the scan changed
    super::segment(hay, start, plus, &groups[..g], rules, hits);
    p.max(start + 1)
}
