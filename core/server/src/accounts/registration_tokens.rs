//! Registration tokens (spec: client-server API, "Token-authenticated
//! registration", `m.login.registration_token`): with `[registration]
//! require_token`, only someone holding a valid token may register. An
//! operator hands tokens out (invite-only communities) and manages them
//! through Synapse's admin API (`api/synapse_admin/registration_tokens.rs`).
//!
//! A token is valid until it expires and while fewer registrations than
//! `uses_allowed` were completed or are under way with it. Every change of
//! a token, including counting a use, runs in the token's turn on the shard
//! its name hashes to, so two registrations cannot both take a token's
//! last use.

use tessera_storage::records::RegistrationTokenRecord;
use tessera_storage::{Op, Store};

use super::user_writes::on_user_shard;
use super::NewAccount;
use crate::error::ApiError;
use crate::request::now_ms;
use crate::state::AppShard;

/// Longest token (Synapse's limit).
pub const MAX_TOKEN_CHARS: usize = 64;

/// Whether `token` may still be used.
pub fn is_valid(token: &RegistrationTokenRecord, now_ms: u64) -> bool {
    let used = u64::from(token.pending) + u64::from(token.completed);
    token.uses_allowed.is_none_or(|allowed| used < u64::from(allowed)) && token.expiry_time.is_none_or(|t| t > now_ms)
}

/// Spec: a token is 1–64 characters of `[A-Za-z0-9._~-]`.
pub fn well_formed(token: &str) -> bool {
    !token.is_empty()
        && token.chars().count() <= MAX_TOKEN_CHARS
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// Runs `f` in `token`'s turn on its shard. (The turns are the per-user
/// ones: a token cannot be mistaken for a user ID, which starts with `@`.)
pub async fn in_turn<R, F, Fut>(shard: &AppShard, token: &str, f: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(AppShard) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, ApiError>> + 'static,
{
    on_user_shard(shard, token, f).await
}

/// Whether `token` would let someone register now.
pub async fn check(shard: &AppShard, token: &str) -> Result<bool, ApiError> {
    if !well_formed(token) {
        return Ok(false);
    }
    Ok(shard.state.store.registration_token(token).await?.is_some_and(|t| is_valid(&t, now_ms())))
}

/// Registers `account` with `token`: `None` if the token is not valid, else
/// the new account's ID, with the use counted (once, even when a completed
/// registration is repeated).
pub async fn register_with(shard: &AppShard, token: String, account: NewAccount) -> Result<Option<String>, ApiError> {
    if !well_formed(&token) {
        return Ok(None);
    }
    in_turn(shard, &token.clone(), move |shard| async move {
        let store = &shard.state.store;
        let Some(record) = store.registration_token(&token).await?.filter(|t| is_valid(t, now_ms())) else {
            return Ok(None);
        };
        let (user_id, new) = super::create(&shard, account).await?;
        if new {
            let used = RegistrationTokenRecord { completed: record.completed.saturating_add(1), ..record };
            store.write(vec![Op::PutRegistrationToken(used)]).await?;
        }
        Ok(Some(user_id))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(
        uses_allowed: Option<u32>,
        pending: u32,
        completed: u32,
        expiry_time: Option<u64>,
    ) -> RegistrationTokenRecord {
        RegistrationTokenRecord { token: "t".into(), uses_allowed, pending, completed, expiry_time }
    }

    #[test]
    fn used_up_or_expired_tokens_are_not_valid() {
        assert!(is_valid(&token(None, 5, 5, None), 100));
        assert!(is_valid(&token(Some(3), 1, 1, None), 100));
        assert!(!is_valid(&token(Some(3), 1, 2, None), 100), "pending uses count");
        assert!(!is_valid(&token(Some(0), 0, 0, None), 100));
        assert!(is_valid(&token(None, 0, 0, Some(101)), 100));
        assert!(!is_valid(&token(None, 0, 0, Some(100)), 100));
    }

    #[test]
    fn tokens_are_short_and_of_the_spec_alphabet() {
        assert!(well_formed("abc-DEF_1.2~"));
        assert!(!well_formed(""));
        assert!(!well_formed("a b"));
        assert!(!well_formed("@alice:x"), "could be taken for a user ID");
        assert!(!well_formed(&"a".repeat(65)));
    }
}
