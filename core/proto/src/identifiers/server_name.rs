//! Server names (spec: appendices § Server Name).

use super::{check_length, IdError};

identifier! {
    /// A homeserver's name: a DNS name, IPv4 literal or bracketed IPv6
    /// literal, with an optional port. Compared case-sensitively, as the spec
    /// requires.
    ServerName
}

impl ServerName {
    fn validate(s: &str) -> Result<(), IdError> {
        check_length(s)?;
        validate(s)
    }

    /// The host part, without the port (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        split_port(&self.0).map_or(&self.0, |(host, _)| host)
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u32> {
        split_port(&self.0).and_then(|(_, port)| port.parse().ok())
    }
}

/// Splits `host:port`, taking care of the colons inside an IPv6 literal.
fn split_port(s: &str) -> Option<(&str, &str)> {
    let after_host = if s.starts_with('[') { s.find(']')? + 1 } else { s.find(':')? };
    let port = s[after_host..].strip_prefix(':')?;
    Some((&s[..after_host], port))
}

/// Validates against the grammar:
///
/// ```text
/// server_name = hostname [ ":" port ]
/// port        = 1*5DIGIT
/// hostname    = IPv4address / "[" IPv6address "]" / dns-name
/// IPv6address = 2*45IPv6char
/// dns-name    = 1*255dns-char
/// dns-char    = DIGIT / ALPHA / "-" / "."
/// ```
///
/// IPv4 literals are a subset of `dns-name`, so they need no branch of their
/// own; IPv6 literals must also be real RFC 3513 addresses.
pub(super) fn validate(s: &str) -> Result<(), IdError> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']').ok_or(IdError::UnclosedIpv6)?;
        let address = &inner[..end];
        let valid_chars = address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !(2..=45).contains(&address.len()) || !valid_chars || address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(IdError::InvalidIpv6);
        }
        let rest = &inner[end + 1..];
        let port = if rest.is_empty() { None } else { Some(rest.strip_prefix(':').ok_or(IdError::InvalidPort)?) };
        (&s[..end + 2], port)
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if !host.starts_with('[') {
        if host.is_empty() {
            return Err(IdError::EmptyHost);
        }
        if host.len() > 255 {
            return Err(IdError::HostTooLong);
        }
        if let Some(c) = host.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')) {
            return Err(IdError::InvalidHostChar(c));
        }
    }
    if let Some(port) = port {
        if !(1..=5).contains(&port.len()) || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::InvalidPort);
        }
    }
    Ok(())
}
