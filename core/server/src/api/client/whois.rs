//! `GET /admin/whois/{userId}` (spec: client-server API, "Server
//! Administration") and Synapse's `GET /_synapse/admin/v1/whois/{userId}`:
//! a user's devices with where and when they were last seen. Only for the
//! user themselves or a server admin (`is_admin` of the account, set by
//! Synapse's shared-secret registration, as Synapse marks its admins).
//!
//! Tessera records a device's last address and time, not its user agent,
//! so connections carry `ip` and `last_seen` only.

use serde_json::{json, Map};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Store;

use crate::api::{client_endpoint, endpoint};
use crate::auth::{authenticate, is_server_admin};
use crate::error::{ApiError, ApiResult};
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/admin/whois/{userId}", whois);
    endpoint(router, shard, Method::Get, "/_synapse/admin/v1/whois/{userId}", whois);
}

async fn whois(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let target = req.params[0].clone();
    let store = &shard.state.store;
    if target != me.user_id && !is_server_admin(&shard, &me.user_id).await? {
        return Err(ApiError::forbidden("only server admins may look up other users"));
    }
    let vshard = shard.state.placement.vshard(&target);
    if store.user(vshard, &target).await?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    let mut devices = Map::new();
    for device in store.devices(vshard, &target).await? {
        let mut connection = Map::new();
        if let Some(ip) = device.last_seen_ip {
            connection.insert("ip".into(), ip.into());
        }
        if let Some(ts) = device.last_seen_ts {
            connection.insert("last_seen".into(), ts.into());
        }
        let connections = if connection.is_empty() { vec![] } else { vec![connection] };
        devices.insert(device.device_id, json!({ "sessions": [{ "connections": connections }] }));
    }
    Ok(Response::json(&json!({ "user_id": target, "devices": devices })))
}
