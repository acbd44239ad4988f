//! `POST /_matrix/client/v3/logout` and `/logout/all`.
//!
//! Spec (client-server API, "Logout"): logging out invalidates the access
//! token; like Synapse, Tessera also deletes the device it belonged to (its
//! keys and to-device inbox go with it). `/logout/all` does so for every
//! device of the user.

use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};

use crate::accounts;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::ApiResult;
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/logout", logout);
    client_endpoint(router, shard, Method::Post, "/logout/all", logout_all);
}

async fn logout(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    accounts::delete_devices(&shard, &me.user_id, Some(me.device_id.clone())).await?;
    Ok(Response::json(&json!({})))
}

async fn logout_all(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    accounts::delete_devices(&shard, &me.user_id, None).await?;
    Ok(Response::json(&json!({})))
}
