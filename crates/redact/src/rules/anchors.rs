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
    pub(crate) fn scan(self, hay: &[u8], en: Enabled, mode: Scan, hits: &mut Vec<Hit>) {
        // separators inside a value already matched are not looked at again,
        // so that `password:password:…` costs one scan, not one per colon
        let mut floor = 0;
        for p in memchr::memchr3_iter(b':', b'=', b'@', hay) {
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
            for p in memchr::memchr_iter(b'>', hay) {
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
