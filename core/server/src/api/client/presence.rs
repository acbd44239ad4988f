//! `PUT` and `GET /presence/{userId}/status` (spec: client-server API,
//! "Presence"): "This API sets the given user's presence state." and "Get
//! the given user's presence state." Both run on the user's shard, which
//! holds the user's presence in memory (see `crate::sync::presence`).
//! Users of other servers are unknown here (federation is not served): 404.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::identifiers::UserId;

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::state::AppShard;
use crate::sync::presence::{self, STATES};

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Put, "/presence/{userId}/status", put);
    client_endpoint(router, shard, Method::Get, "/presence/{userId}/status", get);
}

#[derive(Deserialize)]
struct Body {
    presence: String,
    status_msg: Option<String>,
}

async fn put(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    if req.params[0] != me.user_id {
        return Err(ApiError::forbidden("cannot set another user's presence"));
    }
    let body: Body = json_body(&req)?;
    if !STATES.contains(&body.presence.as_str()) {
        return Err(ApiError::bad_json("`presence` must be online, unavailable or offline"));
    }
    let owner = shard.state.placement.shard(&me.user_id);
    let user_id = me.user_id.clone();
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move { presence::set(&shard, &user_id, &body.presence, Some(body.status_msg)).await }
        })
        .await?;
    Ok(Response::json(&json!({})))
}

async fn get(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let user_id = req.params[0].clone();
    let parsed = UserId::parse(&user_id).map_err(|e| ApiError::invalid_param(format!("{user_id}: {e}")))?;
    if parsed.server_name() != shard.state.config.server_name {
        return Err(ApiError::not_found("presence of remote users is not known here"));
    }
    let owner = shard.state.placement.shard(&user_id);
    let content = shard.ask(owner, move |shard| presence::get(shard, &user_id).content()).await?;
    Ok(Response::json(&content))
}
