//! Rooms, on the shard that owns them (by the hash of the room ID). Every
//! write to a room runs here: events are prepared, authorised and applied
//! to the in-memory [`Room`] without an await in between, then stored in
//! one atomic write. When the write is durable, the room's members' shards
//! are told (see [`stream`]), which wakes their `/sync` long-polls.

pub mod create;
pub mod ephemeral;
pub mod event;
pub mod guests;
pub mod read;
pub mod redact;
pub mod room;
pub mod stream;
pub mod upgrade;
pub mod visibility;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tessera_proto::room_version::RoomVersionRules;
use tessera_storage::records::{room_nid, EventNid, RoomNid, StreamPos, VShard};
use tessera_storage::{Op, Result as StoreResult, Store};

use crate::error::ApiError;
use crate::push::counts::UnreadCache;
use crate::request::now_ms;
use crate::state::AppShard;
use crate::store::AnyStore;
use crate::sync::tidings::Tiding;
use event::{Draft, RoomEvent};
use room::Room;
use stream::ShardStream;

/// What a room's shard tells a member's shard about one new event.
#[derive(Clone, Debug)]
pub struct Notice {
    pub room_id: Arc<str>,
    pub pos: StreamPos,
    /// The members to wake, on the shard this notice goes to.
    pub users: Arc<Vec<String>>,
    /// For a member event: `(target, membership)`.
    pub membership: Option<(String, String)>,
}

/// A notice before it is split by destination shard.
pub struct Outgoing {
    pub room_id: Arc<str>,
    pub pos: StreamPos,
    pub audience: Vec<Arc<Vec<String>>>,
    pub membership: Option<(String, String)>,
}

/// The rooms of one shard.
pub struct Rooms {
    open: RefCell<HashMap<String, Rc<RefCell<Room>>>>,
    /// This shard's event stream.
    pub stream: ShardStream<Outgoing>,
    next_room_nid: RefCell<HashMap<VShard, u64>>,
    /// The watermark each shard was last told.
    told: RefCell<Vec<StreamPos>>,
    /// Whether a watermark is about to be told.
    watermark_pending: std::cell::Cell<bool>,
}

/// Stream name of shard `k`'s last event position.
pub(crate) fn stream_name(shard: usize) -> String {
    format!("events/{shard}")
}

/// How many shards the server last ran with.
const SHARDS_STREAM: &str = "shards";

impl Rooms {
    /// Opens this shard's rooms. Positions continue above the highest any
    /// shard has used, also when the shard count changed since the last run:
    /// a room that moved to another shard keeps an increasing timeline.
    pub async fn open(store: &AnyStore, shard: usize, shards: usize) -> StoreResult<Rooms> {
        let before = store.stream_position(SHARDS_STREAM).await?.unwrap_or(0) as usize;
        let mut start = 0;
        for k in 0..before.max(shards) {
            start = start.max(store.stream_position(&stream_name(k)).await?.unwrap_or(0));
        }
        if shard == 0 && before != shards {
            store.write(vec![Op::SetStreamPosition { stream: SHARDS_STREAM.into(), pos: shards as u64 }]).await?;
        }
        Ok(Rooms {
            open: Default::default(),
            stream: ShardStream::new(start),
            next_room_nid: Default::default(),
            told: RefCell::new(vec![start; shards]),
            watermark_pending: Default::default(),
        })
    }
}

/// The room, loaded from the store on first use; `None` if it does not
/// exist. Must run on the room's shard.
pub async fn get(shard: &AppShard, room_id: &str) -> Result<Option<Rc<RefCell<Room>>>, ApiError> {
    if let Some(room) = shard.state.rooms.open.borrow().get(room_id) {
        return Ok(Some(room.clone()));
    }
    let Some(room) = load(shard, room_id).await? else { return Ok(None) };
    // Two requests may load the same room at once; the first to finish wins.
    let room =
        shard.state.rooms.open.borrow_mut().entry(room_id.to_owned()).or_insert(Rc::new(RefCell::new(room))).clone();
    Ok(Some(room))
}

async fn load(shard: &AppShard, room_id: &str) -> Result<Option<Room>, ApiError> {
    let store = &shard.state.store;
    let vshard = shard.state.placement.vshard(room_id);
    let Some(head) = store.room_head(vshard, room_id).await? else { return Ok(None) };
    let corrupt = |why: &str| ApiError::internal(format!("room {room_id}: {why}"));
    let nid = store.room_nid(vshard, room_id).await?.ok_or_else(|| corrupt("no room number"))?;
    let version = RoomVersionRules::get(&head.room_version).ok_or_else(|| corrupt("unknown room version"))?;
    let state_keys = store.state_keys(nid).await?;
    let current = store.state_at(nid, head.state_group).await?.unwrap_or_default();
    let nids: Vec<_> = current.iter().map(|&(_, e)| e).collect();
    let mut state = Vec::with_capacity(nids.len());
    for id in store.event_ids_of(nid, &nids).await?.into_iter().flatten() {
        let (pos, event) = stored_event_at(store, &id).await?.ok_or_else(|| corrupt("state event missing"))?;
        state.push((pos.unwrap_or(0), event));
    }
    let mut recent = Vec::new();
    let newest =
        store.timeline(vshard, room_id, None, tessera_storage::Direction::Backward, room::RECENT_EVENTS).await?;
    for (pos, id) in newest.into_iter().rev() {
        if let Some(event) = stored_event(store, &id).await? {
            recent.push((pos, event));
        }
    }
    let receipts = store.receipts(vshard, room_id).await?;
    let empty = Room::empty(room_id.to_owned(), vshard, nid, version).ok_or_else(|| corrupt("no auth rules"))?;
    Ok(Some(Room::loaded(empty, head, state_keys, current, state, recent, receipts)))
}

/// An event from the store.
pub async fn stored_event(store: &AnyStore, event_id: &str) -> Result<Option<Arc<RoomEvent>>, ApiError> {
    Ok(stored_event_at(store, event_id).await?.map(|(_, event)| event))
}

/// An event from the store with its timeline position (none for outliers).
pub async fn stored_event_at(
    store: &AnyStore,
    event_id: &str,
) -> Result<Option<(Option<StreamPos>, Arc<RoomEvent>)>, ApiError> {
    let Some(record) = store.event(event_id).await? else { return Ok(None) };
    let mut event = RoomEvent::from_pdu(&record.json)
        .ok_or_else(|| ApiError::internal(format!("stored event {event_id} is unreadable")))?;
    event.event_id = record.event_id;
    event.room_id = record.room_id;
    Ok(Some((record.stream_pos, Arc::new(event))))
}

/// A new room number for a room of `vshard`, and the write that records it.
pub async fn allocate_room_nid(shard: &AppShard, vshard: VShard) -> Result<(RoomNid, Op), ApiError> {
    let rooms = &shard.state.rooms;
    let stream = format!("room_nids/{vshard}");
    if !rooms.next_room_nid.borrow().contains_key(&vshard) {
        let next = shard.state.store.stream_position(&stream).await?.unwrap_or(0);
        rooms.next_room_nid.borrow_mut().entry(vshard).or_insert(next);
    }
    let mut counters = rooms.next_room_nid.borrow_mut();
    let counter = counters.get_mut(&vshard).expect("inserted above");
    let nid = room_nid(vshard, *counter);
    *counter += 1;
    Ok((nid, Op::SetStreamPosition { stream, pos: *counter }))
}

/// A new room with no events yet, of a room ID another server made (a
/// join or invite through federation), and the writes that number it.
pub async fn new_room(
    shard: &AppShard,
    room_id: &str,
    version: &'static RoomVersionRules,
) -> Result<(Room, Vec<Op>), ApiError> {
    let vshard = shard.state.placement.vshard(room_id);
    let (nid, nid_op) = allocate_room_nid(shard, vshard).await?;
    let room =
        Room::empty(room_id.to_owned(), vshard, nid, version).ok_or_else(|| ApiError::internal("no auth rules"))?;
    Ok((room, vec![nid_op, Op::PutRoomNid { vshard, room_id: room_id.to_owned(), room: nid }]))
}

/// A send's transaction: `(device, transaction ID)`.
pub type Txn = (String, String);

/// An event to append: built already, or to prepare from a draft.
enum Next {
    Built((Arc<RoomEvent>, Vec<u8>)),
    Draft(Draft),
}

/// Prepares, applies and stores `drafts` in `room` as one atomic write.
/// `first` is an already built first event (a create event made before the
/// room ID was known). `extra` are writes to add to the batch. Must run on
/// the room's shard.
pub async fn append(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    first: Option<(Arc<RoomEvent>, Vec<u8>)>,
    drafts: Vec<Draft>,
    txn: Option<Txn>,
    extra: Vec<Op>,
) -> Result<Vec<Arc<RoomEvent>>, ApiError> {
    let state = &shard.state;
    let stream = &state.rooms.stream;
    let mut ops = extra;
    let mut positions = Vec::new();
    let mut events = Vec::new();
    let mut outgoing = Vec::new();
    let mut federated = Vec::new();
    let mut member_changes = Vec::new();
    // A state event from another server may name auth events the state
    // has moved on from: their numbers, for the auth-chain index (which
    // holds state events only).
    let first_state = first.as_ref().filter(|(event, _)| event.state_key.is_some());
    let elsewhere = first_state.map(|(event, _)| room.borrow().auth_events_elsewhere(event)).unwrap_or_default();
    let known: HashMap<String, EventNid> = match (first_state, elsewhere.is_empty()) {
        (Some((event, _)), false) => {
            let (nid, group) = (room.borrow().nid, room.borrow().head.state_group);
            let found = state.store.event_nids_of(nid, &elsewhere).await.unwrap_or_else(|e| {
                // The index is an aid: without the numbers the event's
                // chain is walked from the events instead.
                tracing::warn!(error = %e, "event numbers of auth events not found; not indexing them");
                vec![None; elsewhere.len()]
            });
            // The read let other tasks run: if the room's state changed
            // meanwhile, the caller's auth check of the event was against
            // a state that is gone, so it is checked again.
            if room.borrow().head.state_group != group {
                room.borrow().check_remote(event)?;
            }
            elsewhere.into_iter().zip(found).filter_map(|(id, nid)| Some((id, nid?))).collect()
        }
        _ => HashMap::new(),
    };
    let prepared: Result<(), ApiError> = (|| {
        let mut room = room.borrow_mut();
        let now = now_ms();
        let pending = first.into_iter().map(Next::Built).chain(drafts.into_iter().map(Next::Draft));
        for next in pending {
            // Events made here from drafts go to the room's other servers;
            // built ones came from another server, or were sent with the
            // handshake that made them (a join through another server), or
            // begin a room no other server is in yet.
            let ours = matches!(next, Next::Draft(_));
            let (mut event, pdu) = match next {
                Next::Built(built) => built,
                Next::Draft(draft) => room.prepare(draft, &state.keys, now)?,
            };
            if events.is_empty() {
                if let (Some(txn), Some(fresh)) = (&txn, Arc::get_mut(&mut event)) {
                    fresh.txn = Some(txn.clone());
                }
            }
            let pos = stream.allocate();
            positions.push(pos);
            // To the servers in the room before, for a membership change
            // also those in it after.
            let us = state.config.server_name.as_str();
            let before = ours.then(|| room.remote_servers(us));
            let before = before.filter(|b| !b.is_empty() || event.event_type == "m.room.member");
            let copy = before.as_ref().map(|_| pdu.clone());
            // A member who joins or stops being joined: a device list
            // change between them and the room's members.
            let member_change =
                event.state_key.as_ref().filter(|_| event.event_type == "m.room.member").and_then(|key| {
                    let joins = event.content.get("membership").and_then(|m| m.as_str()) == Some("join");
                    let was_joined = room.state.joined_at(key).is_some();
                    (joins != was_joined).then(|| (key.clone(), joins))
                });
            room.apply(event.clone(), pdu, pos, &known, &state.placement, &mut ops);
            match &member_change {
                Some((member, true)) if crate::federation::server_of(member) == us => {
                    UnreadCache::joined(&mut room, member, pos)
                }
                Some((member, false)) => UnreadCache::left(&mut room, member),
                _ => {}
            }
            if let (Some(before), Some(copy)) = (before, copy) {
                let mut destinations = before.to_vec();
                for server in room.remote_servers(us).iter() {
                    if !destinations.contains(server) {
                        destinations.push(server.clone());
                    }
                }
                if !destinations.is_empty() {
                    federated.push((destinations, copy));
                }
            }
            let membership = (event.event_type == "m.room.member").then(|| {
                let m = event.content.get("membership").and_then(|m| m.as_str()).unwrap_or_default();
                (event.state_key.clone().unwrap_or_default(), m.to_owned())
            });
            let placement = &state.placement;
            let audience = room.audience(|u| placement.shard(u), placement.shard_count()).to_vec();
            if let Some((member, joins)) = member_change {
                let ours = crate::federation::server_of(&member) == us;
                let members = ours.then(|| room.state.joined().cloned().collect());
                let tiding = if joins { Tiding::Devices } else { Tiding::Left };
                member_changes.push((member, audience.clone(), members, tiding));
            }
            outgoing.push(Outgoing { room_id: Arc::from(room.id.as_str()), pos, audience, membership });
            events.push(event);
        }
        if let (Some((device, txn_id)), Some(event)) = (txn, events.first()) {
            room.txns.insert((event.sender.clone(), device, txn_id), event.event_id.clone());
        }
        ops.push(room.head_op());
        Ok(())
    })();
    if let Some(&last) = positions.last() {
        ops.push(Op::SetStreamPosition { stream: stream_name(shard.id()), pos: last });
    }
    let result = match prepared {
        Ok(()) => state.store.write(ops).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    if result.is_err() && !positions.is_empty() {
        // Memory is ahead of the store: drop the room, the next request
        // loads it as stored.
        let id = room.borrow().id.clone();
        state.rooms.open.borrow_mut().remove(&id);
        outgoing.clear();
    }
    if result.is_ok() {
        for (member, audience, members, tiding) in member_changes {
            crate::sync::tidings::membership_changed(shard, &member, &audience, members, tiding);
        }
        for (destinations, pdu) in federated {
            match serde_json::from_slice(&pdu) {
                Ok(pdu) => crate::federation::outbound::send_pdu(shard, destinations, Arc::new(pdu)),
                Err(e) => tracing::error!(error = %e, "an event we stored is not JSON"),
            }
        }
    }
    let mut outgoing = outgoing.into_iter();
    for pos in positions {
        let notices: Vec<Outgoing> = outgoing.next().into_iter().collect();
        let (released, watermark) = stream.finish(pos, notices);
        dispatch(shard, released, watermark);
    }
    result.map(|()| events)
}

/// The content of a member event of `user_id` (a local user) with this
/// membership: joins carry the user's profile, so member lists show it.
pub async fn member_content(shard: &AppShard, user_id: &str, membership: &str) -> Result<serde_json::Value, ApiError> {
    let mut content = serde_json::Map::new();
    content.insert("membership".into(), membership.into());
    if membership == "join" {
        let vshard = shard.state.placement.vshard(user_id);
        if let Some(user) = shard.state.store.user(vshard, user_id).await? {
            if let Some(name) = user.displayname {
                content.insert("displayname".into(), name.into());
            }
            if let Some(avatar) = user.avatar_url {
                content.insert("avatar_url".into(), avatar.into());
            }
        }
    }
    Ok(serde_json::Value::Object(content))
}

/// Sends `user_id`'s own member event with `membership` (and their current
/// profile) into each of `rooms`, concurrently; a room that refuses is
/// logged with `what` and skipped. Profile changes re-send joins this way;
/// deactivation sends leaves.
pub async fn send_own_membership(
    shard: &AppShard,
    user_id: &str,
    rooms: &[String],
    membership: &str,
    what: &str,
) -> Result<(), ApiError> {
    if rooms.is_empty() {
        return Ok(());
    }
    let content = member_content(shard, user_id, membership).await?;
    let sends = rooms.iter().map(|room_id| {
        let draft = Draft {
            sender: user_id.to_owned(),
            event_type: "m.room.member".into(),
            state_key: Some(user_id.to_owned()),
            content: content.clone(),
            redacts: None,
        };
        send(shard, room_id, draft, None)
    });
    for (room_id, result) in rooms.iter().zip(futures_util::future::join_all(sends).await) {
        if let Err(e) = result {
            tracing::warn!(user = user_id, room = room_id, error = e.message, "{what}");
        }
    }
    Ok(())
}

/// Registers a newly created room as open on this shard.
pub fn insert_open(shard: &AppShard, room: Room) -> Rc<RefCell<Room>> {
    let room = Rc::new(RefCell::new(room));
    shard.state.rooms.open.borrow_mut().insert(room.borrow().id.clone(), room.clone());
    room
}

/// Sends released notices to the members' shards, one message per shard;
/// shards with none are told the new watermark soon after (see
/// [`tell_watermark`]).
pub(crate) fn dispatch(shard: &AppShard, released: Vec<Outgoing>, watermark: StreamPos) {
    if released.is_empty() {
        tell_watermark(shard);
        return;
    }
    let placement = &shard.state.placement;
    let mut per_shard: Vec<Vec<Notice>> = vec![Vec::new(); placement.shard_count()];
    for out in released {
        let target = out.membership.as_ref().map(|(user, _)| placement.shard(user));
        for (k, users) in out.audience.into_iter().enumerate() {
            if !users.is_empty() || target == Some(k) {
                per_shard[k].push(Notice {
                    room_id: out.room_id.clone(),
                    pos: out.pos,
                    users,
                    membership: out.membership.clone(),
                });
            }
        }
    }
    let from = shard.id();
    let rooms = &shard.state.rooms;
    for (k, notices) in per_shard.into_iter().enumerate() {
        if !notices.is_empty() {
            rooms.told.borrow_mut()[k] = watermark;
            shard.tell(k, move |shard| crate::sync::deliver(shard, from, watermark, notices));
        }
    }
    tell_watermark(shard);
}

/// Tells every shard not told yet this shard's durable watermark, once the
/// writes finishing in this turn of the reactor are done (they go as one
/// message). A user's sync token carries, per shard, what their
/// shard heard from it; without this, a shard that no notice reached would
/// keep an old position, and a token taken there would start `/messages`
/// of a room it is not in (a `world_readable` one) before its newest
/// events. The mesh keeps each pair of shards in order, so a watermark
/// arrives after the notices it passed.
fn tell_watermark(shard: &AppShard) {
    let rooms = &shard.state.rooms;
    if rooms.watermark_pending.replace(true) {
        return;
    }
    let shard = shard.clone();
    tessera_net::runtime::spawn(async move {
        tessera_net::runtime::yield_now().await;
        let rooms = &shard.state.rooms;
        rooms.watermark_pending.set(false);
        let watermark = rooms.stream.durable();
        let from = shard.id();
        for k in 0..shard.state.placement.shard_count() {
            let behind = std::mem::replace(&mut rooms.told.borrow_mut()[k], watermark) < watermark;
            if behind {
                shard.tell(k, move |shard| crate::sync::deliver(shard, from, watermark, Vec::new()));
            }
        }
    });
}

/// Runs `f` on the shard that owns `room_id` with the room (404
/// `M_NOT_FOUND` if this server does not know it).
pub async fn on_room<R, F, Fut>(shard: &AppShard, room_id: &str, f: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(AppShard, Rc<RefCell<Room>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, ApiError>> + 'static,
{
    on_room_shard(shard, room_id, |shard, room| async move {
        let room = room.ok_or_else(|| ApiError::not_found("unknown room"))?;
        f(shard, room).await
    })
    .await
}

/// Runs `f` on the shard that owns `room_id`, with the room if this server
/// knows it (what joins, leaves and invites through other servers start
/// from).
pub async fn on_room_shard<R, F, Fut>(shard: &AppShard, room_id: &str, f: F) -> Result<R, ApiError>
where
    R: Send + 'static,
    F: FnOnce(AppShard, Option<Rc<RefCell<Room>>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, ApiError>> + 'static,
{
    let owner = shard.state.placement.shard(room_id);
    let room_id = room_id.to_owned();
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move {
                let room = get(&shard, &room_id).await?;
                f(shard, room).await
            }
        })
        .await?
}

/// The servers with members joined to `room_id`, this one first (what the
/// directory answers as `servers`, to join through). Just this server when
/// the room is unknown here.
pub async fn resident_servers(shard: &AppShard, room_id: &str) -> Result<Vec<String>, ApiError> {
    let us = shard.state.config.server_name.clone();
    let found = on_room(shard, room_id, move |_, room| async move {
        let room = room.borrow();
        let mut servers: Vec<String> = vec![us.clone()];
        for server in room.state.joined().map(|user| crate::federation::server_of(user)) {
            if !servers.iter().any(|s| s == server) {
                servers.push(server.to_owned());
            }
        }
        Ok(servers)
    })
    .await;
    match found {
        Err(e) if e.status == 404 => Ok(vec![shard.state.config.server_name.clone()]),
        other => other,
    }
}

/// Sends one event into a room as `sender` (idempotently per `txn`), on
/// the room's shard. Returns the event ID.
pub async fn send(shard: &AppShard, room_id: &str, draft: Draft, txn: Option<Txn>) -> Result<String, ApiError> {
    on_room(shard, room_id, move |shard, room| async move {
        if let Some((device, txn_id)) = &txn {
            let key = (draft.sender.clone(), device.clone(), txn_id.clone());
            if let Some(event_id) = room.borrow().txns.get(&key) {
                return Ok(event_id.clone());
            }
        }
        if let Some(same) = room.borrow().unchanged_state(&draft) {
            return Ok(same);
        }
        let events = append(&shard, &room, None, vec![draft], txn, Vec::new()).await?;
        Ok(events[0].event_id.clone())
    })
    .await
}

/// Puts a membership of one of our users that another server made or
/// accepted (an invite we received, a knock we made) into this server's
/// view of a room no user of ours is in, on the room's shard. `kept` is
/// the event with the stripped state the user is shown in `unsigned`.
pub async fn remember_outside(
    shard: &AppShard,
    room_id: &str,
    known: Option<Rc<RefCell<Room>>>,
    rules: &'static RoomVersionRules,
    event_id: String,
    kept: Vec<u8>,
) -> Result<(), ApiError> {
    let mut event =
        RoomEvent::from_pdu(&kept).ok_or_else(|| ApiError::internal("a membership event we signed is unreadable"))?;
    event.event_id = event_id;
    event.room_id = room_id.to_owned();
    let us = shard.state.config.server_name.clone();
    let (room, ops) = match known {
        Some(room) if room.borrow().has_member_of(&us) => return Ok(()),
        Some(room) => (room, Vec::new()),
        None => {
            let (room, ops) = new_room(shard, room_id, rules).await?;
            (insert_open(shard, room), ops)
        }
    };
    append(shard, &room, Some((std::sync::Arc::new(event), kept)), Vec::new(), None, ops).await?;
    Ok(())
}
