//! Source positions: maps a key path (`route[2].verify`) to the line and column where it
//! is written, and a byte offset (from a toml error) back to the key path.
//!
//! Uses `toml::de::DeTable`, the spanned parse of the same TOML dialect that
//! `toml::from_str` reads, so positions always agree with the deserializer.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// The spanned parse of a config file.
pub(crate) struct Tree<'a> {
    src: &'a str,
    root: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Tree<'a> {
    /// Parses `src`; on a syntax error returns the toml error.
    pub(crate) fn parse(src: &'a str) -> Result<Self, toml::de::Error> {
        let root = DeTable::parse(src)?;
        Ok(Tree {
            src,
            root: Some(root),
        })
    }

    /// A tree that knows no positions (every lookup falls back to 1:1).
    #[cfg(test)]
    pub(crate) fn empty(src: &'a str) -> Self {
        Tree { src, root: None }
    }

    /// Line and column (1-based) of `key` (a dotted path such as `route[2].verify`): of
    /// the key itself when it is written, else of the closest enclosing table or array
    /// element that is, else 1:1.
    pub(crate) fn locate(&self, key: &str) -> (u32, u32) {
        let segs = split_path(key);
        let offset = self
            .root
            .as_ref()
            .and_then(|root| best_span(root.get_ref(), &segs));
        line_col(self.src, offset.unwrap_or(0))
    }

    /// The first written occurrence of `path` (dotted, indices dropped, such as
    /// `egress.target.url`) as a key path with indices (`egress.target[0].url`), or `None`
    /// when the file does not have it.
    pub(crate) fn find_written(&self, path: &str) -> Option<String> {
        let root = self.root.as_ref()?;
        let names: Vec<&str> = path.split('.').collect();
        let mut segs = Vec::new();
        find_keys(root.get_ref(), &names, &mut segs).then(|| join_path(&segs))
    }

    /// The key path of the value or key at byte `offset` (from a toml error span).
    pub(crate) fn path_at(&self, offset: usize) -> Vec<Seg> {
        let mut path = Vec::new();
        if let Some(root) = &self.root {
            find(root.get_ref(), offset, &mut path);
        }
        path
    }
}

/// Splits `a.b[2].c` into segments. Indices are `[n]` suffixes.
pub(crate) fn split_path(key: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in key.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            segs.push(Seg::Key(name.to_owned()));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']').unwrap_or(stripped.len());
            if let Ok(i) = stripped[..end].parse() {
                segs.push(Seg::Index(i));
            }
            rest = stripped.get(end + 1..).unwrap_or("");
        }
    }
    segs
}

/// Formats segments back into `a.b[2].c`.
pub(crate) fn join_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The same path with indices dropped: `route[2].verify` → `route.verify`.
pub(crate) fn section_path(segs: &[Seg]) -> String {
    let keys: Vec<&str> = segs
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    keys.join(".")
}

fn lookup<'t, 'a>(
    table: &'t DeTable<'a>,
    name: &str,
) -> Option<(Range<usize>, &'t Spanned<DeValue<'a>>)> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == name)
        .map(|(k, v)| (k.span(), v))
}

/// Start offset of the deepest written part of `segs`.
fn best_span(root: &DeTable<'_>, segs: &[Seg]) -> Option<usize> {
    let mut best = None;
    let mut table = Some(root);
    let mut value: Option<&Spanned<DeValue<'_>>> = None;
    for seg in segs {
        match seg {
            Seg::Key(name) => {
                let Some((key_span, v)) = table.and_then(|t| lookup(t, name)) else {
                    break;
                };
                best = Some(key_span.start);
                value = Some(v);
                table = v.get_ref().as_table();
            }
            Seg::Index(i) => {
                let Some(elem) = value
                    .and_then(|v| v.get_ref().as_array())
                    .and_then(|a| a.get(*i))
                else {
                    break;
                };
                best = Some(elem.span().start);
                value = Some(elem);
                table = elem.get_ref().as_table();
            }
        }
    }
    best
}

/// Depth-first search for `names` below `table`, through arrays of tables; fills `segs`.
fn find_keys(table: &DeTable<'_>, names: &[&str], segs: &mut Vec<Seg>) -> bool {
    let Some((first, rest)) = names.split_first() else {
        return true;
    };
    let Some((_, value)) = lookup(table, first) else {
        return false;
    };
    segs.push(Seg::Key((*first).to_owned()));
    if rest.is_empty() {
        return true;
    }
    match value.get_ref() {
        DeValue::Table(t) if find_keys(t, rest, segs) => return true,
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let Some(t) = item.get_ref().as_table() else {
                    continue;
                };
                segs.push(Seg::Index(i));
                if find_keys(t, rest, segs) {
                    return true;
                }
                segs.pop();
            }
        }
        _ => {}
    }
    segs.pop();
    false
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.start == offset && span.is_empty())
}

/// Depth-first search for the key or value at `offset`; fills `path`.
fn find(table: &DeTable<'_>, offset: usize, path: &mut Vec<Seg>) -> bool {
    for (key, value) in table.iter() {
        path.push(Seg::Key(key.get_ref().to_string()));
        if contains(&key.span(), offset) || find_in_value(value, offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<Seg>) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => find(t, offset, path) || contains(&value.span(), offset),
        DeValue::Array(a) => {
            for (i, elem) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if find_in_value(elem, offset, path) {
                    return true;
                }
                path.pop();
            }
            contains(&value.span(), offset)
        }
        _ => contains(&value.span(), offset),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub(crate) fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (to_u32(line), to_u32(col))
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "# c\n[listen]\nhttps = \"x\"\n\n[[route]]\nname = \"a\"\n[[route]]\nname = \"b\"\nverify = \"none\"\nsecrets = [\"p\", \"q\"]\n[egress]\n[[egress.target]]\ninject = { A = \"1\" }\n";

    #[test]
    fn locates_keys_and_falls_back_to_tables() {
        let t = Tree::parse(SRC).unwrap();
        assert_eq!(t.locate("listen.https"), (3, 1));
        assert_eq!(t.locate("listen.metrics"), (2, 2));
        assert_eq!(t.locate("route[1].verify"), (9, 1));
        assert_eq!(t.locate("route[1].secrets[1]"), (10, 17));
        assert_eq!(t.locate("route[1].missing"), (7, 1));
        assert_eq!(t.locate("egress.target[0].inject.A"), (13, 12));
        assert_eq!(t.locate("nothing.here"), (1, 1));
        assert_eq!(Tree::empty(SRC).locate("listen.https"), (1, 1));
    }

    #[test]
    fn finds_paths_from_offsets() {
        let t = Tree::parse(SRC).unwrap();
        let at = |needle: &str| join_path(&t.path_at(SRC.find(needle).unwrap()));
        assert_eq!(at("\"x\""), "listen.https");
        assert_eq!(at("verify"), "route[1].verify");
        assert_eq!(at("\"q\""), "route[1].secrets[1]");
        assert_eq!(at("\"1\""), "egress.target[0].inject.A");
    }

    #[test]
    fn finds_the_first_written_occurrence() {
        let t = Tree::parse(SRC).unwrap();
        assert_eq!(t.find_written("egress").as_deref(), Some("egress"));
        assert_eq!(
            t.find_written("egress.target.inject").as_deref(),
            Some("egress.target[0].inject")
        );
        assert_eq!(
            t.find_written("route.verify").as_deref(),
            Some("route[1].verify")
        );
        assert_eq!(
            t.find_written("route.secrets").as_deref(),
            Some("route[1].secrets")
        );
        assert_eq!(t.find_written("listen.https.x"), None);
        assert_eq!(t.find_written("upstream.fallback"), None);
        let dotted = Tree::parse("upstream.fallback = \"x\"\n").unwrap();
        assert_eq!(
            dotted.find_written("upstream.fallback").as_deref(),
            Some("upstream.fallback")
        );
        assert_eq!(Tree::empty(SRC).find_written("egress"), None);
    }

    #[test]
    fn paths_round_trip() {
        let segs = split_path("egress.target[3].inject_headers.Authorization");
        assert_eq!(
            join_path(&segs),
            "egress.target[3].inject_headers.Authorization"
        );
        assert_eq!(
            section_path(&segs),
            "egress.target.inject_headers.Authorization"
        );
        assert!(split_path("a[x").iter().all(|s| matches!(s, Seg::Key(_))));
    }

    #[test]
    fn line_col_handles_multibyte_and_bounds() {
        assert_eq!(line_col("ä\nbé", 4), (2, 2));
        assert_eq!(line_col("ä", 1), (1, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
