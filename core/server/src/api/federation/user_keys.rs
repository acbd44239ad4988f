//! `POST /_matrix/federation/v1/user/keys/query`,
//! `POST /_matrix/federation/v1/user/keys/claim` and
//! `GET /_matrix/federation/v1/user/devices/{userId}`
//!
//! Spec (server-server API, "End-to-End Encryption" and "Device
//! Management"): the query "returns the current devices and identity keys
//! for the given users", the claim "claims one-time keys for use in
//! pre-key messages", and the devices request returns "all of the user's
//! current devices" with their keys, for another server's clients. Only
//! users of this server are answered; others are left out.

use std::collections::HashMap;

use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Store;

use crate::accounts::keys::device_keys;
use crate::api::client::keys::{claim_local, query_local, ClaimBody, QueryBody};
use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::auth::authenticate;
use crate::federation::server_of;
use crate::request::{json_body, now_ms};
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Post, "/_matrix/federation/v1/user/keys/query", query);
    endpoint(router, shard, Method::Post, "/_matrix/federation/v1/user/keys/claim", claim);
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/user/devices/{userId}", devices);
}

async fn query(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let body: QueryBody = json_body(&req)?;
    let found = query_local(&shard, ours(&shard, body.device_keys)).await?;
    Ok(Response::json(&json!({ "device_keys": found })))
}

async fn claim(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let body: ClaimBody = json_body(&req)?;
    let claimed = claim_local(&shard, ours(&shard, body.one_time_keys)).await?;
    Ok(Response::json(&json!({ "one_time_keys": claimed })))
}

/// The entries of users of this server; the others are not ours to answer.
fn ours<T>(shard: &AppShard, by_user: HashMap<String, T>) -> Vec<(String, T)> {
    let us = &shard.state.config.server_name;
    by_user.into_iter().filter(|(user, _)| server_of(user) == us).collect()
}

async fn devices(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let user_id = &req.params[0];
    if server_of(user_id) != shard.state.config.server_name {
        return Err(ApiError::invalid_param("not a user of this server"));
    }
    let vshard = shard.state.placement.vshard(user_id);
    let mut keys = device_keys(&shard, user_id, &[]).await?;
    let devices: Vec<Value> = shard
        .state
        .store
        .devices(vshard, user_id)
        .await?
        .into_iter()
        .map(|device| {
            let mut entry = json!({ "device_id": device.device_id });
            if let Some(mut device_keys) = keys.remove(&device.device_id) {
                if let Some(object) = device_keys.as_object_mut() {
                    object.remove("unsigned");
                }
                entry["keys"] = device_keys;
            }
            if let Some(name) = device.display_name {
                entry["device_display_name"] = name.into();
            }
            entry
        })
        .collect();
    // `stream_id`: increases with each change; now, as the updates we send.
    Ok(Response::json(&json!({ "user_id": user_id, "stream_id": now_ms(), "devices": devices })))
}
