//! Who is asking: access tokens (spec: client-server API, "Using access
//! tokens"). A token arrives in `Authorization: Bearer` or, deprecated but
//! still used by some clients, the `access_token` query parameter.
//!
//! Tokens are stored as their SHA-256 digest, never in the clear. Each shard
//! caches the tokens it has seen (hot path: every authenticated request);
//! logging out a device tells every shard to drop its entries.

use std::collections::HashMap;
use std::rc::Rc;

use sha2::{Digest, Sha256};
use tessera_net::http::Request;
use tessera_storage::Store;

use crate::error::ApiError;
use crate::request::{now_ms, Query};
use crate::state::AppShard;

/// An authenticated requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The user.
    pub user_id: String,
    /// The device the token belongs to.
    pub device_id: String,
    /// Whether the account is a guest's.
    pub is_guest: bool,
    /// Expiry of the token, POSIX milliseconds.
    expires_ts: Option<u64>,
}

/// Entries a shard's token cache holds before it starts over: bounds memory
/// under token churn (every login is a new token) at the cost of one store
/// read per active token after a reset.
const CACHE_LIMIT: usize = 100_000;

/// One shard's cache of token digests.
#[derive(Default)]
pub struct TokenCache {
    entries: std::cell::RefCell<HashMap<[u8; 32], Rc<Requester>>>,
}

impl TokenCache {
    /// Forgets every token of `user_id` (of one device, or all).
    pub fn forget(&self, user_id: &str, device_id: Option<&str>) {
        self.entries.borrow_mut().retain(|_, r| r.user_id != user_id || device_id.is_some_and(|d| d != r.device_id));
    }
}

/// The digest a token is stored under.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new access token: 40 random alphanumerics (238 bits) after a prefix
/// that makes leaked tokens recognisable to secret scanners.
pub fn new_access_token() -> String {
    format!("tsr_{}", crate::request::random_string(40))
}

/// The token a request carries, if any.
fn token_of(req: &Request) -> Option<String> {
    if let Some(value) = req.headers.get("authorization") {
        let value = std::str::from_utf8(value).ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    Query::of(req).get("access_token").map(str::to_owned)
}

/// Authenticates a request: 401 `M_MISSING_TOKEN` without a token, 401
/// `M_UNKNOWN_TOKEN` for an unknown, expired or logged-out one.
pub async fn authenticate(shard: &AppShard, req: &Request) -> Result<Rc<Requester>, ApiError> {
    let token = token_of(req).ok_or_else(|| ApiError::new(401, "M_MISSING_TOKEN", "missing access token"))?;
    let unknown = || ApiError::new(401, "M_UNKNOWN_TOKEN", "unknown access token").with("soft_logout", false);
    // Refresh tokens are stored under the digest of a prefix ending in NUL
    // (`accounts::refresh_digest`); no token issued here holds one, and one
    // presented with it could name a refresh token's record.
    if token.contains('\0') {
        return Err(unknown());
    }
    let digest = token_digest(&token);
    let cache = &shard.state.tokens;
    let cached = cache.entries.borrow().get(&digest).cloned();
    let requester = match cached {
        Some(requester) => requester,
        None => {
            let store = &shard.state.store;
            let record = store.access_token(&digest).await?.ok_or_else(unknown)?;
            let vshard = shard.state.placement.vshard(&record.user_id);
            let user = store.user(vshard, &record.user_id).await?.ok_or_else(unknown)?;
            if user.deactivated {
                return Err(unknown());
            }
            let requester = Rc::new(Requester {
                user_id: record.user_id,
                device_id: record.device_id,
                is_guest: user.is_guest,
                expires_ts: record.expires_ts,
            });
            let mut entries = cache.entries.borrow_mut();
            if entries.len() >= CACHE_LIMIT {
                entries.clear();
            }
            entries.insert(digest, requester.clone());
            requester
        }
    };
    if requester.expires_ts.is_some_and(|t| t <= now_ms()) {
        return Err(ApiError::new(401, "M_UNKNOWN_TOKEN", "access token has expired").with("soft_logout", true));
    }
    Ok(requester)
}

/// Tells every shard to forget the cached tokens of `user_id` (one device,
/// or all), after they were deleted from the store.
pub fn forget_everywhere(shard: &AppShard, user_id: &str, device_id: Option<&str>) {
    let (user_id, device_id) = (user_id.to_owned(), device_id.map(str::to_owned));
    shard.broadcast(move |shard| shard.state.tokens.forget(&user_id, device_id.as_deref()));
}

/// Whether `user_id` is a server admin (`is_admin` of the account, set by
/// the shared-secret registration or `tessera register-user --admin`).
pub async fn is_server_admin(shard: &AppShard, user_id: &str) -> Result<bool, ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    Ok(shard.state.store.user(vshard, user_id).await?.is_some_and(|u| u.is_admin))
}

/// The requester, if a server admin; 403 otherwise (the admin API).
pub async fn authenticate_admin(shard: &AppShard, req: &Request) -> Result<Rc<Requester>, ApiError> {
    let me = authenticate(shard, req).await?;
    if !is_server_admin(shard, &me.user_id).await? {
        return Err(ApiError::forbidden("you are not a server admin"));
    }
    Ok(me)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requester(user: &str, device: &str) -> Rc<Requester> {
        Rc::new(Requester { user_id: user.into(), device_id: device.into(), is_guest: false, expires_ts: None })
    }

    #[test]
    fn forgetting_one_device_keeps_the_users_other_devices() {
        let cache = TokenCache::default();
        cache.entries.borrow_mut().insert([1; 32], requester("@a:x", "D1"));
        cache.entries.borrow_mut().insert([2; 32], requester("@a:x", "D2"));
        cache.entries.borrow_mut().insert([3; 32], requester("@b:x", "D1"));
        cache.forget("@a:x", Some("D1"));
        assert_eq!(cache.entries.borrow().len(), 2);
        cache.forget("@a:x", None);
        assert_eq!(cache.entries.borrow().keys().collect::<Vec<_>>(), [&[3; 32]]);
    }

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let (a, b) = (new_access_token(), new_access_token());
        assert!(a.starts_with("tsr_") && a.len() == 44);
        assert_ne!(a, b);
        assert_ne!(token_digest(&a), token_digest(&b));
    }
}
