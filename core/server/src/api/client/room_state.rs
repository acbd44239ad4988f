//! Reading a room (spec: client-server API, "Getting events for a room"):
//! `GET /rooms/{roomId}/state`, `/state/{eventType}/{stateKey}`,
//! `/members`, `/joined_members`, `/event/{eventId}`, and the user's
//! `GET /joined_rooms`. Who may read what is decided by
//! `rooms::visibility`: members read the current state, users who left the
//! state when they left, anyone a `world_readable` room's current state.

use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Store;

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::rooms::read::{client_json, readable_state};
use crate::rooms::visibility::{reader, visible, Reader};
use crate::rooms::{on_room, stored_event_at};
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
    let events = on_room(&shard, &req.params[0], move |shard, room| async move {
        let state = readable_state(&shard, &room, &user_id, |_, _| true).await?;
        Ok(state.iter().map(|e| client_json(e, true, None)).collect::<Vec<_>>())
    })
    .await?;
    Ok(Response::json(&events))
}

/// One state event's content, or with `format=event` the whole event
/// (Synapse's extension, which SyTest and some clients use).
async fn one_state(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let whole = match Query::of(&req).get("format") {
        None | Some("content") => false,
        Some("event") => true,
        Some(_) => return Err(ApiError::invalid_param("`format` must be content or event")),
    };
    let user_id = me.user_id.clone();
    let event_type = req.params[1].clone();
    let state_key = req.params.get(2).cloned().unwrap_or_default();
    let body = on_room(&shard, &req.params[0], move |shard, room| async move {
        let state = readable_state(&shard, &room, &user_id, |t, k| t == event_type && k == state_key).await?;
        let event = state.first().ok_or_else(|| ApiError::not_found("no such state event"))?;
        Ok(if whole { client_json(event, true, None) } else { event.content.clone() })
    })
    .await?;
    Ok(Response::json(&body))
}

async fn members(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let only = query.get("membership").map(str::to_owned);
    let not = query.get("not_membership").map(str::to_owned);
    let user_id = me.user_id.clone();
    let chunk = on_room(&shard, &req.params[0], move |shard, room| async move {
        let members = readable_state(&shard, &room, &user_id, |t, _| t == "m.room.member").await?;
        Ok(members
            .iter()
            .filter(|e| {
                let m = e.content.get("membership").and_then(Value::as_str);
                only.as_deref().is_none_or(|o| m == Some(o)) && not.as_deref().is_none_or(|n| m != Some(n))
            })
            .map(|e| client_json(e, true, None))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Response::json(&json!({ "chunk": chunk })))
}

/// The current joined members: for members and peekers of a
/// `world_readable` room, not for users who left (they see the room as it
/// was, and this list is of now).
async fn joined_members(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = me.user_id.clone();
    let joined = on_room(&shard, &req.params[0], move |shard, room| async move {
        if let Reader::Departed { .. } = reader(&shard, &room, &user_id).await? {
            return Err(ApiError::forbidden(format!("{user_id} is not in the room")));
        }
        let room = room.borrow();
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

/// One event, if the user may see it by the room's history visibility:
/// 404 `M_NOT_FOUND` alike for an unknown event and a hidden one (spec:
/// "the event was not found or you do not have permission to read it").
async fn event(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let (user_id, device_id) = (me.user_id.clone(), me.device_id.clone());
    let event_id = req.params[1].clone();
    let room_id = req.params[0].clone();
    let event = on_room(&shard, &room_id.clone(), move |shard, room| async move {
        let not_found = || ApiError::not_found("event not found");
        let (pos, event) = match stored_event_at(&shard.state.store, &event_id).await? {
            Some((Some(pos), event)) if event.room_id == room_id => (pos, event),
            _ => return Err(not_found()),
        };
        let peeking = room.borrow().state.membership(&user_id) != Some("join");
        let seen = visible(&shard, &room, &user_id, peeking, vec![(pos, event)]).await?;
        seen.first().map(|(_, e)| client_json(e, true, Some((&user_id, &device_id)))).ok_or_else(not_found)
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
