//! Who may read what of a room (spec: client-server API, "Room History
//! Visibility"). One place decides, for every endpoint that reads a room:
//!
//! - [`reader`]: whether the user may read the room at all (joined, left
//!   but not forgotten, or peeking into a `world_readable` room);
//! - [`visible`]: which of some events the user may see, by the room's
//!   `m.room.history_visibility` and the user's membership *at* each event;
//! - [`state_at`]: the state at a position (what a user who left sees).
//!
//! The room keeps only its recent events in memory, so the state at an old
//! event is found without loading the room's state at it:
//!
//! - the user's membership at a position follows the chain of their member
//!   events backward from the current one: the auth events of a member event
//!   include the target's previous member event (spec: "Auth events
//!   selection"), so each step is one read, and only the user's changes after
//!   the oldest event asked about are walked;
//! - the history visibility at a position comes from the room's (short) list
//!   of `m.room.history_visibility` changes, built from the stored state
//!   groups the first time an event older than the current setting is asked
//!   about, then kept with the room.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;
use tessera_storage::records::{EventNid, StreamPos};
use tessera_storage::Store;

use crate::error::ApiError;
use crate::rooms::event::RoomEvent;
use crate::rooms::room::{Room, RECENT_EVENTS};
use crate::rooms::stored_event_at;
use crate::state::AppShard;

const HISTORY_VISIBILITY: &str = "m.room.history_visibility";

/// The values of `m.room.history_visibility`, least restrictive first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum HistoryVisibility {
    WorldReadable,
    Shared,
    Invited,
    Joined,
}

impl HistoryVisibility {
    /// The setting an `m.room.history_visibility` event makes: `shared`
    /// when there is none or its value is not understood (spec: "Server
    /// behaviour").
    pub fn of(event: Option<&RoomEvent>) -> Self {
        match event.and_then(|e| e.content.get("history_visibility")).and_then(Value::as_str) {
            Some("world_readable") => Self::WorldReadable,
            Some("invited") => Self::Invited,
            Some("joined") => Self::Joined,
            _ => Self::Shared,
        }
    }
}

/// The history visibility changes of a room: `(position, setting)`, oldest
/// first.
pub type VisibilityLog = Rc<Vec<(StreamPos, HistoryVisibility)>>;

/// How a user reads a room.
#[derive(Clone, Debug)]
pub enum Reader {
    /// Joined now.
    Joined,
    /// Left the room (and has not forgotten it): sees it as it was when
    /// they left, at `leave_pos`.
    Departed { leave: Arc<RoomEvent>, leave_pos: StreamPos },
    /// Not a member of a `world_readable` room.
    Peeking,
}

impl Reader {
    /// Whether events are filtered as for a user who is not in the room
    /// (the `shared` setting shows nothing to them).
    pub fn peeking(&self) -> bool {
        matches!(self, Reader::Peeking)
    }
}

/// How `user_id` may read the room: joined, departed (a user who left can
/// still read the room up to the point they left), or peeking into a room
/// whose history is `world_readable`. 403 `M_FORBIDDEN` otherwise.
pub async fn reader(shard: &AppShard, room: &Rc<RefCell<Room>>, user_id: &str) -> Result<Reader, ApiError> {
    let (membership, own, world_readable) = {
        let room = room.borrow();
        let own = room.state.event("m.room.member", user_id).cloned();
        let hv = HistoryVisibility::of(room.state.event(HISTORY_VISIBILITY, "").map(|e| &**e));
        (room.state.membership(user_id).map(str::to_owned), own, hv == HistoryVisibility::WorldReadable)
    };
    match (membership.as_deref(), own) {
        (Some("join"), _) => return Ok(Reader::Joined),
        (Some("leave"), Some(leave)) => {
            let room_id = room.borrow().id.clone();
            if !forgotten(shard, user_id, &room_id).await? {
                if let Some(leave_pos) = state_position(shard, room, &leave).await? {
                    return Ok(Reader::Departed { leave, leave_pos });
                }
            }
        }
        _ => {}
    }
    if world_readable {
        return Ok(Reader::Peeking);
    }
    Err(ApiError::forbidden(format!("{user_id} is not in the room and its history is not world_readable")))
}

/// Whether `user_id`, who left the room, has forgotten it: forgetting drops
/// the room from the user's list of rooms (`POST /forget`).
async fn forgotten(shard: &AppShard, user_id: &str, room_id: &str) -> Result<bool, ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    let left = shard.state.store.user_rooms(vshard, user_id, Some("leave")).await?;
    Ok(!left.iter().any(|r| r.room_id == room_id))
}

/// The stream position of an event of the room: from the recent events in
/// memory, else from the store. `None` for an event outside the timeline.
pub async fn position(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    event_id: &str,
) -> Result<Option<StreamPos>, ApiError> {
    if let Some((pos, _)) = room.borrow().recent.iter().find(|(_, e)| e.event_id == event_id) {
        return Ok(Some(*pos));
    }
    Ok(shard.state.store.event(event_id).await?.and_then(|r| r.stream_pos))
}

/// The stream position of a current state event: the room keeps the
/// positions of its current state.
async fn state_position(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    event: &RoomEvent,
) -> Result<Option<StreamPos>, ApiError> {
    let key = event.state_key.as_deref().unwrap_or_default();
    let known =
        room.borrow().state.entry(&event.event_type, key).filter(|(_, e)| e.event_id == event.event_id).map(|(p, _)| p);
    match known {
        Some(pos) => Ok(Some(pos)),
        None => position(shard, room, &event.event_id).await,
    }
}

/// The events of `events` (each with its position) that `user_id` may see,
/// in the order given. `peeking`: the user is not in the room now.
pub async fn visible(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    user_id: &str,
    peeking: bool,
    events: Vec<(StreamPos, Arc<RoomEvent>)>,
) -> Result<Vec<(StreamPos, Arc<RoomEvent>)>, ApiError> {
    let Some(oldest) = events.iter().map(|(pos, _)| *pos).min() else { return Ok(events) };
    // Positions just before an event are asked about too (the setting or
    // membership an event replaces).
    let history = HistoryAt::load(shard, room, oldest.saturating_sub(1)).await?;
    let trail = MembershipTrail::load(shard, room, user_id, oldest.saturating_sub(1)).await?;
    Ok(events.into_iter().filter(|(pos, event)| may_see(event, *pos, user_id, peeking, &history, &trail)).collect())
}

/// The events of a `/sync` timeline the member `user_id` may see: as
/// [`visible`], but current state events always show (as Synapse shows
/// them), so the client learns the room's state even where the history
/// around it is hidden.
pub async fn visible_in_sync(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    user_id: &str,
    mut events: Vec<(StreamPos, Arc<RoomEvent>)>,
) -> Result<Vec<(StreamPos, Arc<RoomEvent>)>, ApiError> {
    let current: HashSet<String> = {
        let room = room.borrow();
        let is_current = |e: &RoomEvent| {
            let key = e.state_key.as_deref();
            key.is_some_and(|k| room.state.event(&e.event_type, k).is_some_and(|c| c.event_id == e.event_id))
        };
        events.iter().filter(|(_, e)| is_current(e)).map(|(_, e)| e.event_id.clone()).collect()
    };
    let seen: HashSet<String> = visible(shard, room, user_id, false, events.clone())
        .await?
        .into_iter()
        .map(|(_, e)| e.event_id.clone())
        .collect();
    events.retain(|(_, e)| current.contains(&e.event_id) || seen.contains(&e.event_id));
    Ok(events)
}

/// The spec's rules for one event at `pos`, with the state *after* the
/// event (so a user sees their own join). For a history visibility event the
/// less restrictive of the settings before and after it counts, and for the
/// user's own member event the more joined of their memberships before and
/// after it (so users see their own leave).
fn may_see(
    event: &RoomEvent,
    pos: StreamPos,
    user_id: &str,
    peeking: bool,
    history: &HistoryAt,
    trail: &MembershipTrail,
) -> bool {
    let mut visibility = history.at(pos);
    if event.event_type == HISTORY_VISIBILITY && event.state_key.as_deref() == Some("") {
        visibility = visibility.min(history.at(pos.saturating_sub(1)));
    }
    let mut membership = trail.at(pos);
    if event.event_type == "m.room.member" && event.state_key.as_deref() == Some(user_id) {
        let before = trail.at(pos.saturating_sub(1));
        if membership == Some("leave") && matches!(before, Some("join" | "invite")) {
            return true;
        }
        if rank(before) < rank(membership) {
            membership = before;
        }
    }
    match visibility {
        HistoryVisibility::WorldReadable => true,
        _ if membership == Some("join") => true,
        HistoryVisibility::Shared => !peeking,
        HistoryVisibility::Invited => membership == Some("invite"),
        HistoryVisibility::Joined => false,
    }
}

/// How joined a membership is, most joined first (as Synapse ranks them);
/// an unknown or missing membership counts as `leave`.
fn rank(membership: Option<&str>) -> u8 {
    match membership {
        Some("join") => 0,
        Some("knock") => 1,
        Some("invite") => 2,
        Some("ban") => 4,
        _ => 3,
    }
}

/// The room's history visibility at any position from some point on.
struct HistoryAt {
    current: HistoryVisibility,
    /// Where the current setting was made (`None`: never set).
    since: Option<StreamPos>,
    /// Every change, when positions before `since` are asked about.
    log: Option<VisibilityLog>,
}

impl HistoryAt {
    /// What is needed to answer for positions from `oldest` on.
    async fn load(shard: &AppShard, room: &Rc<RefCell<Room>>, oldest: StreamPos) -> Result<Self, ApiError> {
        let event = room.borrow().state.event(HISTORY_VISIBILITY, "").cloned();
        let current = HistoryVisibility::of(event.as_deref());
        let since = match &event {
            Some(e) => state_position(shard, room, e).await?,
            None => None,
        };
        let log = match since {
            Some(since) if oldest < since => Some(visibility_log(shard, room).await?),
            _ => None,
        };
        Ok(Self { current, since, log })
    }

    fn at(&self, pos: StreamPos) -> HistoryVisibility {
        match (&self.log, self.since) {
            (Some(log), Some(since)) if pos < since => {
                log.iter().rev().find(|(at, _)| *at <= pos).map_or(HistoryVisibility::Shared, |(_, hv)| *hv)
            }
            _ => self.current,
        }
    }
}

/// A user's member events from the current one back to one at or before
/// some position: `(position, membership)`, newest first.
struct MembershipTrail(Vec<(StreamPos, Option<String>)>);

impl MembershipTrail {
    async fn load(
        shard: &AppShard,
        room: &Rc<RefCell<Room>>,
        user_id: &str,
        oldest: StreamPos,
    ) -> Result<Self, ApiError> {
        let mut trail = Vec::new();
        let mut next = room.borrow().state.event("m.room.member", user_id).cloned();
        let mut current = true;
        while let Some(event) = next.take() {
            let pos = match current {
                true => state_position(shard, room, &event).await?,
                false => position(shard, room, &event.event_id).await?,
            };
            current = false;
            let Some(pos) = pos else { break };
            let membership = event.content.get("membership").and_then(Value::as_str).map(str::to_owned);
            trail.push((pos, membership));
            if pos <= oldest {
                break;
            }
            next = previous_membership(shard, &event, user_id).await?;
        }
        Ok(Self(trail))
    }

    fn at(&self, pos: StreamPos) -> Option<&str> {
        self.0.iter().find(|(at, _)| *at <= pos).and_then(|(_, m)| m.as_deref())
    }
}

/// The member event of `user_id` that `event` (a member event of theirs)
/// replaced: the one among its auth events.
async fn previous_membership(
    shard: &AppShard,
    event: &RoomEvent,
    user_id: &str,
) -> Result<Option<Arc<RoomEvent>>, ApiError> {
    for id in &event.auth_events {
        if let Some((_, candidate)) = stored_event_at(&shard.state.store, id).await? {
            if candidate.event_type == "m.room.member" && candidate.state_key.as_deref() == Some(user_id) {
                return Ok(Some(candidate));
            }
        }
    }
    Ok(None)
}

/// The room's history visibility changes, kept with the room once built.
/// Built from the stored state groups: every group that sets the history
/// visibility key names the event that set it. Events not yet stored are
/// among the recent events in memory.
async fn visibility_log(shard: &AppShard, room: &Rc<RefCell<Room>>) -> Result<VisibilityLog, ApiError> {
    if let Some(log) = room.borrow().visibility_log.clone() {
        return Ok(log);
    }
    let (nid, key, last_group) = {
        let room = room.borrow();
        (room.nid, room.state_key_nid(HISTORY_VISIBILITY, ""), room.head.state_group)
    };
    let store = &shard.state.store;
    let mut event_nids: Vec<EventNid> = Vec::new();
    if let Some(key) = key {
        for group in 1..=last_group {
            let Some(record) = store.state_group(nid, group).await? else { break };
            event_nids.extend(record.entries.iter().filter(|(k, _)| *k == key).map(|(_, e)| *e));
        }
    }
    event_nids.sort_unstable();
    event_nids.dedup();
    let mut log = Vec::new();
    for id in store.event_ids_of(nid, &event_nids).await?.into_iter().flatten() {
        if let Some((Some(pos), event)) = stored_event_at(store, &id).await? {
            log.push((pos, HistoryVisibility::of(Some(&event))));
        }
    }
    let mut room = room.borrow_mut();
    // Changes applied while the store was read are recent events.
    for (pos, event) in &room.recent {
        if event.event_type == HISTORY_VISIBILITY && event.state_key.as_deref() == Some("") {
            log.push((*pos, HistoryVisibility::of(Some(event))));
        }
    }
    log.sort_by_key(|(pos, _)| *pos);
    log.dedup_by_key(|(pos, _)| *pos);
    let log = Rc::new(log);
    room.visibility_log = Some(log.clone());
    Ok(log)
}

/// The state of the room just after the event at `pos`, of the keys `keep`
/// picks: what a user who left sees (at their leave), and the state around
/// an event for `/context` and `/messages`. The current state in memory when
/// no state changed after `pos`; else the stored state group current at
/// `pos`, found by a binary search over the groups (made in order, one per
/// state event; a group's newest entry is the event that made it, whose
/// position orders the groups), then only the kept keys' events are read.
pub async fn state_at(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    pos: StreamPos,
    keep: impl Fn(&str, &str) -> bool,
) -> Result<Vec<Arc<RoomEvent>>, ApiError> {
    let (nid, last_group, keys) = {
        let room = room.borrow();
        let complete = room.recent.len() < RECENT_EVENTS || room.recent.front().is_some_and(|(p, _)| *p <= pos);
        let changed_after = room.recent.iter().any(|(p, e)| *p > pos && e.state_key.is_some());
        if complete && !changed_after {
            let keep = |e: &&Arc<RoomEvent>| keep(&e.event_type, e.state_key.as_deref().unwrap_or_default());
            return Ok(room.state.events().filter(keep).cloned().collect());
        }
        (room.nid, room.head.state_group, room.state_key_names())
    };
    let store = &shard.state.store;
    let (mut low, mut high, mut found) = (1, last_group, None);
    while low <= high {
        let mid = low + (high - low) / 2;
        // A group not stored yet is newer than any stored one.
        let made_at = match store.state_group(nid, mid).await?.and_then(|g| g.entries.iter().map(|(_, e)| *e).max()) {
            Some(maker) => match store.event_ids_of(nid, &[maker]).await?.pop().flatten() {
                Some(id) => store.event(&id).await?.and_then(|r| r.stream_pos),
                None => None,
            },
            None => None,
        };
        match made_at {
            Some(at) if at <= pos => {
                found = Some(mid);
                low = mid + 1;
            }
            _ => high = mid - 1,
        }
    }
    let Some(group) = found else { return Ok(Vec::new()) };
    let entries = store.state_at(nid, group).await?.unwrap_or_default();
    let wanted: Vec<EventNid> =
        entries.iter().filter(|(k, _)| keys.get(k).is_some_and(|(t, s)| keep(t, s))).map(|(_, e)| *e).collect();
    let mut out = Vec::with_capacity(wanted.len());
    for id in store.event_ids_of(nid, &wanted).await?.into_iter().flatten() {
        if let Some((_, event)) = stored_event_at(store, &id).await? {
            out.push(event);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, state_key: Option<&str>, content: Value) -> RoomEvent {
        RoomEvent {
            event_id: "$e".into(),
            room_id: "!r:x".into(),
            sender: "@a:x".into(),
            event_type: event_type.into(),
            state_key: state_key.map(str::to_owned),
            content,
            origin_server_ts: 0,
            depth: 0,
            prev_events: vec![],
            auth_events: vec![],
            redacts: None,
            signers: vec![],
            room_id_in_pdu: true,
            txn: None,
            invite_state: None,
        }
    }

    fn history(changes: &[(StreamPos, HistoryVisibility)]) -> HistoryAt {
        let (since, current) = *changes.last().unwrap();
        HistoryAt { current, since: Some(since), log: Some(Rc::new(changes.to_vec())) }
    }

    fn trail(changes: &[(StreamPos, &str)]) -> MembershipTrail {
        MembershipTrail(changes.iter().rev().map(|(p, m)| (*p, Some(m.to_string()))).collect())
    }

    #[test]
    fn unknown_or_missing_history_visibility_is_shared() {
        assert_eq!(HistoryVisibility::of(None), HistoryVisibility::Shared);
        let odd = event(HISTORY_VISIBILITY, Some(""), serde_json::json!({ "history_visibility": "odd" }));
        assert_eq!(HistoryVisibility::of(Some(&odd)), HistoryVisibility::Shared);
    }

    #[test]
    fn joined_history_hides_events_before_the_join_and_after_the_leave() {
        let history = history(&[(1, HistoryVisibility::Joined)]);
        let trail = trail(&[(3, "invite"), (5, "join"), (8, "leave")]);
        let message = event("m.room.message", None, serde_json::json!({}));
        let seen = |pos| may_see(&message, pos, "@u:x", false, &history, &trail);
        assert!(!seen(4), "before the join");
        assert!(seen(6), "while joined");
        assert!(!seen(9), "after the leave");
    }

    #[test]
    fn invited_history_shows_events_from_the_invite_on() {
        let history = history(&[(1, HistoryVisibility::Invited)]);
        let trail = trail(&[(3, "invite"), (5, "join")]);
        let message = event("m.room.message", None, serde_json::json!({}));
        assert!(!may_see(&message, 2, "@u:x", false, &history, &trail));
        assert!(may_see(&message, 4, "@u:x", false, &history, &trail));
    }

    #[test]
    fn shared_history_is_hidden_from_peekers_but_world_readable_is_not() {
        let history = history(&[(1, HistoryVisibility::Shared), (5, HistoryVisibility::WorldReadable)]);
        let trail = trail(&[]);
        let message = event("m.room.message", None, serde_json::json!({}));
        assert!(!may_see(&message, 3, "@u:x", true, &history, &trail));
        assert!(may_see(&message, 3, "@u:x", false, &history, &trail));
        assert!(may_see(&message, 6, "@u:x", true, &history, &trail));
    }

    #[test]
    fn history_visibility_changes_are_seen_on_either_side_of_the_boundary() {
        let history = history(&[(1, HistoryVisibility::WorldReadable), (5, HistoryVisibility::Joined)]);
        let change = event(HISTORY_VISIBILITY, Some(""), serde_json::json!({ "history_visibility": "joined" }));
        assert!(may_see(&change, 5, "@u:x", true, &history, &trail(&[])));
    }

    #[test]
    fn users_see_their_own_leave_and_join() {
        let history = history(&[(1, HistoryVisibility::Joined)]);
        let trail = trail(&[(3, "join"), (8, "leave")]);
        let leave = event("m.room.member", Some("@u:x"), serde_json::json!({ "membership": "leave" }));
        let join = event("m.room.member", Some("@u:x"), serde_json::json!({ "membership": "join" }));
        assert!(may_see(&leave, 8, "@u:x", false, &history, &trail));
        assert!(may_see(&join, 3, "@u:x", false, &history, &trail));
        assert!(!may_see(&leave, 8, "@v:x", false, &history, &MembershipTrail(vec![])), "another user's leave");
    }
}
