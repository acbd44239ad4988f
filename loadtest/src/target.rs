//! The homeserver under test: its base URL, reduced to a socket address.
//!
//! The tool refuses any target that is not on this machine's loopback
//! interface. A load generator pointed at someone else's server is a denial
//! of service, and a typo in `--url` must not be able to become one; the
//! check is on the URL as written, and host names other than `localhost` are
//! refused rather than resolved, because DNS could answer anything.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where requests go, and the `Host` header they carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The address every connection is made to.
    pub addr: SocketAddr,
    /// `host[:port]` as written in the URL, for the `Host` header.
    pub host_header: String,
}

/// Why a URL cannot be a target.
#[derive(Debug, PartialEq, Eq)]
pub struct TargetError(String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `http://host[:port][/]`. Only plain HTTP: a loopback target
    /// needs no TLS, and TLS would measure the client's crypto as well.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let err = |why: &str| TargetError(format!("invalid target URL {url:?}: {why}"));
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            err("must start with http:// (https is not supported: the target is on loopback and needs no TLS)")
        })?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(err("expected http://host[:port] with no path, query or user"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| err("bad host or port"))?;
        let ip = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse::<IpAddr>().map_err(|_| refuse(url, host))?
        };
        if !is_loopback(ip) {
            return Err(refuse(url, host));
        }
        Ok(Self { addr: SocketAddr::new(ip, port), host_header: authority.to_owned() })
    }
}

fn refuse(url: &str, host: &str) -> TargetError {
    TargetError(format!(
        "refusing target {url:?}: host {host:?} is not loopback. tessera-loadtest only runs against servers \
         on this machine (127.0.0.0/8, ::1 or localhost), so that it can never load someone else's server"
    ))
}

/// 127.0.0.0/8 and ::1. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is
/// loopback too.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]` (port 80 when absent).
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => 80,
            _ => after.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, 80)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_targets_are_accepted() {
        let t = Target::parse("http://127.0.0.1:8008").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8008".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:8008");
        assert_eq!(Target::parse("http://127.3.4.5:1/").unwrap().addr, "127.3.4.5:1".parse().unwrap());
        assert_eq!(Target::parse("http://localhost:8491").unwrap().addr, "127.0.0.1:8491".parse().unwrap());
        assert_eq!(Target::parse("http://LOCALHOST").unwrap().addr, "127.0.0.1:80".parse().unwrap());
        assert_eq!(Target::parse("http://[::1]:8008").unwrap().addr, "[::1]:8008".parse().unwrap());
        assert_eq!(Target::parse("http://[::ffff:127.0.0.1]:9").unwrap().addr.port(), 9);
    }

    #[test]
    fn other_targets_are_refused_with_a_clear_error() {
        for url in [
            "http://10.0.0.1:8008",
            "http://0.0.0.0:8008",
            "http://[::]:8008",
            "http://[2001:db8::1]:80",
            "http://matrix.org",
            "http://localhost.evil.example:8008",
            "http://128.0.0.1",
        ] {
            let err = Target::parse(url).unwrap_err().to_string();
            assert!(err.contains("not loopback"), "{url}: {err}");
        }
    }

    #[test]
    fn malformed_urls_are_refused() {
        for url in ["https://127.0.0.1", "127.0.0.1:8008", "http://", "http://127.0.0.1:x", "http://127.0.0.1/a"] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }
}
