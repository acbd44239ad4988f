//! `GET` and `POST /_matrix/federation/v1/publicRooms`
//!
//! Spec (server-server API, "Public Room Directory"): "Gets all the public
//! rooms for the homeserver", the same list and paging as the client API's
//! `/publicRooms` (POST adds the `filter`), for another server's users.

use tessera_net::http::{Method, Request, Response, Router};

use crate::api::client::directory::{list_public_rooms, PublicRoomsBody};
use crate::api::endpoint;
use crate::error::ApiResult;
use crate::federation::auth::authenticate;
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/publicRooms", public_rooms);
    endpoint(router, shard, Method::Post, "/_matrix/federation/v1/publicRooms", public_rooms);
}

async fn public_rooms(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    let request = PublicRoomsBody::of(&req)?;
    Ok(Response::json(&list_public_rooms(&shard, request).await?))
}
