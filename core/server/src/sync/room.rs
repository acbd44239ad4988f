//! One room's part of a `/sync` response, computed on the room's shard
//! (spec: client-server API, "Syncing": `JoinedRoom`, `InvitedRoom`,
//! `LeftRoom`). Answers are plain JSON so they can travel back to the
//! user's shard.
//!
//! - `timeline`: the newest events in `(since, upto]` that pass the
//!   timeline filter, `limited` when more passed than the limit.
//! - `state`: on a full sync (initial, `full_state`, or a room joined since
//!   the token) the state at the end of the range without what the
//!   timeline shows; otherwise only the state that changed in the range
//!   ([`RoomState::changed_in`], no walk over the whole state), which for a
//!   gapped sync is what happened in the gap.
//! - With `lazy_load_members`, member events only for the timeline's
//!   senders; they go back separately ([`RoomPart::members`]) so the
//!   user's shard can leave out those it sent the device already.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tessera_storage::records::StreamPos;
use tessera_storage::{Direction, Store};

use crate::api::client::filter::{only_fields, EventFormat, Filter};
use crate::error::ApiError;
use crate::push::counts::{counts, UserRules};
use crate::rooms::ephemeral::ephemeral_events;
use crate::rooms::event::RoomEvent;
use crate::rooms::read::{client_json, timeline};
use crate::rooms::room::{Room, RECENT_EVENTS};
use crate::rooms::visibility::visible_in_sync;
use crate::state::AppShard;
use crate::sync::presence::LARGE_ROOM;

/// Most timeline events looked at to fill a filtered timeline: a filter
/// that matches little must not make a sync walk a room's whole history.
const MAX_SCANNED: usize = 1000;

/// Most heroes in a room summary (spec: "up to 5").
const MAX_HEROES: usize = 5;

/// The state types an invitee is shown (Synapse's `room_prejoin_state`
/// defaults).
const INVITE_STATE: &[&str] = &[
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
];

/// What a sync asks of every room of one shard.
pub struct RoomQuery {
    pub user_id: String,
    pub device_id: String,
    /// The token's position for the room's shard; `None` on an initial
    /// sync.
    pub since: Option<StreamPos>,
    pub full_state: bool,
    pub timeline_limit: usize,
    pub filter: Arc<Filter>,
    /// Users whose events and invites the user ignores.
    pub ignored: Arc<HashSet<String>>,
    /// The user's push rules, for the unread notification counts.
    pub push_rules: Arc<UserRules>,
}

/// Which part of `rooms` a room goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Join,
    Invite,
    Leave,
    /// Spec: `KnockedRoom`, with the stripped state the knocker may see.
    Knock,
}

/// A room's part of the response.
pub struct RoomPart {
    pub room_id: String,
    pub section: Section,
    pub body: Value,
    /// With lazy-loading: the member events of the timeline's senders (and
    /// on a full sync the user's own), by user, not yet in `body`.
    pub members: Vec<(String, Value)>,
    /// Whether the client gets the room afresh (its member cache for the
    /// room starts over).
    pub full: bool,
    /// Members the client meets: all (up to a bound) when the room is new
    /// to it, else those who joined. Their current presence is pulled.
    pub newcomers: Vec<String>,
}

/// The room's state an invitee is shown, stripped (the invite itself not
/// included).
pub fn invite_state(room: &Room) -> Vec<Value> {
    INVITE_STATE.iter().filter_map(|t| room.state.event(t, "")).map(|e| stripped(e)).collect()
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

/// The room's part for `query.user_id`, up to `upto`; `None` when there is
/// nothing to tell.
pub async fn room_part(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    query: &RoomQuery,
    upto: StreamPos,
) -> Result<Option<RoomPart>, ApiError> {
    let user_id = query.user_id.as_str();
    let since = query.since;
    let (section, end, newly_joined) = {
        let room_ref = room.borrow();
        let Some((member_pos, member)) = room_ref.state.entry("m.room.member", user_id) else { return Ok(None) };
        if member_pos > upto {
            // Not delivered yet: the next sync reports it.
            return Ok(None);
        }
        let newer = since.is_none_or(|s| member_pos > s);
        match member.content.get("membership").and_then(Value::as_str) {
            Some("join") => {
                let joined = room_ref.state.joined_at(user_id);
                let newly = since.is_some_and(|s| joined.is_some_and(|j| j > s));
                (Section::Join, upto, newly)
            }
            Some(membership @ ("invite" | "knock")) => {
                let invite = membership == "invite";
                if !(newer || query.full_state) || (invite && query.ignored.contains(&member.sender)) {
                    return Ok(None);
                }
                let mut events = match &member.invite_state {
                    // A remote room: what the inviting (or knocked-on)
                    // server sent.
                    Some(sent) => sent.iter().filter(|e| e.is_object()).cloned().collect(),
                    None => invite_state(&room_ref),
                };
                events.push(stripped(member));
                let (section, body) = match invite {
                    true => (Section::Invite, json!({ "invite_state": { "events": events } })),
                    false => (Section::Knock, json!({ "knock_state": { "events": events } })),
                };
                let room_id = room_ref.id.clone();
                let part = RoomPart { room_id, section, body, members: Vec::new(), full: true, newcomers: Vec::new() };
                return Ok(Some(part));
            }
            Some("leave" | "ban") => {
                // Newly left rooms always; older ones only when asked for.
                let newly_left = since.is_some() && newer;
                if !newly_left && !query.filter.room.include_leave {
                    return Ok(None);
                }
                // Joined and left since the token: the room is new to the
                // client.
                let rejoined = since.is_some_and(|s| {
                    room_ref.recent.iter().any(|(pos, e)| {
                        *pos > s
                            && *pos < member_pos
                            && e.event_type == "m.room.member"
                            && e.state_key.as_deref() == Some(user_id)
                            && e.content.get("membership").and_then(Value::as_str) == Some("join")
                    })
                });
                (Section::Leave, member_pos, rejoined)
            }
            _ => return Ok(None),
        }
    };
    let full = since.is_none() || query.full_state || newly_joined;
    // A room joined since the token is new to the client: its timeline is
    // read as on an initial sync, and marked limited so the client knows
    // there may be history to paginate (as Synapse does).
    let timeline_since = since.filter(|_| !newly_joined);
    let left = section == Section::Leave;
    let (mut events, mut limited) = timeline_window(shard, room, query, timeline_since, end, left).await?;
    limited |= newly_joined;
    events.reverse();

    // Paginating back from `prev_batch` continues where the timeline
    // starts, except on an initial sync whose timeline holds the whole room:
    // there `prev_batch` is the end of the window, so paging back returns
    // the timeline again rather than an empty chunk. That is what Synapse
    // answers and what clients that page back from an initial sync expect
    // (SyTest: "GET /rooms/:room_id/messages returns a message", and "A
    // prev_batch token from incremental sync can be used in the v1 messages
    // API" for the incremental case).
    let whole_room = timeline_since.is_none() && !limited;
    let first = events.first().map(|(pos, _)| *pos).filter(|_| !whole_room);
    let prev_batch = format!("p{}", first.unwrap_or(end + 1));
    let window = Window { section, since, end, full, limited };
    let Some(Gathered { room_id, state, members, ephemeral, summary, newcomers }) =
        gather(&room.borrow(), query, &window, &events)
    else {
        return Ok(None);
    };

    let render = Renderer::new(shard, query);
    let timeline_events = render.all(events.iter().map(|(_, e)| e)).await?;
    let state_events = render.all(state.iter()).await?;
    let mut rendered_members = Vec::with_capacity(members.len());
    for (user, event) in &members {
        rendered_members.push((user.clone(), render.one(event).await?));
    }
    let mut body = json!({
        "timeline": { "events": timeline_events, "limited": limited, "prev_batch": prev_batch },
        "state": { "events": state_events },
        "account_data": { "events": [] },
    });
    if section == Section::Join {
        body["ephemeral"] = json!({ "events": ephemeral });
        let unread = counts(shard, room, user_id, &query.push_rules, end).await?;
        body["unread_notifications"] =
            json!({ "highlight_count": unread.highlight, "notification_count": unread.notify });
        body["summary"] = summary.unwrap_or_else(|| json!({}));
    }
    Ok(Some(RoomPart { room_id, section, body, members: rendered_members, full, newcomers }))
}

/// The range a room part covers and what kind of part it is.
struct Window {
    section: Section,
    since: Option<StreamPos>,
    end: StreamPos,
    full: bool,
    limited: bool,
}

/// A room part's pieces besides its timeline, before serialisation.
struct Gathered {
    room_id: String,
    state: Vec<Arc<RoomEvent>>,
    members: Vec<(String, Arc<RoomEvent>)>,
    ephemeral: Vec<Value>,
    summary: Option<Value>,
    newcomers: Vec<String>,
}

/// Picks the state, lazy-loaded members, ephemeral events and summary
/// that go with the timeline `events` (oldest first); `None` when an
/// incremental sync has nothing to say about the room.
fn gather(room: &Room, query: &RoomQuery, window: &Window, events: &[(StreamPos, Arc<RoomEvent>)]) -> Option<Gathered> {
    let Window { section, since, end, full, limited } = *window;
    let user_id = query.user_id.as_str();
    let state_filter = &query.filter.room.state;
    let lazy = state_filter.lazy_load_members;
    let in_timeline: HashSet<&str> = events.iter().map(|(_, e)| e.event_id.as_str()).collect();
    let candidates: Vec<&Arc<RoomEvent>> = match since.filter(|_| !full) {
        None => room.state.entries().filter(|&(pos, _)| pos <= end).map(|(_, e)| e).collect(),
        Some(since) => room.state.changed_in(since, end).map(|(_, e)| e).collect(),
    };
    let state: Vec<Arc<RoomEvent>> = candidates
        .into_iter()
        .filter(|e| !in_timeline.contains(e.event_id.as_str()) && state_filter.allows(e))
        // Lazy-loading on a full sync: members come with their messages.
        .filter(|e| !(lazy && full && e.event_type == "m.room.member"))
        .cloned()
        .collect();
    let mut members: Vec<(String, Arc<RoomEvent>)> = Vec::new();
    if lazy {
        let in_state: HashSet<&str> = state.iter().map(|e| e.event_id.as_str()).collect();
        let own = full.then_some(user_id);
        let mut seen = HashSet::new();
        for sender in own.into_iter().chain(events.iter().map(|(_, e)| e.sender.as_str())) {
            if !seen.insert(sender) {
                continue;
            }
            if let Some((pos, member)) = room.state.entry("m.room.member", sender) {
                let id = member.event_id.as_str();
                if pos <= end && !in_timeline.contains(id) && !in_state.contains(id) && state_filter.allows(member) {
                    members.push((sender.to_owned(), member.clone()));
                }
            }
        }
    }
    let ephemeral: Vec<Value> = match section {
        Section::Join => ephemeral_events(room, user_id, since.filter(|_| !full), end)
            .into_iter()
            .filter(|e| query.filter.room.ephemeral.event.allows(e["type"].as_str().unwrap_or_default(), ""))
            .collect(),
        _ => Vec::new(),
    };
    if since.is_some() && !full && events.is_empty() && state.is_empty() && ephemeral.is_empty() && members.is_empty() {
        return None;
    }
    let membership_changed = events.iter().any(|(_, e)| e.event_type == "m.room.member")
        || limited && state.iter().any(|e| e.event_type == "m.room.member");
    let summary = (lazy && section == Section::Join && (full || membership_changed)).then(|| summary(room, user_id));
    let newcomers = if query.filter.presence.allows_nothing() || section != Section::Join {
        Vec::new()
    } else if full {
        room.state.joined().filter(|u| *u != user_id).take(LARGE_ROOM).cloned().collect()
    } else {
        events
            .iter()
            .map(|(_, e)| e)
            .chain(&state)
            .filter(|e| e.event_type == "m.room.member" && e.state_key.as_deref() != Some(user_id))
            .filter(|e| e.content.get("membership").and_then(Value::as_str) == Some("join"))
            .filter_map(|e| e.state_key.clone())
            .collect()
    };
    Some(Gathered { room_id: room.id.clone(), state, members, ephemeral, summary, newcomers })
}

/// The newest events in `(since, end]` that pass the timeline filter, are
/// not from an ignored user and that the user may see, newest first, at
/// most the limit, and whether there were more. Hidden events do not use up
/// the limit: the walk reads older pages until the limit is filled, so a
/// state change hidden behind many invisible messages still reaches the
/// client (SyTest: "Current state appears in timeline in private history
/// with many messages after"). For a left room (`left`), the walk stops at
/// the user's own join or invite: the history before it is not theirs.
async fn timeline_window(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    query: &RoomQuery,
    since: Option<StreamPos>,
    end: StreamPos,
    left: bool,
) -> Result<(Vec<(StreamPos, Arc<RoomEvent>)>, bool), ApiError> {
    let filter = &query.filter.room.timeline;
    let limit = query.timeline_limit;
    if filter.event.allows_nothing() {
        return Ok((Vec::new(), false));
    }
    let passes = |e: &RoomEvent| filter.allows(e) && !query.ignored.contains(&e.sender);
    // Without a filter the first page decides; with one, pages go on until
    // enough events pass.
    let unfiltered = *filter == Default::default() && query.ignored.is_empty() && !left;
    let mut page = if unfiltered { limit + 1 } else { (limit + 1).max(RECENT_EVENTS) };
    let mut out = Vec::new();
    let mut before = end + 1;
    let mut scanned = 0;
    loop {
        let events = timeline(shard, room, since, Some(before), Direction::Backward, page).await?;
        let mut exhausted = events.len() < page;
        let mut passing = Vec::with_capacity(events.len());
        for (pos, event) in events {
            scanned += 1;
            before = pos;
            let own_start = left
                && event.event_type == "m.room.member"
                && event.state_key.as_deref() == Some(query.user_id.as_str())
                && matches!(event.content.get("membership").and_then(Value::as_str), Some("join" | "invite"));
            if passes(&event) {
                passing.push((pos, event));
            }
            if own_start {
                exhausted = true;
                break;
            }
        }
        out.extend(visible_in_sync(shard, room, &query.user_id, passing).await?);
        if out.len() > limit {
            out.truncate(limit);
            return Ok((out, true));
        }
        if exhausted {
            return Ok((out, false));
        }
        if scanned >= MAX_SCANNED {
            return Ok((out, true));
        }
        // A long hidden stretch is crossed in few reads.
        page = (page * 2).min(MAX_SCANNED);
    }
}

/// The room summary (spec: `RoomSummary`): member counts, and heroes when
/// the room has neither a name nor a canonical alias.
fn summary(room: &Room, user_id: &str) -> Value {
    let (mut joined, mut invited) = (0u64, 0u64);
    let mut others: Vec<&str> = Vec::new();
    for (member, event) in room.state.of_type("m.room.member") {
        match event.content.get("membership").and_then(Value::as_str) {
            Some("join") => joined += 1,
            Some("invite") => invited += 1,
            _ => continue,
        }
        if member != user_id {
            others.push(member);
        }
    }
    let mut summary = json!({ "m.joined_member_count": joined, "m.invited_member_count": invited });
    let named = room.state.event("m.room.name", "").is_some_and(|e| e.content.get("name").is_some_and(|n| n != ""));
    let aliased = room.state.event("m.room.canonical_alias", "").is_some_and(|e| e.content.get("alias").is_some());
    if !named && !aliased {
        others.sort_unstable();
        others.truncate(MAX_HEROES);
        summary["m.heroes"] = json!(others);
    }
    summary
}

/// Serialises events as the filter asks: the client format (the default)
/// or the federation format, and only the `event_fields` it names.
struct Renderer<'a> {
    shard: &'a AppShard,
    query: &'a RoomQuery,
}

impl<'a> Renderer<'a> {
    fn new(shard: &'a AppShard, query: &'a RoomQuery) -> Self {
        Self { shard, query }
    }

    async fn one(&self, event: &RoomEvent) -> Result<Value, ApiError> {
        let viewer = Some((self.query.user_id.as_str(), self.query.device_id.as_str()));
        let value = match self.query.filter.event_format {
            EventFormat::Client => client_json(event, false, viewer),
            EventFormat::Federation => federation_json(self.shard, event).await?,
        };
        Ok(match &self.query.filter.event_fields {
            Some(fields) => only_fields(&value, fields),
            None => value,
        })
    }

    async fn all(&self, events: impl Iterator<Item = &Arc<RoomEvent>>) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for event in events {
            out.push(self.one(event).await?);
        }
        Ok(out)
    }
}

/// The event as stored (the PDU), with its ID, for `event_format:
/// federation`. Read from the store: only clients asking for this format
/// pay for it.
async fn federation_json(shard: &AppShard, event: &RoomEvent) -> Result<Value, ApiError> {
    let record = shard.state.store.event(&event.event_id).await?;
    let mut pdu: Map<String, Value> = record
        .and_then(|r| serde_json::from_slice(&r.json).ok())
        .ok_or_else(|| ApiError::internal(format!("event {} is not stored", event.event_id)))?;
    pdu.insert("event_id".into(), event.event_id.clone().into());
    pdu.entry("room_id").or_insert_with(|| event.room_id.clone().into());
    Ok(Value::Object(pdu))
}
