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

/// `POST /keys/query` and `/user/keys/query`: user → devices (all when
/// empty).
#[derive(Deserialize)]
pub struct QueryBody {
    pub device_keys: HashMap<String, Vec<String>>,
}

async fn query(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let body: QueryBody = json_body(&req)?;
    let (ours, remote) = split_by_server(&shard, body.device_keys);
    let mut found = query_local(&shard, ours).await?;
    let (theirs, failures) = ask_servers(&shard, "query", "device_keys", remote).await;
    found.extend(theirs);
    Ok(Response::json(&json!({ "device_keys": found, "failures": failures })))
}

/// `POST /keys/claim` and `/user/keys/claim`: user → device → algorithm.
#[derive(Deserialize)]
pub struct ClaimBody {
    pub one_time_keys: HashMap<String, HashMap<String, String>>,
}

async fn claim(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let body: ClaimBody = json_body(&req)?;
    let (ours, remote) = split_by_server(&shard, body.one_time_keys);
    let mut claimed = claim_local(&shard, ours).await?;
    let (theirs, failures) = ask_servers(&shard, "claim", "one_time_keys", remote).await;
    claimed.extend(theirs);
    Ok(Response::json(&json!({ "one_time_keys": claimed, "failures": failures })))
}

/// Other servers' users' entries, by server.
type ByServer = HashMap<String, Map<String, Value>>;

/// Our users' entries, and the others' by server (users with no server
/// part dropped).
fn split_by_server<T: serde::Serialize>(shard: &AppShard, by_user: HashMap<String, T>) -> (Vec<(String, T)>, ByServer) {
    let us = &shard.state.config.server_name;
    let mut ours = Vec::new();
    let mut remote = ByServer::new();
    for (user_id, entry) in by_user {
        match server_of(&user_id) {
            "" => {}
            server if server == us => ours.push((user_id, entry)),
            server => drop(remote.entry(server.to_owned()).or_default().insert(user_id, json!(entry))),
        }
    }
    (ours, remote)
}

/// Asks each server for its users' part (`/user/keys/{what}`, the users
/// under `field`), at once: what they answered for their own users, and
/// the failures by server.
async fn ask_servers(
    shard: &AppShard,
    what: &str,
    field: &str,
    remote: ByServer,
) -> (Map<String, Value>, Map<String, Value>) {
    let path = format!("/_matrix/federation/v1/user/keys/{what}");
    let asks = remote.into_iter().map(|(server, users)| {
        let body = json!({ field: users });
        let path = path.clone();
        async move {
            let answer = crate::federation::request::request(shard, &server, Method::Post, &path, Some(&body)).await;
            (server, answer)
        }
    });
    let (mut found, mut failures) = (Map::new(), Map::new());
    for (server, answer) in join_all(asks).await {
        match answer {
            Ok(answer) => {
                // Only what that server may speak for: its own users.
                let users = answer.get(field).and_then(Value::as_object).cloned().unwrap_or_default();
                found.extend(users.into_iter().filter(|(user, _)| server_of(user) == server));
            }
            Err(e) => drop(failures.insert(server, json!({ "error": e.to_string() }))),
        }
    }
    (found, failures)
}

/// The device keys of our users (user → devices, all when empty).
pub async fn query_local(shard: &AppShard, users: Vec<(String, Vec<String>)>) -> Result<Map<String, Value>, ApiError> {
    let mut found = Map::new();
    for (user_id, devices) in users {
        let keys = keys::device_keys(shard, &user_id, &devices).await?;
        found.insert(user_id, Value::Object(keys));
    }
    Ok(found)
}

/// Claims a key of the named algorithm from each named device of our
/// users: user → device → `{"algorithm:key_id": key}`; devices with none
/// left, and users with none at all, absent.
pub async fn claim_local(
    shard: &AppShard,
    users: Vec<(String, HashMap<String, String>)>,
) -> Result<Map<String, Value>, ApiError> {
    let mut claimed = Map::new();
    for (user_id, devices) in users {
        let mut keys = Map::new();
        for (device_id, algorithm) in devices {
            if let Some((id, key)) = keys::claim(shard, &user_id, &device_id, &algorithm).await? {
                keys.insert(device_id, json!({ id: key }));
            }
        }
        if !keys.is_empty() {
            claimed.insert(user_id, Value::Object(keys));
        }
    }
    Ok(claimed)
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
