//! `GET /rooms/{roomId}/messages` (spec: client-server API, "Room event
//! pagination"). Tokens are positions in the room's timeline: `p{N}` sits
//! just before the event at position `N`, so going backward returns events
//! below `N` and going forward events from `N` on. A `/sync` token is
//! accepted as `from` too, at its position for the room's shard.

use std::collections::HashSet;

use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Direction;

use super::filter::RoomEventFilter;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::rooms::on_room;
use crate::rooms::read::{client_json, timeline};
use crate::rooms::visibility::{reader, state_at, visible, Reader};
use crate::state::AppShard;
use crate::sync::token::SyncToken;

/// Most events one page returns (Synapse caps at 1000 too).
const MAX_LIMIT: usize = 1000;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/messages", messages);
}

/// Parses a pagination token into the position it sits before.
fn position(token: &str, room_shard: usize, shards: usize) -> Option<u64> {
    if let Some(pos) = token.strip_prefix('p') {
        return pos.parse().ok();
    }
    SyncToken::parse(token).map(|t| t.position(room_shard, shards) + 1)
}

async fn messages(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let direction = match query.get("dir") {
        Some("b") => Direction::Backward,
        Some("f") => Direction::Forward,
        _ => return Err(ApiError::invalid_param("`dir` must be b or f")),
    };
    let limit = query.number::<usize>("limit")?.unwrap_or(10).min(MAX_LIMIT);
    let filter = query.get("filter").map(RoomEventFilter::from_param).transpose()?.unwrap_or_default();
    let room_id = req.params[0].clone();
    let placement = &shard.state.placement;
    let from = match query.get("from") {
        Some(token) => Some(
            position(token, placement.shard(&room_id), placement.shard_count())
                .ok_or_else(|| ApiError::invalid_param("`from` is not a valid token"))?,
        ),
        None => None,
    };
    let (user_id, device_id) = (me.user_id.clone(), me.device_id.clone());
    let body = on_room(&shard, &room_id, move |shard, room| async move {
        let reader = reader(&shard, &room, &user_id).await?;
        let (after, mut before) = match (direction, from) {
            (Direction::Backward, from) => (None, from),
            (Direction::Forward, from) => (from.map(|p| p.saturating_sub(1)), None),
        };
        // A user who left reads up to their leave, whichever the direction.
        if let Reader::Departed { leave_pos, .. } = reader {
            before = Some(before.map_or(leave_pos + 1, |b| b.min(leave_pos + 1)));
        }
        let page = timeline(&shard, &room, after, before, direction, limit).await?;
        let end = page.last().map(|(pos, _)| match direction {
            Direction::Backward => *pos,
            Direction::Forward => pos + 1,
        });
        let page = page.into_iter().filter(|(_, e)| filter.allows(e)).collect();
        let page = visible(&shard, &room, &user_id, reader.peeking(), page).await?;
        let start = match from {
            Some(pos) => format!("p{pos}"),
            None => format!("p{}", shard.state.rooms.stream.durable() + 1),
        };
        let mut body = json!({
            "chunk": page.iter().map(|(_, e)| client_json(e, true, Some((&user_id, &device_id)))).collect::<Vec<_>>(),
            "start": start,
        });
        // `end` comes with every page that read events, also when none of
        // them is visible; reading none (no more events) gives no `end`,
        // which is how clients know to stop.
        if let Some(end) = end {
            body["end"] = format!("p{end}").into();
        }
        // Lazy loading: the member events of the page's senders, at the
        // page's first event, so clients need not load every member.
        if let (true, Some((first, _))) = (filter.lazy_load_members, page.first()) {
            let senders: HashSet<&str> = page.iter().map(|(_, e)| e.sender.as_str()).collect();
            let members = state_at(&shard, &room, *first, |t, k| t == "m.room.member" && senders.contains(k)).await?;
            body["state"] = members.iter().map(|e| client_json(e, true, None)).collect::<Vec<_>>().into();
        }
        Ok(body)
    })
    .await?;
    Ok(Response::json(&body))
}
