//! The deprecated v1 event stream `GET /events` (spec: client-server API,
//! legacy "Syncing" section, still served by Synapse and used by SyTest):
//! the events after `from` (a `/sync` token; default: now), oldest first,
//! waiting up to `timeout` ms for some, as one list with each event's
//! `room_id`; `end` is the token to continue from.
//!
//! For the user's own rooms a `/sync` from `from` does the waiting (the same
//! long-poll on the user's shard) and names the rooms with news, their
//! ephemeral events and the user's account data of them (tags); each such room's timeline is then read forward from
//! the token, at most `limit` events, because a sync's timeline holds the
//! newest events and a stream must hand out the oldest first. With
//! `room_id` of a room the user is not in (a `world_readable` room they
//! peek into, or one they left) the room's timeline is read the same way;
//! nothing wakes such a reader, so it looks again every [`PEEK_POLL`] until
//! `timeout`.

use std::time::Duration;

use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_net::runtime::{sleep, Instant};
use tessera_storage::records::StreamPos;
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
        // Polling the event stream is being online, as in Synapse.
        set_presence: (!me.is_guest).then(|| "online".to_owned()),
    };
    let body = sync(&shard, request).await?;
    let mut next = body["next_batch"].as_str().and_then(SyncToken::parse).unwrap_or_else(|| from.clone());
    let placement = &shard.state.placement;
    let shards = placement.shard_count();
    next.positions = (0..shards).map(|k| next.position(k, shards)).collect();
    // Rooms with news, each read forward from the token. A room with more
    // than `limit` new events ends its shard's part of `end` at its last
    // event handed out, so no event is skipped; later events of that
    // shard's other rooms wait for the next call rather than come twice.
    let mut rooms: Vec<RoomNews> = Vec::new();
    for section in ["join", "leave"] {
        let Some(Value::Object(synced)) = body["rooms"].get(section) else { continue };
        for (id, room) in synced {
            if room_id.as_ref().is_some_and(|wanted| wanted != id) {
                continue;
            }
            let k = placement.shard(id);
            let (events, reached, more) = forward(&shard, &me.user_id, id, from.position(k, shards), limit).await?;
            if more {
                next.positions[k] = next.positions[k].min(reached);
            }
            // Receipts, typing, and the room's tags and other account data
            // of the user, as Synapse's event stream carries them.
            let extras = ["ephemeral", "account_data"]
                .iter()
                .flat_map(|kind| room[kind]["events"].as_array().cloned().unwrap_or_default())
                .collect();
            rooms.push(RoomNews { room_id: id.clone(), shard: k, events, extras });
        }
    }
    let mut chunk = Vec::new();
    for RoomNews { room_id: id, shard: k, events, extras } in rooms {
        let handed_out = events.into_iter().filter(|(pos, _)| *pos <= next.positions[k]).map(|(_, e)| e);
        for mut event in handed_out.chain(extras) {
            event["room_id"] = id.clone().into();
            if let Some(sender) = event.get("sender").cloned() {
                event["user_id"] = sender;
            }
            chunk.push(event);
        }
    }
    Ok(Response::json(&json!({ "chunk": chunk, "start": from.to_string(), "end": next.to_string() })))
}

/// What one call hands out of a room: its timeline events read forward
/// (with their positions on the room's shard), then its ephemeral events
/// and the user's account data of it.
struct RoomNews {
    room_id: String,
    shard: usize,
    events: Vec<(StreamPos, Value)>,
    extras: Vec<Value>,
}

/// `user_id`'s view of a room's events after `after`, oldest first, at
/// most `limit`: the events with their positions, the last position read,
/// and whether more remain.
async fn forward(
    shard: &AppShard,
    user_id: &str,
    room_id: &str,
    after: StreamPos,
    limit: usize,
) -> Result<(Vec<(StreamPos, Value)>, StreamPos, bool), ApiError> {
    let user_id = user_id.to_owned();
    on_room(shard, room_id, move |shard, room| async move {
        let reader = reader(&shard, &room, &user_id).await?;
        let durable = shard.state.rooms.stream.durable();
        let before = match reader {
            Reader::Departed { leave_pos, .. } => leave_pos + 1,
            _ => durable + 1,
        };
        let page = timeline(&shard, &room, Some(after), Some(before), Direction::Forward, limit).await?;
        let more = page.len() == limit;
        let last = page.last().map_or(durable.max(after), |(pos, _)| *pos);
        let page = visible(&shard, &room, &user_id, reader.peeking(), page).await?;
        Ok((page.iter().map(|(pos, e)| (*pos, v1_event(e))).collect(), last, more))
    })
    .await
}

/// The events of a room the user is not joined to, after `from`.
async fn peek(shard: &AppShard, user_id: &str, room_id: &str, from: SyncToken, timeout: Duration) -> ApiResult {
    let placement = &shard.state.placement;
    let (k, shards) = (placement.shard(room_id), placement.shard_count());
    let after = from.position(k, shards);
    let deadline = Instant::now() + timeout;
    loop {
        let (events, reached, _) = forward(shard, user_id, room_id, after, LIMIT).await?;
        let events: Vec<Value> = events.into_iter().map(|(_, e)| e).collect();
        if !events.is_empty() || Instant::now() >= deadline || shard.state.shutdown.is_triggered() {
            let mut end = from.clone();
            end.positions = (0..shards).map(|j| if j == k { reached } else { from.position(j, shards) }).collect();
            return Ok(Response::json(&json!({ "chunk": events, "start": from.to_string(), "end": end.to_string() })));
        }
        sleep(PEEK_POLL.min(deadline - Instant::now())).await;
    }
}
