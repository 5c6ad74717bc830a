//! Which TCP sockets listen where, and which processes hold them, read from Linux's
//! `/proc`: the LISTEN entries of `/proc/self/net/tcp` and `tcp6` (the tables
//! `/proc/net/tcp*` link to, still there under systemd's `ProcSubset=pid`), and the
//! sockets a process holds, from `/proc/<pid>/fd`. Used by the proxy's periodic exposure
//! check and by `clawveil doctor`, to find a bot listening beyond loopback.
//!
//! Linux only: elsewhere [`read_listening`] returns [`Error::Unsupported`] and the
//! `/proc/<pid>/fd` readers find nothing (`None`).
//!
//! A table line, after its header:
//!
//! ```text
//!    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 123456 1 …
//!  slot  local addr   remote addr  st tx:rx queue       timer       retrnsmt  uid timeout inode
//! ```
//!
//! The kernel prints an address as 32-bit words, each `%08X` of the word as the CPU
//! holds it: the word's bytes in memory are the address bytes in network order, so
//! `0100007F` is 127.0.0.1 on a little-endian machine. The port is `%04X` of the port
//! number. State `0A` is LISTEN.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// `st` of a socket in the LISTEN state (`TCP_LISTEN`).
const LISTEN: &str = "0A";

/// A listening socket: where it listens, and its inode (what `/proc/<pid>/fd` links to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub addr: SocketAddr,
    pub inode: u64,
}

/// Why the listening sockets could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A table that could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    /// Not Linux: there is no `/proc/net/tcp` to read.
    #[error("listening sockets are read from /proc/net/tcp, which only Linux has: unsupported on this system")]
    Unsupported,
}

/// Whether only this host can connect to an address: 127.0.0.0/8, `::1`, and the
/// IPv4-mapped `::ffff:127.x.y.z` (what a dual-stack socket bound to 127.0.0.1 shows).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The LISTEN entries of one table (the header and sockets in other states skipped, as
/// is a line that does not parse).
pub fn listening(table: &str) -> Vec<Listening> {
    table.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Listening> {
    let mut fields = line.split_whitespace();
    fields.next()?.strip_suffix(':')?.parse::<u32>().ok()?;
    let local = fields.next()?;
    let _remote = fields.next()?;
    if fields.next()? != LISTEN {
        return None;
    }
    // After the state: tx:rx queues, timer, retransmits, uid, timeout, inode.
    let inode = fields.nth(5)?.parse().ok()?;
    Some(Listening {
        addr: parse_addr(local)?,
        inode,
    })
}

/// `0100007F:1F90` → 127.0.0.1:8080 (on a little-endian machine).
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    if port.len() != 4 || !is_hex(port) {
        return None;
    }
    Some(SocketAddr::new(
        parse_ip(ip)?,
        u16::from_str_radix(port, 16).ok()?,
    ))
}

fn parse_ip(hex: &str) -> Option<IpAddr> {
    if !is_hex(hex) {
        return None;
    }
    match hex.len() {
        8 => Some(Ipv4Addr::from(word(hex)?).into()),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
            }
            Some(Ipv6Addr::from(bytes).into())
        }
        _ => None,
    }
}

/// One word as printed (`%08X` of the CPU's value) → its bytes in memory.
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

/// ASCII hex digits only (`from_str_radix` would also take a leading `+`).
fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every listening TCP socket of this network namespace, IPv4 and IPv6, from
/// `/proc/self/net`; [`Error::Unsupported`] when not on Linux.
pub fn read_listening() -> Result<Vec<Listening>, Error> {
    if cfg!(target_os = "linux") {
        read_listening_from(Path::new("/proc/self/net"))
    } else {
        Err(Error::Unsupported)
    }
}

/// The listening sockets in `dir/tcp` and `dir/tcp6` (`/proc/net`, or a copy of its
/// tables; this reads files on any system). A missing `tcp6` means IPv6 is off; any
/// other failure is an error.
pub fn read_listening_from(dir: &Path) -> Result<Vec<Listening>, Error> {
    let mut all = Vec::new();
    for (name, required) in [("tcp", true), ("tcp6", false)] {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => all.extend(listening(&text)),
            Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Unreadable { path, source }),
        }
    }
    Ok(all)
}

/// The socket inodes a process holds (`/proc/<pid>/fd/* → socket:[inode]`); `None` when
/// its descriptors cannot be read (another user's process, gone, or not Linux).
pub fn socket_inodes(pid_dir: &Path) -> Option<HashSet<u64>> {
    let entries = std::fs::read_dir(pid_dir.join("fd")).ok()?;
    let inodes = entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| socket_inode(&target))
        .collect();
    Some(inodes)
}

fn socket_inode(link: &Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The socket inodes of every other process (not this one) that holds one of `inodes`,
/// e.g. of the processes listening on a port; `None` when no such process could be read.
pub fn sockets_of_holders(inodes: &HashSet<u64>) -> Option<HashSet<u64>> {
    let own = std::process::id().to_string();
    let mut found: Option<HashSet<u64>> = None;
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if pid == own || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Some(held) = socket_inodes(&entry.path()) else {
            continue;
        };
        if !held.is_disjoint(inodes) {
            found.get_or_insert_with(HashSet::new).extend(held);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Lines as this kernel prints them (`cat /proc/net/tcp`, `/proc/net/tcp6` on x86-64).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:46A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1518850 1 000000003486be93 100 0 0 10 0
   1: 020200C0:9222 507100CB:01BB 01 00000000:00000000 00:00000000 00000000     0        0 1518101 3 0000000081d7452b 20 4 1 58 146
   2: 0100007F:46A1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1518851 1 00000000b2f6acd7 100 0 0 10 0
   3: 010200C0:46A2 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1518852 1 00000000d42ce018 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:46A3 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1518853 1 0000000008565c45 100 0 0 10 0
   1: 0000000000000000FFFF000000000000:46A6 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1518856 1 00000000d9665c81 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:46A5 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1518855 1 000000005781107a 100 0 0 10 0
   3: 00000000000000000000000001000000:46A4 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1518854 1 00000000df88f1d7 100 0 0 10 0
   4: B80D01200000000000000000EFBEADDE:1F90 0000000000000000FFFF00000100007F:D431 06 00000000:00000000 03:00000a7c 00000000     0        0 0 3 0000000000000000
";

    fn at(addr: &str, inode: u64) -> Listening {
        Listening {
            addr: addr.parse().unwrap(),
            inode,
        }
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn listen_entries_of_real_tables() {
        assert_eq!(
            listening(TCP),
            [
                at("0.0.0.0:18080", 1518850),
                at("127.0.0.1:18081", 1518851),
                at("192.0.2.1:18082", 1518852),
            ]
        );
        assert_eq!(
            listening(TCP6),
            [
                at("[::]:18083", 1518853),
                at("[::ffff:0.0.0.0]:18086", 1518856),
                at("[::ffff:127.0.0.1]:18085", 1518855),
                at("[::1]:18084", 1518854),
            ]
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for line in [
            "",
            "   0:",
            "   0: 0100007F:1F90 00000000:0000 0A",
            "   x: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 77",
            "   0: 0100007F1F90 00000000:0000 0A 0:0 0:0 0 0 0 77",
            "   0: 0100007:1F90 00000000:0000 0A 0:0 0:0 0 0 0 77",
            "   0: +100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 77",
            "   0: 0100007F:+F90 00000000:0000 0A 0:0 0:0 0 0 0 77",
            "   0: 0100007F:1F900 00000000:0000 0A 0:0 0:0 0 0 0 77",
            "   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 inode",
            "   0: 0000000000000000FFFF00000100007\u{e9}:1F90 0:0 0A 0:0 0:0 0 0 0 77",
            "   0: 0100007F:1F90 00000000:0000 01 0:0 0:0 0 0 0 77",
        ] {
            assert_eq!(listening(line), [], "{line:?}");
        }
        assert_eq!(
            listening("   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 0 0 77").len(),
            1
        );
    }

    #[test]
    fn loopback_addresses() {
        for ip in [
            "127.0.0.1",
            "127.5.6.7",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.9.0.1",
        ] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "192.0.2.1",
            "128.0.0.1",
            "::ffff:192.0.2.1",
            // IPv4-compatible (deprecated), not IPv4-mapped: not 127.0.0.1
            "::127.0.0.1",
            "fe80::1",
        ] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(Path::new("socket:[1518850]")), Some(1518850));
        for other in ["pipe:[1518850]", "/dev/null", "socket:[]", "socket:[12"] {
            assert_eq!(socket_inode(Path::new(other)), None, "{other}");
        }
    }

    #[test]
    fn tables_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_listening_from(dir.path()).unwrap_err();
        assert!(matches!(&err, Error::Unreadable { path, .. } if path.ends_with("tcp")));
        // tcp6 missing: IPv6 is off
        std::fs::write(dir.path().join("tcp"), TCP).unwrap();
        assert_eq!(read_listening_from(dir.path()).unwrap().len(), 3);
        std::fs::write(dir.path().join("tcp6"), TCP6).unwrap();
        assert_eq!(read_listening_from(dir.path()).unwrap().len(), 7);
    }

    #[test]
    fn reads_this_hosts_real_sockets() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        match read_listening() {
            Ok(all) => assert!(all.iter().any(|s| s.addr == addr), "{addr} in {all:?}"),
            Err(Error::Unsupported) if !cfg!(target_os = "linux") => {}
            Err(e) => panic!("{e}"),
        }
    }

    /// The dumb twin: the kernel's printing, written the obvious way (`%08X` of each word
    /// as the CPU holds it, `%04X` of the port), and the parser undoing it.
    fn print(addr: SocketAddr) -> String {
        let bytes = match addr.ip() {
            IpAddr::V4(ip) => ip.octets().to_vec(),
            IpAddr::V6(ip) => ip.octets().to_vec(),
        };
        let hex: String = bytes
            .chunks_exact(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes(w.try_into().unwrap())))
            .collect();
        format!("{hex}:{:04X}", addr.port())
    }

    proptest! {
        #[test]
        fn parses_what_the_kernel_prints(
            v4 in any::<[u8; 4]>(),
            v6 in any::<[u8; 16]>(),
            port in any::<u16>(),
            inode in any::<u64>(),
        ) {
            for ip in [IpAddr::from(v4), IpAddr::from(v6)] {
                let addr = SocketAddr::new(ip, port);
                let line = format!(
                    "  12: {} {} 0A 00000000:00000000 00:00000000 00000000  1000  0 {inode} 1 0 100 0 0 10 0",
                    print(addr),
                    print(SocketAddr::new(ip, 0)),
                );
                prop_assert_eq!(listening(&line), [Listening { addr, inode }]);
            }
        }
    }
}
