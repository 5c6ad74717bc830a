//! What a redaction call replaced: counts per rule (for
//! `clawveil_redactions_total{rule}`) and, in explain mode, where.

use std::sync::Arc;

use crate::rules::{RuleId, BUILTIN, JSON_KEY, JSON_KEY_NAME};

/// One replaced value, as shown by `clawveil redact --explain`: which rule, and
/// where in the input. Never the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The rule that replaced the value (e.g. `phone`).
    pub rule: Arc<str>,
    /// Byte offset of the value in the input given to the engine. For JSON
    /// strings written with escapes, the offset and length of the whole string's
    /// contents.
    pub offset: usize,
    /// Byte length of the replaced span in the input.
    pub len: usize,
}

/// Rules every engine numbers alike (the built-ins, then `json-key`): counted
/// by id in a fixed array, so recording one neither allocates nor compares
/// names nor touches the engine's shared `Arc` counts.
const FIXED: usize = JSON_KEY as usize + 1;

/// The name of a fixed rule.
fn fixed_name(id: usize) -> &'static str {
    BUILTIN.get(id).copied().unwrap_or(JSON_KEY_NAME)
}

/// Counts of replaced values per rule, filled in by every engine call.
///
/// A report can be reused across calls (counts add up) and [`clear`](Report::clear)ed.
/// It allocates only when a custom rule replaces something (or, in explain
/// mode, for the matches).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Per fixed rule id, its count.
    fixed: [u64; FIXED],
    /// The fixed rules with a count, in the order they first matched.
    order: [u8; FIXED],
    seen: u8,
    /// Custom rules (whose ids differ between engines), in first-match order.
    custom: Vec<Custom>,
    matches: Option<Vec<Match>>,
}

#[derive(Debug, Clone)]
struct Custom {
    rule: Arc<str>,
    count: u64,
    /// How many fixed rules had matched before this one first did.
    after: u8,
}

impl Report {
    /// A report that keeps counts only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A report that also keeps the position of every match (for `--explain`).
    pub fn with_matches() -> Self {
        Report {
            matches: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// `(rule, count)` pairs, in the order the rules first matched.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let order = &self.order[..usize::from(self.seen)];
        let (mut f, mut c) = (0, 0);
        // merges the two lists: a custom rule comes before the fixed rules
        // that first matched after it
        std::iter::from_fn(move || {
            if let Some(e) = self.custom.get(c).filter(|e| usize::from(e.after) <= f) {
                c += 1;
                return Some((&*e.rule, e.count));
            }
            let id = usize::from(*order.get(f)?);
            f += 1;
            Some((fixed_name(id), self.fixed[id]))
        })
    }

    /// How many values `rule` replaced.
    pub fn count(&self, rule: &str) -> u64 {
        match (0..FIXED).find(|&id| fixed_name(id) == rule) {
            Some(id) => self.fixed[id],
            None => self
                .custom
                .iter()
                .find(|e| &*e.rule == rule)
                .map_or(0, |e| e.count),
        }
    }

    /// How many values were replaced in all.
    pub fn total(&self) -> u64 {
        self.fixed.iter().sum::<u64>() + self.custom.iter().map(|e| e.count).sum::<u64>()
    }

    /// Whether nothing was replaced.
    pub fn is_empty(&self) -> bool {
        self.seen == 0 && self.custom.is_empty()
    }

    /// The recorded matches, in input order per call; empty unless the report was
    /// made by [`with_matches`](Report::with_matches).
    pub fn matches(&self) -> &[Match] {
        self.matches.as_deref().unwrap_or(&[])
    }

    /// Forgets all counts and matches (keeps the explain mode).
    pub fn clear(&mut self) {
        self.fixed = [0; FIXED];
        self.seen = 0;
        self.custom.clear();
        if let Some(m) = &mut self.matches {
            m.clear();
        }
    }

    /// Counts a match of rule `id`, named `name` in its engine.
    pub(crate) fn record(&mut self, id: RuleId, name: &Arc<str>, offset: usize, len: usize) {
        let i = usize::from(id);
        if i < FIXED {
            if self.fixed[i] == 0 {
                self.order[usize::from(self.seen)] = i as u8;
                self.seen += 1;
            }
            self.fixed[i] += 1;
        } else {
            match self
                .custom
                .iter_mut()
                .find(|e| Arc::ptr_eq(&e.rule, name) || *e.rule == **name)
            {
                Some(e) => e.count += 1,
                None => self.custom.push(Custom {
                    rule: Arc::clone(name),
                    count: 1,
                    after: self.seen,
                }),
            }
        }
        if let Some(m) = &mut self.matches {
            m.push(Match {
                rule: Arc::clone(name),
                offset,
                len,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{DINGTALK, EMAIL, FIRST_CUSTOM, PHONE};

    #[test]
    fn counts_add_up_and_clear() {
        let phone: Arc<str> = Arc::from("phone");
        let email: Arc<str> = Arc::from("email");
        let mut r = Report::with_matches();
        assert!(r.is_empty());
        r.record(PHONE, &phone, 3, 11);
        r.record(EMAIL, &email, 20, 9);
        r.record(PHONE, &phone, 40, 11);
        assert_eq!(r.count("phone"), 2);
        assert_eq!(r.count("jwt"), 0);
        assert_eq!(r.total(), 3);
        assert_eq!(r.iter().collect::<Vec<_>>(), [("phone", 2), ("email", 1)]);
        assert_eq!(r.matches()[1].offset, 20);
        r.clear();
        assert!(r.is_empty() && r.matches().is_empty());
        let mut plain = Report::new();
        plain.record(PHONE, &phone, 0, 1);
        assert!(plain.matches().is_empty());
    }

    #[test]
    fn custom_and_fixed_rules_keep_their_first_match_order() {
        let name = |s: &str| -> Arc<str> { Arc::from(s) };
        let (order, ticket, jk) = (name("order"), name("ticket"), name("json-key"));
        let mut r = Report::new();
        r.record(FIRST_CUSTOM + 1, &ticket, 0, 1);
        r.record(PHONE, &name("phone"), 0, 1);
        r.record(JSON_KEY, &jk, 0, 1);
        // another engine, where the same custom rule has another id
        r.record(FIRST_CUSTOM, &order, 0, 1);
        r.record(FIRST_CUSTOM, &ticket, 0, 1);
        r.record(DINGTALK, &name("dingtalk"), 0, 1);
        let got: Vec<_> = r.iter().collect();
        assert_eq!(
            got,
            [
                ("ticket", 2),
                ("phone", 1),
                ("json-key", 1),
                ("order", 1),
                ("dingtalk", 1)
            ]
        );
        assert_eq!(
            (r.count("ticket"), r.count("json-key"), r.total()),
            (2, 1, 6)
        );
        assert!(!r.is_empty());
    }
}
