//! The pattern rules and the single pass that finds their matches.
//!
//! Four cheap passes over the bytes of a string, each skipped when none of its
//! rules is enabled, produce candidate [`Hit`]s; every candidate is then checked
//! by a small hand-written function looking only at the bytes around it
//! (`shapes`, `words`, `numbers`):
//!
//! * `literals`: one Aho-Corasick automaton (with a SIMD prefilter) over
//!   case-sensitive literals: `Bearer`, `sk-`, `AKIA`, `eyJ`, `cid`, …;
//! * `anchors`: `memchr` over the separator bytes `@`, `:`, `=` and `>`: e-mail
//!   addresses, values after sensitive names, query parameters, URL userinfo;
//! * `numbers`: runs of digit groups for `phone`, `id-card` and `bank-card`,
//!   validated (ID checksum and birth date, Luhn) before they count;
//! * one multi-pattern regex (`regex-automata`) holding every custom rule.
//!
//! Overlapping hits are merged, so a value is replaced at most once.

mod anchors;
pub(crate) mod checksum;
mod literals;
pub(crate) mod names;
pub(crate) mod numbers;
mod shapes;
mod words;

use regex_automata::meta;

use crate::mask::Canon;

pub(crate) use words::identifier;

/// Index of a rule in the engine's name table.
pub(crate) type RuleId = u16;

pub(crate) const EMAIL: RuleId = 0;
pub(crate) const PHONE: RuleId = 1;
pub(crate) const ID_CARD: RuleId = 2;
pub(crate) const BANK_CARD: RuleId = 3;
pub(crate) const BEARER: RuleId = 4;
pub(crate) const API_KEY: RuleId = 5;
pub(crate) const JWT: RuleId = 6;
pub(crate) const URL_SECRET: RuleId = 7;
pub(crate) const DINGTALK: RuleId = 8;
/// Values under configured `redact.json_keys`.
pub(crate) const JSON_KEY: RuleId = 9;
pub(crate) const FIRST_CUSTOM: RuleId = 10;

/// The built-in rule names, indexed by [`RuleId`].
pub(crate) const BUILTIN: [&str; 9] = [
    "email",
    "phone",
    "id-card",
    "bank-card",
    "bearer",
    "api-key",
    "jwt",
    "url-secret",
    "dingtalk",
];
pub(crate) const JSON_KEY_NAME: &str = "json-key";

/// Which built-in rules are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Enabled(u16);

impl Enabled {
    pub(crate) fn with(self, id: RuleId) -> Self {
        Enabled(self.0 | 1 << id)
    }
    pub(crate) fn has(self, id: RuleId) -> bool {
        self.0 & (1 << id) != 0
    }
    pub(crate) fn any(self, ids: &[RuleId]) -> bool {
        ids.iter().any(|&id| self.has(id))
    }
}

/// A span of the scanned string to replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) rule: RuleId,
    /// Personal identifiers may become keyed hashes; credentials never do.
    pub(crate) hashable: bool,
}

impl Hit {
    pub(crate) fn new(start: usize, end: usize, rule: RuleId, hashable: bool) -> Self {
        Hit {
            start,
            end,
            rule,
            hashable,
        }
    }
}

/// How a rule's values are normalised before hashing.
pub(crate) fn canon(rule: RuleId) -> Canon {
    match rule {
        EMAIL => Canon::Lower,
        PHONE => Canon::Phone,
        ID_CARD | BANK_CARD => Canon::Digits,
        _ => Canon::Raw,
    }
}

/// What is being scanned: free text, or the raw text of a JSON document (whose
/// string contents have no unescaped `"`: values never run past one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    Text,
    Json,
}

/// All compiled pattern rules.
pub(crate) struct Scanner {
    enabled: Enabled,
    literals: Option<literals::Literals>,
    anchors: anchors::Anchors,
    numbers: numbers::NumRules,
    custom: Option<(meta::Regex, Vec<(RuleId, bool)>)>,
}

impl Scanner {
    /// `custom` holds, per custom pattern, its rule id and whether it may hash.
    pub(crate) fn new(
        enabled: Enabled,
        custom: Option<(meta::Regex, Vec<(RuleId, bool)>)>,
    ) -> Self {
        Scanner {
            enabled,
            literals: literals::Literals::new(enabled),
            anchors: anchors::Anchors::new(enabled),
            numbers: numbers::NumRules::new(enabled),
            custom,
        }
    }

    pub(crate) fn enabled(&self) -> Enabled {
        self.enabled
    }

    /// Finds every match in `s`, merged and sorted, into `hits` (which is cleared).
    pub(crate) fn scan(&self, s: &str, hits: &mut Vec<Hit>) {
        hits.clear();
        self.scan_builtin(s.as_bytes(), Scan::Text, hits);
        self.scan_custom(s, hits);
        finish(hits);
    }

    /// The built-in rules only, unsorted.
    pub(crate) fn scan_builtin(&self, hay: &[u8], mode: Scan, hits: &mut Vec<Hit>) {
        self.scan_literals(hay, mode, hits);
        self.scan_others(hay, 0..hay.len(), mode, hits);
    }

    /// The literal-triggered rules of [`Scanner::scan_builtin`] only, sorted.
    /// Their SIMD search pays off on long texts: a JSON body is searched for
    /// them once, whole.
    pub(crate) fn scan_literals(&self, hay: &[u8], mode: Scan, hits: &mut Vec<Hit>) {
        if let Some(l) = &self.literals {
            l.scan(hay, mode, hits);
        }
    }

    /// The other rules of [`Scanner::scan_builtin`]: anchored and digit rules.
    /// Inlined: most JSON tokens need only the first test.
    #[inline]
    pub(crate) fn scan_others(
        &self,
        hay: &[u8],
        range: std::ops::Range<usize>,
        mode: Scan,
        hits: &mut Vec<Hit>,
    ) {
        let (anchors, numbers) = if range.len() <= SHORT_RANGE {
            // a short range (a JSON key or string) usually has neither a
            // separator nor a digit: one test of its words before any search
            let (mut seps, mut nums) = (0, 0);
            let mut i = range.start;
            while i < range.end {
                let x = word_in(hay, i, range.end);
                seps |= in_range(x, b':', b'@');
                nums |= in_range(x, b'0', b'9') | in_range(x, b'(', b'+');
                i += 8;
            }
            (seps != 0, nums != 0)
        } else {
            (true, true)
        };
        self.scan_others_holding(hay, range, mode, (anchors, numbers), hits);
    }

    /// [`Scanner::scan_others`] for a range whose caller knows whether it holds
    /// separators (`:`, `=`, `@`, `>`) and digits (or `+`, `(`): `(separators,
    /// digits)`; `false` only when it has none.
    #[inline]
    pub(crate) fn scan_others_holding(
        &self,
        hay: &[u8],
        range: std::ops::Range<usize>,
        mode: Scan,
        (anchors, numbers): (bool, bool),
        hits: &mut Vec<Hit>,
    ) {
        if anchors && self.anchors.any() {
            self.anchors
                .scan(hay, range.clone(), self.enabled, mode, hits);
        }
        if numbers && self.numbers.any() {
            numbers::scan(hay, range, self.numbers, hits);
        }
    }

    /// Whether any custom rule is configured.
    #[inline]
    pub(crate) fn has_custom(&self) -> bool {
        self.custom.is_some()
    }

    /// The custom rules only, unsorted.
    #[inline]
    pub(crate) fn scan_custom(&self, s: &str, hits: &mut Vec<Hit>) {
        if let Some((re, ids)) = &self.custom {
            for m in re.find_iter(s.as_bytes()) {
                if !m.is_empty() {
                    let (rule, hashable) = ids[m.pattern().as_usize()];
                    hits.push(Hit::new(m.start(), m.end(), rule, hashable));
                }
            }
        }
    }
}

/// Ranges up to this long are tested for separators and digits before they are
/// searched.
const SHORT_RANGE: usize = 64;

/// Sorts and merges hits. Of hits with the same span, the lowest rule id (the
/// most specific pattern) names the replacement.
pub(crate) fn finish(hits: &mut Vec<Hit>) {
    let order = |a: &Hit, b: &Hit| {
        (a.start.cmp(&b.start))
            .then(b.end.cmp(&a.end))
            .then(a.rule.cmp(&b.rule))
    };
    if !hits.is_sorted_by(|a, b| order(a, b).is_le()) {
        hits.sort_unstable_by(order);
    }
    merge(hits);
}

/// Merges overlapping hits (input sorted by start); the earliest keeps its rule.
fn merge(hits: &mut Vec<Hit>) {
    if hits.len() < 2 {
        return;
    }
    let mut w = 0;
    for r in 1..hits.len() {
        let h = hits[r];
        if h.start < hits[w].end {
            hits[w].end = hits[w].end.max(h.end);
            hits[w].hashable &= h.hashable;
        } else {
            w += 1;
            hits[w] = h;
        }
    }
    hits.truncate(w + 1);
}

// ---- byte classes shared by the checks ----

/// `0x01` in every byte of a word, for SWAR (eight bytes at a time) tests.
pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = LO << 7;

/// The high bit of every byte of `x` that lies in `a..=b` (both below 0x80).
pub(crate) fn in_range(x: u64, a: u8, b: u8) -> u64 {
    let low = x & !HI; // each byte <= 0x7f, so the additions below never carry
    let at_least_a = low + LO * u64::from(0x80 - a);
    let above_b = low + LO * u64::from(0x7f - b);
    at_least_a & !above_b & !x & HI
}

/// The little-endian word of the eight bytes of `hay` from `i` on, zero-padded
/// past its end.
pub(crate) fn word_at(hay: &[u8], i: usize) -> u64 {
    word_in(hay, i, hay.len())
}

/// The little-endian word of the bytes of `hay[i..end]` (at most eight),
/// zero-padded; read straight from `hay` when it has eight bytes there, so
/// that the last word of a short token costs no copy.
pub(crate) fn word_in(hay: &[u8], i: usize, end: usize) -> u64 {
    let keep = end.saturating_sub(i);
    match hay.get(i..i + 8) {
        Some(w) => {
            let x = u64::from_le_bytes(w.try_into().unwrap_or_default());
            if keep >= 8 {
                x
            } else {
                x & ((1u64 << (keep * 8)) - 1)
            }
        }
        None => {
            let mut w = [0u8; 8];
            let tail = hay.get(i..end.min(hay.len())).unwrap_or_default();
            w[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(w)
        }
    }
}

pub(crate) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Characters of base64 / base64url / hex secrets.
pub(crate) fn is_secret_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'.' | b'~')
}

/// Length of the run of bytes from `from` satisfying `f`.
pub(crate) fn run(hay: &[u8], from: usize, f: impl Fn(u8) -> bool) -> usize {
    hay.get(from..)
        .map_or(0, |t| t.iter().position(|&b| !f(b)).unwrap_or(t.len()))
}

/// Whether a credential-looking run is random enough to be a secret rather than
/// a word: a digit, mixed case, or base64 punctuation (`+`, `/`, `=`).
pub(crate) fn looks_random(v: &[u8]) -> bool {
    let (mut digit, mut upper, mut lower, mut punct) = (false, false, false, false);
    for &b in v {
        digit |= b.is_ascii_digit();
        upper |= b.is_ascii_uppercase();
        lower |= b.is_ascii_lowercase();
        punct |= matches!(b, b'+' | b'/' | b'=');
    }
    digit || (upper && lower) || punct
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_overlaps() {
        let mut v = vec![
            Hit::new(0, 5, EMAIL, true),
            Hit::new(3, 8, PHONE, true),
            Hit::new(8, 9, JWT, false),
            Hit::new(10, 12, JWT, false),
            Hit::new(10, 11, PHONE, true),
        ];
        merge(&mut v);
        assert_eq!(
            v,
            [
                Hit::new(0, 8, EMAIL, true),
                Hit::new(8, 9, JWT, false),
                Hit::new(10, 12, JWT, false)
            ]
        );
    }

    fn all() -> Scanner {
        let en = (0..FIRST_CUSTOM - 1).fold(Enabled::default(), Enabled::with);
        Scanner::new(en, None)
    }

    /// The JSON walker scans the literal rules over the whole document and the
    /// others token by token: together they must find, in a token, exactly what
    /// one scan of the whole document finds there.
    fn token_scan_agrees(doc: &str, token: std::ops::Range<usize>) -> Result<(), String> {
        let sc = all();
        let hay = doc.as_bytes();
        // every match touching the token, cut to it (as the walker applies them)
        let cut = |v: &mut Vec<Hit>| {
            v.retain_mut(|h| {
                (h.start, h.end) = (h.start.max(token.start), h.end.min(token.end));
                h.start < h.end
            });
            finish(v);
        };
        let mut whole = Vec::new();
        sc.scan_builtin(hay, Scan::Json, &mut whole);
        cut(&mut whole);
        let mut split = Vec::new();
        sc.scan_literals(hay, Scan::Json, &mut split);
        sc.scan_others(hay, token.clone(), Scan::Json, &mut split);
        cut(&mut split);
        if whole == split {
            Ok(())
        } else {
            Err(format!("{doc:?}: whole {whole:?}, token {split:?}"))
        }
    }

    proptest::proptest! {
        #[test]
        fn a_token_alone_is_scanned_as_in_the_whole_document(
            // keys too may hold separators, even last (`"password:"`)
            before in "(password|token|senderNick|[a-z0-9 :=@])*[:=]?",
            // strings with the bytes the rules look for, around and across the
            // 64-byte line between the short and the long search
            value in "([a-zA-Z0-9 +()@:=>/?&._-]|sk-|AKIA|eyJ|cid|ding|Bearer |token=|://|\\$:LWCP_v1:\\$|1[3-9][0-9]{9}|6222021234567890128|\\+86 ){0,40}",
            number in "-?[1-9][0-9]{0,18}",
        ) {
            let doc = format!("{{\"{before}\": \"{value}\", \"n\": {number}}}");
            let vs = before.len() + 6;
            let ve = vs + value.len();
            token_scan_agrees(&doc, vs..ve).map_err(proptest::test_runner::TestCaseError::fail)?;
            let key = 2..2 + before.len();
            token_scan_agrees(&doc, key).map_err(proptest::test_runner::TestCaseError::fail)?;
            let ns = doc.len() - 1 - number.len();
            token_scan_agrees(&doc, ns..doc.len() - 1).map_err(proptest::test_runner::TestCaseError::fail)?;
        }
    }

    #[test]
    fn words_are_cut_to_their_range() {
        let hay = b"0123456789abcdefXYZ";
        for i in 0..=hay.len() {
            for end in i..=hay.len() + 3 {
                let mut want = [0u8; 8];
                let part = &hay[i..end.min(hay.len()).min(i + 8)];
                want[..part.len()].copy_from_slice(part);
                assert_eq!(word_in(hay, i, end), u64::from_le_bytes(want), "{i}..{end}");
            }
        }
    }

    #[test]
    fn randomness() {
        assert!(looks_random(b"dXNlcjpwYXNz"));
        assert!(looks_random(b"abc123"));
        assert!(!looks_random(b"authentication"));
        assert!(!looks_random(b"well-known"));
    }
}
