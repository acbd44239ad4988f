//! The client's address behind a trusted reverse proxy (`X-Forwarded-For`).
//!
//! Only a peer in the configured trusted ranges may tell us who the client
//! is; anyone else could forge the header to dodge rate limits or poison
//! logs. Entries are read right to left, skipping trusted hops, so a client
//! that prepends fake entries gets its real address (the first untrusted
//! hop) reported, not the forgery.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The set of proxy addresses whose `X-Forwarded-For` we believe.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts the given networks (a bare address is a /32 or /128).
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` with these
    /// `X-Forwarded-For` header values.
    pub fn client_ip<'a>(&self, peer: SocketAddr, forwarded_for: impl Iterator<Item = &'a [u8]>) -> IpAddr {
        let peer_ip = canonical(peer.ip());
        if self.nets.is_empty() || !self.trusts(peer_ip) {
            return peer_ip;
        }
        let hops: Vec<&[u8]> = forwarded_for.flat_map(|v| v.split(|&b| b == b',')).collect();
        let mut client = peer_ip;
        for hop in hops.iter().rev() {
            let Some(ip) = std::str::from_utf8(hop).ok().and_then(|s| s.trim().parse::<IpAddr>().ok()) else {
                // An unparseable hop ends what we can vouch for.
                break;
            };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (from dual-stack sockets) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()])
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 5000)
    }

    #[test]
    fn untrusted_peer_cannot_set_client_address() {
        let ip = proxies().client_ip(peer("203.0.113.9"), [&b"198.51.100.1"[..]].into_iter());
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_proxy_reports_client() {
        let ip = proxies().client_ip(peer("127.0.0.1"), [&b"198.51.100.1"[..]].into_iter());
        assert_eq!(ip, "198.51.100.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn forged_leading_entries_are_ignored() {
        let header = &b"1.1.1.1, 198.51.100.1, 10.1.2.3"[..];
        let ip = proxies().client_ip(peer("127.0.0.1"), [header].into_iter());
        assert_eq!(ip, "198.51.100.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn garbage_entry_stops_the_walk() {
        let ip = proxies().client_ip(peer("127.0.0.1"), [&b"evil, not-an-ip"[..]].into_iter());
        assert_eq!(ip, "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn mapped_ipv6_peer_matches_ipv4_range() {
        let ip = proxies().client_ip(peer("::ffff:127.0.0.1"), [&b"198.51.100.7"[..]].into_iter());
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }
}
