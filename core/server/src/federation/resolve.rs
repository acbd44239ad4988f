//! Resolving server names to where their federation API is served
//! (server-server API § Resolving server names).
//!
//! Steps taken, in the spec's order:
//! 1. an IP literal: that address, at the given port or 8448;
//! 2. a host name with an explicit port: its addresses at that port, with
//!    the name as `Host` and TLS name;
//! 3. otherwise `https://<hostname>/.well-known/matrix/server`; a
//!    delegated `m.server` is then resolved by steps 1, 2 and 5 (with the
//!    delegated name as `Host` and TLS name);
//! 5. otherwise the host name at port 8448.
//!
//! Not done yet: the SRV lookups of steps 3.3, 3.4 and 4
//! (`_matrix-fed._tcp`, `_matrix._tcp`); a server that publishes only SRV
//! records is reached at port 8448 instead. Address lookups run on the
//! blocking helper threads (getaddrinfo blocks).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tessera_net::http::{Method, OutRequest, Target};
use tessera_net::runtime::Instant;

use super::FedError;
use crate::state::AppShard;

/// The federation port when nothing says otherwise.
pub const DEFAULT_PORT: u16 = 8448;
/// How long a resolution is reused.
const RESOLVED_FOR: Duration = Duration::from_secs(60 * 60);
/// Largest `.well-known/matrix/server` document we read.
const MAX_WELL_KNOWN: usize = 50 * 1024;

/// Resolved names of one shard, with when they expire.
#[derive(Default)]
pub struct Resolver {
    cache: RefCell<HashMap<String, (Target, Instant)>>,
}

/// A server name split into host and optional port. IPv6 literals keep
/// their brackets out of `host`.
fn split(name: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = name.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            port => Some((host, Some(port.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match name.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((name, None)),
    }
}

/// Looks up `host`'s addresses off the reactor; the first one is used.
pub(crate) async fn lookup(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let host = host.to_owned();
    tessera_net::blocking::run(move || (host.as_str(), port).to_socket_addrs())
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no addresses".to_owned())
}

/// Steps 1, 2 and 5 for `name` (a server name or a delegated one).
async fn direct(name: &str) -> Result<Target, String> {
    let (host, port) = split(name).ok_or("not a server name")?;
    let addr = lookup(host, port.unwrap_or(DEFAULT_PORT)).await?;
    Ok(Target { addr, tls_name: Some(host.to_owned()), host: name.to_owned() })
}

/// Where `server_name`'s federation API is.
pub async fn resolve(shard: &AppShard, server_name: &str) -> Result<Target, FedError> {
    let federation = &shard.state.federation;
    let now = Instant::now();
    if let Some((target, expires)) = federation.resolver.cache.borrow().get(server_name) {
        if *expires > now {
            return Ok(target.clone());
        }
    }
    let fail = |reason: String| FedError::Resolve { server: server_name.to_owned(), reason };
    let (host, port) = split(server_name).ok_or_else(|| fail("not a server name".into()))?;
    let target = if port.is_some() || host.parse::<IpAddr>().is_ok() {
        direct(server_name).await.map_err(fail)?
    } else {
        match well_known(shard, host).await {
            Some(delegated) => direct(&delegated).await.map_err(fail)?,
            None => direct(server_name).await.map_err(fail)?,
        }
    };
    federation.resolver.cache.borrow_mut().insert(server_name.to_owned(), (target.clone(), now + RESOLVED_FOR));
    Ok(target)
}

/// The `m.server` that `https://<host>/.well-known/matrix/server` delegates
/// to, if it answers with one.
async fn well_known(shard: &AppShard, host: &str) -> Option<String> {
    let addr = lookup(host, 443).await.ok()?;
    let target = Target { addr, tls_name: Some(host.to_owned()), host: host.to_owned() };
    let request = OutRequest { method: Method::Get, path: "/.well-known/matrix/server", headers: &[], json: None };
    let response = shard.state.federation.client.send(&target, &request).await.ok()?;
    if response.status != 200 || response.body.len() > MAX_WELL_KNOWN {
        return None;
    }
    let document: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    let delegated = document.get("m.server")?.as_str()?;
    split(delegated).map(|_| delegated.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_split_into_host_and_port_with_ipv6_brackets_removed() {
        assert_eq!(split("example.org"), Some(("example.org", None)));
        assert_eq!(split("example.org:8443"), Some(("example.org", Some(8443))));
        assert_eq!(split("127.0.0.1:8800"), Some(("127.0.0.1", Some(8800))));
        assert_eq!(split("[::1]:8448"), Some(("::1", Some(8448))));
        assert_eq!(split("[::1]"), Some(("::1", None)));
        assert_eq!(split("example.org:port"), None);
        assert_eq!(split("[::1]8448"), None);
    }
}
