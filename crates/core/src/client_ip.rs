//! Who is on the other end of a request, behind reverse proxies (SPEC §11 Deployment).
//!
//! The TCP peer is the client unless it is one of `trusted_proxies`; then the client is
//! the right-most address of the forwarding header that is *not* a trusted proxy. Every
//! address to the left of it was written by a party we do not trust and is ignored, so a
//! client cannot choose its own address by sending a forged `X-Forwarded-For`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address (`10.1.2.3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(ip).into(), 32, self.prefix) == u32::from(net) as u128
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), 128, self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let keep = u128::MAX << (width - prefix);
        bits & keep & (u128::MAX >> (128 - width as u32))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Strict: the address part must be the network address (`10.0.0.1/8` is refused,
    /// naming `10.0.0.0/8`), so a typo cannot silently widen or move the block.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let addr = addr.to_canonical();
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= width && !p.starts_with('+'))
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {width}"))?,
        };
        let net = match addr {
            IpAddr::V4(a) => IpAddr::V4((masked(u32::from(a).into(), 32, prefix) as u32).into()),
            IpAddr::V6(a) => IpAddr::V6(masked(u128::from(a), 128, prefix).into()),
        };
        if net != addr {
            return Err(format!(
                "`{s}` has bits set past its /{prefix} prefix: write the block as {net}/{prefix}"
            ));
        }
        Ok(Cidr { addr, prefix })
    }
}

/// The configured `trusted_proxies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parse the config list; the error names the bad entry.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<TrustedProxies, String> {
        list.iter()
            .map(|s| s.as_ref().parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn blocks(&self) -> &[Cidr] {
        &self.0
    }
}

/// Which header the trusted proxies maintain. Only one is read: a proxy that appends to
/// one header passes the other through as the client sent it, so reading both would let a
/// client forge its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardedHeader {
    #[default]
    #[serde(rename = "X-Forwarded-For", alias = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=…`.
    #[serde(rename = "Forwarded", alias = "forwarded")]
    Forwarded,
}

impl ForwardedHeader {
    /// The HTTP header name (lower case).
    pub fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }

    /// The hops of the header's values, left (nearest the client) to right (nearest us);
    /// `None` for a hop that names no address (`unknown`, an obfuscated node, garbage).
    pub fn hops(self, values: &[&str]) -> Vec<Option<IpAddr>> {
        match self {
            ForwardedHeader::XForwardedFor => values
                .iter()
                .flat_map(|v| v.split(','))
                .map(node_addr)
                .collect(),
            ForwardedHeader::Forwarded => values
                .iter()
                .flat_map(|v| split_unquoted(v, ','))
                .map(|element| {
                    split_unquoted(element, ';')
                        .into_iter()
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                        .and_then(|(_, v)| node_addr(unquote(v.trim())))
                })
                .collect(),
        }
    }
}

/// The client's address: the peer unless it is trusted, else the right-most untrusted
/// hop of `values` (the forwarding header's values, in order). Where every hop is trusted
/// the left-most is the client; a hop that names no address stops the walk at the last
/// trusted address seen (never an address the client could have written).
pub fn client_ip(
    peer: IpAddr,
    trusted: &TrustedProxies,
    header: ForwardedHeader,
    values: &[&str],
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in header.hops(values).into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip;
                if !trusted.contains(ip) {
                    return ip;
                }
            }
            None => return client,
        }
    }
    client
}

/// A request id sent by a trusted proxy (Heroku's router, nginx's `$request_id`), if it is
/// a plausible one: 1–200 characters of letters, digits and `+/=._:-`. Anything else gets
/// a fresh id, so a header cannot inject text into logs and audit rows.
pub fn accept_request_id(value: &str) -> Option<&str> {
    let v = value.trim();
    (!v.is_empty()
        && v.len() <= 200
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=._:-".contains(&b)))
    .then_some(v)
}

/// An address as X-Forwarded-For or a `for=` node writes it: `1.2.3.4`, `1.2.3.4:5678`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
fn node_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return inside
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|a| IpAddr::V6(a).to_canonical());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (host, port) = s.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

/// Split on `sep` outside double quotes (RFC 7239 values may be quoted strings).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    #[test]
    fn cidrs_parse_strictly_and_name_the_bad_entry() {
        let ok: &[(&str, &str)] = &[
            ("10.0.0.0/8", "10.0.0.0/8"),
            (" 192.168.1.7 ", "192.168.1.7/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("::1", "::1/128"),
            ("::/0", "::/0"),
            ("::ffff:10.0.0.0/8", "10.0.0.0/8"),
            ("172.16.0.0/12", "172.16.0.0/12"),
        ];
        for (input, want) in ok {
            assert_eq!(input.parse::<Cidr>().unwrap().to_string(), *want, "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("10.0.0.1/8", "write the block as 10.0.0.0/8"),
            ("10.0.0.0/33", "0 to 32"),
            ("2001:db8::/129", "0 to 128"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/-1", "prefix length"),
            ("10.0.0/8", "not an IP address"),
            ("localhost", "not an IP address"),
            ("", "not an IP address"),
            ("10.0.0.0/8/8", "prefix length"),
            ("2001:db8::1/32", "write the block as 2001:db8::/32"),
        ];
        for (input, want) in bad {
            let e = input.parse::<Cidr>().expect_err(input);
            assert!(e.contains(want), "{input}: {e}");
            assert!(e.contains(input.trim()), "names the entry: {e}");
        }
        let e = TrustedProxies::parse(&["10.0.0.0/8", "nope"]).unwrap_err();
        assert!(e.contains("`nope`"), "{e}");
    }

    #[test]
    fn containment_by_prefix_and_family() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("10.0.0.0/8", "9.255.255.255", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "10.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.1.1.1", true), // a dual-stack socket's peer
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("127.0.0.1/32", "127.0.0.2", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
        ];
        for (net, addr, want) in cases {
            assert_eq!(
                net.parse::<Cidr>().unwrap().contains(ip(addr)),
                *want,
                "{net} ∋ {addr}"
            );
        }
    }

    #[test]
    fn x_forwarded_for_hops() {
        let h = ForwardedHeader::XForwardedFor;
        assert_eq!(
            h.hops(&["203.0.113.7, 10.0.0.2", "10.0.0.3:4711"]),
            vec![
                Some(ip("203.0.113.7")),
                Some(ip("10.0.0.2")),
                Some(ip("10.0.0.3"))
            ]
        );
        assert_eq!(
            h.hops(&["[2001:db8::1]:443,2001:db8::2,[2001:db8::3], ::ffff:1.2.3.4"]),
            vec![
                Some(ip("2001:db8::1")),
                Some(ip("2001:db8::2")),
                Some(ip("2001:db8::3")),
                Some(ip("1.2.3.4"))
            ]
        );
        assert_eq!(
            h.hops(&["unknown, ,1.2.3.4:x, 1.2.3, [::1]x, 1.2.3.4:123456"]),
            vec![None; 6]
        );
    }

    #[test]
    fn forwarded_hops() {
        let h = ForwardedHeader::Forwarded;
        assert_eq!(
            h.hops(&[
                "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\"",
                "proto=https;for=10.0.0.1:80",
                "for=unknown, for=_hidden, by=10.0.0.9, for=\"a,b\"",
            ]),
            vec![
                Some(ip("192.0.2.60")),
                Some(ip("2001:db8:cafe::17")),
                Some(ip("10.0.0.1")),
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let t = trusted(&["10.0.0.0/8"]);
        for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            assert_eq!(
                client_ip(ip("198.51.100.5"), &t, header, &["6.6.6.6", "for=6.6.6.6"]),
                ip("198.51.100.5")
            );
        }
        // No trusted proxies at all: always the peer.
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &TrustedProxies::default(),
                ForwardedHeader::XForwardedFor,
                &["6.6.6.6"]
            ),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let xff = ForwardedHeader::XForwardedFor;
        let cases: &[(&str, &[&str], &str)] = &[
            // The proxy appended the client it saw; a forged left part is ignored.
            ("10.0.0.2", &["6.6.6.6, 203.0.113.7"], "203.0.113.7"),
            (
                "10.0.0.2",
                &["6.6.6.6, 203.0.113.7, 10.0.0.9"],
                "203.0.113.7",
            ),
            // Two headers count as one list, in order.
            ("10.0.0.2", &["6.6.6.6", "203.0.113.7"], "203.0.113.7"),
            // A trusted peer that forwards nothing: the peer.
            ("10.0.0.2", &[], "10.0.0.2"),
            // Every hop trusted: the left-most.
            ("10.0.0.2", &["10.0.0.7, 10.0.0.8"], "10.0.0.7"),
            // An unparsable hop stops the walk at the last trusted address.
            ("10.0.0.2", &["203.0.113.7, garbage"], "10.0.0.2"),
            ("10.0.0.2", &["203.0.113.7, garbage, 10.0.0.5"], "10.0.0.5"),
            ("10.0.0.2", &["6.6.6.6, 203.0.113.7:5000"], "203.0.113.7"),
            (
                "::ffff:10.0.0.2",
                &["[2001:db8::5]:1, 2001:db8:ffff::1"],
                "2001:db8::5",
            ),
        ];
        for (peer, values, want) in cases {
            assert_eq!(
                client_ip(ip(peer), &t, xff, values),
                ip(want),
                "{peer} {values:?}"
            );
        }
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &t,
                ForwardedHeader::Forwarded,
                &["for=6.6.6.6, for=\"203.0.113.7:1\";proto=https"]
            ),
            ip("203.0.113.7")
        );
        // Reading Forwarded ignores X-Forwarded-For's syntax and vice versa.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &t,
                ForwardedHeader::Forwarded,
                &["203.0.113.7"]
            ),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn request_ids_from_proxies_are_accepted_only_when_plain() {
        for ok in [
            "f1b2c3d4e5f60718293a4b5c6d7e8f90",
            "8d4b5c1e-2f3a-4b5c-9d8e-7f6a5b4c3d2e",
            "abc+/=._:-Z9",
        ] {
            assert_eq!(accept_request_id(ok), Some(ok));
        }
        let long = "a".repeat(201);
        for bad in ["", "  ", "a b", "a\nb", "<script>", "é", long.as_str()] {
            assert_eq!(accept_request_id(bad), None, "{bad:?}");
        }
        assert_eq!(accept_request_id(" abc "), Some("abc"));
    }

    #[test]
    fn forwarded_header_names_in_config() {
        #[derive(Deserialize)]
        struct T {
            h: ForwardedHeader,
        }
        for (text, want) in [
            ("h = \"X-Forwarded-For\"", ForwardedHeader::XForwardedFor),
            ("h = \"x-forwarded-for\"", ForwardedHeader::XForwardedFor),
            ("h = \"Forwarded\"", ForwardedHeader::Forwarded),
            ("h = \"forwarded\"", ForwardedHeader::Forwarded),
        ] {
            assert_eq!(toml::from_str::<T>(text).unwrap().h, want, "{text}");
        }
        assert!(toml::from_str::<T>("h = \"X-Real-IP\"").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_v4() -> impl Strategy<Value = IpAddr> {
            any::<u32>().prop_map(|n| IpAddr::V4(n.into()))
        }

        /// An address outside 10.0.0.0/8 (the trusted block below).
        fn untrusted_v4() -> impl Strategy<Value = IpAddr> {
            any_v4().prop_filter(
                "outside 10/8",
                |ip| !matches!(ip, IpAddr::V4(a) if a.octets()[0] == 10),
            )
        }

        fn trusted_v4() -> impl Strategy<Value = IpAddr> {
            any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::V4([10, a, b, c].into()))
        }

        proptest! {
            /// Whatever a client prepends (addresses, garbage, trusted-looking ones), the
            /// result is the address the first trusted proxy saw it connect from.
            #[test]
            fn a_forged_prefix_never_chooses_the_client_address(
                forged in proptest::collection::vec("[0-9a-f:.\\[\\] ]{0,20}|10\\.[0-9]{1,3}\\.0\\.1", 0..6),
                client in untrusted_v4(),
                proxies in proptest::collection::vec(trusted_v4(), 0..4),
                peer in trusted_v4(),
                split in any::<bool>(),
            ) {
                let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
                let mut hops: Vec<String> = forged.clone();
                hops.push(client.to_string());
                hops.extend(proxies.iter().map(|p| p.to_string()));
                let joined = hops.join(", ");
                let values: Vec<&str> = if split { hops.iter().map(String::as_str).collect() } else { vec![joined.as_str()] };
                prop_assert_eq!(client_ip(peer, &t, ForwardedHeader::XForwardedFor, &values), client);
            }

            /// From an untrusted peer nothing in the header matters.
            #[test]
            fn an_untrusted_peer_is_always_the_answer(peer in untrusted_v4(), header in ".{0,80}") {
                let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
                for h in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
                    prop_assert_eq!(client_ip(peer, &t, h, &[header.as_str()]), peer);
                }
            }

            /// The answer is the peer or an address some hop named; the parsers never panic.
            #[test]
            fn the_answer_is_the_peer_or_a_named_hop(peer in trusted_v4(), header in ".{0,80}") {
                let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
                for h in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
                    let got = client_ip(peer, &t, h, &[header.as_str()]);
                    prop_assert!(got == peer || h.hops(&[header.as_str()]).contains(&Some(got)));
                }
            }

            /// Containment agrees with comparing the leading bits.
            #[test]
            fn containment_is_prefix_comparison(net in any::<u32>(), prefix in 0u8..=32, probe in any::<u32>()) {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
                let block: Cidr = format!("{}/{prefix}", std::net::Ipv4Addr::from(net & mask)).parse().unwrap();
                prop_assert_eq!(block.contains(IpAddr::V4(probe.into())), probe & mask == net & mask);
            }
        }
    }
}
