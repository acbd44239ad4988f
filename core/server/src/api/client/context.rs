//! `GET /rooms/{roomId}/context/{eventId}` (spec: client-server API,
//! "Room event context"): an event with up to `limit` events around it
//! (half before, half after, as Synapse splits them), pagination tokens
//! for either side, and the room state at the last event returned.
//! Tokens are those of `/messages` (see `messages`).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::StreamPos;
use tessera_storage::Direction;

use super::filter::RoomEventFilter;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::rooms::event::RoomEvent;
use crate::rooms::read::{client_json, timeline};
use crate::rooms::visibility::{reader, state_at, visible, Reader};
use crate::rooms::{on_room, stored_event_at};
use crate::state::AppShard;

/// Most events around the event one request returns.
const MAX_LIMIT: usize = 1000;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/context/{eventId}", context);
}

async fn context(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let limit = query.number::<usize>("limit")?.unwrap_or(10).min(MAX_LIMIT);
    let filter = query.get("filter").map(RoomEventFilter::from_param).transpose()?.unwrap_or_default();
    let (user_id, device_id) = (me.user_id.clone(), me.device_id.clone());
    let (room_id, event_id) = (req.params[0].clone(), req.params[1].clone());
    let body = on_room(&shard, &room_id.clone(), move |shard, room| async move {
        let reader = reader(&shard, &room, &user_id).await?;
        let (pos, event) = match stored_event_at(&shard.state.store, &event_id).await? {
            Some((Some(pos), event)) if event.room_id == room_id => (pos, event),
            _ => return Err(ApiError::not_found("event not found")),
        };
        let peeking = reader.peeking();
        if visible(&shard, &room, &user_id, peeking, vec![(pos, event.clone())]).await?.is_empty() {
            return Err(ApiError::forbidden("you may not see that event"));
        }
        // A user who left sees nothing after their leave.
        let upto = match reader {
            Reader::Departed { leave_pos, .. } => Some(leave_pos + 1),
            _ => None,
        };
        let before_limit = limit / 2;
        let after_limit = limit - before_limit;
        let before = timeline(&shard, &room, None, Some(pos), Direction::Backward, before_limit).await?;
        let after = timeline(&shard, &room, Some(pos), upto, Direction::Forward, after_limit).await?;
        let start = format!("p{}", before.last().map_or(pos, |(p, _)| *p));
        let end = format!("p{}", after.last().map_or(pos, |(p, _)| *p) + 1);
        let keep = |events: Vec<(StreamPos, Arc<RoomEvent>)>| -> Vec<_> {
            events.into_iter().filter(|(_, e)| filter.allows(e)).collect()
        };
        let before = visible(&shard, &room, &user_id, peeking, keep(before)).await?;
        let after = visible(&shard, &room, &user_id, peeking, keep(after)).await?;
        let last = after.last().map_or(pos, |(p, _)| *p);
        let senders: HashSet<&str> =
            before.iter().chain(&after).map(|(_, e)| e.sender.as_str()).chain([event.sender.as_str()]).collect();
        let lazy = filter.lazy_load_members;
        let state = state_at(&shard, &room, last, |t, k| !lazy || t != "m.room.member" || senders.contains(k)).await?;
        let viewer = Some((user_id.as_str(), device_id.as_str()));
        let list = |events: &[(StreamPos, Arc<RoomEvent>)]| -> Vec<_> {
            events.iter().map(|(_, e)| client_json(e, true, viewer)).collect()
        };
        Ok(json!({
            "event": client_json(&event, true, viewer),
            "events_before": list(&before),
            "events_after": list(&after),
            "start": start,
            "end": end,
            "state": state.iter().map(|e| client_json(e, true, None)).collect::<Vec<_>>(),
        }))
    })
    .await?;
    Ok(Response::json(&body))
}
