//! The key management API (spec: client-server API § End-to-End
//! Encryption): `POST /keys/upload` ("publishes end-to-end encryption keys
//! for the device"), `POST /keys/query` ("returns the current devices and
//! identity keys for the given users"), `POST /keys/claim` ("claims
//! one-time keys for use in pre-key messages") and `GET /keys/changes`
//! ("gets a list of users who have updated their device identity keys
//! since a previous sync token").
//!
//! Users of other servers are asked of their server over federation
//! (`/user/keys/query`, `/user/keys/claim`), one request per server; a
//! server that fails is named in `failures`. Cross-signing keys are not
//! served yet: answers carry none.

use std::collections::HashMap;

use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};

use crate::accounts::keys::{self, Upload};
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::federation::server_of;
use crate::request::{json_body, Query};
use crate::state::AppShard;
use crate::sync::token::SyncToken;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/keys/upload", upload);
    client_endpoint(router, shard, Method::Post, "/keys/query", query);
    client_endpoint(router, shard, Method::Post, "/keys/claim", claim);
    client_endpoint(router, shard, Method::Get, "/keys/changes", changes);
}

#[derive(Deserialize)]
struct UploadBody {
    device_keys: Option<Value>,
    #[serde(default)]
    one_time_keys: Map<String, Value>,
    #[serde(default)]
    fallback_keys: Map<String, Value>,
}

async fn upload(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: UploadBody = json_body(&req)?;
    let upload =
        Upload { device_keys: body.device_keys, one_time_keys: body.one_time_keys, fallback_keys: body.fallback_keys };
    let counts = keys::upload(&shard, &me.user_id, &me.device_id, upload).await?;
    Ok(Response::json(&json!({ "one_time_key_counts": counts.one_time })))
}

#[derive(Deserialize)]
struct QueryBody {
    device_keys: HashMap<String, Vec<String>>,
}

async fn query(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let body: QueryBody = json_body(&req)?;
    Ok(Response::json(&query_keys(&shard, body.device_keys).await?))
}

/// `device_keys` of `wanted` (user → devices, all when empty): ours read
/// here, others' asked of their servers.
async fn query_keys(shard: &AppShard, wanted: HashMap<String, Vec<String>>) -> Result<Value, ApiError> {
    let us = shard.state.config.server_name.clone();
    let mut found = Map::new();
    let mut remote: HashMap<String, Map<String, Value>> = HashMap::new();
    for (user_id, devices) in wanted {
        let server = server_of(&user_id).to_owned();
        if server.is_empty() {
            continue;
        }
        if server == us {
            found.insert(user_id.clone(), Value::Object(keys::device_keys(shard, &user_id, &devices).await?));
        } else {
            remote.entry(server).or_default().insert(user_id, devices.into());
        }
    }
    let asks = remote.into_iter().map(|(server, users)| async move {
        let body = json!({ "device_keys": users });
        let path = "/_matrix/federation/v1/user/keys/query";
        (server.clone(), crate::federation::request::request(shard, &server, Method::Post, path, Some(&body)).await)
    });
    let mut failures = Map::new();
    for (server, answer) in join_all(asks).await {
        match answer {
            Ok(answer) => {
                // Only what that server may speak for: its own users.
                let users = answer.get("device_keys").and_then(Value::as_object).cloned().unwrap_or_default();
                found.extend(users.into_iter().filter(|(user, _)| server_of(user) == server));
            }
            Err(e) => drop(failures.insert(server, json!({ "error": e.to_string() }))),
        }
    }
    Ok(json!({ "device_keys": found, "failures": failures }))
}

#[derive(Deserialize)]
struct ClaimBody {
    one_time_keys: HashMap<String, HashMap<String, String>>,
}

async fn claim(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let body: ClaimBody = json_body(&req)?;
    let us = shard.state.config.server_name.clone();
    let mut claimed = Map::new();
    let mut remote: HashMap<String, Map<String, Value>> = HashMap::new();
    for (user_id, devices) in body.one_time_keys {
        let server = server_of(&user_id).to_owned();
        if server == us {
            let keys = claim_local(&shard, &user_id, devices).await?;
            if !keys.is_empty() {
                claimed.insert(user_id, Value::Object(keys));
            }
        } else if !server.is_empty() {
            remote.entry(server).or_default().insert(user_id, json!(devices));
        }
    }
    let shard = &shard;
    let asks = remote.into_iter().map(|(server, users)| async move {
        let body = json!({ "one_time_keys": users });
        let path = "/_matrix/federation/v1/user/keys/claim";
        (server.clone(), crate::federation::request::request(shard, &server, Method::Post, path, Some(&body)).await)
    });
    let mut failures = Map::new();
    for (server, answer) in join_all(asks).await {
        match answer {
            Ok(answer) => {
                let users = answer.get("one_time_keys").and_then(Value::as_object).cloned().unwrap_or_default();
                claimed.extend(users.into_iter().filter(|(user, _)| server_of(user) == server));
            }
            Err(e) => drop(failures.insert(server, json!({ "error": e.to_string() }))),
        }
    }
    Ok(Response::json(&json!({ "one_time_keys": claimed, "failures": failures })))
}

/// Claims a key of the named algorithm from each named device of one of
/// our users: device → `{"algorithm:key_id": key}`, devices with none left
/// absent.
pub async fn claim_local(
    shard: &AppShard,
    user_id: &str,
    devices: HashMap<String, String>,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (device_id, algorithm) in devices {
        if let Some((id, key)) = keys::claim(shard, user_id, &device_id, &algorithm).await? {
            out.insert(device_id, json!({ id: key }));
        }
    }
    Ok(out)
}

async fn changes(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let token = |name: &str| {
        let value = query.get(name).ok_or_else(|| ApiError::missing_param(format!("`{name}` is required")))?;
        SyncToken::parse(value).ok_or_else(|| ApiError::invalid_param(format!("`{name}` is not a sync token")))
    };
    let (from, to) = (token("from")?, token("to")?);
    let (changed, left) = crate::sync::device_changes(&shard, &me.user_id, &from, &to).await?;
    Ok(Response::json(&json!({ "changed": changed, "left": left })))
}
