use super::*;

use Range::*;

fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|_| panic!("{s} is not an address"))
}

/// What `classify` says, as the range alone (embedded forms are tested apart).
fn range_of(s: &str) -> Option<Range> {
    classify(ip(s)).err().map(Blocked::range)
}

fn check_all(cases: &[(&str, Option<Range>)]) {
    for (addr, want) in cases {
        assert_eq!(range_of(addr), *want, "{addr}");
    }
}

#[test]
fn ipv4_ranges_at_both_edges_and_just_outside() {
    check_all(&[
        ("0.0.0.0", Some(Unspecified)),
        ("0.0.0.1", Some(ThisNetwork)),
        ("0.255.255.255", Some(ThisNetwork)),
        ("1.0.0.0", None),
        ("9.255.255.255", None),
        ("10.0.0.0", Some(Private)),
        ("10.255.255.255", Some(Private)),
        ("11.0.0.0", None),
        ("100.63.255.255", None),
        ("100.64.0.0", Some(SharedCgnat)),
        ("100.127.255.255", Some(SharedCgnat)),
        ("100.128.0.0", None),
        ("100.100.100.199", Some(SharedCgnat)),
        ("100.100.100.200", Some(Metadata)),
        ("100.100.100.201", Some(SharedCgnat)),
        ("126.255.255.255", None),
        ("127.0.0.0", Some(Loopback)),
        ("127.0.0.1", Some(Loopback)),
        ("127.255.255.255", Some(Loopback)),
        ("128.0.0.0", None),
        ("169.253.255.255", None),
        ("169.254.0.0", Some(LinkLocal)),
        ("169.254.169.253", Some(LinkLocal)),
        ("169.254.169.254", Some(Metadata)),
        ("169.254.169.255", Some(LinkLocal)),
        ("169.254.255.255", Some(LinkLocal)),
        ("169.255.0.0", None),
        ("172.15.255.255", None),
        ("172.16.0.0", Some(Private)),
        ("172.31.255.255", Some(Private)),
        ("172.32.0.0", None),
        ("191.255.255.255", None),
        ("192.0.0.0", Some(IetfProtocol)),
        ("192.0.0.255", Some(IetfProtocol)),
        ("192.0.1.0", None),
        ("192.0.1.255", None),
        ("192.0.2.0", Some(Documentation)),
        ("192.0.2.255", Some(Documentation)),
        ("192.0.3.0", None),
        ("192.88.98.255", None),
        ("192.88.99.0", Some(Relay6to4)),
        ("192.88.99.255", Some(Relay6to4)),
        ("192.88.100.0", None),
        ("192.167.255.255", None),
        ("192.168.0.0", Some(Private)),
        ("192.168.255.255", Some(Private)),
        ("192.169.0.0", None),
        ("198.17.255.255", None),
        ("198.18.0.0", Some(Benchmarking)),
        ("198.19.255.255", Some(Benchmarking)),
        ("198.20.0.0", None),
        ("198.51.99.255", None),
        ("198.51.100.0", Some(Documentation)),
        ("198.51.100.255", Some(Documentation)),
        ("198.51.101.0", None),
        ("203.0.112.255", None),
        ("203.0.113.0", Some(Documentation)),
        ("203.0.113.255", Some(Documentation)),
        ("203.0.114.0", None),
        ("223.255.255.255", None),
        ("224.0.0.0", Some(Multicast)),
        ("239.255.255.255", Some(Multicast)),
        ("240.0.0.0", Some(Reserved)),
        ("255.255.255.254", Some(Reserved)),
        ("255.255.255.255", Some(Broadcast)),
        // public addresses a bot really reaches
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("47.94.0.1", None),
    ]);
}

#[test]
fn ipv6_ranges_at_both_edges_and_just_outside() {
    const MAX: &str = "ffff:ffff:ffff:ffff:ffff:ffff";
    let cases: Vec<(String, Option<Range>)> = vec![
        ("::".into(), Some(Unspecified)),
        ("::1".into(), Some(Loopback)),
        ("::2".into(), Some(Ipv4Compatible)),
        ("::8.8.8.8".into(), Some(Ipv4Compatible)),
        ("::255.255.255.255".into(), Some(Ipv4Compatible)),
        ("::1:0:0".into(), Some(Reserved)),
        ("::fffe:ffff:ffff".into(), Some(Reserved)),
        ("::1:0:0:0".into(), Some(Reserved)),
        (
            "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            Some(Reserved),
        ),
        ("64:ff9b::1:0:0".into(), Some(Reserved)),
        ("64:ff9b:0:ffff:ffff:ffff:ffff:ffff".into(), Some(Reserved)),
        ("64:ff9b:1:1::".into(), Some(Nat64Local)),
        ("64:ff9b:1:0:0:1::".into(), Some(Nat64Local)),
        (format!("64:ff9b:1:{}", &MAX[..24]), Some(Nat64Local)),
        ("64:ff9b:2::".into(), Some(Reserved)),
        (
            "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            Some(Reserved),
        ),
        ("100::".into(), Some(Discard)),
        ("100::ffff:ffff:ffff:ffff".into(), Some(Discard)),
        ("100:0:0:1::".into(), Some(Reserved)),
        (
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            Some(Reserved),
        ),
        ("2000::".into(), None),
        ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(), None),
        ("2001::".into(), Some(Teredo)),
        (format!("2001:0:{MAX}"), Some(Teredo)),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2".into(), Some(Teredo)),
        ("2001:1::".into(), Some(IetfProtocol)),
        ("2001:1::1".into(), Some(IetfProtocol)),
        (
            "2001:1:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            Some(IetfProtocol),
        ),
        ("2001:2::".into(), Some(Benchmarking)),
        (
            "2001:2:0:ffff:ffff:ffff:ffff:ffff".into(),
            Some(Benchmarking),
        ),
        ("2001:2:1::".into(), Some(IetfProtocol)),
        (
            "2001:f:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            Some(IetfProtocol),
        ),
        ("2001:10::".into(), Some(Orchid)),
        (format!("2001:1f:{MAX}"), Some(Orchid)),
        ("2001:20::".into(), Some(Orchid)),
        (format!("2001:2f:{MAX}"), Some(Orchid)),
        ("2001:30::".into(), Some(IetfProtocol)),
        (format!("2001:1ff:{MAX}"), Some(IetfProtocol)),
        ("2001:200::".into(), None),
        (format!("2001:db7:{MAX}"), None),
        ("2001:db8::".into(), Some(Documentation)),
        (format!("2001:db8:{MAX}"), Some(Documentation)),
        ("2001:db9::".into(), None),
        (format!("2001:{MAX}:ffff"), None),
        (format!("3ffe:{MAX}:ffff"), None),
        ("3fff::".into(), Some(Documentation)),
        (format!("3fff:fff:{MAX}"), Some(Documentation)),
        ("3fff:1000::".into(), None),
        (format!("3fff:{MAX}:ffff"), None),
        ("4000::".into(), Some(Reserved)),
        ("5f00::1".into(), Some(Reserved)),
        ("e000::".into(), Some(Reserved)),
        (format!("fbff:{MAX}:ffff"), Some(Reserved)),
        ("fc00::".into(), Some(UniqueLocal)),
        ("fd00:ec2::253".into(), Some(UniqueLocal)),
        ("fd00:ec2::254".into(), Some(Metadata)),
        ("fd00:ec2::255".into(), Some(UniqueLocal)),
        (format!("fdff:{MAX}:ffff"), Some(UniqueLocal)),
        ("fe00::".into(), Some(Reserved)),
        (format!("fe7f:{MAX}:ffff"), Some(Reserved)),
        ("fe80::".into(), Some(LinkLocal)),
        ("fe80::1".into(), Some(LinkLocal)),
        (format!("febf:{MAX}:ffff"), Some(LinkLocal)),
        ("fec0::".into(), Some(SiteLocal)),
        (format!("feff:{MAX}:ffff"), Some(SiteLocal)),
        ("ff00::".into(), Some(Multicast)),
        ("ff02::1".into(), Some(Multicast)),
        (format!("ffff:{MAX}:ffff"), Some(Multicast)),
        // public addresses a bot really reaches
        ("2606:4700:4700::1111".into(), None),
        ("2400:3200::1".into(), None),
    ];
    for (addr, want) in &cases {
        assert_eq!(range_of(addr), *want, "{addr}");
    }
}

/// What an embedded refusal carries: how, which IPv4 address, and its range.
type EmbeddedVerdict = Result<(), (Embedding, Ipv4Addr, Range)>;

fn embedded(s: &str) -> EmbeddedVerdict {
    classify(ip(s)).map_err(|b| match b {
        Blocked::Embedded { via, v4, range } => (via, v4, range),
        Blocked::In(r) => panic!("{s}: {r:?} without an embedded address"),
    })
}

#[test]
fn ipv4_inside_ipv6_is_classified_as_ipv4() {
    use Embedding::*;
    let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    let cases: &[(&str, EmbeddedVerdict)] = &[
        // IPv4-mapped: the first and last of the /96, and what matters in between
        ("::ffff:0.0.0.0", Err((Mapped, v4("0.0.0.0"), Unspecified))),
        (
            "::ffff:255.255.255.255",
            Err((Mapped, v4("255.255.255.255"), Broadcast)),
        ),
        ("::ffff:127.0.0.1", Err((Mapped, v4("127.0.0.1"), Loopback))),
        ("::ffff:10.1.2.3", Err((Mapped, v4("10.1.2.3"), Private))),
        (
            "::ffff:169.254.169.254",
            Err((Mapped, v4("169.254.169.254"), Metadata)),
        ),
        ("::ffff:8.8.8.8", Ok(())),
        // NAT64, well-known prefix
        ("64:ff9b::", Err((Nat64, v4("0.0.0.0"), Unspecified))),
        (
            "64:ff9b::ffff:ffff",
            Err((Nat64, v4("255.255.255.255"), Broadcast)),
        ),
        (
            "64:ff9b::127.0.0.1",
            Err((Nat64, v4("127.0.0.1"), Loopback)),
        ),
        (
            "64:ff9b::192.168.1.1",
            Err((Nat64, v4("192.168.1.1"), Private)),
        ),
        ("64:ff9b::8.8.8.8", Ok(())),
        // NAT64, local-use prefix in its /96 layout
        ("64:ff9b:1::", Err((Nat64Local, v4("0.0.0.0"), Unspecified))),
        (
            "64:ff9b:1::ffff:ffff",
            Err((Nat64Local, v4("255.255.255.255"), Broadcast)),
        ),
        (
            "64:ff9b:1::10.0.0.1",
            Err((Nat64Local, v4("10.0.0.1"), Private)),
        ),
        ("64:ff9b:1::8.8.8.8", Ok(())),
        // 6to4: the IPv4 in bits 16..48, whatever follows
        ("2002::", Err((SixToFour, v4("0.0.0.0"), Unspecified))),
        ("2002:7f00:1::", Err((SixToFour, v4("127.0.0.1"), Loopback))),
        (
            "2002:a9fe:a9fe:1::1",
            Err((SixToFour, v4("169.254.169.254"), Metadata)),
        ),
        (
            "2002:c0a8:101::",
            Err((SixToFour, v4("192.168.1.1"), Private)),
        ),
        (
            "2002:6440:1::",
            Err((SixToFour, v4("100.64.0.1"), SharedCgnat)),
        ),
        (
            "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            Err((SixToFour, v4("255.255.255.255"), Broadcast)),
        ),
        ("2002:808:808::1", Ok(())),
        ("2002:808:808:ffff:ffff:ffff:ffff:ffff", Ok(())),
    ];
    for (addr, want) in cases {
        assert_eq!(embedded(addr), *want, "{addr}");
    }
}

#[test]
fn refusals_name_their_range_and_the_embedded_address() {
    assert_eq!(classify(ip("10.0.0.1")).unwrap_err().to_string(), "private");
    let b = classify(ip("2002:7f00:1::")).unwrap_err();
    assert_eq!(b.to_string(), "loopback (127.0.0.1 in 6to4)");
    assert_eq!((b.range(), b.via()), (Loopback, Some(Embedding::SixToFour)));
    assert_eq!(
        classify(ip("fd00:ec2::254")).unwrap_err().to_string(),
        "metadata"
    );
}

#[test]
fn every_table_entry_is_a_network_address() {
    for (net, len, r) in V4 {
        assert_eq!(net & !mask32(*len), 0, "{} {r:?}", Ipv4Addr::from(*net));
    }
    let v6 = V6
        .iter()
        .map(|e| (e.0, e.1))
        .chain(EMBED_LOW32.iter().map(|e| (e.0, e.1)));
    for (net, len) in v6.chain([SIX_TO_FOUR, GLOBAL_UNICAST]) {
        assert!(within6(net, net, len), "{}/{len}", Ipv6Addr::from(net));
        let next = net.checked_add(1).unwrap_or(0);
        assert_eq!(
            within6(next, net, len),
            len < 128,
            "{}/{len}",
            Ipv6Addr::from(net)
        );
    }
}

/// The stable std predicates as a slow twin: whatever they call special, we refuse.
#[test]
fn everything_std_calls_special_is_refused() {
    for hi in 0..=u16::MAX {
        for lo in [0u16, 1, 0x7fff, 0xfffe, 0xffff] {
            let a = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            let special = a.is_unspecified()
                || a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation();
            if special {
                assert!(classify(IpAddr::V4(a)).is_err(), "{a}");
            }
            // The same address mapped into IPv6 gets the same answer.
            let mapped = classify(IpAddr::V6(a.to_ipv6_mapped())).map_err(Blocked::range);
            assert_eq!(
                mapped,
                classify(IpAddr::V4(a)).map_err(Blocked::range),
                "{a}"
            );
        }
    }
    for first in 0..=u16::MAX {
        for rest in [0u128, 1, 0x254, u128::from(u32::MAX), u128::MAX >> 16] {
            let a = Ipv6Addr::from((u128::from(first) << 112) | rest);
            let special = a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_unique_local()
                || a.is_unicast_link_local();
            if special {
                assert!(classify(IpAddr::V6(a)).is_err(), "{a}");
            }
            if !(0x2000..0x4000).contains(&first) {
                assert!(classify(IpAddr::V6(a)).is_err(), "{a} is outside 2000::/3");
            }
        }
    }
}

#[test]
fn exceptions_admit_what_they_contain_and_nothing_else() {
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    let none = AddrPolicy::default();
    assert_eq!(none.check(ip("127.0.0.1")), Err(Blocked::In(Loopback)));
    assert_eq!(none.check(ip("8.8.8.8")), Ok(()));

    let p = AddrPolicy::new(&[net("127.0.0.0/8"), net("fd00:ec2::254/128")]);
    assert_eq!(p.check(ip("127.0.0.1")), Ok(()));
    assert_eq!(p.check(ip("127.255.255.255")), Ok(()));
    // an IPv4-mapped address is the same destination as its IPv4
    assert_eq!(p.check(ip("::ffff:127.0.0.1")), Ok(()));
    assert_eq!(p.check(ip("fd00:ec2::254")), Ok(()));
    // neighbours and other forms of loopback stay refused
    assert_eq!(p.check(ip("::1")), Err(Blocked::In(Loopback)));
    assert_eq!(p.check(ip("128.0.0.1")), Ok(()));
    assert_eq!(p.check(ip("126.0.0.1")), Ok(()));
    assert_eq!(p.check(ip("169.254.169.254")), Err(Blocked::In(Metadata)));
    assert_eq!(p.check(ip("fd00:ec2::253")), Err(Blocked::In(UniqueLocal)));
    assert!(p.check(ip("64:ff9b::127.0.0.1")).is_err());
    assert!(p.check(ip("2002:7f00:1::")).is_err());

    // a host-bits CIDR is taken as its network
    let p = AddrPolicy::new(&[net("10.20.30.40/16")]);
    assert_eq!(p.check(ip("10.20.0.1")), Ok(()));
    assert!(p.check(ip("10.21.0.1")).is_err());
}
