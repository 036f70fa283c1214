//! Which IP addresses a plugin may never reach through a manifest host.
//!
//! A manifest host is a public API. If it (or its DNS) points at a loopback, private or
//! metadata address, fetching it would let a plugin probe the operator's own network or
//! steal the machine's cloud credentials, so such addresses are refused whatever the
//! name. Operator endpoints skip this check: the operator chose them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// Why `ip` may not be reached through a manifest host, or `None` if it may.
pub(crate) fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// A network for the tables below; they are constants, so a bad prefix fails the build.
const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// Cloud metadata services. Checked before the ranges that contain them, so the message
/// says what matters. 168.63.129.16 is public but answers Azure's platform (WireServer)
/// requests.
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// The special-purpose IPv4 ranges (RFC 6890 and its updates) a public API never is.
const RANGES_V4: [(Ipv4Net, &str); 15] = [
    (v4(0, 0, 0, 0, 8), "an unspecified (this-network) address"),
    (v4(10, 0, 0, 0, 8), "a private address"),
    (v4(100, 64, 0, 0, 10), "a shared (CGNAT) address"),
    (v4(127, 0, 0, 0, 8), "a loopback address"),
    (v4(169, 254, 0, 0, 16), "a link-local address"),
    (v4(172, 16, 0, 0, 12), "a private address"),
    (v4(192, 0, 0, 0, 24), "an IETF protocol address"),
    (v4(192, 0, 2, 0, 24), "a documentation address"),
    (v4(192, 168, 0, 0, 16), "a private address"),
    (v4(198, 18, 0, 0, 15), "a benchmarking address"),
    (v4(198, 51, 100, 0, 24), "a documentation address"),
    (v4(203, 0, 113, 0, 24), "a documentation address"),
    (v4(224, 0, 0, 0, 4), "a multicast address"),
    (v4(255, 255, 255, 255, 32), "the broadcast address"),
    (v4(240, 0, 0, 0, 4), "a reserved address"),
];

/// The same for IPv6, less the forms that carry an IPv4 address (see [`embedded_v4`]).
const RANGES_V6: [(Ipv6Net, &str); 7] = [
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "a unique-local (private) address",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "a link-local address",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "a site-local address",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "a multicast address"),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "a documentation address",
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "a documentation address",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "a discard-only address",
    ),
];

/// IPv4-compatible addresses (`::a.b.c.d`, deprecated but still routed by some stacks).
const V4_COMPATIBLE: Ipv6Net = v6([0; 8], 96);
/// NAT64's well-known prefix (`64:ff9b::a.b.c.d`, RFC 6052).
const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
/// 6to4 (`2002:AABB:CCDD::`, RFC 3056): the IPv4 address is in bits 16 to 47.
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if METADATA_V4.contains(&ip) {
        return Some("a cloud metadata address");
    }
    RANGES_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip == METADATA_V6 {
        return Some("a cloud metadata address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // Forms that carry an IPv4 address reach that address (directly, or through a
    // translator), so they are judged by it.
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    RANGES_V6
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(ip);
    if V4_COMPATIBLE.contains(&ip) || NAT64.contains(&ip) {
        return Some(Ipv4Addr::from(bits as u32));
    }
    if SIX_TO_FOUR.contains(&ip) {
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(s: &str) -> Option<&'static str> {
        forbidden(s.parse().unwrap())
    }

    #[test]
    fn refuses_every_special_range() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(why(ip).is_some(), "{ip} should be refused");
        }
    }

    #[test]
    fn names_metadata_addresses() {
        for ip in [
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "168.63.129.16",
        ] {
            assert_eq!(why(ip), Some("a cloud metadata address"), "{ip}");
        }
    }

    #[test]
    fn judges_ipv6_forms_of_ipv4_by_the_ipv4_address() {
        assert_eq!(
            why("::ffff:169.254.169.254"),
            Some("a cloud metadata address")
        );
        assert_eq!(why("::ffff:127.0.0.1"), Some("a loopback address"));
        assert_eq!(why("::10.0.0.1"), Some("a private address"));
        assert_eq!(why("64:ff9b::a9fe:a9fe"), Some("a cloud metadata address"));
        assert_eq!(why("2002:c0a8:0101::1"), Some("a private address"));
        assert_eq!(why("::ffff:8.8.8.8"), None);
    }

    #[test]
    fn allows_public_addresses() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "51.15.0.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }
}
