//! Field, parameter and header names whose values are sensitive whatever they
//! look like. Names are compared normalised: ASCII-lowercased with `_`, `-` and
//! `.` removed, so `access_token`, `accessToken` and `Access-Token` are one name.

/// A normalised name (at most [`Norm::MAX`] bytes), as configured `json_keys`
/// are stored and compared.
pub(crate) struct Norm {
    buf: [u8; Norm::MAX],
    len: usize,
}

impl Norm {
    pub(crate) const MAX: usize = 64;

    /// `None` when the normalised name would be longer than [`Norm::MAX`].
    pub(crate) fn new(name: &[u8]) -> Option<Norm> {
        let mut n = Norm {
            buf: [0; Norm::MAX],
            len: 0,
        };
        for &b in name.iter().filter(|&&b| !is_separator(b)) {
            *n.buf.get_mut(n.len)? = b.to_ascii_lowercase();
            n.len += 1;
        }
        Some(n)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Whether `name` normalises to this.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        let mut it = name.iter().filter(|&&b| !is_separator(b));
        self.as_bytes()
            .iter()
            .all(|&c| it.next().is_some_and(|b| b.to_ascii_lowercase() == c))
            && it.next().is_none()
    }
}

fn is_separator(b: u8) -> bool {
    matches!(b, b'_' | b'-' | b'.')
}

use super::LO;

/// What a name is, found by walking its bytes backwards (ASCII-lowercased,
/// ignoring `_`, `-` and `.`) through a trie of the listed names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class(u8);

impl Class {
    #[inline]
    pub(crate) fn of(name: &[u8]) -> Class {
        let (&[.., prev, last], ..=MAX_BYTES) = (name, name.len()) else {
            // short names, and long ones that are never sensitive
            return TRIE.classify(name);
        };
        // the first two steps of the walk in one lookup: most names that are
        // not listed leave the trie there (`msgtype`, `createAt`)
        let pair =
            PAIRS[usize::from(FOLD[usize::from(last)])][usize::from(FOLD[usize::from(prev)])];
        if pair.node == DEAD {
            return pair.class;
        }
        // most of the rest are listed names written without separators
        // (`senderStaffId`): one hash probe instead of a step per byte, when a
        // listed name of that length has those last two letters (the length
        // is taken mod 32, the probe compares it anyway)
        if pair.lens >> (name.len() % 32) & 1 != 0 {
            if let Some(class) = EXACT.get(name) {
                return class;
            }
        }
        TRIE.walk(pair.node, &name[..name.len() - 2])
    }

    /// In no list at all (every test below is false)?
    pub(crate) fn is_none(self) -> bool {
        self.0 == 0
    }

    fn has(self, flags: u8) -> bool {
        self.0 & flags != 0
    }

    /// A DingTalk field from the built-in JSON key list? `Some(hashable)`.
    pub(crate) fn dingtalk_key(self) -> Option<bool> {
        self.has(DT_KEY).then_some(!self.has(DT_CRED))
    }

    /// A name labelling a DingTalk identifier (`…StaffId`, `…UserId`, …) or
    /// credential (`sessionWebhook`, `…DownloadCode`), whatever its value?
    /// `Some(hashable)`: credentials are never hashed.
    pub(crate) fn dingtalk_id(self) -> Option<bool> {
        self.has(DT_TEXT).then_some(!self.has(DT_SECRET))
    }

    /// A generic name (`user`, `uid`) whose value is a user identifier when it
    /// looks like one (see `rules::words::identifier`)?
    pub(crate) fn dingtalk_if_id(self) -> bool {
        self.has(DT_IF_ID)
    }

    /// A name labelling a password (any value is secret)?
    pub(crate) fn password(self) -> bool {
        self.has(PASS)
    }

    /// A name labelling a credential (token, secret, key, password, …)?
    pub(crate) fn credential(self) -> bool {
        self.has(CRED | PASS)
    }

    /// A sensitive query parameter (`access_token`, `sign`, `session`, …)?
    pub(crate) fn url_param(self) -> bool {
        self.has(URL | CRED | PASS)
    }
}

/// JSON keys of DingTalk callbacks and APIs whose values are replaced whole (the
/// documented list plus a few siblings: `dingtalkId`, `atUserIds`, `atMobiles`,
/// `openConversationId`, `encrypt`). Every name [`DINGTALK_TEXT`] and
/// [`DINGTALK_TEXT_EXACT`] list is such a key too.
///
/// Left in clear on purpose: `msgId` (a message, not a person), `robotCode`
/// (the bot's own app key, public in every callback), `msgtype`, `createAt`,
/// `sessionWebhookExpiredTime`, `conversationType`, `isAdmin`, `isInAtList`,
/// `senderPlatform`, `duration`, `videoType`, `type`. User-written content
/// (`text.content`, `content.recognition`, `content.fileName`,
/// `conversationTitle`, `richText[].text`, card action `value`s and
/// `cardPrivateData.params`) keeps its text and goes through the pattern rules.
const DINGTALK_KEYS: &[&str] = &[
    "senderstaffid",
    "senderid",
    "sendernick",
    "sendercorpid",
    "chatbotuserid",
    "chatbotcorpid",
    "conversationid",
    "sessionwebhook",
    "userid",
    "unionid",
    "staffid",
    "mobile",
    "email",
    "token",
    "secret",
    "password",
    "accesstoken",
    "apikey",
    "dingtalkid",
    "atuserids",
    "atmobiles",
    "atdingtalkids",
    "openconversationid",
    "encrypt",
];

/// Of [`DINGTALK_KEYS`], those holding credentials: masked, never hashed.
const DINGTALK_CREDENTIALS: &[&str] = &[
    "sessionwebhook",
    "token",
    "secret",
    "password",
    "accesstoken",
    "apikey",
    "encrypt",
];

/// Endings of names that label DingTalk identifiers and credentials, in free
/// text (`senderStaffId: manager123`, `userid=...`, `"downloadCode":"…"` in a
/// Stream-mode `data` string) and as JSON keys: any value after them is masked.
///
/// `…DownloadCode` (`content.downloadCode`, `pictureDownloadCode`,
/// `richText[].downloadCode`) fetches the user's picture, file, audio or video
/// from DingTalk: a bearer credential. `outTrackId`, `openSpaceId` and
/// `openThreadId` come with interactive cards and hold or embed user and
/// conversation ids.
const DINGTALK_TEXT: &[&str] = &[
    "staffid",
    "senderid",
    "sendernick",
    "corpid",
    "userid",
    "unionid",
    "openid",
    "conversationid",
    "sessionwebhook",
    "dingtalkid",
    "mobile",
    "downloadcode",
    "outtrackid",
    "openspaceid",
    "openthreadid",
];

/// Like [`DINGTALK_TEXT`], but only as the whole name: `spaceId` of a card
/// callback, not `namespaceId` or `workspaceId`.
const DINGTALK_TEXT_EXACT: &[&str] = &["spaceid"];

/// Of the [`DINGTALK_TEXT`] names, the endings of those holding credentials:
/// masked, never hashed.
const DINGTALK_SECRET: &[&str] = &["webhook", "downloadcode"];

/// Generic names that label a user id in stack traces and error pages
/// (`user=manager4711`, `uid: 0123456`), but also start prose (`user: please
/// help`): in free text the value is masked only when it looks like an
/// identifier (`rules::words::identifier`); as a JSON key or form parameter
/// the value is masked whole when it does (a string or number), unless a
/// configured `json_keys` entry masks it anyway.
const DINGTALK_IF_ID: &[&str] = &["user", "uid"];

const PASSWORD: &[&str] = &["password", "passwd", "pwd", "passphrase"];

/// Endings of names that label credentials. `tokens` (as in `max_tokens`) is
/// deliberately not among them.
const CREDENTIAL: &[&str] = &[
    "token",
    "secret",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "credential",
    "credentials",
    "authorization",
    "cookie",
    "signature",
];

/// Query parameters that carry credentials even though their names are generic.
const URL_PARAMS: &[&str] = &[
    "sign",
    "sig",
    "session",
    "sessid",
    "sessionid",
    "key",
    "code",
    "ticket",
    "auth",
];

const DT_KEY: u8 = 1; // exactly one of DINGTALK_KEYS
const DT_CRED: u8 = 2; // exactly one of DINGTALK_CREDENTIALS
const DT_TEXT: u8 = 4; // ends with one of DINGTALK_TEXT, or one of DINGTALK_TEXT_EXACT
const PASS: u8 = 8; // ends with one of PASSWORD
const CRED: u8 = 16; // ends with one of CREDENTIAL
const URL: u8 = 32; // exactly one of URL_PARAMS, or ends with a session id name
const DT_SECRET: u8 = 64; // ends with one of DINGTALK_SECRET
const DT_IF_ID: u8 = 128; // exactly one of DINGTALK_IF_ID

/// Longest name classified; longer ones are never sensitive by name.
const MAX_NAME: usize = 64;
/// Longest name walked through the trie, separators included.
const MAX_BYTES: usize = MAX_NAME * 2;

/// Every list with its flag, and whether a name must be the listed name
/// exactly (otherwise it need only end with it).
const LISTS: [(&[&str], u8, bool); 10] = [
    (DINGTALK_KEYS, DT_KEY, true),
    (DINGTALK_CREDENTIALS, DT_CRED, true),
    (DINGTALK_TEXT, DT_TEXT, false),
    (DINGTALK_TEXT_EXACT, DT_TEXT, true),
    (DINGTALK_IF_ID, DT_IF_ID, true),
    (PASSWORD, PASS, false),
    (CREDENTIAL, CRED, false),
    (URL_PARAMS, URL, true),
    (&["sessionid", "sessid"], URL, false),
    (DINGTALK_SECRET, DT_SECRET, false),
];

fn letter(b: u8) -> Option<usize> {
    b.is_ascii_alphabetic()
        .then(|| usize::from(b.to_ascii_lowercase() - b'a'))
}

/// [`FOLD`] of a separator (`_`, `-`, `.`), skipped in names.
const SKIP: u8 = 26;
/// [`FOLD`] of a byte no listed name has.
const OTHER: u8 = 27;
/// Values of [`FOLD`]: the columns of the trie.
const COLS: usize = 28;

/// Per byte: its letter index (`a`/`A` = 0), [`SKIP`] or [`OTHER`].
static FOLD: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut i = 0;
    while i < 26 {
        t[b'a' as usize + i] = i as u8;
        t[b'A' as usize + i] = i as u8;
        i += 1;
    }
    t[b'_' as usize] = SKIP;
    t[b'-' as usize] = SKIP;
    t[b'.' as usize] = SKIP;
    t
};

/// The node every walk that left the trie is in: all its transitions lead
/// back to it, so the walk needs no test for separators or other bytes.
const DEAD: u16 = 0;
/// The node of the empty suffix, where every walk starts.
const ROOT: u16 = 1;

/// One node of the [`Trie`], standing for a suffix of listed names.
#[derive(Clone, Copy)]
struct Node {
    /// The node one byte further back, per [`FOLD`] value: [`DEAD`] for `OTHER`
    /// and letters no listed name has there, this node itself for `SKIP`.
    next: [u16; COLS],
    /// Flags of the names that are suffixes of this one (as the walk
    /// collects them on the way here): the class of a longer name that
    /// leaves the trie here.
    suffix: u8,
    /// `suffix` and the flags of names that are exactly this one: the class of
    /// a name whose walk ends here.
    whole: u8,
}

/// The listed names, reversed, in a trie with a dense transition table
/// (about 320 nodes, 18 KiB), built at compile time: classifying a name costs
/// one lookup per byte, and stops at the first byte no listed name has there.
struct Trie<const N: usize> {
    nodes: [Node; N],
}

/// Room for the trie while it is built; [`NODES`] is what it needs.
const ROOM: usize = 1024;

impl<const N: usize> Trie<N> {
    /// The trie of [`LISTS`] (panics at compile time when `N` is too small)
    /// and the number of nodes it has.
    const fn build() -> (Trie<N>, usize) {
        let empty = Node {
            next: [DEAD; COLS],
            suffix: 0,
            whole: 0,
        };
        let mut nodes = [empty; N];
        nodes[ROOT as usize].next[SKIP as usize] = ROOT;
        let mut len = ROOT as usize + 1;
        let mut l = 0;
        while l < LISTS.len() {
            let (list, flag, exact) = LISTS[l];
            let mut w = 0;
            while w < list.len() {
                let word = list[w].as_bytes();
                let mut node = ROOT as usize;
                let mut i = word.len();
                while i > 0 {
                    i -= 1;
                    assert!(word[i].is_ascii_lowercase(), "listed names are letters");
                    let c = (word[i] - b'a') as usize;
                    if nodes[node].next[c] == DEAD {
                        assert!(len < N, "room for the trie");
                        nodes[len].next[SKIP as usize] = len as u16;
                        nodes[node].next[c] = len as u16;
                        len += 1;
                    }
                    node = nodes[node].next[c] as usize;
                }
                if exact {
                    nodes[node].whole |= flag;
                } else {
                    nodes[node].suffix |= flag;
                }
                w += 1;
            }
            l += 1;
        }
        // collect suffix flags along every path (parents come before children)
        let mut node = ROOT as usize;
        while node < len {
            nodes[node].whole |= nodes[node].suffix;
            let mut c = 0;
            while c < 26 {
                let child = nodes[node].next[c] as usize;
                if child != DEAD as usize {
                    nodes[child].suffix |= nodes[node].suffix;
                }
                c += 1;
            }
            node += 1;
        }
        (Trie { nodes }, len)
    }

    /// The class of `name` followed by the suffix that led from the root to
    /// `node`.
    const fn walk(&self, mut node: u16, name: &[u8]) -> Class {
        let mut i = name.len();
        while i > 0 {
            i -= 1;
            let next = self.nodes[node as usize].next[FOLD[name[i] as usize] as usize];
            if next == DEAD {
                return Class(self.nodes[node as usize].suffix);
            }
            node = next;
        }
        Class(self.nodes[node as usize].whole)
    }

    /// The class of a name: the walk alone, the reference for the shortcuts
    /// of [`Class::of`].
    const fn classify(&self, name: &[u8]) -> Class {
        if name.len() > MAX_BYTES {
            return Class(0);
        }
        self.walk(ROOT, name)
    }
}

/// Nodes of [`TRIE`].
const NODES: usize = Trie::<ROOM>::build().1;

static TRIE: Trie<NODES> = Trie::<NODES>::build().0;

/// The first two steps of the walk, per [`FOLD`] of the last byte of a name and
/// of the byte before it.
#[derive(Clone, Copy)]
struct Pair {
    /// The node reached, or [`DEAD`].
    node: u16,
    /// When `node` is [`DEAD`], the class of the name.
    class: Class,
    /// Bit `n` set when a name of [`EXACT`] of `n` bytes ends with these two.
    lens: u32,
}

static PAIRS: [[Pair; COLS]; COLS] = {
    let none = Pair {
        node: DEAD,
        class: Class(0),
        lens: 0,
    };
    let mut t = [[none; COLS]; COLS];
    let mut last = 0;
    while last < COLS {
        let first = TRIE.nodes[ROOT as usize].next[last];
        let mut prev = 0;
        while first != DEAD && prev < COLS {
            t[last][prev].node = TRIE.nodes[first as usize].next[prev];
            t[last][prev].class = Class(TRIE.nodes[first as usize].suffix);
            prev += 1;
        }
        last += 1;
    }
    let mut l = 0;
    while l < LISTS.len() {
        let mut w = 0;
        while w < LISTS[l].0.len() {
            let word = LISTS[l].0[w].as_bytes();
            if let (Some(_), [.., prev, last]) = (Exact::key(word), word) {
                let pair = &mut t[FOLD[*last as usize] as usize][FOLD[*prev as usize] as usize];
                pair.lens |= 1 << word.len();
            }
            w += 1;
        }
        l += 1;
    }
    t
};

/// The listed names of 4 to 16 bytes, looked up whole by a perfect hash of
/// their case-folded bytes, with the class the trie gives them.
struct Exact {
    /// Per hash: the key of the name there, its length (0: none) and class.
    slots: [(Key, u8, Class); Exact::SLOTS],
}

/// A name's first and last four (or eight) bytes, with `0x20` set in every
/// byte: for the listed names (lowercase ASCII letters only), two names of
/// the same length have the same key exactly when they are equal ignoring
/// ASCII case (a byte `b` has `b | 0x20` equal to a letter `l` only when `b` is
/// `l` or its upper case; the two halves overlap and cover every byte).
type Key = (u64, u64);

impl Exact {
    const SLOTS: usize = 128;
    /// Picked (by trying random odd numbers) so that the listed names all
    /// have a slot of their own: change it if the build panics.
    const MUL: u64 = 0x3ebd_e678_15ee_dc07;

    const fn key(name: &[u8]) -> Option<Key> {
        let (a, b) = match (name.first_chunk::<8>(), name.last_chunk::<8>()) {
            (Some(a), Some(b)) if name.len() <= 16 => {
                (u64::from_le_bytes(*a), u64::from_le_bytes(*b))
            }
            _ => match (name.first_chunk::<4>(), name.last_chunk::<4>()) {
                (Some(a), Some(b)) if name.len() < 8 => {
                    (u32::from_le_bytes(*a) as u64, u32::from_le_bytes(*b) as u64)
                }
                _ => return None,
            },
        };
        let fold = LO * 0x20;
        Some((a | fold, b | fold))
    }

    const fn slot((a, b): Key) -> usize {
        ((a ^ b.rotate_left(32)).wrapping_mul(Exact::MUL) >> 57) as usize
    }

    const fn build() -> Exact {
        let mut e = Exact {
            slots: [((0, 0), 0, Class(0)); Exact::SLOTS],
        };
        let mut l = 0;
        while l < LISTS.len() {
            let mut w = 0;
            while w < LISTS[l].0.len() {
                let word = LISTS[l].0[w].as_bytes();
                if let Some(key) = Exact::key(word) {
                    let i = Exact::slot(key);
                    let (other, len, _) = e.slots[i];
                    let taken = len != 0;
                    let same = other.0 == key.0 && other.1 == key.1 && len as usize == word.len();
                    assert!(!taken || same, "a slot per listed name: change Exact::MUL");
                    e.slots[i] = (key, word.len() as u8, TRIE.classify(word));
                }
                w += 1;
            }
            l += 1;
        }
        e
    }

    fn get(&self, name: &[u8]) -> Option<Class> {
        let key = Exact::key(name)?;
        let (k, len, class) = self.slots[Exact::slot(key)];
        (k == key && usize::from(len) == name.len()).then_some(class)
    }
}

static EXACT: Exact = Exact::build();

/// Whether a name ending in this byte can be sensitive at all (a quick test
/// before classifying).
pub(crate) fn may_be_sensitive(last: u8) -> bool {
    letter(last).is_some_and(|l| TRIE.nodes[usize::from(ROOT)].next[l] != DEAD)
}

#[cfg(test)]
mod tests;
