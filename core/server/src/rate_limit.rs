//! Rate limits (spec: client-server API, "Rate limiting"): a client that
//! goes too fast gets 429 `M_LIMIT_EXCEEDED` with `retry_after_ms`.
//!
//! Token buckets, as Synapse's `rc_*` settings: each key (a user, an
//! address, an account) may act `burst` times at once and then
//! `per_second` times a second. Buckets live on the shard that serves the
//! request, in memory, with no lock: a client's connection stays on one
//! shard, so one client is held to the limit; a client that spreads many
//! connections over the shards gets at most one limit per shard, which
//! bounds abuse by the core count while keeping the check off every
//! cross-core path. `[rate_limits] enable = false` turns them all off, for
//! tests and benchmarks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use serde::Deserialize;

use crate::config::RateLimitsSection;
use crate::error::ApiError;
use crate::state::AppShard;

/// One limit: `burst` actions at once, then `per_second`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub per_second: f64,
    pub burst: f64,
}

/// What is limited, and by what key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Sending events (messages, state, redactions), per user.
    Message,
    /// Registering, per client address.
    Registration,
    /// Logging in, per client address.
    Login,
    /// Failed logins, per account.
    LoginFailure,
    /// Joining rooms, per user.
    Join,
    /// Creating rooms, per user.
    RoomCreation,
    /// Checking a registration token's validity, per client address.
    TokenValidity,
}

impl Action {
    fn limit(self, config: &RateLimitsSection) -> Limit {
        match self {
            Action::Message => config.message,
            Action::Registration => config.registration,
            Action::Login => config.login,
            Action::LoginFailure => config.login_failure,
            Action::Join => config.join,
            Action::RoomCreation => config.room_creation,
            Action::TokenValidity => config.token_validity,
        }
    }
}

/// Buckets before the full ones are swept: keys seen once (every address
/// that ever logged in) must not pile up.
const SWEEP_AT: usize = 50_000;

/// One shard's buckets.
#[derive(Default)]
pub struct RateLimiter {
    buckets: RefCell<HashMap<(Action, String), Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, limit: Limit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.per_second).min(limit.burst);
        self.at = now;
    }
}

impl RateLimiter {
    /// Takes one action from `key`'s bucket, or answers 429 if it is empty.
    pub fn take(&self, config: &RateLimitsSection, action: Action, key: &str) -> Result<(), ApiError> {
        self.check(config, action, key, true)
    }

    /// Answers 429 if `key`'s bucket is empty, without taking from it
    /// (for failed logins: checked before, taken only on a failure).
    pub fn peek(&self, config: &RateLimitsSection, action: Action, key: &str) -> Result<(), ApiError> {
        self.check(config, action, key, false)
    }

    fn check(&self, config: &RateLimitsSection, action: Action, key: &str, take: bool) -> Result<(), ApiError> {
        if !config.enable {
            return Ok(());
        }
        let limit = action.limit(config);
        let now = Instant::now();
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|(action, _), bucket| {
                let limit = action.limit(config);
                bucket.refill(limit, now);
                bucket.tokens < limit.burst
            });
        }
        let bucket = buckets.entry((action, key.to_owned())).or_insert(Bucket { tokens: limit.burst, at: now });
        bucket.refill(limit, now);
        if bucket.tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            return Ok(());
        }
        let wait_ms =
            if limit.per_second > 0.0 { ((1.0 - bucket.tokens) / limit.per_second * 1000.0).ceil() } else { 0.0 };
        Err(ApiError::new(429, "M_LIMIT_EXCEEDED", "too many requests").with("retry_after_ms", wait_ms as u64))
    }
}

/// Takes one `action` of `key` on this shard, or 429.
pub fn take(shard: &AppShard, action: Action, key: &str) -> Result<(), ApiError> {
    shard.state.rate_limits.take(&shard.state.config.rate_limits, action, key)
}

/// 429 if `key` has no `action` left on this shard; takes nothing.
pub fn peek(shard: &AppShard, action: Action, key: &str) -> Result<(), ApiError> {
    shard.state.rate_limits.peek(&shard.state.config.rate_limits, action, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_second: f64, burst: f64) -> RateLimitsSection {
        let limit = Limit { per_second, burst };
        RateLimitsSection { enable: true, ..RateLimitsSection::with_all(limit) }
    }

    #[test]
    fn a_burst_passes_and_the_next_action_waits_for_its_token() {
        let config = config(0.5, 3.0);
        let limiter = RateLimiter::default();
        for _ in 0..3 {
            limiter.take(&config, Action::Message, "@a:x").unwrap();
        }
        let err = limiter.take(&config, Action::Message, "@a:x").unwrap_err();
        assert_eq!((err.status, &*err.errcode), (429, "M_LIMIT_EXCEEDED"));
        let wait = err.extra["retry_after_ms"].as_u64().unwrap();
        assert!((1900..=2000).contains(&wait), "{wait} ms");
        // Other keys and other actions have their own buckets.
        limiter.take(&config, Action::Message, "@b:x").unwrap();
        limiter.take(&config, Action::Join, "@a:x").unwrap();
    }

    #[test]
    fn peeking_never_empties_a_bucket_and_off_means_off() {
        let config = config(0.0, 1.0);
        let limiter = RateLimiter::default();
        for _ in 0..5 {
            limiter.peek(&config, Action::LoginFailure, "@a:x").unwrap();
        }
        limiter.take(&config, Action::LoginFailure, "@a:x").unwrap();
        assert!(limiter.peek(&config, Action::LoginFailure, "@a:x").is_err());
        let off = RateLimitsSection { enable: false, ..config };
        limiter.take(&off, Action::LoginFailure, "@a:x").unwrap();
    }

    #[test]
    fn full_buckets_are_swept_when_many_keys_were_seen() {
        let config = config(1000.0, 1.0);
        let limiter = RateLimiter::default();
        for i in 0..SWEEP_AT {
            limiter.take(&config, Action::Login, &i.to_string()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        limiter.take(&config, Action::Login, "new").unwrap();
        assert!(limiter.buckets.borrow().len() < 10, "refilled buckets were kept");
    }
}
