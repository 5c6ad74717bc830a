//! Rules triggered by a literal: authorization schemes, provider key prefixes,
//! `eyJ` (JWT), DingTalk `cid`/`ding` ids. The literals are matched with their
//! exact case (schemes in their usual spellings: `Bearer`, `bearer`, `BEARER`),
//! which keeps them few enough for a SIMD (Teddy) prefilter: text without any
//! of them is skipped at several GB/s.

use aho_corasick::{packed, AhoCorasick, AhoCorasickBuilder, Input, MatchKind};

use super::{shapes, words, Enabled, Hit, RuleId, Scan, API_KEY, BEARER, DINGTALK, JWT};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Scheme,
    Provider,
    Jwt,
    Cid,
    CorpId,
}

const LITERALS: &[(&str, Kind, RuleId)] = &[
    ("Bearer", Kind::Scheme, BEARER),
    ("bearer", Kind::Scheme, BEARER),
    ("BEARER", Kind::Scheme, BEARER),
    ("Basic", Kind::Scheme, BEARER),
    ("basic", Kind::Scheme, BEARER),
    ("BASIC", Kind::Scheme, BEARER),
    ("Token", Kind::Scheme, BEARER),
    ("token", Kind::Scheme, BEARER),
    ("TOKEN", Kind::Scheme, BEARER),
    ("Digest", Kind::Scheme, BEARER),
    ("digest", Kind::Scheme, BEARER),
    ("Negotiate", Kind::Scheme, BEARER),
    ("NTLM", Kind::Scheme, BEARER),
    ("AWS4-HMAC-SHA256", Kind::Scheme, BEARER),
    ("sk-", Kind::Provider, API_KEY),
    ("AKID", Kind::Provider, API_KEY),
    ("LTAI", Kind::Provider, API_KEY),
    ("AKIA", Kind::Provider, API_KEY),
    ("ASIA", Kind::Provider, API_KEY),
    ("ghp_", Kind::Provider, API_KEY),
    ("gho_", Kind::Provider, API_KEY),
    ("ghu_", Kind::Provider, API_KEY),
    ("ghs_", Kind::Provider, API_KEY),
    ("ghr_", Kind::Provider, API_KEY),
    ("github_pat_", Kind::Provider, API_KEY),
    ("xoxa-", Kind::Provider, API_KEY),
    ("xoxb-", Kind::Provider, API_KEY),
    ("xoxp-", Kind::Provider, API_KEY),
    ("xoxr-", Kind::Provider, API_KEY),
    ("AIza", Kind::Provider, API_KEY),
    ("glpat-", Kind::Provider, API_KEY),
    ("eyJ", Kind::Jwt, JWT),
    ("cid", Kind::Cid, DINGTALK),
    ("ding", Kind::CorpId, DINGTALK),
];

pub(crate) struct Literals {
    ac: AhoCorasick,
    /// The same literals with the same (leftmost-first) semantics, searched by
    /// Teddy directly, without the automaton that re-checks each candidate;
    /// `None` where no SIMD searcher can be built.
    packed: Option<packed::Searcher>,
    kinds: Vec<Kind>,
}

impl Literals {
    /// `None` when no literal-triggered rule is enabled.
    pub(crate) fn new(enabled: Enabled) -> Option<Literals> {
        let (lits, kinds): (Vec<&str>, Vec<Kind>) = LITERALS
            .iter()
            .filter(|(_, _, rule)| enabled.has(*rule))
            .map(|&(lit, kind, _)| (lit, kind))
            .unzip();
        if lits.is_empty() {
            return None;
        }
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&lits)
            .expect("the literals are few and short");
        let packed = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(&lits)
            .build();
        Some(Literals { ac, packed, kinds })
    }

    /// Appends the hits of the literal-triggered rules.
    pub(crate) fn scan(&self, hay: &[u8], mode: Scan, hits: &mut Vec<Hit>) {
        let mut pos = 0;
        while pos < hay.len() {
            let m = match &self.packed {
                Some(p) => p.find_in(hay, aho_corasick::Span::from(pos..hay.len())),
                None => self.ac.find(Input::new(hay).span(pos..hay.len())),
            };
            let Some(m) = m else {
                break;
            };
            let (s, e) = (m.start(), m.end());
            let hit = match self.kinds[m.pattern().as_usize()] {
                Kind::Scheme => words::scheme(hay, s, e, mode),
                Kind::Provider => shapes::provider(hay, s, e),
                Kind::Jwt => shapes::jwt(hay, s),
                Kind::Cid => shapes::cid(hay, s),
                Kind::CorpId => shapes::corp_id(hay, s, e),
            };
            pos = match hit {
                Some(h) => {
                    hits.push(h);
                    h.end.max(s + 1)
                }
                None => s + 1,
            };
        }
    }
}
