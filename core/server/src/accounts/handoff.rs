//! What a browser sign-in hands back to a client: login tokens (single
//! sign-on ends in a `loginToken` the client exchanges at `POST /login` with
//! `m.login.token`) and completed single sign-on stages of user-interactive
//! authentication (the browser completes `m.login.sso`, the client then
//! repeats its request with just the session).
//!
//! Both are short-lived and kept in memory on the shard their key hashes
//! to, so the browser's request and the client's may land on any shards
//! and still meet; none survives a restart, where the user signs in again.
//! Spec (client-server API, "Token-based login"): the token is short-lived
//! and single-use.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::ApiError;
use crate::request::{now_ms, random_string};
use crate::state::AppShard;

/// How long a login token may wait for its client: Synapse's default, long
/// enough for a browser to bounce back to the app.
const LOGIN_TOKEN_TTL_MS: u64 = 2 * 60 * 1000;
/// How long a completed single sign-on stage counts for its session.
const SSO_STAGE_TTL_MS: u64 = 15 * 60 * 1000;
/// Entries per shard and kind before expired ones are swept: a flood of
/// sign-ins cannot grow a shard's memory without bound.
const MAX_ENTRIES: usize = 100_000;

/// One shard's handoffs.
#[derive(Default)]
pub struct Handoffs {
    login_tokens: RefCell<Expiring>,
    sso_stages: RefCell<Expiring>,
}

/// Keys to user IDs, each until its deadline.
#[derive(Default)]
struct Expiring(HashMap<String, (String, u64)>);

impl Expiring {
    fn insert(&mut self, key: String, user_id: String, ttl_ms: u64) {
        let now = now_ms();
        if self.0.len() >= MAX_ENTRIES {
            self.0.retain(|_, (_, deadline)| *deadline > now);
            if self.0.len() >= MAX_ENTRIES {
                // Still full of live entries: the oldest sign-ins start over.
                self.0.clear();
            }
        }
        self.0.insert(key, (user_id, now + ttl_ms));
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).filter(|(_, deadline)| *deadline > now_ms()).map(|(user_id, _)| user_id.clone())
    }

    fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key).filter(|(_, deadline)| *deadline > now_ms()).map(|(user_id, _)| user_id)
    }
}

/// A new login token for `user_id`.
pub async fn issue_login_token(shard: &AppShard, user_id: &str) -> Result<String, ApiError> {
    let token = format!("tlt_{}", random_string(32));
    let (key, user_id) = (token.clone(), user_id.to_owned());
    let owner = shard.state.placement.shard(&token);
    shard
        .ask(owner, move |shard| {
            shard.state.handoffs.login_tokens.borrow_mut().insert(key, user_id, LOGIN_TOKEN_TTL_MS)
        })
        .await?;
    Ok(token)
}

/// The user a login token was issued for, if it is live; a token works once.
pub async fn redeem_login_token(shard: &AppShard, token: &str) -> Result<Option<String>, ApiError> {
    let owner = shard.state.placement.shard(token);
    let token = token.to_owned();
    Ok(shard.ask(owner, move |shard| shard.state.handoffs.login_tokens.borrow_mut().take(&token)).await?)
}

/// Records that the single sign-on stage of UIA session `session` was
/// completed by the account `user_id` (whoever the session is for: the
/// request that repeats it compares).
pub async fn complete_sso_stage(shard: &AppShard, session: &str, user_id: &str) -> Result<(), ApiError> {
    let owner = shard.state.placement.shard(session);
    let (session, user_id) = (session.to_owned(), user_id.to_owned());
    shard
        .ask(owner, move |shard| {
            shard.state.handoffs.sso_stages.borrow_mut().insert(session, user_id, SSO_STAGE_TTL_MS)
        })
        .await?;
    Ok(())
}

/// The account that completed the single sign-on stage of `session`, if any.
pub async fn sso_stage(shard: &AppShard, session: &str) -> Result<Option<String>, ApiError> {
    let owner = shard.state.placement.shard(session);
    let session = session.to_owned();
    Ok(shard.ask(owner, move |shard| shard.state.handoffs.sso_stages.borrow().get(&session)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_entry_is_gone_and_an_expired_one_is_never_given() {
        let mut map = Expiring::default();
        map.insert("a".into(), "@u:x".into(), 60_000);
        assert_eq!(map.get("a").as_deref(), Some("@u:x"));
        assert_eq!(map.take("a").as_deref(), Some("@u:x"));
        assert_eq!(map.take("a"), None);
        map.insert("b".into(), "@u:x".into(), 0);
        assert_eq!(map.get("b"), None);
        assert_eq!(map.take("b"), None);
    }

    #[test]
    fn a_full_map_sweeps_expired_entries_before_taking_more() {
        let mut map = Expiring::default();
        for i in 0..MAX_ENTRIES {
            map.insert(i.to_string(), "@u:x".into(), 0);
        }
        map.insert("live".into(), "@u:x".into(), 60_000);
        assert_eq!(map.0.len(), 1);
        assert!(map.get("live").is_some());
    }
}
