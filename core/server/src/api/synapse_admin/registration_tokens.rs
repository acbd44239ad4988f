//! Synapse's admin API for registration tokens
//! (`/_synapse/admin/v1/registration_tokens`), which operator tools and
//! admin panels use: list (`?valid=true|false`), get, create (`/new`, with
//! a given or generated token), update (`uses_allowed`, `expiry_time`) and
//! delete. Server admins only. The tokens and their rules:
//! [`crate::accounts::registration_tokens`].

use serde::Deserialize;
use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::RegistrationTokenRecord;
use tessera_storage::{Op, Store};

use crate::accounts::registration_tokens::{in_turn, is_valid, well_formed, MAX_TOKEN_CHARS};
use crate::api::endpoint;
use crate::auth::authenticate_admin;
use crate::error::{ApiError, ApiResult};
use crate::request::{json_body, now_ms, random_string, Query};
use crate::state::AppShard;

const BASE: &str = "/_synapse/admin/v1/registration_tokens";

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Get, BASE, list);
    endpoint(router, shard, Method::Post, &format!("{BASE}/new"), create);
    let one = format!("{BASE}/{{token}}");
    endpoint(router, shard, Method::Get, &one, get);
    endpoint(router, shard, Method::Put, &one, update);
    endpoint(router, shard, Method::Delete, &one, delete);
}

fn token_json(t: &RegistrationTokenRecord) -> Value {
    json!({
        "token": t.token,
        "uses_allowed": t.uses_allowed,
        "pending": t.pending,
        "completed": t.completed,
        "expiry_time": t.expiry_time,
    })
}

async fn list(shard: AppShard, req: Request) -> ApiResult {
    authenticate_admin(&shard, &req).await?;
    let valid = Query::of(&req).boolean("valid")?;
    let now = now_ms();
    let tokens: Vec<Value> = shard
        .state
        .store
        .registration_tokens()
        .await?
        .iter()
        .filter(|t| valid.is_none_or(|v| is_valid(t, now) == v))
        .map(token_json)
        .collect();
    Ok(Response::json(&json!({ "registration_tokens": tokens })))
}

async fn get(shard: AppShard, req: Request) -> ApiResult {
    authenticate_admin(&shard, &req).await?;
    let token = shard.state.store.registration_token(&req.params[0]).await?;
    let token = token.ok_or_else(|| ApiError::not_found("no such registration token"))?;
    Ok(Response::json(&token_json(&token)))
}

/// A field that may be left out, or set to `null` (no limit).
#[derive(Default)]
enum Change<T> {
    #[default]
    Keep,
    Set(Option<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Change<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Change::Set)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Limits {
    #[serde(default)]
    uses_allowed: Change<u32>,
    #[serde(default)]
    expiry_time: Change<u64>,
}

impl Limits {
    /// Refuses an expiry in the past, as Synapse does.
    fn check(&self) -> Result<(), ApiError> {
        if let Change::Set(Some(expiry)) = self.expiry_time {
            if expiry < now_ms() {
                return Err(ApiError::invalid_param("`expiry_time` is in the past"));
            }
        }
        Ok(())
    }

    fn apply(self, token: &mut RegistrationTokenRecord) {
        if let Change::Set(uses) = self.uses_allowed {
            token.uses_allowed = uses;
        }
        if let Change::Set(expiry) = self.expiry_time {
            token.expiry_time = expiry;
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    token: Option<String>,
    /// Characters of a generated token.
    length: Option<usize>,
    #[serde(default)]
    uses_allowed: Change<u32>,
    #[serde(default)]
    expiry_time: Change<u64>,
}

async fn create(shard: AppShard, req: Request) -> ApiResult {
    authenticate_admin(&shard, &req).await?;
    let body: NewToken = json_body(&req)?;
    let limits = Limits { uses_allowed: body.uses_allowed, expiry_time: body.expiry_time };
    limits.check()?;
    let token = match (body.token, body.length) {
        (Some(token), _) if well_formed(&token) => token,
        (Some(_), _) => {
            return Err(ApiError::invalid_param(format!(
                "`token` must be 1 to {MAX_TOKEN_CHARS} characters of A-Z, a-z, 0-9, . _ ~ -"
            )))
        }
        (None, Some(length)) if !(1..=MAX_TOKEN_CHARS).contains(&length) => {
            return Err(ApiError::invalid_param(format!("`length` must be between 1 and {MAX_TOKEN_CHARS}")))
        }
        (None, length) => random_string(length.unwrap_or(16)),
    };
    in_turn(&shard, &token.clone(), move |shard| async move {
        let store = &shard.state.store;
        if store.registration_token(&token).await?.is_some() {
            return Err(ApiError::invalid_param(format!("registration token {token} already exists")));
        }
        let mut record =
            RegistrationTokenRecord { token, uses_allowed: None, pending: 0, completed: 0, expiry_time: None };
        limits.apply(&mut record);
        store.write(vec![Op::PutRegistrationToken(record.clone())]).await?;
        Ok(Response::json(&token_json(&record)))
    })
    .await
}

async fn update(shard: AppShard, req: Request) -> ApiResult {
    authenticate_admin(&shard, &req).await?;
    let limits: Limits = json_body(&req)?;
    limits.check()?;
    let token = req.params[0].clone();
    in_turn(&shard, &token.clone(), move |shard| async move {
        let store = &shard.state.store;
        let mut record =
            store.registration_token(&token).await?.ok_or_else(|| ApiError::not_found("no such registration token"))?;
        limits.apply(&mut record);
        store.write(vec![Op::PutRegistrationToken(record.clone())]).await?;
        Ok(Response::json(&token_json(&record)))
    })
    .await
}

async fn delete(shard: AppShard, req: Request) -> ApiResult {
    authenticate_admin(&shard, &req).await?;
    let token = req.params[0].clone();
    in_turn(&shard, &token.clone(), move |shard| async move {
        let store = &shard.state.store;
        if store.registration_token(&token).await?.is_none() {
            return Err(ApiError::not_found("no such registration token"));
        }
        store.write(vec![Op::DeleteRegistrationToken { token }]).await?;
        Ok(Response::json(&json!({})))
    })
    .await
}
