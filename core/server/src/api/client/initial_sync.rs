//! The deprecated v1 snapshots `GET /initialSync` and
//! `GET /rooms/{roomId}/initialSync` (spec: client-server API, legacy
//! "Syncing" section, still served by Synapse and used by SyTest): per room,
//! the latest `limit` messages, the state and the user's membership, as
//! `rooms::visibility` lets the user read them. The stream token `end`
//! comes from the user's sync state (`sync::current_token`), so `/events`
//! and `/sync` continue from it.

use std::collections::HashSet;

use futures_util::future::join_all;
use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::StreamPos;
use tessera_storage::{Direction, Store};

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::rooms::ephemeral::ephemeral_events;
use crate::rooms::event::RoomEvent;
use crate::rooms::on_room;
use crate::rooms::read::{client_json, readable_state, timeline};
use crate::rooms::visibility::{reader, visible, Reader};
use crate::state::AppShard;
use crate::sync::current_token;
use crate::sync::presence::{self, LARGE_ROOM};
use crate::sync::token::SyncToken;

/// Messages per room when the request gives no `limit` (Synapse's).
const DEFAULT_LIMIT: usize = 10;

/// Most messages per room.
const MAX_LIMIT: usize = 100;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/initialSync", initial_sync);
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/initialSync", room_initial_sync);
}

/// An event as the v1 APIs show it: the client format plus `user_id`, the
/// sender under its old name, which v1 clients (and SyTest) key on.
pub fn v1_event(event: &RoomEvent) -> Value {
    let mut json = client_json(event, true, None);
    json["user_id"] = event.sender.clone().into();
    json
}

/// The presence of `users` as the v1 APIs show it: with `user_id` in the
/// content; offline for those with none.
async fn v1_presence(shard: &AppShard, users: HashSet<String>) -> Result<Vec<Value>, ApiError> {
    let mut events = presence::current(shard, users, true).await?;
    for event in &mut events {
        event["content"]["user_id"] = event["sender"].clone();
    }
    Ok(events)
}

fn limit(query: &Query) -> Result<usize, ApiError> {
    Ok(query.number::<usize>("limit")?.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT))
}

/// One room's snapshot, built on the room's shard, how far the room's
/// shard had got (the stream token's position for it), and the joined
/// members whose presence goes with it (none in a large room).
async fn room_part(
    shard: &AppShard,
    room_id: &str,
    user_id: String,
    limit: usize,
) -> Result<(Value, StreamPos, Vec<String>), ApiError> {
    on_room(shard, room_id, move |shard, room| async move {
        let reader = reader(&shard, &room, &user_id).await?;
        let durable = shard.state.rooms.stream.durable();
        let before = match reader {
            Reader::Departed { leave_pos, .. } => leave_pos + 1,
            _ => durable + 1,
        };
        let mut events = timeline(&shard, &room, None, Some(before), Direction::Backward, limit).await?;
        events.reverse();
        let events = visible(&shard, &room, &user_id, reader.peeking(), events).await?;
        let state = readable_state(&shard, &room, &user_id, |_, _| true).await?;
        let room = room.borrow();
        let receipts = match reader {
            Reader::Joined => ephemeral_events(&room, &user_id, None, durable)
                .into_iter()
                .filter(|e| e["type"] == "m.receipt")
                .map(|mut e| {
                    e["room_id"] = room.id.clone().into();
                    e
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut body = json!({
            "room_id": room.id,
            "messages": {
                "chunk": events.iter().map(|(_, e)| v1_event(e)).collect::<Vec<_>>(),
                "start": format!("p{}", events.first().map_or(before, |(pos, _)| *pos)),
            },
            "state": state.iter().map(|e| v1_event(e)).collect::<Vec<_>>(),
            "presence": [],
            "receipts": receipts,
        });
        if let Some(membership) = room.state.membership(&user_id) {
            body["membership"] = membership.into();
        }
        let members = match (reader, room.state.joined().count() <= LARGE_ROOM) {
            (Reader::Joined, true) => room.state.joined().cloned().collect(),
            _ => Vec::new(),
        };
        Ok((body, durable, members))
    })
    .await
}

/// `end` tokens: the user's token of now, not behind what the rooms read
/// had reached.
fn token_after(mut token: SyncToken, reached: &[(usize, StreamPos)]) -> String {
    for &(k, pos) in reached {
        if let Some(slot) = token.positions.get_mut(k) {
            *slot = (*slot).max(pos);
        }
    }
    token.to_string()
}

/// The user's account data of one room (`None`) or global (`Some("")`),
/// as events.
async fn account_data(shard: &AppShard, user_id: &str) -> Result<Vec<(Option<String>, Value)>, ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    let records = shard.state.store.all_account_data(vshard, user_id).await?;
    Ok(records
        .into_iter()
        .map(|r| {
            let content: Value = serde_json::from_slice(&r.content).unwrap_or_else(|_| json!({}));
            (r.room_id, json!({ "type": r.data_type, "content": content }))
        })
        .collect())
}

async fn room_initial_sync(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let limit = limit(&Query::of(&req))?;
    let room_id = req.params[0].clone();
    let token = current_token(&shard, &me.user_id).await?;
    let (mut body, reached, members) = room_part(&shard, &room_id, me.user_id.clone(), limit).await?;
    body["presence"] = v1_presence(&shard, members.into_iter().collect()).await?.into();
    let room_shard = shard.state.placement.shard(&room_id);
    body["messages"]["end"] = token_after(token, &[(room_shard, reached)]).into();
    let published = shard.state.store.published_rooms().await?.contains(&room_id);
    body["visibility"] = if published { "public" } else { "private" }.into();
    let data = account_data(&shard, &me.user_id).await?;
    body["account_data"] =
        data.into_iter().filter(|(r, _)| r.as_deref() == Some(room_id.as_str())).map(|(_, e)| e).collect();
    Ok(Response::json(&body))
}

/// Every room the user is in or invited to (and with `archived=true`,
/// has left), each as `/rooms/{roomId}/initialSync` shows it.
async fn initial_sync(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let limit = limit(&query)?;
    let archived = query.boolean("archived")?.unwrap_or(false);
    let token = current_token(&shard, &me.user_id).await?;
    let vshard = shard.state.placement.vshard(&me.user_id);
    let memberships = shard.state.store.user_rooms(vshard, &me.user_id, None).await?;
    let wanted: Vec<_> = memberships
        .into_iter()
        .filter(|r| matches!(r.membership.as_str(), "join" | "invite") || archived && r.membership == "leave")
        .collect();
    let parts = wanted.iter().map(|r| async {
        if r.membership == "invite" {
            return invited_part(&shard, &r.room_id, me.user_id.clone()).await.map(|body| (body, None));
        }
        let (body, reached, members) = room_part(&shard, &r.room_id, me.user_id.clone(), limit).await?;
        Ok((body, Some((shard.state.placement.shard(&r.room_id), reached, members))))
    });
    let mut rooms = Vec::new();
    let mut reached = Vec::new();
    // Our own presence, and that of everyone we share a room with.
    let mut people: HashSet<String> = HashSet::from([me.user_id.clone()]);
    for (membership, part) in wanted.iter().zip(join_all(parts).await) {
        match part {
            Ok((body, at)) => {
                rooms.push(body);
                if let Some((k, pos, members)) = at {
                    reached.push((k, pos));
                    people.extend(members);
                }
            }
            Err(e) => tracing::warn!(room = membership.room_id, error = e.message, "initialSync skipped a room"),
        }
    }
    let end = token_after(token, &reached);
    let published = shard.state.store.published_rooms().await?;
    let mut receipts = Vec::new();
    for room in &mut rooms {
        let listed = room["room_id"].as_str().is_some_and(|id| published.iter().any(|p| p == id));
        room["visibility"] = if listed { "public" } else { "private" }.into();
        receipts.extend(room.get("receipts").and_then(Value::as_array).into_iter().flatten().cloned());
    }
    let data = account_data(&shard, &me.user_id).await?;
    let mut global = Vec::new();
    for (room_id, event) in data {
        match room_id {
            None => global.push(event),
            Some(room_id) => {
                if let Some(room) = rooms.iter_mut().find(|r| r["room_id"] == room_id.as_str()) {
                    room["account_data"].as_array_mut().map(|a| a.push(event.clone())).unwrap_or_else(|| {
                        room["account_data"] = json!([event]);
                    });
                }
            }
        }
    }
    for room in &mut rooms {
        room["messages"]["end"] = end.clone().into();
        if room.get("account_data").is_none() {
            room["account_data"] = json!([]);
        }
    }
    Ok(Response::json(&json!({
        "end": end,
        "rooms": rooms,
        "presence": v1_presence(&shard, people).await?,
        "account_data": global,
        "receipts": receipts,
    })))
}

/// A room the user is invited to: the invite and who sent it.
async fn invited_part(shard: &AppShard, room_id: &str, user_id: String) -> Result<Value, ApiError> {
    on_room(shard, room_id, move |_, room| async move {
        let room = room.borrow();
        let invite = room.state.event("m.room.member", &user_id).ok_or_else(|| ApiError::not_found("no invite"))?;
        Ok(json!({
            "room_id": room.id,
            "membership": "invite",
            "inviter": invite.sender,
            "invite": v1_event(invite),
            "messages": { "chunk": [], "start": "p0" },
            "state": [],
        }))
    })
    .await
}
