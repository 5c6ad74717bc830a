//! `phone`, `id-card` and `bank-card`: one scan for runs of digit groups, then
//! validation of each candidate.
//!
//! A candidate is a run of digit groups joined by short separators (spaces,
//! dashes, parentheses), optionally led by `+`, standing on its own: the bytes
//! around it are not ASCII letters or digits (CJK text around it is fine).
//! Digits inside words (`ORD20240101`, hex hashes) and decimal fractions are
//! skipped. Within a run, the longest prefix of groups that validates wins, so
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

use super::{checksum, is_alnum, Enabled, Hit, RuleId, BANK_CARD, ID_CARD, PHONE};

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

use super::{in_range, word_at, LO};

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
pub(crate) fn scan(
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
        return i + 1 + super::run(hay, i + 1, |c| c.is_ascii_digit());
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
        p += super::run(hay, p, |c| c.is_ascii_digit());
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
        let sep = super::run(hay, p, |c| matches!(c, b' ' | b'-' | b'(' | b')')).min(4);
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
        p = end + super::run(hay, end, is_alnum);
    }
    segment(hay, start, plus, &groups[..g], rules, hits);
    p.max(start + 1)
}

/// Finds, left to right, the longest runs of groups that validate.
fn segment(
    hay: &[u8],
    start: usize,
    plus: bool,
    groups: &[(usize, usize)],
    rules: NumRules,
    hits: &mut Vec<Hit>,
) {
    let mut k = 0;
    while k < groups.len() {
        let mut digits = [0u8; MAX_DIGITS];
        let mut lens = [0u8; MAX_GROUPS];
        let mut len = 0;
        let mut best = None;
        for j in k..groups.len() {
            let (gs, ge) = groups[j];
            if len + (ge - gs) > MAX_DIGITS {
                break;
            }
            digits[len..len + ge - gs].copy_from_slice(&hay[gs..ge]);
            len += ge - gs;
            lens[j - k] = (ge - gs) as u8;
            if let Some(rule) = classify(&digits[..len], plus && k == 0, &lens[..=j - k], rules) {
                best = Some((j, rule));
            }
        }
        match best {
            Some((j, rule)) => {
                // from the `+` when there is one, else from the first digit
                let s = match (k, plus) {
                    (0, true) => start + usize::from(hay[start] == b'('),
                    _ => groups[k].0,
                };
                hits.push(Hit::new(s, groups[j].1, rule, true));
                k = j + 1;
            }
            None => k += 1,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Enabled;

    fn all() -> NumRules {
        NumRules::new(Enabled::default().with(PHONE).with(ID_CARD).with(BANK_CARD))
    }

    fn found(s: &str) -> Vec<(&str, &'static str)> {
        let mut hits = Vec::new();
        scan(s.as_bytes(), 0..s.len(), all(), &mut hits);
        hits.iter()
            .map(|h| (&s[h.start..h.end], crate::rules::BUILTIN[h.rule as usize]))
            .collect()
    }

    #[test]
    fn phones() {
        for p in [
            "13812345678",
            "+8613812345678",
            "+86 138 1234 5678",
            "0086 138-1234-5678",
            "138 1234 5678",
            "+1 (415) 555-2671",
            "+44 20 7946 0958",
        ] {
            let text = format!("call {p}, thanks");
            assert_eq!(found(&text), [(p, "phone")], "{p}");
        }
        assert_eq!(found("手机13912345678谢谢"), [("13912345678", "phone")]);
        assert_eq!(found("(+86) 13812345678"), [("+86) 13812345678", "phone")]);
        assert_eq!(found("(13812345678)"), [("13812345678", "phone")]);
        assert_eq!(
            found("13812345678 13987654321"),
            [("13812345678", "phone"), ("13987654321", "phone")]
        );
    }

    #[test]
    fn not_phones() {
        for s in [
            "12812345678", // no such mobile prefix
            "1381234567",  // too short
            "abc13812345678",
            "13812345678abc",
            "ORD-20240101",
            "1700000000000",
            "v1.2.3.4",
            "3.13812345678",
            "550e8400-e29b-41d4-a716-446655440000",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "2024-01-01 12:00:00",
            "+12",
        ] {
            assert_eq!(found(s), [], "{s}");
        }
    }

    #[test]
    fn id_cards() {
        assert_eq!(
            found("ID 11010519491231002X."),
            [("11010519491231002X", "id-card")]
        );
        assert_eq!(
            found("110105 19491231 002X"),
            [("110105 19491231 002X", "id-card")]
        );
        // bad checksum: an ordinary number
        assert_eq!(found("110105194912310021"), []);
    }

    #[test]
    fn bank_cards() {
        assert_eq!(
            found("card 4111111111111111"),
            [("4111111111111111", "bank-card")]
        );
        assert_eq!(
            found("4111 1111 1111 1111"),
            [("4111 1111 1111 1111", "bank-card")]
        );
        assert_eq!(
            found("4111-1111-1111-1111"),
            [("4111-1111-1111-1111", "bank-card")]
        );
        assert_eq!(found("4111111111111112"), []); // Luhn-invalid
        assert_eq!(found("41111 11111 111111"), []); // not a card grouping
                                                     // Luhn-valid but led by 1: a timestamp-like number
        let ts = (0..10)
            .map(|d| format!("170000000000{d}"))
            .find(|t| checksum::luhn(t.as_bytes()))
            .unwrap();
        assert_eq!(found(&ts), []);
    }

    #[test]
    fn disabled_rules_do_not_match() {
        let only_bank = NumRules::new(Enabled::default().with(BANK_CARD));
        let mut hits = Vec::new();
        let s = b"13812345678 11010519491231002X";
        scan(s, 0..s.len(), only_bank, &mut hits);
        assert!(hits.is_empty());
    }

    #[test]
    fn swar_starts_match_a_byte_by_byte_reading() {
        let naive = |w: &[u8; 8], prev_alnum: bool| -> u64 {
            let mut m = 0;
            for k in 0..8 {
                let before = if k == 0 {
                    prev_alnum
                } else {
                    is_alnum(w[k - 1])
                };
                if (w[k].is_ascii_digit() && !before) || w[k] == b'+' || w[k] == b'(' {
                    m |= 0x80 << (8 * k);
                }
            }
            m
        };
        let bytes: Vec<u8> = (0..=255).collect();
        for &b in &bytes {
            for k in 0..8 {
                for fill in [b'a', b'1', 0, b' ', 0x7f, 0x80, 0xff, b'.', b'Z'] {
                    let mut w = [fill; 8];
                    w[k] = b;
                    for prev in [false, true] {
                        let x = u64::from_le_bytes(w);
                        let got = starts(x, in_range(x, b'0', b'9'), prev);
                        assert_eq!(got, naive(&w, prev), "{w:?} prev {prev}");
                    }
                }
            }
        }
    }

    #[test]
    fn many_groups_do_not_blow_up() {
        let s = "1 ".repeat(10_000);
        assert_eq!(found(&s), []);
        let s = "1".repeat(10_000);
        assert_eq!(found(&s), []);
    }
}
