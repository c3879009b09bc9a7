//! Source-network allow-lists, and the client address the platform reports in
//! `X-Forwarded-For`.
//!
//! Which entry is trusted, and why: the Azure Functions host only listens behind App
//! Service's front end, which terminates the caller's connection and **appends** the address
//! it accepted it from (`ip:port`, `[v6]:port`) to whatever `X-Forwarded-For` the caller
//! sent; the host forwards the header to us unchanged. So the rightmost entry is the only one
//! a caller cannot write, and everything to its left is the caller's own text. Each further
//! proxy the operator puts in front (Application Gateway, say) appends one more entry, so the
//! client is the `trusted_hops`-th entry from the right (1 by default: the front end's).
//! Entries further left are never read. A request without the header, or with fewer entries
//! than trusted hops, did not come through the expected path and is refused.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// Why a request's source is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("no X-Forwarded-For header: the request did not come through the platform's front end")]
    NoForwardedFor,
    #[error("X-Forwarded-For has fewer entries than trusted proxy hops")]
    TooFewEntries,
    #[error("the trusted X-Forwarded-For entry is not an IP address")]
    Unparsable,
    #[error("source address {0} is outside the allowed networks")]
    NotAllowed(IpAddr),
}

/// Why an allow-list setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkListError {
    #[error("{0:?} is not a CIDR network or an IP address")]
    BadNetwork(String),
    #[error("the list is empty")]
    Empty,
    #[error("trusted proxy hops must be at least 1")]
    ZeroHops,
}

/// Networks a caller must come from, and how to find the caller's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceNetworks {
    networks: Vec<IpNet>,
    trusted_hops: usize,
}

impl SourceNetworks {
    /// Parse CIDR networks (`10.0.0.0/8`, `2001:db8::/32`) or single addresses (a /32 or
    /// /128); the caller is the `trusted_hops`-th `X-Forwarded-For` entry from the right.
    pub fn parse<S: AsRef<str>>(
        items: &[S],
        trusted_hops: usize,
    ) -> Result<Self, NetworkListError> {
        if trusted_hops == 0 {
            return Err(NetworkListError::ZeroHops);
        }
        let networks = items
            .iter()
            .map(|item| {
                let item = item.as_ref().trim();
                IpNet::from_str(item)
                    .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| NetworkListError::BadNetwork(item.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if networks.is_empty() {
            return Err(NetworkListError::Empty);
        }
        Ok(Self {
            networks,
            trusted_hops,
        })
    }

    /// The networks, normalised (host bits cleared).
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// How many entries from the right of `X-Forwarded-For` belong to trusted proxies.
    pub fn trusted_hops(&self) -> usize {
        self.trusted_hops
    }

    /// Whether `ip` is in one of the networks. An IPv4-mapped IPv6 address counts as the IPv4
    /// address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// Find the caller in the `X-Forwarded-For` header values (in the order received) and
    /// check it; the allowed address on success.
    pub fn check<'a>(
        &self,
        forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> Result<IpAddr, SourceError> {
        let ip = forwarded_client(forwarded_for, self.trusted_hops)?;
        if self.contains(ip) {
            Ok(ip)
        } else {
            Err(SourceError::NotAllowed(ip))
        }
    }
}

/// The `hops`-th entry from the right of the `X-Forwarded-For` values, which are joined in
/// order as one comma-separated list (a proxy may append to the last line or add a line).
pub fn forwarded_client<'a>(
    values: impl IntoIterator<Item = &'a str>,
    hops: usize,
) -> Result<IpAddr, SourceError> {
    let entries: Vec<&str> = values
        .into_iter()
        .flat_map(|value| value.split(','))
        .collect();
    if entries.is_empty() {
        return Err(SourceError::NoForwardedFor);
    }
    let index = entries
        .len()
        .checked_sub(hops.max(1))
        .ok_or(SourceError::TooFewEntries)?;
    parse_forwarded_entry(entries[index])
        .map(|ip| ip.to_canonical())
        .ok_or(SourceError::Unparsable)
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]` or
/// `[2001:db8::1]:443` (surrounding spaces ignored).
pub fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = IpAddr::from_str(entry) {
        return Some(ip);
    }
    if let Ok(socket) = SocketAddr::from_str(entry) {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn list(items: &[&str]) -> SourceNetworks {
        SourceNetworks::parse(items, 1).unwrap()
    }

    #[test]
    fn entries_with_and_without_ports_parse() {
        let cases = [
            ("203.0.113.7", "203.0.113.7"),
            (" 203.0.113.7:50312 ", "203.0.113.7"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_forwarded_entry(raw),
                Some(want.parse().unwrap()),
                "{raw}"
            );
        }
        for raw in [
            "",
            "unknown",
            "203.0.113.7:",
            "1.2.3",
            "[1.2.3.4]",
            "host:80",
            "_hidden",
        ] {
            assert_eq!(parse_forwarded_entry(raw), None, "{raw}");
        }
    }

    #[test]
    fn the_rightmost_entry_is_the_client_by_default() {
        let nets = list(&["10.1.0.0/16"]);
        assert_eq!(
            nets.check(["10.1.2.3:4000"]),
            Ok("10.1.2.3".parse().unwrap())
        );
        // Whatever the caller wrote on the left is ignored, allowed or not.
        assert_eq!(
            nets.check(["198.51.100.1, 10.1.2.3:4000"]),
            Ok("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            nets.check(["10.1.2.3, 198.51.100.1:4000"]),
            Err(SourceError::NotAllowed("198.51.100.1".parse().unwrap()))
        );
        // Several header lines are one list, in order.
        assert_eq!(
            nets.check(["10.1.9.9", "198.51.100.1:1"]),
            Err(SourceError::NotAllowed("198.51.100.1".parse().unwrap()))
        );
    }

    #[test]
    fn more_trusted_hops_read_further_left() {
        let nets = SourceNetworks::parse(&["10.1.0.0/16"], 2).unwrap();
        assert_eq!(
            nets.check(["203.0.113.9, 10.1.2.3, 172.16.0.4:9000"]),
            Ok("10.1.2.3".parse().unwrap())
        );
        assert_eq!(nets.check(["10.1.2.3"]), Err(SourceError::TooFewEntries));
    }

    #[test]
    fn missing_or_garbled_headers_are_refused() {
        let nets = list(&["0.0.0.0/0", "::/0"]);
        assert_eq!(nets.check([]), Err(SourceError::NoForwardedFor));
        assert_eq!(nets.check([""]), Err(SourceError::Unparsable));
        assert_eq!(
            nets.check(["10.0.0.1, unknown"]),
            Err(SourceError::Unparsable)
        );
    }

    #[test]
    fn ipv6_and_mapped_ipv4_addresses_are_matched() {
        let nets = list(&["192.0.2.0/24", "2001:db8:100::/48", "198.51.100.77"]);
        assert!(nets.contains("2001:db8:100::5".parse().unwrap()));
        assert!(!nets.contains("2001:db8:200::5".parse().unwrap()));
        assert!(nets.contains("::ffff:192.0.2.10".parse().unwrap()));
        assert!(nets.contains("198.51.100.77".parse().unwrap()));
        assert!(!nets.contains("198.51.100.78".parse().unwrap()));
        assert_eq!(
            nets.check(["[::ffff:192.0.2.10]:443"]),
            Ok("192.0.2.10".parse().unwrap())
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert_eq!(
            SourceNetworks::parse(&["10.0.0.0/33"], 1),
            Err(NetworkListError::BadNetwork("10.0.0.0/33".into()))
        );
        assert_eq!(
            SourceNetworks::parse(&["example.com"], 1),
            Err(NetworkListError::BadNetwork("example.com".into()))
        );
        assert_eq!(
            SourceNetworks::parse::<&str>(&[], 1),
            Err(NetworkListError::Empty)
        );
        assert_eq!(
            SourceNetworks::parse(&["10.0.0.0/8"], 0),
            Err(NetworkListError::ZeroHops)
        );
        assert_eq!(
            list(&["10.1.2.3/8"]).networks(),
            &["10.0.0.0/8".parse::<IpNet>().unwrap()]
        );
    }

    proptest! {
        #[test]
        fn any_socket_address_round_trips(socket in any::<SocketAddr>()) {
            prop_assert_eq!(parse_forwarded_entry(&socket.to_string()), Some(socket.ip()));
            prop_assert_eq!(parse_forwarded_entry(&socket.ip().to_string()), Some(socket.ip()));
        }

        #[test]
        fn entries_left_of_the_trusted_ones_never_matter(
            spoofed in proptest::collection::vec("[ -~]{0,40}", 0..6),
            client in any::<IpAddr>(),
            proxies in proptest::collection::vec(any::<SocketAddr>(), 0..3),
        ) {
            let mut entries: Vec<String> = spoofed;
            entries.push(SocketAddr::new(client, 4711).to_string());
            entries.extend(proxies.iter().map(ToString::to_string));
            let header = entries.join(", ");
            prop_assert_eq!(
                forwarded_client([header.as_str()], proxies.len() + 1),
                Ok(client.to_canonical())
            );
        }

        #[test]
        fn arbitrary_text_never_panics(raw in "\\PC{0,80}", hops in 0usize..4) {
            let _ = forwarded_client([raw.as_str()], hops);
        }
    }
}
