//! What a redaction call replaced: counts per rule (for
//! `clawveil_redactions_total{rule}`) and, in explain mode, where.

use std::sync::Arc;

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

/// Counts of replaced values per rule, filled in by every engine call.
///
/// A report can be reused across calls (counts add up) and [`clear`](Report::clear)ed.
/// It allocates only when something is replaced.
#[derive(Debug, Clone, Default)]
pub struct Report {
    counts: Vec<(Arc<str>, u64)>,
    matches: Option<Vec<Match>>,
}

impl Report {
    /// A report that keeps counts only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A report that also keeps the position of every match (for `--explain`).
    pub fn with_matches() -> Self {
        Report {
            counts: Vec::new(),
            matches: Some(Vec::new()),
        }
    }

    /// `(rule, count)` pairs, in the order the rules first matched.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.counts.iter().map(|(r, n)| (&**r, *n))
    }

    /// How many values `rule` replaced.
    pub fn count(&self, rule: &str) -> u64 {
        self.counts
            .iter()
            .find(|(r, _)| &**r == rule)
            .map_or(0, |(_, n)| *n)
    }

    /// How many values were replaced in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// Whether nothing was replaced.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The recorded matches, in input order per call; empty unless the report was
    /// made by [`with_matches`](Report::with_matches).
    pub fn matches(&self) -> &[Match] {
        self.matches.as_deref().unwrap_or(&[])
    }

    /// Forgets all counts and matches (keeps the explain mode).
    pub fn clear(&mut self) {
        self.counts.clear();
        if let Some(m) = &mut self.matches {
            m.clear();
        }
    }

    pub(crate) fn record(&mut self, rule: &Arc<str>, offset: usize, len: usize) {
        match self
            .counts
            .iter_mut()
            .find(|(r, _)| Arc::ptr_eq(r, rule) || **r == **rule)
        {
            Some((_, n)) => *n += 1,
            None => self.counts.push((Arc::clone(rule), 1)),
        }
        if let Some(m) = &mut self.matches {
            m.push(Match {
                rule: Arc::clone(rule),
                offset,
                len,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_clear() {
        let phone: Arc<str> = Arc::from("phone");
        let email: Arc<str> = Arc::from("email");
        let mut r = Report::with_matches();
        assert!(r.is_empty());
        r.record(&phone, 3, 11);
        r.record(&email, 20, 9);
        r.record(&phone, 40, 11);
        assert_eq!(r.count("phone"), 2);
        assert_eq!(r.count("jwt"), 0);
        assert_eq!(r.total(), 3);
        assert_eq!(r.iter().collect::<Vec<_>>(), [("phone", 2), ("email", 1)]);
        assert_eq!(r.matches()[1].offset, 20);
        r.clear();
        assert!(r.is_empty() && r.matches().is_empty());
        let mut plain = Report::new();
        plain.record(&phone, 0, 1);
        assert!(plain.matches().is_empty());
    }
}
