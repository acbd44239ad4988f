//! `GET /_matrix/federation/v1/query/directory` and
//! `GET /_matrix/federation/v1/query/profile`
//!
//! Spec (server-server API, "Querying for information"): the directory
//! query "performs a query to get the mapped room ID and list of resident
//! homeservers in the room for a given room alias" (404 `M_NOT_FOUND` when
//! the alias is unknown); the profile query performs "a query to get
//! profile information for a user", optionally one `field`
//! (`displayname` or `avatar_url`), 404 when the user does not exist.
//! Both are for names on this server only.

use serde_json::{json, Map};
use tessera_net::http::{Method, Request, Router};
use tessera_storage::Store;

use crate::api::client::directory::resolve;
use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::auth::authenticate;
use crate::federation::server_of;
use crate::request::Query;
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/query/directory", directory);
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/query/profile", profile);
}

async fn directory(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let alias = query.get("room_alias").ok_or_else(|| ApiError::missing_param("room_alias is required"))?;
    let room_id = resolve(&shard, alias).await?;
    let servers = crate::rooms::resident_servers(&shard, &room_id).await?;
    Ok(tessera_net::http::Response::json(&json!({ "room_id": room_id, "servers": servers })))
}

async fn profile(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let user_id = query.get("user_id").ok_or_else(|| ApiError::missing_param("user_id is required"))?;
    let fields: &[&str] = match query.get("field") {
        None => &["displayname", "avatar_url"],
        Some("displayname") => &["displayname"],
        Some("avatar_url") => &["avatar_url"],
        Some(other) => return Err(ApiError::invalid_param(format!("unknown profile field {other}"))),
    };
    if server_of(user_id) != shard.state.config.server_name {
        return Err(ApiError::invalid_param("user is not on this server"));
    }
    let vshard = shard.state.placement.vshard(user_id);
    let user = match shard.state.store.user(vshard, user_id).await? {
        Some(user) if !user.deactivated => user,
        _ => return Err(ApiError::not_found("profile not found")),
    };
    let mut answer = Map::new();
    for field in fields {
        let value = if *field == "displayname" { &user.displayname } else { &user.avatar_url };
        if let Some(value) = value {
            answer.insert((*field).into(), value.clone().into());
        }
    }
    Ok(tessera_net::http::Response::json(&answer))
}
