//! Reading a room, on its shard: state, members, timeline pages and the
//! room's part of a `/sync` response. Answers are plain JSON so they can
//! travel back to the shard that asked.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{json, Value};
use tessera_storage::records::StreamPos;
use tessera_storage::{Direction, Store};

use crate::error::ApiError;
use crate::rooms::ephemeral::ephemeral_events;
use crate::rooms::event::{RoomEvent, Viewer};
use crate::rooms::room::{Room, RECENT_EVENTS};
use crate::rooms::stored_event;
use crate::rooms::visibility::{reader, state_at, visible, Reader};
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

/// A stripped state event (spec: `StrippedStateEvent`), as invites show the
/// room.
fn stripped(event: &RoomEvent) -> Value {
    json!({
        "type": event.event_type,
        "state_key": event.state_key,
        "sender": event.sender,
        "content": event.content,
    })
}

/// The state types an invitee is shown (Synapse's
/// `room_prejoin_state` defaults).
const INVITE_STATE: &[&str] = &[
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
];

/// Which part of `rooms` a room goes in.
pub enum Section {
    Join,
    Invite,
    Leave,
}

/// The room's part of a `/sync` response for `user_id`: events with a
/// position in `(since, upto]`. `None` when the user has nothing here.
pub async fn sync_room(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    (user_id, device_id): Viewer<'_>,
    since: Option<StreamPos>,
    upto: StreamPos,
    limit: usize,
) -> Result<Option<(Section, Value)>, ApiError> {
    let viewer = Some((user_id, device_id));
    let membership = room.borrow().state.membership(user_id).map(str::to_owned);
    match membership.as_deref() {
        Some("join") => {}
        Some("invite") => {
            let room = room.borrow();
            let mut events: Vec<Value> =
                INVITE_STATE.iter().filter_map(|t| room.state.event(t, "")).map(|e| stripped(e)).collect();
            if let Some(invite) = room.state.event("m.room.member", user_id) {
                events.push(stripped(invite));
            }
            return Ok(Some((Section::Invite, json!({ "invite_state": { "events": events } }))));
        }
        Some("leave" | "ban") if since.is_some() => {
            let room_ref = room.borrow();
            let leave = room_ref.state.event("m.room.member", user_id).cloned();
            drop(room_ref);
            let events: Vec<Value> = leave.iter().map(|e| client_json(e, false, viewer)).collect();
            return Ok(Some((
                Section::Leave,
                json!({ "timeline": { "events": events, "limited": false }, "state": { "events": [] } }),
            )));
        }
        _ => return Ok(None),
    }
    // Newest first, one more than asked to learn whether there are more.
    let mut newest = timeline(shard, room, since, Some(upto + 1), Direction::Backward, limit + 1).await?;
    let limited = newest.len() > limit;
    newest.truncate(limit);
    newest.reverse();
    // Current state events always show (as Synapse shows them): the client
    // learns the room's state from them even when the history around them
    // is hidden.
    let current: HashSet<String> = {
        let room = room.borrow();
        let is_current = |e: &RoomEvent| {
            e.state_key
                .as_ref()
                .is_some_and(|k| room.state.event(&e.event_type, k).is_some_and(|c| c.event_id == e.event_id))
        };
        newest.iter().filter(|(_, e)| is_current(e)).map(|(_, e)| e.event_id.clone()).collect()
    };
    let seen: HashSet<String> = visible(shard, room, user_id, false, newest.clone())
        .await?
        .into_iter()
        .map(|(_, e)| e.event_id.clone())
        .collect();
    newest.retain(|(_, e)| current.contains(&e.event_id) || seen.contains(&e.event_id));
    let room = room.borrow();
    let ephemeral = ephemeral_events(&room, user_id, since, upto);
    if since.is_some() && newest.is_empty() && ephemeral.is_empty() {
        return Ok(None);
    }
    let prev_batch = format!("p{}", newest.first().map_or(upto + 1, |(pos, _)| *pos));
    let in_timeline: HashSet<&str> = newest.iter().map(|(_, e)| e.event_id.as_str()).collect();
    // Not yet delivered: state set by events past `upto` comes with them.
    let undelivered: HashSet<&str> =
        room.recent.iter().filter(|(pos, _)| *pos > upto).map(|(_, e)| e.event_id.as_str()).collect();
    // A room the user joined in this window is new to the client: it gets
    // the room's state, as on an initial sync.
    let newly_joined = newest.iter().any(|(_, e)| {
        e.event_type == "m.room.member"
            && e.state_key.as_deref() == Some(user_id)
            && e.content.get("membership").and_then(Value::as_str) == Some("join")
    });
    let state: Vec<Value> = if since.is_none() || limited || newly_joined {
        room.state
            .events()
            .filter(|e| !in_timeline.contains(e.event_id.as_str()) && !undelivered.contains(e.event_id.as_str()))
            .map(|e| client_json(e, false, viewer))
            .collect()
    } else {
        Vec::new()
    };
    let events: Vec<Value> = newest.iter().map(|(_, e)| client_json(e, false, viewer)).collect();
    let body = json!({
        "timeline": { "events": events, "limited": limited, "prev_batch": prev_batch },
        "state": { "events": state },
        "ephemeral": { "events": ephemeral },
        "account_data": { "events": [] },
        "unread_notifications": { "highlight_count": 0, "notification_count": 0 },
    });
    Ok(Some((Section::Join, body)))
}

/// An event in the client format as a JSON value, as `viewer` sees it.
pub fn client_json(event: &RoomEvent, with_room_id: bool, viewer: Option<Viewer<'_>>) -> Value {
    serde_json::to_value(event.client(with_room_id, viewer)).unwrap_or(Value::Null)
}
