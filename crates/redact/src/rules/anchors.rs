//! Rules anchored on a separator byte, found with `memchr`: `@` (e-mail), `:`
//! and `=` (a value after a sensitive name, `?name=value` query parameters,
//! `scheme://user:password@`, DingTalk `$:LWCP_v1:$` ids) and `>` (XML elements
//! with sensitive names).

use super::{shapes, words, Enabled, Hit, Scan, API_KEY, DINGTALK, EMAIL, URL_SECRET};

/// Which anchored rules are on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Anchors {
    email: bool,
    names: bool,
    url: bool,
    dingtalk: bool,
}

impl Anchors {
    pub(crate) fn new(e: Enabled) -> Self {
        Anchors {
            email: e.has(EMAIL),
            names: e.any(&[API_KEY, URL_SECRET, DINGTALK]),
            url: e.has(URL_SECRET),
            dingtalk: e.has(DINGTALK),
        }
    }

    pub(crate) fn any(self) -> bool {
        self.email || self.names || self.url || self.dingtalk
    }

    /// Appends the hits of the anchored rules.
    pub(crate) fn scan(
        self,
        hay: &[u8],
        range: std::ops::Range<usize>,
        en: Enabled,
        mode: Scan,
        hits: &mut Vec<Hit>,
    ) {
        let (from, part) = (range.start, &hay[range]);
        // separators inside a value already matched are not looked at again,
        // so that `password:password:…` costs one scan, not one per colon
        let mut floor = 0;
        for p in Seps::new(part, Which::KeyValue) {
            let p = from + p;
            if p < floor {
                continue;
            }
            let hit = match hay[p] {
                b'@' if self.email => shapes::email(hay, p),
                b'@' => None,
                b':' if hay[p + 1..].starts_with(b"//") => {
                    if self.url {
                        shapes::userinfo(hay, p + 3)
                    } else {
                        None
                    }
                }
                b':' if p > 0 && hay[p - 1] == b'$' => {
                    if self.dingtalk {
                        shapes::lwcp(hay, p - 1)
                    } else {
                        None
                    }
                }
                // in JSON, the colon after a key: the walker judges the key itself
                b':' if mode == Scan::Json && ends_key(hay, p) => None,
                _ if self.names => words::separator(hay, p, en, mode),
                _ => None,
            };
            if let Some(h) = hit {
                floor = floor.max(h.end);
                hits.push(h);
            }
        }
        if self.names {
            let mut floor = 0;
            for p in Seps::new(part, Which::Element) {
                let p = from + p;
                if p < floor {
                    continue;
                }
                if let Some(h) = words::xml_element(hay, p, en, mode) {
                    floor = h.end;
                    hits.push(h);
                }
            }
        }
    }
}

/// Whether the `:` at `p` follows a JSON key: `"`, blanks, `:`, with the quote
/// not escaped.
fn ends_key(hay: &[u8], p: usize) -> bool {
    let before = hay[..p]
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    matches!(before, Some(q) if hay[q] == b'"' && (q == 0 || hay[q - 1] != b'\\'))
}

/// Which separators [`Seps`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// `:`, `=` and `@`.
    KeyValue,
    /// `>`.
    Element,
}

/// Positions of separators in a part, in order: `memchr` on long parts, eight
/// bytes at a time on short ones (most JSON strings), where setting up a vector
/// search costs more than it saves.
enum Seps<'a> {
    Long(memchr::Memchr3<'a>),
    Short {
        part: &'a [u8],
        which: Which,
        /// Start of the word in `mask`.
        at: usize,
        /// High bits of the bytes of that word in `:`..=`@` not yet returned.
        mask: u64,
    },
}

/// Parts shorter than this are searched eight bytes at a time.
const SHORT: usize = 64;

impl<'a> Seps<'a> {
    fn new(part: &'a [u8], which: Which) -> Self {
        if part.len() >= SHORT {
            return Seps::Long(match which {
                Which::KeyValue => memchr::memchr3_iter(b':', b'=', b'@', part),
                Which::Element => memchr::memchr3_iter(b'>', b'>', b'>', part),
            });
        }
        Seps::Short {
            part,
            which,
            at: 0,
            mask: Self::mask(part, 0),
        }
    }

    /// `:`..=`@` holds `:`, `=`, `>`, `@` and the rarer `;`, `<`, `?`: one
    /// range test, the exact byte checked on each candidate.
    fn mask(part: &[u8], at: usize) -> u64 {
        let x = super::word_at(part, at);
        super::in_range(x, b':', b'@')
    }
}

impl Iterator for Seps<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Seps::Long(it) => it.next(),
            Seps::Short {
                part,
                which,
                at,
                mask,
            } => loop {
                while *mask == 0 {
                    *at += 8;
                    if *at >= part.len() {
                        return None;
                    }
                    *mask = Self::mask(part, *at);
                }
                let p = *at + (mask.trailing_zeros() / 8) as usize;
                *mask &= *mask - 1;
                let wanted = match which {
                    Which::KeyValue => matches!(part[p], b':' | b'=' | b'@'),
                    Which::Element => part[p] == b'>',
                };
                if wanted {
                    return Some(p);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Seps, Which};

    #[test]
    fn short_and_long_searches_agree() {
        let text = b"a:b=c@d>e;f<g?h x@@y==z::w>>v ";
        for len in 0..=text.len() {
            for start in 0..len {
                let part = &text[start..len];
                let naive = |set: &[u8]| -> Vec<usize> {
                    (0..part.len())
                        .filter(|&i| set.contains(&part[i]))
                        .collect()
                };
                let got: Vec<usize> = Seps::new(part, Which::KeyValue).collect();
                assert_eq!(got, naive(b":=@"), "{part:?}");
                let got: Vec<usize> = Seps::new(part, Which::Element).collect();
                assert_eq!(got, naive(b">"), "{part:?}");
            }
        }
        let long: Vec<u8> = text.iter().copied().cycle().take(300).collect();
        let all: Vec<usize> = Seps::new(&long, Which::KeyValue).collect();
        let want: Vec<usize> = (0..long.len())
            .filter(|&i| b":=@".contains(&long[i]))
            .collect();
        assert_eq!(all, want);
    }
}
