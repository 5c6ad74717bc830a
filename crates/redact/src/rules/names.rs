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
    pub(crate) fn of(name: &[u8]) -> Class {
        // most sensitive keys are listed names written without separators
        // (`senderStaffId`): one hash probe; everything else walks the trie
        EXACT.get(name).unwrap_or_else(|| TRIE.classify(name))
    }

    fn has(self, flags: u8) -> bool {
        self.0 & flags != 0
    }

    /// A DingTalk field from the built-in JSON key list? `Some(hashable)`.
    pub(crate) fn dingtalk_key(self) -> Option<bool> {
        self.has(DT_KEY).then_some(!self.has(DT_CRED))
    }

    /// A name labelling a DingTalk identifier (`…StaffId`, `…UserId`, …)?
    /// `Some(hashable)` (a session webhook is a credential).
    pub(crate) fn dingtalk_id(self) -> Option<bool> {
        self.has(DT_TEXT).then_some(!self.has(WEBHOOK))
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
/// `openConversationId`, `encrypt`).
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

/// Endings of names that label DingTalk identifiers in free text
/// (`senderStaffId: manager123`, `userid=...`).
const DINGTALK_TEXT: &[&str] = &[
    "staffid",
    "senderid",
    "sendernick",
    "corpid",
    "userid",
    "unionid",
    "conversationid",
    "sessionwebhook",
    "dingtalkid",
    "mobile",
];

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
const DT_TEXT: u8 = 4; // ends with one of DINGTALK_TEXT
const PASS: u8 = 8; // ends with one of PASSWORD
const CRED: u8 = 16; // ends with one of CREDENTIAL
const URL: u8 = 32; // exactly one of URL_PARAMS, or ends with a session id name
const WEBHOOK: u8 = 64; // ends with `webhook`

/// Longest name classified; longer ones are never sensitive by name.
const MAX_NAME: usize = 64;

/// The listed names, reversed, in a trie with a dense transition table over
/// `a`–`z` (about 300 nodes, 17 KiB): classifying a name costs one lookup per
/// byte, and stops at the first byte no listed name has there.
struct Trie {
    /// Per node: the child for each letter (0: none), flags of names ending here
    /// as a suffix, flags of names ending here exactly.
    nodes: Vec<([u16; 26], u8, u8)>,
}

fn letter(b: u8) -> Option<usize> {
    b.is_ascii_alphabetic()
        .then(|| usize::from(b.to_ascii_lowercase() - b'a'))
}

/// [`FOLD`] of a separator (`_`, `-`, `.`), skipped in names.
const SKIP: u8 = 26;
/// [`FOLD`] of a byte no listed name has.
const OTHER: u8 = 27;

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

static TRIE: std::sync::LazyLock<Trie> = std::sync::LazyLock::new(|| {
    let mut nodes = vec![([0u16; 26], 0u8, 0u8)];
    let lists: [(&[&str], u8, bool); 8] = [
        (DINGTALK_KEYS, DT_KEY, true),
        (DINGTALK_CREDENTIALS, DT_CRED, true),
        (DINGTALK_TEXT, DT_TEXT, false),
        (PASSWORD, PASS, false),
        (CREDENTIAL, CRED, false),
        (URL_PARAMS, URL, true),
        (&["sessionid", "sessid"], URL, false),
        (&["webhook"], WEBHOOK, false),
    ];
    for (list, flag, exact) in lists {
        for word in list {
            let mut node = 0;
            for &b in word.as_bytes().iter().rev() {
                let l = letter(b).expect("listed names are letters");
                if nodes[node].0[l] == 0 {
                    nodes.push(([0; 26], 0, 0));
                    nodes[node].0[l] = u16::try_from(nodes.len() - 1).expect("a small trie");
                }
                node = usize::from(nodes[node].0[l]);
            }
            if exact {
                nodes[node].2 |= flag;
            } else {
                nodes[node].1 |= flag;
            }
        }
    }
    Trie { nodes }
});

impl Trie {
    fn classify(&self, name: &[u8]) -> Class {
        if name.len() > MAX_NAME * 2 {
            return Class(0);
        }
        let mut node = 0;
        let mut flags = 0;
        for &b in name.iter().rev() {
            let next = match FOLD[usize::from(b)] {
                SKIP => continue,
                OTHER => 0,
                l => self.nodes[node].0[usize::from(l)],
            };
            if next == 0 {
                return Class(flags);
            }
            node = usize::from(next);
            flags |= self.nodes[node].1;
        }
        Class(flags | self.nodes[node].2)
    }
}

/// The listed names, looked up whole by a hash of their case-folded bytes, with
/// the class the trie gives them.
struct Exact {
    slots: [Option<(Folded, Class)>; Exact::SLOTS],
}

/// A name of at most [`Folded::MAX`] bytes, zero-padded, with `0x20` set in every
/// byte: for the listed names (lowercase ASCII letters only), two folded names
/// of the same length are equal exactly when the names are equal ignoring ASCII
/// case (a byte `b` folds to the letter `l` only when `b` is `l` or its upper case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Folded {
    words: [u64; 3],
    len: usize,
}

impl Folded {
    const MAX: usize = 24;

    fn new(name: &[u8]) -> Option<Folded> {
        if name.len() > Folded::MAX {
            return None;
        }
        // loaded straight from the name (a copy into a buffer read back as
        // words would stall on store forwarding)
        let len = name.len();
        let word = |i: usize| load(&name[len.min(i * 8)..len.min(i * 8 + 8)]) | (LO * 0x20);
        Some(Folded {
            words: [word(0), word(1), word(2)],
            len: name.len(),
        })
    }

    fn hash(&self) -> usize {
        let [a, b, c] = self.words;
        let x = a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ self.len as u64;
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize
    }
}

/// The (at most 8) bytes of `b` as a little-endian word, zero-padded, read with
/// at most two overlapping loads.
fn load(b: &[u8]) -> u64 {
    let n = b.len();
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let u32_at = |i: usize| {
        u64::from(u32::from_le_bytes(
            b[i..i + 4].try_into().unwrap_or_default(),
        ))
    };
    match n {
        8.. => u64::from_le_bytes(b[..8].try_into().unwrap_or_default()),
        4..=7 => u32_at(0) | u32_at(n - 4) << (8 * (n - 4)),
        2..=3 => u16_at(0) | u16_at(n - 2) << (8 * (n - 2)),
        1 => u64::from(b[0]),
        _ => 0,
    }
}

impl Exact {
    const SLOTS: usize = 256;

    fn get(&self, name: &[u8]) -> Option<Class> {
        let key = Folded::new(name)?;
        let mut i = key.hash();
        while let Some((word, class)) = self.slots[i] {
            if word == key {
                return Some(class);
            }
            i = (i + 1) % Exact::SLOTS;
        }
        None
    }
}

static EXACT: std::sync::LazyLock<Exact> = std::sync::LazyLock::new(|| {
    let mut e = Exact {
        slots: [None; Exact::SLOTS],
    };
    let lists = [
        DINGTALK_KEYS,
        DINGTALK_CREDENTIALS,
        DINGTALK_TEXT,
        PASSWORD,
        CREDENTIAL,
        URL_PARAMS,
    ];
    for word in lists.into_iter().flatten() {
        assert!(
            word.bytes().all(|b| b.is_ascii_lowercase()),
            "listed names are lowercase letters"
        );
        if e.get(word.as_bytes()).is_none() {
            let key = Folded::new(word.as_bytes()).expect("listed names are short");
            let mut i = key.hash();
            while e.slots[i].is_some() {
                i = (i + 1) % Exact::SLOTS;
            }
            e.slots[i] = Some((key, TRIE.classify(word.as_bytes())));
        }
    }
    e
});

/// Whether a name ending in this byte can be sensitive at all (a quick test
/// before classifying).
pub(crate) fn may_be_sensitive(last: u8) -> bool {
    letter(last).is_some_and(|l| TRIE.nodes[0].0[l] != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Class {
        Class::of(s.as_bytes())
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            Norm::new(b"Access-Token").unwrap().as_bytes(),
            b"accesstoken"
        );
        assert!(Norm::new(b"sender_staff.id")
            .unwrap()
            .matches(b"SenderStaffId"));
        assert!(!Norm::new(b"staffid").unwrap().matches(b"senderStaffId"));
        assert!(!Norm::new(b"staffid").unwrap().matches(b"staffi"));
        assert!(Norm::new(&[b'a'; 65]).is_none());
        assert!(Norm::new(&[b'_'; 200]).is_some());
    }

    #[test]
    fn classes() {
        assert_eq!(class("senderStaffId").dingtalk_key(), Some(true));
        assert_eq!(class("access_token").dingtalk_key(), Some(false));
        assert_eq!(class("msgId").dingtalk_key(), None);
        assert_eq!(class("id").dingtalk_key(), None);
        assert_eq!(class("xsenderStaffId").dingtalk_key(), None);
        assert_eq!(class("managerStaffId").dingtalk_id(), Some(true));
        assert_eq!(class("sessionWebhook").dingtalk_id(), Some(false));
        assert_eq!(class("msgId").dingtalk_id(), None);
        assert!(class("refresh_token").credential());
        assert!(class("appSecret").credential());
        assert!(class("X-Api-Key").credential());
        assert!(class("db_password").credential() && class("db_password").password());
        assert!(!class("max_tokens").credential());
        assert!(!class("token_type").credential());
        assert!(!class("prompt_tokens").credential());
        assert!(!class("").credential());
        assert!(!class("___").credential());
        assert!(class("sign").url_param());
        assert!(class("JSESSIONID").url_param());
        assert!(!class("design").url_param());
        assert!(!class("monkey").url_param());
        assert!(!class("errcode").url_param());
        assert!(may_be_sensitive(b'D') && may_be_sensitive(b'n') && !may_be_sensitive(b'q'));
    }

    #[test]
    fn exact_lookup_agrees_with_the_trie() {
        let lists = [
            DINGTALK_KEYS,
            DINGTALK_CREDENTIALS,
            DINGTALK_TEXT,
            PASSWORD,
            CREDENTIAL,
            URL_PARAMS,
        ];
        for word in lists.into_iter().flatten() {
            let upper = word.to_ascii_uppercase();
            assert_eq!(
                EXACT.get(upper.as_bytes()),
                Some(TRIE.classify(word.as_bytes())),
                "{word}"
            );
        }
        for miss in ["msgId", "sender_staff_id", "tokens", "", "a"] {
            assert_eq!(EXACT.get(miss.as_bytes()), None, "{miss}");
        }
        assert_eq!(class("sender_staff_id"), class("senderStaffId"));
    }

    #[test]
    fn load_reads_short_slices() {
        let bytes: Vec<u8> = (1..=12).collect();
        for n in 0..=8 {
            let mut w = [0u8; 8];
            w[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(load(&bytes[..n]), u64::from_le_bytes(w), "{n}");
        }
        assert_eq!(load(&bytes), load(&bytes[..8]));
    }

    #[test]
    fn exact_lookup_folds_only_letters() {
        let long = "x".repeat(40);
        for miss in [
            "token\0",
            "tokeN_",
            "t0ken",
            "TOKEN ",
            "tok",
            &long,
            "sender\u{e9}id",
            "sessi0nid",
            "@ccesstoken",
            "{oken",
        ] {
            assert_eq!(EXACT.get(miss.as_bytes()), None, "{miss:?}");
        }
        assert!(EXACT.get(b"SenderStaffId").is_some());
        assert!(EXACT.get(b"openConversationID").is_some());
    }

    #[test]
    fn every_listed_name_is_found() {
        for k in DINGTALK_KEYS {
            assert!(class(k).dingtalk_key().is_some(), "{k}");
        }
        for k in DINGTALK_TEXT {
            assert!(class(&format!("x{k}")).dingtalk_id().is_some(), "{k}");
        }
        for k in PASSWORD.iter().chain(CREDENTIAL) {
            assert!(class(&format!("x_{k}")).credential(), "{k}");
        }
        for k in URL_PARAMS {
            assert!(class(k).url_param(), "{k}");
        }
    }
}
