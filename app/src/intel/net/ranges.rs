//! Which addresses an outbound request may dial.
//!
//! The tables are an allow-by-exception list of everything that is not the
//! public Internet, plus every IPv6 form that embeds an IPv4 address: those
//! would let a public-looking IPv6 literal reach 127.0.0.1 or 10.0.0.0/8
//! through a translator, so they are refused whatever they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 networks that are never dialed, checked in order (the broadcast
/// address before 240/4 so its reason is the specific one).
const V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" 0.0.0.0/8"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private network 10.0.0.0/8"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT 100.64.0.0/10"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback 127.0.0.0/8"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local 169.254.0.0/16"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private network 172.16.0.0/12"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments 192.0.0.0/24"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation 192.0.2.0/24"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast 192.88.99.0/24"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private network 192.168.0.0/16"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking 198.18.0.0/15"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation 198.51.100.0/24"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation 203.0.113.0/24"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast 224.0.0.0/4"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast 255.255.255.255"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved 240.0.0.0/4"),
];

/// IPv6 networks that are never dialed, checked in order: `::1` and `::`
/// before `::/96` so they keep their own reasons.
const V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::LOCALHOST, 128, "loopback ::1"),
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified ::"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, "IPv4-mapped ::ffff:0:0/96"),
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, "IPv4-translated ::ffff:0:0:0/96"),
    (Ipv6Addr::UNSPECIFIED, 96, "IPv4-compatible ::/96"),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "NAT64 64:ff9b::/96"),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use NAT64 64:ff9b:1::/48"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only 100::/64"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo 2001::/32"),
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, "benchmarking 2001:2::/48"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation 2001:db8::/32"),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4 2002::/16"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation 3fff::/20"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local fc00::/7"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local fe80::/10"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local fec0::/10"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast ff00::/8"),
];

/// Only 2000::/3 is allocated as global unicast; anything else that got
/// past the table is reserved space nobody should be serving from.
const V6_GLOBAL: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// `Some(reason)` when `ip` must not be dialed: loopback, private, shared,
/// link-local, multicast, reserved, documentation and benchmarking ranges,
/// and the IPv6 forms that embed an IPv4 address (mapped, compatible,
/// NAT64, 6to4, Teredo) whatever address they embed.
///
/// `allow_loopback_for_tests` lets exactly 127.0.0.0/8 and `::1` through so
/// tests can reach a fixture server; the mapped form `::ffff:127.0.0.1`
/// stays refused, as does everything else.
pub fn refusal(ip: IpAddr, allow_loopback_for_tests: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if allow_loopback_for_tests && v4.is_loopback() {
                return None;
            }
            V4.iter().find(|(net, len, _)| in_v4(v4, *net, *len)).map(|(_, _, why)| *why)
        }
        IpAddr::V6(v6) => {
            if allow_loopback_for_tests && v6 == Ipv6Addr::LOCALHOST {
                return None;
            }
            if let Some((_, _, why)) = V6.iter().find(|(net, len, _)| in_v6(v6, *net, *len)) {
                return Some(why);
            }
            if !in_v6(v6, V6_GLOBAL.0, V6_GLOBAL.1) {
                return Some("reserved IPv6 outside global unicast 2000::/3");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At least one address inside every refused range, with the rule that
    /// must name it.
    const REFUSED: &[(&str, &str)] = &[
        ("0.0.0.0", "0.0.0.0/8"),
        ("0.1.2.3", "0.0.0.0/8"),
        ("10.0.0.1", "10.0.0.0/8"),
        ("10.255.255.255", "10.0.0.0/8"),
        ("100.64.0.1", "100.64.0.0/10"),
        ("100.127.255.254", "100.64.0.0/10"),
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.255.0.9", "127.0.0.0/8"),
        ("169.254.169.254", "169.254.0.0/16"),
        ("172.16.0.1", "172.16.0.0/12"),
        ("172.31.255.254", "172.16.0.0/12"),
        ("192.0.0.8", "192.0.0.0/24"),
        ("192.0.2.10", "192.0.2.0/24"),
        ("192.88.99.1", "192.88.99.0/24"),
        ("192.168.1.1", "192.168.0.0/16"),
        ("198.18.0.1", "198.18.0.0/15"),
        ("198.19.255.1", "198.18.0.0/15"),
        ("198.51.100.7", "198.51.100.0/24"),
        ("203.0.113.9", "203.0.113.0/24"),
        ("224.0.0.251", "224.0.0.0/4"),
        ("239.255.255.250", "224.0.0.0/4"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "240.0.0.0/4"),
        ("::1", "loopback ::1"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:7f00:1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("::ffff:0:10.0.0.1", "IPv4-translated"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("64:ff9b::7f00:1", "NAT64"),
        ("64:ff9b::808:808", "NAT64"),
        ("64:ff9b:1::a00:1", "local-use NAT64"),
        ("100::1", "discard-only"),
        ("2001::1", "Teredo"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("2001:2::1", "benchmarking"),
        ("2001:db8::1", "documentation 2001:db8::/32"),
        ("2002:7f00:1::1", "6to4"),
        ("2002:c0a8:101::1", "6to4"),
        ("3fff::1", "documentation 3fff::/20"),
        ("fc00::1", "unique local"),
        ("fd12:3456:789a::1", "unique local"),
        ("fe80::1", "link-local fe80::/10"),
        ("febf:ffff::1", "link-local fe80::/10"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast ff00::/8"),
        ("ff05::1:3", "multicast ff00::/8"),
        ("4000::1", "outside global unicast"),
        ("1::1", "outside global unicast"),
    ];

    const ALLOWED: &[&str] = &[
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "9.255.255.255",
        "11.0.0.1",
        "100.63.255.255",
        "100.128.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.0.1.1",
        "192.167.255.255",
        "192.169.0.1",
        "198.17.255.255",
        "198.20.0.1",
        "223.255.255.255",
        "2606:4700::1111",
        "2a00:1450:4001:81c::200e",
        "2001:4860:4860::8888",
        "2003::1",
        "2620:fe::fe",
    ];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn every_refused_range_is_refused_with_its_reason() {
        for (addr, rule) in REFUSED {
            let why = refusal(ip(addr), false).unwrap_or_else(|| panic!("{addr} was allowed"));
            assert!(why.contains(rule), "{addr}: reason {why:?} does not name {rule:?}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for addr in ALLOWED {
            assert_eq!(refusal(ip(addr), false), None, "{addr}");
            assert_eq!(refusal(ip(addr), true), None, "{addr} with the test switch");
        }
    }

    #[test]
    fn test_switch_opens_only_plain_loopback() {
        assert_eq!(refusal(ip("127.0.0.1"), true), None);
        assert_eq!(refusal(ip("127.1.2.3"), true), None);
        assert_eq!(refusal(ip("::1"), true), None);
        for (addr, _) in REFUSED {
            let a = ip(addr);
            let plain_loopback = matches!(a, IpAddr::V4(v4) if v4.is_loopback()) || a == ip("::1");
            if !plain_loopback {
                assert!(refusal(a, true).is_some(), "{addr} allowed by the test switch");
            }
        }
        assert!(refusal(ip("::ffff:127.0.0.1"), true).is_some());
        assert!(refusal(ip("::127.0.0.1"), true).is_some());
        assert!(refusal(ip("10.0.0.1"), true).is_some());
    }
}
