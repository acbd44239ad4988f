//! Reading a room (spec: client-server API, "Getting events for a room"):
//! `GET /rooms/{roomId}/state`, `/state/{eventType}/{stateKey}`,
//! `/members`, `/joined_members`, `/event/{eventId}`, and the user's
//! `GET /joined_rooms`. Readers must be joined.

use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Store;

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::rooms::on_room;
use crate::rooms::read::{client_json, require_joined};
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/state", full_state);
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/state/{eventType}/{stateKey}", one_state);
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/state/{eventType}", one_state);
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/members", members);
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/joined_members", joined_members);
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/event/{eventId}", event);
    client_endpoint(router, shard, Method::Get, "/joined_rooms", joined_rooms);
}

async fn full_state(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = me.user_id.clone();
    let events = on_room(&shard, &req.params[0], move |_, room| async move {
        let room = room.borrow();
        require_joined(&room, &user_id)?;
        Ok(room.state.events().map(|e| client_json(e, true, None)).collect::<Vec<_>>())
    })
    .await?;
    Ok(Response::json(&events))
}

async fn one_state(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = me.user_id.clone();
    let event_type = req.params[1].clone();
    let state_key = req.params.get(2).cloned().unwrap_or_default();
    let content = on_room(&shard, &req.params[0], move |_, room| async move {
        let room = room.borrow();
        require_joined(&room, &user_id)?;
        room.state
            .event(&event_type, &state_key)
            .map(|e| e.content.clone())
            .ok_or_else(|| ApiError::not_found("no such state event"))
    })
    .await?;
    Ok(Response::json(&content))
}

async fn members(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let only = query.get("membership").map(str::to_owned);
    let not = query.get("not_membership").map(str::to_owned);
    let user_id = me.user_id.clone();
    let chunk = on_room(&shard, &req.params[0], move |_, room| async move {
        let room = room.borrow();
        require_joined(&room, &user_id)?;
        Ok(room
            .state
            .of_type("m.room.member")
            .filter(|(_, e)| {
                let m = e.content.get("membership").and_then(Value::as_str);
                only.as_deref().is_none_or(|o| m == Some(o)) && not.as_deref().is_none_or(|n| m != Some(n))
            })
            .map(|(_, e)| client_json(e, true, None))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Response::json(&json!({ "chunk": chunk })))
}

async fn joined_members(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = me.user_id.clone();
    let joined = on_room(&shard, &req.params[0], move |_, room| async move {
        let room = room.borrow();
        require_joined(&room, &user_id)?;
        let mut joined = Map::new();
        for (user, event) in room.state.of_type("m.room.member") {
            if event.content.get("membership").and_then(Value::as_str) == Some("join") {
                let field = |k: &str| event.content.get(k).filter(|v| v.is_string()).cloned().unwrap_or(Value::Null);
                joined.insert(
                    user.clone(),
                    json!({ "display_name": field("displayname"), "avatar_url": field("avatar_url") }),
                );
            }
        }
        Ok(joined)
    })
    .await?;
    Ok(Response::json(&json!({ "joined": joined })))
}

async fn event(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = me.user_id.clone();
    let event_id = req.params[1].clone();
    let room_id = req.params[0].clone();
    let event = on_room(&shard, &room_id.clone(), move |shard, room| async move {
        require_joined(&room.borrow(), &user_id)?;
        let event = crate::rooms::stored_event(&shard.state.store, &event_id).await?;
        event
            .filter(|e| e.room_id == room_id)
            .map(|e| client_json(&e, true, None))
            .ok_or_else(|| ApiError::not_found("event not found"))
    })
    .await?;
    Ok(Response::json(&event))
}

async fn joined_rooms(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let vshard = shard.state.placement.vshard(&me.user_id);
    let rooms = shard.state.store.user_rooms(vshard, &me.user_id, Some("join")).await?;
    let ids: Vec<String> = rooms.into_iter().map(|r| r.room_id).collect();
    Ok(Response::json(&json!({ "joined_rooms": ids })))
}
