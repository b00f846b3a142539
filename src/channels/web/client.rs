//! Who a web chat request comes from, for the limits per address. The TCP
//! peer, unless it is one of our own proxies (`TRUSTED_PROXIES`): then the
//! right-most `X-Forwarded-For` hop that is not one of them, since every
//! hop left of our first proxy is whatever the client chose to write.

use std::net::IpAddr;

/// Addresses and CIDR blocks of the proxies in front of the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Block>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    network: IpAddr,
    prefix: u8,
}

impl Block {
    fn parse(raw: &str) -> Option<Self> {
        let (address, prefix) = raw.split_once('/').map_or((raw, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = address.parse().ok()?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix.parse().ok().filter(|&p| p <= bits)?,
        };
        Some(Self { network, prefix })
    }

    fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl TrustedProxies {
    /// A comma-separated list; `Err` names every entry that is neither an
    /// IP address nor a CIDR block.
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries = list.split(',').map(str::trim).filter(|entry| !entry.is_empty());
        let (blocks, bad): (Vec<_>, Vec<_>) =
            entries.map(|entry| Block::parse(entry).ok_or(entry)).partition(Result::is_ok);
        if bad.is_empty() {
            Ok(Self(blocks.into_iter().flatten().collect()))
        } else {
            let bad: Vec<&str> = bad.into_iter().filter_map(Result::err).collect();
            Err(format!("TRUSTED_PROXIES must list IP addresses or CIDR blocks, got {}", bad.join(", ")))
        }
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(address))
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For`
    /// values in order; IPv6 clients are grouped by /64, as one machine
    /// usually holds a whole one.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).map(str::trim).collect();
        let mut client = peer.to_canonical();
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            // A hop we cannot read was not written by a proxy of ours.
            let Ok(address) = hop.parse::<IpAddr>() else { break };
            client = address.to_canonical();
        }
        network(client)
    }
}

fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn reads_addresses_and_blocks_and_names_every_bad_entry() {
        let proxies = TrustedProxies::parse(" 10.0.0.0/8, 192.0.2.7 ,fd00::/16,").unwrap();
        assert!(proxies.trusts(ip("10.20.30.40")) && proxies.trusts(ip("192.0.2.7")) && proxies.trusts(ip("fd00::1")));
        assert!(!proxies.trusts(ip("192.0.2.8")) && !proxies.trusts(ip("11.0.0.1")));
        assert!(proxies.trusts(ip("::ffff:10.0.0.1")), "IPv4 mapped into IPv6");
        assert_eq!(TrustedProxies::parse("").unwrap(), TrustedProxies::default());
        let err = TrustedProxies::parse("10.0.0.0/33, proxy.local, 10.0.0.1").unwrap_err();
        assert!(err.contains("10.0.0.0/33, proxy.local"), "{err}");
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxies = TrustedProxies::parse("10.0.0.1, 10.0.0.2").unwrap();
        let client = |peer: &str, hops: &[&str]| proxies.client(ip(peer), hops.iter().copied());
        assert_eq!(client("198.51.100.9", &["203.0.113.5"]), ip("198.51.100.9"), "an untrusted peer is the client");
        assert_eq!(client("10.0.0.1", &["203.0.113.5"]), ip("203.0.113.5"));
        assert_eq!(
            client("10.0.0.1", &["6.6.6.6, 203.0.113.5", "10.0.0.2"]),
            ip("203.0.113.5"),
            "right-most untrusted"
        );
        assert_eq!(client("10.0.0.1", &["203.0.113.5, garbage"]), ip("10.0.0.1"), "stops at an unreadable hop");
        assert_eq!(client("10.0.0.1", &[]), ip("10.0.0.1"));
        assert_eq!(client("2001:db8:1:2:3:4:5:6", &[]), ip("2001:db8:1:2::"), "IPv6 by /64");
    }
}
