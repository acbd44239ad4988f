//! The deprecated v1 event stream `GET /events` (spec: client-server API,
//! legacy "Syncing" section, still served by Synapse and used by SyTest):
//! the events after `from` (a `/sync` token; default: now), waiting up to
//! `timeout` ms for some, as one list with each event's `room_id`.
//!
//! For the user's own rooms it is a `/sync` from `from`, flattened: the
//! same long-poll on the user's shard. With `room_id` of a room the user is
//! not in (a `world_readable` room they peek into, or one they left), the
//! room's timeline after the token's position for the room's shard is read
//! directly; nothing wakes such a reader, so it looks again every
//! [`PEEK_POLL`] until `timeout`.

use std::time::Duration;

use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_net::runtime::{sleep, Instant};
use tessera_storage::Direction;

use super::initial_sync::v1_event;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::rooms::on_room;
use crate::rooms::read::timeline;
use crate::rooms::visibility::{reader, visible, Reader};
use crate::state::AppShard;
use crate::sync::token::SyncToken;
use crate::sync::{current_token, sync, SyncRequest, MAX_TIMEOUT};

/// Events one answer carries at most, per room.
const LIMIT: usize = 100;

/// How often a peeking reader's room is looked at again while waiting.
const PEEK_POLL: Duration = Duration::from_millis(100);

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/events", events);
}

async fn events(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let timeout = Duration::from_millis(query.number::<u64>("timeout")?.unwrap_or(0)).min(MAX_TIMEOUT);
    // Synapse reads `limit` as a pagination limit: a negative or
    // non-numeric one is a 400. It caps each room's events here.
    let limit = query.number::<usize>("limit")?.map_or(LIMIT, |l| l.min(LIMIT));
    let room_id = query.get("room_id").map(str::to_owned);
    let from = match query.get("from") {
        Some(token) => {
            SyncToken::parse(token).ok_or_else(|| ApiError::invalid_param("`from` is not a stream token"))?
        }
        None => current_token(&shard, &me.user_id).await?,
    };
    if let Some(room_id) = &room_id {
        let user_id = me.user_id.clone();
        let member = on_room(&shard, room_id, move |shard, room| async move {
            Ok(matches!(reader(&shard, &room, &user_id).await?, Reader::Joined))
        })
        .await?;
        if !member {
            return peek(&shard, &me.user_id, room_id, from, timeout).await;
        }
    } else if me.is_guest {
        return Err(ApiError::forbidden("guests must name a room_id to peek into"));
    }
    let request = SyncRequest {
        user_id: me.user_id.clone(),
        device_id: me.device_id.clone(),
        since: Some(from.clone()),
        timeout,
        full_state: false,
        timeline_limit: limit,
        filter: Default::default(),
        set_presence: None,
    };
    let body = sync(&shard, request).await?;
    let mut chunk = Vec::new();
    for section in ["join", "leave"] {
        let Some(Value::Object(rooms)) = body["rooms"].get(section) else { continue };
        for (id, room) in rooms {
            if room_id.as_ref().is_some_and(|wanted| wanted != id) {
                continue;
            }
            for part in ["timeline", "ephemeral"] {
                for event in room[part]["events"].as_array().into_iter().flatten() {
                    let mut event = event.clone();
                    event["room_id"] = id.clone().into();
                    if let Some(sender) = event.get("sender").cloned() {
                        event["user_id"] = sender;
                    }
                    chunk.push(event);
                }
            }
        }
    }
    let end = body["next_batch"].clone();
    Ok(Response::json(&json!({ "chunk": chunk, "start": from.to_string(), "end": end })))
}

/// The events of a room the user is not joined to, after `from`.
async fn peek(shard: &AppShard, user_id: &str, room_id: &str, from: SyncToken, timeout: Duration) -> ApiResult {
    let placement = &shard.state.placement;
    let (k, shards) = (placement.shard(room_id), placement.shard_count());
    let after = from.position(k, shards);
    let deadline = Instant::now() + timeout;
    loop {
        let user_id = user_id.to_owned();
        let (events, reached) = on_room(shard, room_id, move |shard, room| async move {
            let reader = reader(&shard, &room, &user_id).await?;
            let durable = shard.state.rooms.stream.durable();
            let before = match reader {
                Reader::Departed { leave_pos, .. } => leave_pos + 1,
                _ => durable + 1,
            };
            let page = timeline(&shard, &room, Some(after), Some(before), Direction::Forward, LIMIT).await?;
            let last = page.last().map_or(durable.max(after), |(pos, _)| *pos);
            let page = visible(&shard, &room, &user_id, reader.peeking(), page).await?;
            Ok((page.iter().map(|(_, e)| v1_event(e)).collect::<Vec<_>>(), last))
        })
        .await?;
        if !events.is_empty() || Instant::now() >= deadline || shard.state.shutdown.is_triggered() {
            let mut end = from.clone();
            end.positions = (0..shards).map(|j| if j == k { reached } else { from.position(j, shards) }).collect();
            return Ok(Response::json(&json!({ "chunk": events, "start": from.to_string(), "end": end.to_string() })));
        }
        sleep(PEEK_POLL.min(deadline - Instant::now())).await;
    }
}
