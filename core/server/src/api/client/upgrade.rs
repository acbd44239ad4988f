//! `POST /rooms/{roomId}/upgrade` (spec: client-server API, "Room
//! Upgrades"): replaces a room with a new one of another version (see
//! `rooms::upgrade`).

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::room_version::RoomVersionRules;

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::rooms::upgrade::upgrade_room;
use crate::state::AppShard;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/upgrade", upgrade);
}

#[derive(Deserialize)]
struct Body {
    new_version: String,
}

async fn upgrade(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: Body = json_body(&req)?;
    let version = RoomVersionRules::get(&body.new_version).ok_or_else(|| {
        ApiError::new(400, "M_UNSUPPORTED_ROOM_VERSION", format!("unknown room version {}", body.new_version))
    })?;
    let replacement = upgrade_room(&shard, &req.params[0], &me.user_id, version).await?;
    Ok(Response::json(&json!({ "replacement_room": replacement })))
}
