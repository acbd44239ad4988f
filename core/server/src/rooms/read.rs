//! Reading a room, on its shard: state, members and timeline pages (the
//! room's part of a `/sync` response is in `crate::sync::room`). Answers
//! are plain JSON so they can travel back to the shard that asked.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;
use tessera_storage::records::StreamPos;
use tessera_storage::{Direction, Store};

use crate::error::ApiError;
use crate::rooms::event::{RoomEvent, Viewer};
use crate::rooms::room::{Room, RECENT_EVENTS};
use crate::rooms::stored_event;
use crate::rooms::visibility::{reader, state_at, Reader};
use crate::state::AppShard;

/// 403 unless `user_id` is joined to the room.
pub fn require_joined(room: &Room, user_id: &str) -> Result<(), ApiError> {
    match room.state.membership(user_id) {
        Some("join") => Ok(()),
        _ => Err(ApiError::forbidden(format!("{user_id} is not in the room"))),
    }
}

/// The room's state as `user_id` may read it, of the keys `keep` picks:
/// the current state for members and peekers of a `world_readable` room,
/// the state when they left for users who left (403 for anyone else).
pub async fn readable_state(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    user_id: &str,
    keep: impl Fn(&str, &str) -> bool,
) -> Result<Vec<Arc<RoomEvent>>, ApiError> {
    match reader(shard, room, user_id).await? {
        Reader::Departed { leave_pos, .. } => state_at(shard, room, leave_pos, keep).await,
        Reader::Joined | Reader::Peeking => Ok(room
            .borrow()
            .state
            .events()
            .filter(|e| keep(&e.event_type, e.state_key.as_deref().unwrap_or_default()))
            .cloned()
            .collect()),
    }
}

/// Up to `limit` events of the room's timeline with a position in
/// `(after, before)`: the newest ones going backward, the oldest going
/// forward. Returned in the order walked, each with its position. Served
/// from the recent events in memory when they cover the range.
pub async fn timeline(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    after: Option<StreamPos>,
    before: Option<StreamPos>,
    direction: Direction,
    limit: usize,
) -> Result<Vec<(StreamPos, Arc<RoomEvent>)>, ApiError> {
    let in_range = |pos: StreamPos| after.is_none_or(|a| pos > a) && before.is_none_or(|b| pos < b);
    let (cached, complete, room_id, vshard) = {
        let room = room.borrow();
        // The cache holds the whole timeline while it has not filled up.
        let complete = room.recent.len() < RECENT_EVENTS;
        let oldest = room.recent.front().map(|(pos, _)| *pos);
        let picked: Vec<_> = match direction {
            Direction::Backward => {
                room.recent.iter().rev().filter(|(p, _)| in_range(*p)).take(limit).cloned().collect()
            }
            Direction::Forward => room.recent.iter().filter(|(p, _)| in_range(*p)).take(limit).cloned().collect(),
        };
        let covered = complete
            || picked.len() == limit && direction == Direction::Backward
            || after.is_some_and(|a| oldest.is_some_and(|o| o <= a + 1));
        (picked, covered, room.id.clone(), room.vshard)
    };
    if complete {
        return Ok(cached);
    }
    let store = &shard.state.store;
    let from = match direction {
        Direction::Backward => before,
        Direction::Forward => after,
    };
    let mut out = Vec::new();
    for (pos, event_id) in store.timeline(vshard, &room_id, from, direction, limit).await? {
        if !in_range(pos) {
            break;
        }
        if let Some(event) = stored_event(store, &event_id).await? {
            out.push((pos, event));
        }
    }
    Ok(out)
}

/// An event in the client format as a JSON value, as `viewer` sees it.
pub fn client_json(event: &RoomEvent, with_room_id: bool, viewer: Option<Viewer<'_>>) -> Value {
    serde_json::to_value(event.client(with_room_id, viewer)).unwrap_or(Value::Null)
}
