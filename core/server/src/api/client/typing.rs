//! `PUT /rooms/{roomId}/typing/{userId}` (spec: client-server API, "Typing
//! Notifications"): held in memory by the room's shard, expiring after
//! `timeout`, delivered through `/sync`'s `ephemeral`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::rooms::ephemeral::{set_typing, share_typing};
use crate::rooms::on_room;
use crate::rooms::read::require_joined;
use crate::state::AppShard;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Put, "/rooms/{roomId}/typing/{userId}", put);
}

#[derive(Deserialize)]
struct Body {
    typing: bool,
    timeout: Option<u64>,
}

async fn put(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: Body = json_body(&req)?;
    if req.params[1] != me.user_id {
        return Err(ApiError::forbidden("cannot set another user's typing state"));
    }
    let timeout = match (body.typing, body.timeout) {
        (true, Some(ms)) => Some(Duration::from_millis(ms)),
        (true, None) => Some(Duration::from_secs(30)),
        (false, _) => None,
    };
    let user_id = me.user_id.clone();
    on_room(&shard, &req.params[0], move |shard, room| async move {
        require_joined(&room.borrow(), &user_id)?;
        set_typing(&shard, &room, &user_id, timeout);
        share_typing(&shard, &mut room.borrow_mut(), &user_id, timeout.is_some());
        Ok(())
    })
    .await?;
    Ok(Response::json(&json!({})))
}
