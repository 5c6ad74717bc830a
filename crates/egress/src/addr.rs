//! Which destination addresses the forward proxy refuses, decided on the address
//! itself (after DNS), never on the name.
//!
//! The ranges come from the IANA IPv4 and IPv6 Special-Purpose Address Registries and
//! the RFCs they cite. A few choices go further than "not globally reachable":
//!
//! - IPv6 outside `2000::/3` (global unicast) that is not named below is refused as
//!   [`Range::Reserved`]: IANA keeps it reserved, so no real destination lives there.
//! - The whole of `2001::/23` (IETF protocol assignments) and `192.0.0.0/24` are
//!   refused, including the few anycast services IANA marks reachable (PCP, TURN,
//!   AMT, AS112): a bot's egress never needs them.
//! - **Teredo** (`2001::/32`) is refused as a whole rather than by its embedded
//!   server and client IPv4 addresses: both can be chosen by whoever writes the DNS
//!   record, the relay that would carry the packets is not ours to judge, and the
//!   protocol is no longer in real use.
//! - **IPv4-compatible** addresses (`::/96` other than `::` and `::1`) are refused as a
//!   whole: deprecated since RFC 4291, used by nobody, and a host with an automatic
//!   tunnel would deliver them to the embedded IPv4 address.
//! - **Embedded IPv4** is classified for IPv4-mapped (`::ffff:0:0/96`), NAT64
//!   (`64:ff9b::/96`), the local-use NAT64 prefix in its /96 layout
//!   (`64:ff9b:1::/96`, RFC 8215; the rest of `64:ff9b:1::/48` puts the IPv4 where
//!   only the local operator knows, so it is refused as a whole) and 6to4
//!   (`2002::/16`, the IPv4 in bits 16..48). A public embedded IPv4 passes; a blocked
//!   one refuses the IPv6 address with the IPv4 range as the reason.
//!
//! Exceptions come from `egress.allow_cidrs` ([`AddrPolicy`]): an address inside one of
//! them passes whatever its range. For an IPv4-mapped address the embedded IPv4 is
//! matched too (it is the same destination); other embeddings only by the IPv6 address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// A range of addresses the forward proxy does not connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    /// `0.0.0.0`, `::` (connecting to it reaches the local host).
    Unspecified,
    /// `0.0.0.0/8` ("this network", RFC 791).
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` (RFC 1918).
    Private,
    /// `100.64.0.0/10` (carrier-grade NAT, RFC 6598).
    SharedCgnat,
    /// `169.254.0.0/16` (RFC 3927), `fe80::/10`.
    LinkLocal,
    /// Cloud instance metadata: `169.254.169.254`, `fd00:ec2::254`, and Alibaba
    /// Cloud's `100.100.100.200`; named apart from the ranges that hold them.
    Metadata,
    /// `192.0.0.0/24` (RFC 6890), `2001::/23` (RFC 2928) outside the parts named here.
    IetfProtocol,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24` (RFC 5737),
    /// `2001:db8::/32` (RFC 3849), `3fff::/20` (RFC 9637).
    Documentation,
    /// `198.18.0.0/15` (RFC 2544), `2001:2::/48` (RFC 5180).
    Benchmarking,
    /// `192.88.99.0/24`, the deprecated 6to4 relay anycast (RFC 7526).
    Relay6to4,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4` (RFC 1112); IPv6 outside `2000::/3` not named otherwise.
    Reserved,
    /// `fc00::/7` (RFC 4193).
    UniqueLocal,
    /// `fec0::/10` (deprecated by RFC 3879).
    SiteLocal,
    /// `100::/64` (discard-only, RFC 6666).
    Discard,
    /// `::/96` other than `::` and `::1` (deprecated, RFC 4291).
    Ipv4Compatible,
    /// `2001::/32` (RFC 4380).
    Teredo,
    /// `2001:10::/28` (RFC 4843), `2001:20::/28` (ORCHIDv2, RFC 7343): identifiers,
    /// not routable addresses.
    Orchid,
    /// `64:ff9b:1::/48` outside its /96 layout (RFC 8215).
    Nat64Local,
}

impl Range {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::ThisNetwork => "this_network",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedCgnat => "shared_cgnat",
            Self::LinkLocal => "link_local",
            Self::Metadata => "metadata",
            Self::IetfProtocol => "ietf_protocol",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Relay6to4 => "6to4_relay",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Reserved => "reserved",
            Self::UniqueLocal => "unique_local",
            Self::SiteLocal => "site_local",
            Self::Discard => "discard",
            Self::Ipv4Compatible => "ipv4_compatible",
            Self::Teredo => "teredo",
            Self::Orchid => "orchid",
            Self::Nat64Local => "nat64_local",
        }
    }
}

/// How an IPv6 address carries an IPv4 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Embedding {
    /// `::ffff:0:0/96`.
    Mapped,
    /// `64:ff9b::/96` (RFC 6052).
    Nat64,
    /// `64:ff9b:1::/96` (RFC 8215).
    Nat64Local,
    /// `2002::/16` (RFC 3056), the IPv4 in bits 16..48.
    SixToFour,
}

impl Embedding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mapped => "ipv4_mapped",
            Self::Nat64 => "nat64",
            Self::Nat64Local => "nat64_local",
            Self::SixToFour => "6to4",
        }
    }
}

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blocked {
    /// The address is in the range.
    In(Range),
    /// An IPv6 address carrying an IPv4 address that is in the range.
    Embedded {
        via: Embedding,
        v4: Ipv4Addr,
        range: Range,
    },
}

impl Blocked {
    /// The range that refused the address (the embedded one's, for embedded IPv4).
    pub fn range(self) -> Range {
        match self {
            Self::In(r) | Self::Embedded { range: r, .. } => r,
        }
    }

    /// How the refused IPv4 address was carried, if it was.
    pub fn via(self) -> Option<Embedding> {
        match self {
            Self::In(_) => None,
            Self::Embedded { via, .. } => Some(via),
        }
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::In(r) => f.write_str(r.as_str()),
            Self::Embedded { via, v4, range } => {
                write!(f, "{} ({v4} in {})", range.as_str(), via.as_str())
            }
        }
    }
}

impl std::error::Error for Blocked {}

/// Refuses addresses in a blocked range, whatever name they came from.
pub fn classify(ip: IpAddr) -> Result<(), Blocked> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4).map_or(Ok(()), |r| Err(Blocked::In(r))),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The IPv4 table: first match wins, so single addresses come before their ranges.
const V4: &[(u32, u8, Range)] = &[
    (v4(0, 0, 0, 0), 32, Range::Unspecified),
    (v4(0, 0, 0, 0), 8, Range::ThisNetwork),
    (v4(10, 0, 0, 0), 8, Range::Private),
    (v4(100, 100, 100, 200), 32, Range::Metadata),
    (v4(100, 64, 0, 0), 10, Range::SharedCgnat),
    (v4(127, 0, 0, 0), 8, Range::Loopback),
    (v4(169, 254, 169, 254), 32, Range::Metadata),
    (v4(169, 254, 0, 0), 16, Range::LinkLocal),
    (v4(172, 16, 0, 0), 12, Range::Private),
    (v4(192, 0, 0, 0), 24, Range::IetfProtocol),
    (v4(192, 0, 2, 0), 24, Range::Documentation),
    (v4(192, 88, 99, 0), 24, Range::Relay6to4),
    (v4(192, 168, 0, 0), 16, Range::Private),
    (v4(198, 18, 0, 0), 15, Range::Benchmarking),
    (v4(198, 51, 100, 0), 24, Range::Documentation),
    (v4(203, 0, 113, 0), 24, Range::Documentation),
    (v4(224, 0, 0, 0), 4, Range::Multicast),
    (v4(255, 255, 255, 255), 32, Range::Broadcast),
    (v4(240, 0, 0, 0), 4, Range::Reserved),
];

/// The IPv6 table, consulted after the embedded forms; first match wins.
const V6: &[(u128, u8, Range)] = &[
    (0, 128, Range::Unspecified),
    (1, 128, Range::Loopback),
    (0, 96, Range::Ipv4Compatible),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48, Range::Nat64Local),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, Range::Discard),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32, Range::Teredo),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0]), 48, Range::Benchmarking),
    (v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0]), 28, Range::Orchid),
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0]), 28, Range::Orchid),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23, Range::IetfProtocol),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]),
        32,
        Range::Documentation,
    ),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20, Range::Documentation),
    (
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]),
        128,
        Range::Metadata,
    ),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, Range::UniqueLocal),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, Range::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10, Range::SiteLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, Range::Multicast),
];

/// `2000::/3`: the only IPv6 space IANA hands out for global unicast.
const GLOBAL_UNICAST: (u128, u8) = (v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3);

/// The prefixes that carry an IPv4 address in their last 32 bits.
const EMBED_LOW32: &[(u128, u8, Embedding)] = &[
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), 96, Embedding::Mapped),
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96, Embedding::Nat64),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]),
        96,
        Embedding::Nat64Local,
    ),
];

/// `2002::/16`, the IPv4 address right after the prefix.
const SIX_TO_FOUR: (u128, u8) = (v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16);

fn v4_range(ip: Ipv4Addr) -> Option<Range> {
    let a = u32::from(ip);
    V4.iter()
        .find(|(net, len, _)| a & mask32(*len) == *net)
        .map(|e| e.2)
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), Blocked> {
    let a = u128::from(ip);
    let embedded = if let Some((_, _, via)) = EMBED_LOW32.iter().find(|e| within6(a, e.0, e.1)) {
        Some((*via, Ipv4Addr::from(a as u32)))
    } else if within6(a, SIX_TO_FOUR.0, SIX_TO_FOUR.1) {
        Some((Embedding::SixToFour, Ipv4Addr::from((a >> 80) as u32)))
    } else {
        None
    };
    if let Some((via, v4)) = embedded {
        return match v4_range(v4) {
            Some(range) => Err(Blocked::Embedded { via, v4, range }),
            None => Ok(()),
        };
    }
    if let Some((_, _, r)) = V6.iter().find(|e| within6(a, e.0, e.1)) {
        return Err(Blocked::In(*r));
    }
    if !within6(a, GLOBAL_UNICAST.0, GLOBAL_UNICAST.1) {
        return Err(Blocked::In(Range::Reserved));
    }
    Ok(())
}

/// `egress.allow_cidrs`: the exceptions to [`classify`].
#[derive(Debug, Clone, Default)]
pub struct AddrPolicy {
    exceptions: Vec<IpNet>,
}

impl AddrPolicy {
    pub fn new(allow_cidrs: &[IpNet]) -> Self {
        AddrPolicy {
            exceptions: allow_cidrs.iter().map(IpNet::trunc).collect(),
        }
    }

    /// [`classify`], unless the address (or, IPv4-mapped, its IPv4) is an exception.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let blocked = match classify(ip) {
            Ok(()) => return Ok(()),
            Err(b) => b,
        };
        let mapped = match blocked {
            Blocked::Embedded {
                via: Embedding::Mapped,
                v4,
                ..
            } => Some(v4),
            _ => None,
        };
        let excepted = |ip: IpAddr| self.exceptions.iter().any(|n| n.contains(&ip));
        if excepted(ip) || mapped.is_some_and(|v4| excepted(IpAddr::V4(v4))) {
            return Ok(());
        }
        Err(blocked)
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

const fn v6(s: [u16; 8]) -> u128 {
    let mut out = 0u128;
    let mut i = 0;
    while i < 8 {
        out = (out << 16) | s[i] as u128;
        i += 1;
    }
    out
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn within6(a: u128, net: u128, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    a & mask == net
}

#[cfg(test)]
mod tests;
