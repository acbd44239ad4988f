//! Knocking on a room another server holds (server-server API, "Knocking
//! upon a room"): `make_knock` for a template from a resident server,
//! signed here, then `send_knock`, whose answer is the stripped state the
//! knocker is shown until someone invites them in. The knock is kept in
//! this server's view of the room (`rooms::remember_outside`), like an
//! invite received, so `/sync` lists the room under `knock`.

use serde_json::{json, Map, Value};
use tessera_net::http::Method;

use super::join::{make_membership, through_first};
use super::request::request;
use crate::error::ApiError;
use crate::request::query_encode;
use crate::rooms::event::Draft;
use crate::rooms::{on_room_shard, remember_outside, send};
use crate::state::AppShard;

/// `draft` (a knock) into `room_id`: here if a user of ours is in the room,
/// else through the first of `via` that takes it.
pub async fn knock(shard: &AppShard, room_id: &str, draft: Draft, via: Vec<String>) -> Result<(), ApiError> {
    let us = shard.state.config.server_name.clone();
    let resident = on_room_shard(shard, room_id, {
        let us = us.clone();
        move |_, room| async move { Ok(room.is_some_and(|r| r.borrow().has_member_of(&us))) }
    })
    .await?;
    if resident || via.iter().all(|server| *server == us) {
        return send(shard, room_id, draft, None).await.map(drop);
    }
    let Value::Object(content) = draft.content else {
        return Err(ApiError::internal("a knock's content is not an object"));
    };
    let user_id = draft.sender.as_str();
    through_first(shard, room_id, &via, "knock", |server| knock_via(shard, server, room_id, user_id, content.clone()))
        .await
}

async fn knock_via(
    shard: &AppShard,
    server: &str,
    room_id: &str,
    user_id: &str,
    content: Map<String, Value>,
) -> Result<(), ApiError> {
    let (rules, event, bytes) = make_membership(shard, server, room_id, user_id, "knock", content).await?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let path = format!("/_matrix/federation/v1/send_knock/{}/{}", query_encode(room_id), query_encode(&event.event_id));
    let answer = request(shard, server, Method::Put, &path, Some(&body)).await?;
    let stripped = answer.get("knock_room_state").filter(|s| s.is_array()).cloned().unwrap_or_else(|| json!([]));
    let mut kept = body;
    kept["unsigned"] = json!({ "knock_room_state": stripped });
    let kept = serde_json::to_vec(&kept).map_err(|e| ApiError::internal(e.to_string()))?;
    let (id, event_id) = (room_id.to_owned(), event.event_id.clone());
    on_room_shard(shard, room_id, move |shard, room| async move {
        remember_outside(&shard, &id, room, rules, event_id, kept).await
    })
    .await
}
