use super::*;

fn host(s: &str) -> Host {
    Host::parse(s).unwrap_or_else(|| panic!("{s} does not parse"))
}

fn allows(patterns: &[&str], h: &str) -> bool {
    HostAllow::new(patterns).unwrap().allows(&host(h))
}

#[test]
fn exact_names_match_only_themselves() {
    let p = &["api.dingtalk.com"];
    assert!(allows(p, "api.dingtalk.com"));
    assert!(allows(p, "API.DingTalk.COM"));
    assert!(allows(p, "api.dingtalk.com."));
    assert!(!allows(p, "x.api.dingtalk.com"));
    assert!(!allows(p, "dingtalk.com"));
    assert!(!allows(p, "api.dingtalk.com.evil.example"));
    assert!(!allows(p, "api-dingtalk.com"));
    // the pattern itself is normalized too
    assert!(allows(&["API.DingTalk.com."], "api.dingtalk.com"));
}

#[test]
fn suffixes_match_one_or_more_labels_but_not_the_apex() {
    let p = &["*.dingtalk.com"];
    assert!(allows(p, "api.dingtalk.com"));
    assert!(allows(p, "wss-open-connection.dingtalk.com"));
    assert!(allows(p, "a.b.c.dingtalk.com"));
    assert!(allows(p, "OAPI.DINGTALK.COM."));
    assert!(!allows(p, "dingtalk.com"));
    assert!(!allows(p, "dingtalk.com."));
    assert!(!allows(p, "evildingtalk.com"));
    assert!(!allows(p, "dingtalk.com.evil.example"));
    assert!(!allows(p, "api.dingtalk.co"));
    assert!(allows(&["*.DingTalk.com."], "api.dingtalk.com"));
}

#[test]
fn ip_literals_match_only_equal_ip_entries() {
    let p = &[
        "*.0.0.1.example",
        "203.0.113.7",
        "[2001:db8::1]",
        "2001:db8::2",
    ];
    assert!(allows(p, "203.0.113.7"));
    assert!(allows(p, "[2001:db8::1]"));
    assert!(allows(p, "[2001:db8:0:0::2]"));
    assert!(!allows(p, "203.0.113.8"));
    assert!(!allows(p, "[::ffff:203.0.113.7]"));
    assert!(!allows(&["*.0.0.1.example"], "127.0.0.1"));
    // an IP entry does not admit names
    assert!(!allows(&["203.0.113.7"], "x.203.0.113.7.example"));
}

#[test]
fn hosts_parse_strictly() {
    assert_eq!(host("Example.COM."), Host::Name("example.com".into()));
    assert_eq!(host("[::1]"), Host::Ip("::1".parse().unwrap()));
    assert_eq!(host("127.0.0.1"), Host::Ip("127.0.0.1".parse().unwrap()));
    assert_eq!(
        host("_srv.example.com"),
        Host::Name("_srv.example.com".into())
    );
    for bad in [
        "",
        ".",
        "a..b",
        ".example.com",
        "exa mple.com",
        "exämple.com",
        "[::1",
        "[1.2.3.4]",
        "[fe80::1%eth0]",
        "user@example.com",
        "example.com:443",
        // read as IPv4 by the resolver: not names
        "127.1",
        "2130706433",
        "0x7f.1",
        "1.0x7f",
        "1.2.3.4.",
        &"a".repeat(64),
        &format!("{}com", "a.".repeat(126)),
    ] {
        assert_eq!(Host::parse(bad), None, "{bad:?}");
    }
    assert!(Host::parse(&format!("{}.com", "a".repeat(63))).is_some());
}

#[test]
fn bad_patterns_are_refused_with_their_text() {
    for bad in [
        "*",
        "*.",
        "*.*.example.com",
        "a.*.example.com",
        "*example.com",
        "",
        "**.x.com",
        "*.127.1",
    ] {
        let e = HostAllow::new(&[bad]).unwrap_err();
        assert_eq!(e.pattern, bad);
        assert!(e.to_string().contains("egress.allow"), "{e}");
    }
}

#[test]
fn ports() {
    assert!(port_allowed(&[443], 443));
    assert!(!port_allowed(&[443], 80));
    assert!(!port_allowed(&[], 443));
    assert!(port_allowed(&[443, 8443], 8443));
}
