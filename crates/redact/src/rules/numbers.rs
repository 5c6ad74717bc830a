//! `phone`, `id-card` and `bank-card`: one scan for runs of digit groups, then
//! validation of each candidate.
//!
//! A candidate is a run of digit groups joined by short separators (spaces,
//! dashes, parentheses), optionally led by `+`, standing on its own: the bytes
//! around it are not ASCII letters or digits (CJK text around it is fine).
//! Digits inside words (`ORD20240101`, hex hashes) and decimal fractions are
//! skipped. A run is split into the numbers that cover most of its digits, so
//! `138 1234 5678 139 8765 4321` is two phone numbers.
//!
//! * `phone`: a mainland mobile `1[3-9]` + 9 digits, optionally led by
//!   `86`/`+86`/`0086`; or, after `+`, an E.164 number of 8–15 digits.
//! * `id-card`: 17 digits and a check character (`0-9`/`X`), a plausible birth
//!   date, and a valid ISO 7064 MOD 11-2 checksum; contiguous or grouped 6-8-4.
//! * `bank-card`: 13–19 digits, Luhn-valid, led by a card-network digit (2–6 or
//!   9: Mastercard, Amex/JCB, Visa, Mastercard, UnionPay/Discover, domestic), so
//!   that millisecond timestamps (`1700000000000`) and snowflake ids are not cards;
//!   contiguous or grouped 4-4-4-4(-3) / 4-6-5.

use super::{
    checksum, in_range, is_alnum, word_at, Enabled, Hit, RuleId, BANK_CARD, ID_CARD, LO, PHONE,
};

/// Which of the three digit rules are on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NumRules {
    phone: bool,
    id: bool,
    bank: bool,
}

impl NumRules {
    pub(crate) fn new(e: Enabled) -> Self {
        NumRules {
            phone: e.has(PHONE),
            id: e.has(ID_CARD),
            bank: e.has(BANK_CARD),
        }
    }
    pub(crate) fn any(self) -> bool {
        self.phone || self.id || self.bank
    }
}

/// Most groups looked at in one run (a phone has at most 6, a card 5).
const MAX_GROUPS: usize = 8;
/// Longest digit string worth classifying (`0086` + 11, or 19 + slack).
const MAX_DIGITS: usize = 24;

/// The high bit of every byte of a word.
const HI: u64 = LO << 7;

/// The little-endian word of the eight bytes of `hay` from `i` on, zero-padded
/// past its end: [`word_at`] with its common case (eight bytes there) first.
#[inline]
fn word(hay: &[u8], i: usize) -> u64 {
    match hay.get(i..).and_then(<[u8]>::first_chunk) {
        Some(w) => u64::from_le_bytes(*w),
        None => word_at(hay, i),
    }
}

/// Where a candidate can start, one byte per position: 1 at `w[k + 1]` when it
/// is a digit not preceded by an ASCII letter or digit (`w[k]`), a `+` or a
/// `(`, else 0. Written as a map over sixteen bytes so that it compiles to a
/// few SIMD instructions (SSE2) instead of a byte loop.
fn starts(w: &[u8; 17]) -> u128 {
    let mut out = [0u8; 16];
    for ((o, &before), &b) in out.iter_mut().zip(&w[..16]).zip(&w[1..]) {
        let alnum_before = before.is_ascii_digit() | (before | 0x20).is_ascii_lowercase();
        *o = u8::from((b.is_ascii_digit() & !alnum_before) | (b == b'+') | (b == b'('));
    }
    u128::from_le_bytes(out)
}

/// The bytes `hay[i - 1..i + 16]` where `hay` has fewer of them: zeros (not a
/// start, not alphanumeric) before its start and past its end.
fn padded_window(hay: &[u8], i: usize) -> [u8; 17] {
    let mut w = [0u8; 17];
    // at the start of `hay`, `w[0]` stays 0
    let skip = usize::from(i == 0);
    let src = hay.get(i + skip - 1..).unwrap_or_default();
    let k = src.len().min(17 - skip);
    w[skip..skip + k].copy_from_slice(&src[..k]);
    w
}

/// Appends the digit-rule hits of the candidates starting in `range`.
pub(crate) fn scan(
    hay: &[u8],
    range: std::ops::Range<usize>,
    rules: NumRules,
    hits: &mut Vec<Hit>,
) {
    let (mut i, n) = (range.start, range.end);
    'blocks: while i < n {
        // sixteen bytes at a time: most blocks have no start at all
        let mut m = match i.checked_sub(1).and_then(|s| hay.get(s..)?.first_chunk()) {
            Some(w) => starts(w),
            None => starts(&padded_window(hay, i)),
        };
        while m != 0 {
            let pos = i + (m.trailing_zeros() / 8) as usize;
            if pos >= n {
                return;
            }
            let next = at(hay, pos, rules, hits);
            if next >= i + 16 {
                i = next;
                continue 'blocks;
            }
            m &= !0u128 << ((next - i) * 8);
        }
        i += 16;
    }
}

/// A possible start at `i`; returns where scanning resumes.
fn at(hay: &[u8], i: usize, rules: NumRules, hits: &mut Vec<Hit>) -> usize {
    if hay[i].is_ascii_digit() {
        if i >= 2 && hay[i - 1] == b'.' && hay[i - 2].is_ascii_digit() {
            // a decimal fraction or the tail of a version string
            return digits_end(hay, i + 1);
        }
    } else if i + 1 == hay.len() {
        return i + 1;
    }
    candidate(hay, i, rules, hits)
}

/// The end of the run of ASCII digits from `p` (at most `hay.len()`) on,
/// eight bytes at a time: candidates are mostly long digit runs.
fn digits_end(hay: &[u8], mut p: usize) -> usize {
    loop {
        // the zero padding past the end is not a digit
        let other = !in_range(word(hay, p), b'0', b'9') & HI;
        if other != 0 {
            return p + (other.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
}

/// The length of the run of separators (` `, `-`, `(`, `)`) at `p` when it
/// can join two groups (one to three bytes), else 0.
fn separators(hay: &[u8], p: usize) -> usize {
    let is_sep = |k: usize| {
        hay.get(p + k)
            .is_some_and(|c| matches!(c, b' ' | b'-' | b'(' | b')'))
    };
    // four or more (no byte that is not one) give 0
    (0..4).find(|&k| !is_sep(k)).unwrap_or(0)
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
    // Most runs are one group (a timestamp, a count, an ID): handled here
    // without a list of groups; what `groups` and `segment` would do with it.
    let gs = p;
    let mut end = digits_end(hay, gs);
    if check_char(hay, end, end - gs, 0) {
        end += 1;
    } else if joins(hay, end).is_some() {
        return groups(hay, start, plus, gs, rules, hits);
    }
    if hay.get(end).is_some_and(|&c| is_alnum(c)) {
        // a group glued to letters is part of a word, not a number
        return end + super::run(hay, end, is_alnum);
    }
    let len = end - gs;
    if may_match(len, plus) {
        if let Some(rule) = classify(&hay[gs..end], plus, &[len as u8], rules) {
            hits.push(Hit::new(lead(hay, start, plus, gs), end, rule, true));
        }
    }
    end
}

/// Whether an ID card's check character (`X`) at `p` ends the group of
/// `digits` digits before it, the `g`-th (from 0) of its run.
fn check_char(hay: &[u8], p: usize, digits: usize, g: usize) -> bool {
    p < hay.len()
        && (hay[p] == b'X' || hay[p] == b'x')
        && (digits == 17 || (digits == 3 && g == 2))
        && !hay.get(p + 1).is_some_and(|&c| is_alnum(c))
}

/// The length of the separators after a group ending at `p` when another group
/// follows them.
fn joins(hay: &[u8], p: usize) -> Option<usize> {
    let sep = separators(hay, p);
    (sep != 0 && hay.get(p + sep).is_some_and(u8::is_ascii_digit)).then_some(sep)
}

/// Where a hit of the run starting at `start` begins when it starts with the
/// run's first group (at `gs`): from the `+` when there is one, else from the
/// first digit.
fn lead(hay: &[u8], start: usize, plus: bool, gs: usize) -> usize {
    if plus {
        start + usize::from(hay[start] == b'(')
    } else {
        gs
    }
}

/// Parses the groups of the run starting at `start`, the first at `p`, and
/// reports its hits; returns where scanning resumes.
fn groups(
    hay: &[u8],
    start: usize,
    plus: bool,
    mut p: usize,
    rules: NumRules,
    hits: &mut Vec<Hit>,
) -> usize {
    let mut groups = [(0usize, 0usize); MAX_GROUPS];
    let mut g = 0;
    loop {
        let gs = p;
        p = digits_end(hay, p);
        if check_char(hay, p, p - gs, g) {
            p += 1; // an ID card's check character ends the run
            groups[g] = (gs, p);
            g += 1;
            break;
        }
        groups[g] = (gs, p);
        g += 1;
        match joins(hay, p) {
            Some(sep) if g < MAX_GROUPS => p += sep,
            _ => break,
        }
    }
    let end = p;
    // a group glued to letters is part of a word, not a number
    if hay.get(end).is_some_and(|&c| is_alnum(c)) {
        g -= 1;
        p = end + super::run(hay, end, is_alnum);
    }
    segment(hay, start, plus, &groups[..g], rules, hits);
    p.max(start + 1)
}

/// Splits a run of groups into the numbers that cover most of its digits.
///
/// Taking the longest prefix that validates is not enough: in
/// `+1000000000 ( 130-0000-0000` the first thirteen digits are a valid E.164
/// number, which would leave `0000-0000` of the mobile after it in the clear;
/// covering both numbers covers more. With at most [`MAX_GROUPS`] groups every
/// split is looked at (from the end: the best cover of the groups from `k` on);
/// of splits that cover as much, the one with the earliest, longest number wins.
fn segment(
    hay: &[u8],
    start: usize,
    plus: bool,
    groups: &[(usize, usize)],
    rules: NumRules,
    hits: &mut Vec<Hit>,
) {
    let n = groups.len();
    // per first group `k`: digits covered from `k` on, and the number taken at
    // `k` (its last group and rule), if any
    let mut best = [(0usize, None::<(usize, RuleId)>); MAX_GROUPS + 1];
    for k in (0..n).rev() {
        best[k] = (best[k + 1].0, None);
        let first = plus && k == 0;
        let mut len = 0;
        for j in k..n {
            let (gs, ge) = groups[j];
            len += ge - gs;
            if len > MAX_DIGITS {
                break;
            }
            // most prefixes have a length no rule accepts: no copy, no call
            if !may_match(len, first) {
                continue;
            }
            let rule = if j == k {
                // one group: its digits are contiguous in `hay`
                classify(&hay[gs..ge], first, &[len as u8], rules)
            } else {
                let mut digits = [0u8; MAX_DIGITS];
                let mut lens = [0u8; MAX_GROUPS];
                let mut d = 0;
                for (l, &(gs, ge)) in lens.iter_mut().zip(&groups[k..=j]) {
                    digits[d..d + ge - gs].copy_from_slice(&hay[gs..ge]);
                    d += ge - gs;
                    *l = (ge - gs) as u8;
                }
                classify(&digits[..len], first, &lens[..=j - k], rules)
            };
            if let Some(rule) = rule {
                let covered = len + best[j + 1].0;
                // `>=`: of equal covers, the longer number at `k`
                if covered >= best[k].0 {
                    best[k] = (covered, Some((j, rule)));
                }
            }
        }
    }
    let mut k = 0;
    while k < n {
        match best[k].1 {
            Some((j, rule)) => {
                let s = lead(hay, start, plus && k == 0, groups[k].0);
                hits.push(Hit::new(s, groups[j].1, rule, true));
                k = j + 1;
            }
            None => k += 1,
        }
    }
}

/// Whether [`classify`] can accept a string of `n` digits at all: 11 (a
/// mobile), 13–19 (`86` or `0086` and a mobile, an ID, a card), or 8–15 after
/// a `+`.
fn may_match(n: usize, plus: bool) -> bool {
    if plus {
        (8..=15).contains(&n)
    } else {
        n == 11 || (13..=19).contains(&n)
    }
}

/// What a digit string (with its group lengths) is, if anything.
pub(crate) fn classify(d: &[u8], plus: bool, lens: &[u8], rules: NumRules) -> Option<RuleId> {
    let n = d.len();
    let grouped = lens.len() > 1;
    if rules.id && !plus && n == 18 && (!grouped || lens == [6, 8, 4]) && checksum::id_card(d) {
        return Some(ID_CARD);
    }
    if d.last().is_some_and(|b| !b.is_ascii_digit()) {
        return None;
    }
    if rules.phone && lens.len() <= 6 {
        let cn = if plus {
            n == 13 && d.starts_with(b"86") && mobile(&d[2..])
        } else {
            mobile(d)
                || (n == 13 && d.starts_with(b"86") && mobile(&d[2..]))
                || (n == 15 && d.starts_with(b"0086") && mobile(&d[4..]))
        };
        if cn || (plus && (8..=15).contains(&n) && d[0] != b'0') {
            return Some(PHONE);
        }
    }
    if rules.bank
        && !plus
        && (13..=19).contains(&n)
        && matches!(d[0], b'2'..=b'6' | b'9')
        && card_groups(lens)
        && checksum::luhn(d)
    {
        return Some(BANK_CARD);
    }
    None
}

fn mobile(d: &[u8]) -> bool {
    d.len() == 11 && d[0] == b'1' && (b'3'..=b'9').contains(&d[1])
}

fn card_groups(lens: &[u8]) -> bool {
    match lens {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|&l| l == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// The scan and grouping before the SIMD scan and the one-group fast path, kept
/// to check the current ones against (splitting a run into numbers is shared).
#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests;
