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
    assert_eq!(class("robotCode").dingtalk_id(), None);
    assert_eq!(class("robotCode").dingtalk_key(), None);
    // download codes fetch the user's files: credentials, never hashed
    assert_eq!(class("downloadCode").dingtalk_id(), Some(false));
    assert_eq!(class("pictureDownloadCode").dingtalk_id(), Some(false));
    assert_eq!(class("download_code").dingtalk_id(), Some(false));
    assert_eq!(class("openId").dingtalk_id(), Some(true));
    assert_eq!(class("outTrackId").dingtalk_id(), Some(true));
    assert_eq!(class("openSpaceId").dingtalk_id(), Some(true));
    assert_eq!(class("openThreadId").dingtalk_id(), Some(true));
    assert_eq!(class("spaceId").dingtalk_id(), Some(true));
    assert_eq!(class("namespaceId").dingtalk_id(), None);
    assert_eq!(class("workspace_id").dingtalk_id(), None);
    assert_eq!(class("corpId").dingtalk_id(), Some(true));
    assert_eq!(class("sessionWebhookExpiredTime").dingtalk_id(), None);
    assert_eq!(class("conversationTitle").dingtalk_id(), None);
    // generic names: only identifier-like values (see `words::identifier`)
    for name in ["user", "USER", "uid", "UID", "u_id", "--user"] {
        let c = class(name);
        assert!(c.dingtalk_if_id() && c.dingtalk_id().is_none(), "{name}");
    }
    for name in [
        "users",
        "username",
        "uuid",
        "guid",
        "requestUid",
        "userAgent",
        "xuser",
    ] {
        assert!(!class(name).dingtalk_if_id(), "{name}");
    }
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
    assert!(may_be_sensitive(b'R') && may_be_sensitive(b'e'));
}

#[test]
fn exact_lookup_agrees_with_the_trie() {
    for word in LISTS.iter().flat_map(|l| l.0) {
        let upper = word.to_ascii_uppercase();
        let found = EXACT.get(upper.as_bytes());
        if (4..=16).contains(&word.len()) {
            assert_eq!(found, Some(TRIE.classify(word.as_bytes())), "{word}");
        } else {
            assert_eq!(found, None, "{word}");
        }
    }
    for miss in ["msgId", "sender_staff_id", "tokens", "", "a"] {
        assert_eq!(EXACT.get(miss.as_bytes()), None, "{miss}");
    }
    assert_eq!(class("sender_staff_id"), class("senderStaffId"));
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
        "senderstaffid\x7f",
        "sender staffid",
    ] {
        assert_eq!(EXACT.get(miss.as_bytes()), None, "{miss:?}");
    }
    assert!(EXACT.get(b"SenderStaffId").is_some());
    assert!(EXACT.get(b"sessionWebHook").is_some());
    // longer than a key covers: found by the walk alone
    assert!(EXACT.get(b"openConversationID").is_none());
    assert!(class("openConversationID").dingtalk_key().is_some());
}

#[test]
fn the_trie_is_no_bigger_than_it_needs() {
    // one node per distinct suffix of a listed name, the dead node and the root
    let mut suffixes: Vec<&[u8]> = LISTS
        .iter()
        .flat_map(|l| l.0)
        .flat_map(|w| (1..=w.len()).map(move |i| &w.as_bytes()[w.len() - i..]))
        .collect();
    suffixes.sort();
    suffixes.dedup();
    assert_eq!(NODES, suffixes.len() + 2);
}

/// The class of `name` as the lists define it, the slow way: its bytes
/// ASCII-lowercased without `_`, `-` and `.` are one of the listed names
/// or end with one (depending on the list).
fn spec(name: &[u8]) -> Class {
    if name.len() > MAX_BYTES {
        return Class(0);
    }
    let norm: Vec<u8> = name
        .iter()
        .filter(|&&b| !is_separator(b))
        .map(u8::to_ascii_lowercase)
        .collect();
    let mut flags = 0;
    for (list, flag, exact) in LISTS {
        for word in list {
            let w = word.as_bytes();
            if norm == w || (!exact && norm.ends_with(w)) {
                flags |= flag;
            }
        }
    }
    Class(flags)
}

#[test]
fn classes_follow_the_lists() {
    let mut words: Vec<&str> = LISTS.iter().flat_map(|l| l.0.iter().copied()).collect();
    words.extend(["", "_", "id", "msgId", "content", "robotCode", "createAt"]);
    for w in &words {
        for name in [
            w.to_string(),
            w.to_ascii_uppercase(),
            format!("x{w}"),
            format!("{w}s"),
            format!("my_{w}"),
            format!("{w}_"),
            format!("_{w}"),
            format!("9{w}"),
        ] {
            let name = name.as_bytes();
            assert_eq!(Class::of(name), spec(name), "{name:?}");
            assert_eq!(TRIE.classify(name), spec(name), "{name:?}");
        }
    }
    let long = "x".repeat(MAX_BYTES - 5) + "token";
    assert!(class(&long).credential());
    assert!(!class(&format!("x{long}")).credential());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

    /// Listed names (or their ends) with random case changes, separators,
    /// prefixes, suffixes and bytes: `Class::of` (hash and walk) agrees
    /// with the trie walk alone and with the lists.
    #[test]
    fn class_of_agrees_with_the_walk(
        word in proptest::sample::select(
            LISTS.iter().flat_map(|l| l.0.iter().copied()).collect::<Vec<_>>()
        ),
        cut in 0..4usize,
        prefix in proptest::collection::vec(
            proptest::sample::select(b"aAdDiIsS_-.0\x80 xX".to_vec()), 0..4),
        suffix in proptest::collection::vec(
            proptest::sample::select(b"sSdD_-.0 ".to_vec()), 0..2),
        edits in proptest::collection::vec((0..20usize, 0..8u8, proptest::num::u8::ANY), 0..4),
    ) {
        let mut name = prefix;
        name.extend(&word.as_bytes()[cut.min(word.len())..]);
        name.extend(suffix);
        for (at, kind, byte) in edits {
            let at = at.min(name.len());
            match kind {
                0..=2 if at < name.len() => name[at] = name[at].to_ascii_uppercase(),
                3 => name.insert(at, b"_-."[usize::from(byte % 3)]),
                4 if at < name.len() => name[at] = byte,
                5 => name.insert(at, byte),
                6 if at < name.len() => { name.remove(at); }
                _ => {}
            }
        }
        proptest::prop_assert_eq!(Class::of(&name), TRIE.classify(&name), "{:?}", name);
        proptest::prop_assert_eq!(Class::of(&name), spec(&name), "{:?}", name);
        // `Engine::sensitive_name` stops at `is_none`: no test may say yes then
        let c = Class::of(&name);
        let any = c.dingtalk_key().is_some() || c.dingtalk_id().is_some()
            || c.dingtalk_if_id() || c.password() || c.credential() || c.url_param();
        proptest::prop_assert!(!(c.is_none() && any), "{:?}", name);
    }

    #[test]
    fn class_of_agrees_with_the_walk_on_any_bytes(
        name in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
    ) {
        proptest::prop_assert_eq!(Class::of(&name), TRIE.classify(&name));
        proptest::prop_assert_eq!(Class::of(&name), spec(&name));
    }
}

#[test]
fn every_listed_name_is_found() {
    for k in DINGTALK_KEYS {
        assert!(class(k).dingtalk_key().is_some(), "{k}");
    }
    for k in DINGTALK_TEXT {
        let secret = DINGTALK_SECRET.iter().any(|s| k.ends_with(s));
        assert_eq!(class(&format!("x{k}")).dingtalk_id(), Some(!secret), "{k}");
    }
    for k in DINGTALK_TEXT_EXACT {
        assert!(class(k).dingtalk_id().is_some(), "{k}");
        assert!(class(&format!("x{k}")).dingtalk_id().is_none(), "{k}");
    }
    for k in DINGTALK_IF_ID {
        assert!(class(k).dingtalk_if_id(), "{k}");
    }
    for k in PASSWORD.iter().chain(CREDENTIAL) {
        assert!(class(&format!("x_{k}")).credential(), "{k}");
    }
    for k in URL_PARAMS {
        assert!(class(k).url_param(), "{k}");
    }
}
