//! One room as its shard holds it: current state, head and recent events.
//! Only the room's shard touches it, so there is no lock: an event is
//! prepared and applied between two awaits.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use tessera_proto::room_version::RoomVersionRules;
use tessera_statres::auth::power_levels::PowerLevels;
use tessera_statres::auth::{auth_types_for_event, Creators};
use tessera_statres::{check_auth, RoomRules, StateView};
use tessera_storage::records::{
    EventNid, EventRecord, ReceiptRecord, RoomHeadRecord, RoomNid, StateGroupRecord, StateKeyNid, StateKeyRecord,
    StreamPos, VShard,
};
use tessera_storage::Op;

use crate::error::ApiError;
use crate::placement::Placement;
use crate::push::counts::UnreadCache;
use crate::rooms::event::{Draft, RoomEvent};
use crate::rooms::visibility::{HistoryVisibility, VisibilityLog};
use crate::state::ServerKeys;

/// Events kept in memory per room, newest last: what `/sync` serves without
/// reading the store (a client's timeline limit is typically 10–50).
pub const RECENT_EVENTS: usize = 64;

/// Deltas allowed behind a state before the next state is a snapshot:
/// bounds the rows a room load reads, at the cost of one full copy of the
/// state per this many state changes.
const SNAPSHOT_EVERY: u32 = 256;

/// A room's current state, by type and state key, each event with the
/// stream position at which it became current (0 if unknown: stored
/// before it had one).
#[derive(Default)]
pub struct RoomState {
    by_type: HashMap<String, HashMap<String, (StreamPos, Arc<RoomEvent>)>>,
    /// The same events by position, so `/sync` finds the state that changed
    /// in a range of positions without walking the whole state.
    by_pos: BTreeMap<StreamPos, Arc<RoomEvent>>,
    /// Joined members → the position of the join that began their current
    /// run of joins (a profile change re-sends `join` but is no new join).
    joined_at: HashMap<String, StreamPos>,
}

impl StateView<RoomEvent> for RoomState {
    fn get(&self, event_type: &str, state_key: &str) -> Option<&RoomEvent> {
        self.event(event_type, state_key).map(|e| &**e)
    }
}

impl RoomState {
    /// The event at `(event_type, state_key)`.
    pub fn event(&self, event_type: &str, state_key: &str) -> Option<&Arc<RoomEvent>> {
        self.by_type.get(event_type)?.get(state_key).map(|(_, e)| e)
    }

    /// The event at `(event_type, state_key)` with the position at which it
    /// became current.
    pub fn entry(&self, event_type: &str, state_key: &str) -> Option<(StreamPos, &Arc<RoomEvent>)> {
        self.by_type.get(event_type)?.get(state_key).map(|(pos, e)| (*pos, e))
    }

    /// Every state event.
    pub fn events(&self) -> impl Iterator<Item = &Arc<RoomEvent>> {
        self.by_type.values().flat_map(|keys| keys.values().map(|(_, e)| e))
    }

    /// Every state event with its position.
    pub fn entries(&self) -> impl Iterator<Item = (StreamPos, &Arc<RoomEvent>)> {
        self.by_type.values().flat_map(|keys| keys.values().map(|(pos, e)| (*pos, e)))
    }

    /// The state events that became current at a position in `(after,
    /// upto]`, oldest first.
    pub fn changed_in(&self, after: StreamPos, upto: StreamPos) -> impl Iterator<Item = (StreamPos, &Arc<RoomEvent>)> {
        use std::ops::Bound::{Excluded, Included};
        self.by_pos.range((Excluded(after), Included(upto.max(after)))).map(|(pos, e)| (*pos, e))
    }

    /// Every state event of one type, by state key.
    pub fn of_type(&self, event_type: &str) -> impl Iterator<Item = (&String, &Arc<RoomEvent>)> {
        self.by_type.get(event_type).into_iter().flatten().map(|(k, (_, e))| (k, e))
    }

    /// The joined members.
    pub fn joined(&self) -> impl Iterator<Item = &String> {
        self.joined_at.keys()
    }

    /// How many members are joined.
    pub fn joined_count(&self) -> usize {
        self.joined_at.len()
    }

    /// Where `user_id`'s current membership as a joined member began;
    /// `None` unless joined.
    pub fn joined_at(&self, user_id: &str) -> Option<StreamPos> {
        self.joined_at.get(user_id).copied()
    }

    /// `content.membership` of a user's member event.
    pub fn membership(&self, user_id: &str) -> Option<&str> {
        self.event("m.room.member", user_id)?.content.get("membership")?.as_str()
    }

    fn insert(&mut self, event: Arc<RoomEvent>, pos: StreamPos) {
        let Some(key) = event.state_key.clone() else { return };
        if event.event_type == "m.room.member" {
            if event.content.get("membership").and_then(|m| m.as_str()) == Some("join") {
                self.joined_at.entry(key.clone()).or_insert(pos);
            } else {
                self.joined_at.remove(&key);
            }
        }
        let slot = self.by_type.entry(event.event_type.clone()).or_default();
        if let Some((old, _)) = slot.insert(key, (pos, event.clone())) {
            self.by_pos.remove(&old);
        }
        if pos != 0 {
            self.by_pos.insert(pos, event);
        }
    }
}

/// A room.
pub struct Room {
    pub id: String,
    pub vshard: VShard,
    pub nid: RoomNid,
    pub version: &'static RoomVersionRules,
    pub rules: &'static RoomRules,
    pub head: RoomHeadRecord,
    pub state: RoomState,
    /// `(type, state key)` → its number, for every key ever used.
    state_key_nids: HashMap<(String, String), StateKeyNid>,
    /// The current state as numbers, for snapshots.
    current: BTreeMap<StateKeyNid, EventNid>,
    /// The newest events with their stream positions, oldest first.
    pub recent: VecDeque<(StreamPos, Arc<RoomEvent>)>,
    /// `(sender, device, transaction ID)` → event ID, for idempotent sends.
    pub txns: HashMap<(String, String, String), String>,
    /// Receipts by `(receipt type, user, thread)`, and the stream position
    /// of the newest change.
    pub receipts: HashMap<(String, String, Option<String>), ReceiptRecord>,
    pub receipts_pos: StreamPos,
    /// Users typing now, with when their notice expires (POSIX ms), and the
    /// stream position of the newest change.
    pub typing: HashMap<String, u64>,
    pub typing_pos: StreamPos,
    /// Local members to wake per shard (joined, invited and knocking), computed when
    /// first needed after a membership change.
    audience: Option<Vec<Arc<Vec<String>>>>,
    /// The other servers with joined members, computed when first needed
    /// after a membership change: where the room's events are sent.
    servers: Option<Rc<Vec<String>>>,
    /// Every history visibility change, once something needed it (see
    /// `rooms::visibility`); kept up to date from then on.
    pub visibility_log: Option<VisibilityLog>,
    /// Events other servers sent that the auth rules rejected, newest
    /// last (memory only, bounded): later events may still name them as
    /// `prev_events`, as Synapse keeps rejected events to let the graph go
    /// on.
    pub rejected: VecDeque<String>,
    /// Unread notification counts of the members who sync, as far as
    /// counted (`push::counts`).
    pub unread: UnreadCache,
}

impl Room {
    /// A room with no events yet.
    pub fn empty(id: String, vshard: VShard, nid: RoomNid, version: &'static RoomVersionRules) -> Option<Self> {
        let rules = RoomRules::for_version(version.id)?;
        let head = RoomHeadRecord {
            room_version: version.id.to_owned(),
            forward_extremities: Vec::new(),
            depth: 0,
            state_group: 0,
            chain_len: 0,
            next_state_group: 1,
            next_event_nid: 0,
            next_state_key_nid: 0,
        };
        Some(Self {
            id,
            vshard,
            nid,
            version,
            rules,
            head,
            state: RoomState::default(),
            state_key_nids: HashMap::new(),
            current: BTreeMap::new(),
            recent: VecDeque::new(),
            txns: HashMap::new(),
            receipts: HashMap::new(),
            receipts_pos: 0,
            typing: HashMap::new(),
            typing_pos: 0,
            audience: None,
            servers: None,
            visibility_log: None,
            rejected: VecDeque::new(),
            unread: UnreadCache::default(),
        })
    }

    /// The room with no state, for adopting another server's view of it
    /// (a rejoin through another server): numbering and head counters go
    /// on, so no number is used twice.
    pub fn without_state(&self) -> Option<Room> {
        let mut room = Room::empty(self.id.clone(), self.vshard, self.nid, self.version)?;
        room.head = RoomHeadRecord { state_group: 0, chain_len: 0, ..self.head.clone() };
        room.state_key_nids = self.state_key_nids.clone();
        Some(room)
    }

    /// A room as stored: head, state (with its numbering) and recent events.
    pub fn loaded(
        mut room: Room,
        head: RoomHeadRecord,
        state_keys: Vec<StateKeyRecord>,
        current: Vec<(StateKeyNid, EventNid)>,
        state: Vec<(StreamPos, Arc<RoomEvent>)>,
        recent: Vec<(StreamPos, Arc<RoomEvent>)>,
        receipts: Vec<ReceiptRecord>,
    ) -> Room {
        room.receipts = receipts
            .into_iter()
            .map(|r| ((r.receipt_type.clone(), r.user_id.clone(), r.thread_id.clone()), r))
            .collect();
        room.head = head;
        room.state_key_nids = state_keys.into_iter().map(|k| ((k.event_type, k.state_key), k.nid)).collect();
        room.current = current.into_iter().collect();
        for (pos, event) in state {
            room.state.insert(event, pos);
        }
        room.recent = recent.into();
        room
    }

    /// Builds a new event from `draft` on top of the room and checks it
    /// against the auth rules: 403 `M_FORBIDDEN` naming the rule it breaks.
    pub fn prepare(&self, draft: Draft, keys: &ServerKeys, now: u64) -> Result<(Arc<RoomEvent>, Vec<u8>), ApiError> {
        let at = self.next_placement(&draft, now);
        let (event, pdu) = RoomEvent::create(draft, at, self.version, keys)?;
        check_auth(self.rules, &*event, &self.state).map_err(|r| ApiError::forbidden(r.0))?;
        Ok((event, pdu))
    }

    /// The unsigned event `draft` would be as the room's next event, for
    /// another server to complete and sign (`make_join`): 403 if the auth
    /// rules would refuse it now.
    pub fn template(&self, draft: Draft, now: u64) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
        let at = self.next_placement(&draft, now);
        let mut probe = self.probe(&draft, now);
        probe.auth_events = at.auth_events.clone();
        check_auth(self.rules, &probe, &self.state).map_err(|r| ApiError::forbidden(r.0))?;
        Ok(RoomEvent::template(draft, at, self.version))
    }

    /// Checks an event another server made against the auth rules and the
    /// room's current state: 403 `M_FORBIDDEN` with the reason if refused.
    pub fn check_remote(&self, event: &RoomEvent) -> Result<(), ApiError> {
        check_auth(self.rules, event, &self.state).map_err(|r| ApiError::forbidden(r.0))
    }

    /// The event `draft` would be, without an ID or a place in the room
    /// yet: what the auth rules look at.
    fn probe(&self, draft: &Draft, now: u64) -> RoomEvent {
        RoomEvent {
            event_id: String::new(),
            room_id: self.id.clone(),
            sender: draft.sender.clone(),
            event_type: draft.event_type.clone(),
            state_key: draft.state_key.clone(),
            content: draft.content.clone(),
            origin_server_ts: now,
            depth: 0,
            prev_events: Vec::new(),
            auth_events: Vec::new(),
            redacts: None,
            signers: Vec::new(),
            room_id_in_pdu: true,
            txn: None,
            invite_state: None,
        }
    }

    /// Where the next event goes: after the forward extremities, with the
    /// auth events the rules name for it from the current state.
    fn next_placement(&self, draft: &Draft, now: u64) -> crate::rooms::event::Placement<'_> {
        let probe = self.probe(draft, now);
        let mut auth_events: Vec<String> = auth_types_for_event(self.rules, &probe)
            .into_iter()
            .filter_map(|(t, k)| self.state.event(t, k).map(|e| e.event_id.clone()))
            .collect();
        auth_events.dedup();
        let is_create = draft.event_type == "m.room.create";
        let room_id = if is_create && !self.rules.create_in_auth_events { None } else { Some(self.id.as_str()) };
        crate::rooms::event::Placement {
            room_id,
            prev_events: self.head.forward_extremities.clone(),
            auth_events,
            depth: self.head.depth + 1,
            origin_server_ts: now,
        }
    }

    /// Makes `event` the room's newest event at `pos` and adds the writes
    /// that store it to `ops` (the caller adds [`Room::head_op`] once per
    /// batch).
    ///
    /// `known` numbers the auth events of `event` that are not in the
    /// current state (see [`Room::auth_events_elsewhere`]).
    pub fn apply(
        &mut self,
        event: Arc<RoomEvent>,
        pdu: Vec<u8>,
        pos: StreamPos,
        known: &HashMap<String, EventNid>,
        placement: &Placement,
        ops: &mut Vec<Op>,
    ) {
        ops.push(Op::PutEvent(EventRecord {
            event_id: event.event_id.clone(),
            room_id: self.id.clone(),
            vshard: self.vshard,
            stream_pos: Some(pos),
            json: pdu,
        }));
        self.head.forward_extremities = vec![event.event_id.clone()];
        self.head.depth = self.head.depth.max(event.depth);
        if let Some(state_key) = &event.state_key {
            // Before the event changes the state its auth events are in.
            let auth = self.auth_event_nids(&event, known);
            let event_nid = self.apply_state(&event, state_key, pos, placement, ops);
            self.index_auth_events(vec![(event_nid, auth)], ops);
            if event.event_type == "m.room.history_visibility" && state_key.is_empty() {
                if let Some(log) = &mut self.visibility_log {
                    Rc::make_mut(log).push((pos, HistoryVisibility::of(Some(&event))));
                }
            }
        }
        let previous = self.recent.back().map_or(0, |(p, _)| *p);
        UnreadCache::on_append(self, &event, pos, previous);
        self.recent.push_back((pos, event));
        if self.recent.len() > RECENT_EVENTS {
            self.recent.pop_front();
        }
    }

    fn apply_state(
        &mut self,
        event: &Arc<RoomEvent>,
        state_key: &str,
        pos: StreamPos,
        placement: &Placement,
        ops: &mut Vec<Op>,
    ) -> EventNid {
        let (key_nid, event_nid) = self.set_state(event, state_key, pos, placement, ops);
        let state = if self.head.state_group == 0 || self.head.chain_len >= SNAPSHOT_EVERY {
            self.snapshot()
        } else {
            self.head.chain_len += 1;
            StateGroupRecord { parent: Some(self.head.state_group), entries: vec![(key_nid, event_nid)] }
        };
        self.push_group(state, ops);
        event_nid
    }

    /// The numbers of `event`'s auth events, each found in the current state
    /// or else in `known`; `None` if one is in neither (its auth chain is
    /// then walked from the events, not read from the index).
    fn auth_event_nids(&self, event: &RoomEvent, known: &HashMap<String, EventNid>) -> Option<Vec<EventNid>> {
        event.auth_events.iter().map(|id| self.current_nid(event, id).or_else(|| known.get(id).copied())).collect()
    }

    /// The number of `id` if it is the current state at one of the keys
    /// `event`'s auth events may have (the spec's auth events selection).
    fn current_nid(&self, event: &RoomEvent, id: &str) -> Option<EventNid> {
        auth_types_for_event(self.rules, event).into_iter().find_map(|(event_type, state_key)| {
            let current = self.state.event(event_type, state_key)?;
            if current.event_id != id {
                return None;
            }
            let key = self.state_key_nids.get(&(event_type.to_owned(), state_key.to_owned()))?;
            self.current.get(key).copied()
        })
    }

    /// The auth events of `event` that are not in the current state: what
    /// the caller looks up before [`Room::apply`] (an event from another
    /// server may name auth events the state has moved on from).
    pub fn auth_events_elsewhere(&self, event: &RoomEvent) -> Vec<String> {
        event.auth_events.iter().filter(|id| self.current_nid(event, id).is_none()).cloned().collect()
    }

    /// Records the auth events found for each event, by number.
    fn index_auth_events(&self, found: Vec<(EventNid, Option<Vec<EventNid>>)>, ops: &mut Vec<Op>) {
        let events: Vec<_> = found.into_iter().filter_map(|(nid, auth)| Some((nid, auth?))).collect();
        if !events.is_empty() {
            ops.push(Op::PutAuthEvents { room: self.nid, events });
        }
    }

    /// The current state as a full snapshot, which starts a new chain.
    fn snapshot(&mut self) -> StateGroupRecord {
        self.head.chain_len = 0;
        StateGroupRecord { parent: None, entries: self.current.iter().map(|(&k, &e)| (k, e)).collect() }
    }

    /// Stores `state` as the room's next state group, now its current one.
    fn push_group(&mut self, state: StateGroupRecord, ops: &mut Vec<Op>) {
        let group = self.head.next_state_group;
        self.head.next_state_group += 1;
        ops.push(Op::PutStateGroup { room: self.nid, group, state });
        self.head.state_group = group;
    }

    /// Takes `state`, the state of a room another server vouched for (and
    /// we checked), as the room's current state, before the first event
    /// of ours (a join through another server): its events and `outliers`
    /// (the rest of their auth chains) are stored without a timeline
    /// position, as outliers, and the state as one snapshot. All of them
    /// are numbered and indexed, so that their auth chains are read from
    /// the index.
    pub fn adopt_state(
        &mut self,
        state: Vec<(Arc<RoomEvent>, Vec<u8>)>,
        outliers: Vec<(Arc<RoomEvent>, Vec<u8>)>,
        placement: &Placement,
        ops: &mut Vec<Op>,
    ) {
        let first_op = ops.len();
        let mut numbered: HashMap<String, EventNid> = HashMap::new();
        let mut events = Vec::with_capacity(state.len() + outliers.len());
        for (event, pdu) in outliers {
            self.put_outlier(&event, pdu, ops);
            let nid = self.number(&event.event_id, ops);
            numbered.insert(event.event_id.clone(), nid);
            events.push((nid, event));
        }
        for (event, pdu) in state {
            let Some(state_key) = event.state_key.clone() else { continue };
            self.put_outlier(&event, pdu, ops);
            self.head.depth = self.head.depth.max(event.depth);
            let (_, nid) = self.set_state(&event, &state_key, 0, placement, ops);
            numbered.insert(event.event_id.clone(), nid);
            events.push((nid, event));
        }
        let found = events
            .iter()
            .map(|(nid, event)| (*nid, event.auth_events.iter().map(|a| numbered.get(a).copied()).collect()))
            .collect();
        self.index_auth_events(found, ops);
        let snapshot = self.snapshot();
        self.push_group(snapshot, ops);
        // One write per kind for the whole state, not one per event.
        let adopted = ops.split_off(first_op);
        ops.extend(Op::merge_interning(adopted));
    }

    fn put_outlier(&self, event: &RoomEvent, pdu: Vec<u8>, ops: &mut Vec<Op>) {
        ops.push(Op::PutEvent(EventRecord {
            event_id: event.event_id.clone(),
            room_id: self.id.clone(),
            vshard: self.vshard,
            stream_pos: None,
            json: pdu,
        }));
    }

    /// Gives `event_id` the room's next event number.
    fn number(&mut self, event_id: &str, ops: &mut Vec<Op>) -> EventNid {
        let nid = self.head.next_event_nid;
        self.head.next_event_nid += 1;
        ops.push(Op::PutEventNids { room: self.nid, events: vec![(nid, event_id.to_owned())] });
        nid
    }

    /// Makes `event` current at `(type, state_key)`, numbering its key and
    /// itself: the writes for that, not yet a state group.
    fn set_state(
        &mut self,
        event: &Arc<RoomEvent>,
        state_key: &str,
        pos: StreamPos,
        placement: &Placement,
        ops: &mut Vec<Op>,
    ) -> (StateKeyNid, EventNid) {
        let key = (event.event_type.clone(), state_key.to_owned());
        let key_nid = match self.state_key_nids.get(&key) {
            Some(&nid) => nid,
            None => {
                let nid = self.head.next_state_key_nid;
                self.head.next_state_key_nid += 1;
                ops.push(Op::PutStateKeys {
                    room: self.nid,
                    keys: vec![StateKeyRecord { nid, event_type: key.0.clone(), state_key: key.1.clone() }],
                });
                self.state_key_nids.insert(key, nid);
                nid
            }
        };
        let event_nid = self.number(&event.event_id, ops);
        self.current.insert(key_nid, event_nid);
        if event.event_type == "m.room.member" {
            self.audience = None;
            self.servers = None;
            let membership = event.content.get("membership").and_then(|m| m.as_str()).unwrap_or_default();
            ops.push(Op::PutMembership {
                vshard_room: self.vshard,
                vshard_user: placement.vshard(state_key),
                room_id: self.id.clone(),
                user_id: state_key.to_owned(),
                membership: membership.to_owned(),
                event_id: event.event_id.clone(),
            });
        }
        self.state.insert(event.clone(), pos);
        (key_nid, event_nid)
    }

    /// Whether `user_id`'s power level reaches the level `required` picks
    /// from the room's power levels (as the auth rules read them, creators
    /// included).
    pub fn has_power(&self, user_id: &str, required: impl Fn(&PowerLevels<'_>) -> i64) -> bool {
        let Some(create) = self.state.event("m.room.create", "") else { return false };
        let creators = Creators::of(&**create, self.rules);
        let content = self.state.event("m.room.power_levels", "").map(|e| &e.content);
        let levels = PowerLevels::new(content, &creators, self.rules);
        levels.user(user_id) >= required(&levels)
    }

    /// The current state event `draft` would repeat (same type, state key,
    /// sender and content), if any: Synapse sends no new event then, so
    /// setting state or joining twice is idempotent.
    pub fn unchanged_state(&self, draft: &Draft) -> Option<String> {
        let current = self.state.event(&draft.event_type, draft.state_key.as_deref()?)?;
        (current.sender == draft.sender && current.content == draft.content).then(|| current.event_id.clone())
    }

    /// Swaps the current state event with the same ID for `event` (its
    /// redacted form); no change if it is not current state.
    pub fn replace_state_event(&mut self, event: &Arc<RoomEvent>) {
        let Some(key) = &event.state_key else { return };
        let current = self.state.entry(&event.event_type, key).map(|(pos, e)| (pos, e.event_id == event.event_id));
        if let Some((pos, true)) = current {
            self.state.insert(event.clone(), pos);
        }
    }

    /// The number of a state key, if it was ever used.
    pub fn state_key_nid(&self, event_type: &str, state_key: &str) -> Option<StateKeyNid> {
        self.state_key_nids.get(&(event_type.to_owned(), state_key.to_owned())).copied()
    }

    /// The number of the current state event at `(event_type, state_key)`.
    pub fn event_nid(&self, event_type: &str, state_key: &str) -> Option<EventNid> {
        self.current.get(&self.state_key_nid(event_type, state_key)?).copied()
    }

    /// Every state key ever used, by number.
    pub fn state_key_names(&self) -> HashMap<StateKeyNid, (String, String)> {
        self.state_key_nids.iter().map(|(key, &nid)| (nid, key.clone())).collect()
    }

    /// The write that stores the head as it is now.
    pub fn head_op(&self) -> Op {
        Op::PutRoomHead { vshard: self.vshard, room_id: self.id.clone(), head: self.head.clone() }
    }

    /// Whether a user of `server` is joined to the room (for `us`: whether
    /// this server is resident and may speak for the room).
    pub fn has_member_of(&self, server: &str) -> bool {
        self.state.joined().any(|user| crate::federation::server_of(user) == server)
    }

    /// The servers other than `us` with members joined to the room.
    pub fn remote_servers(&mut self, us: &str) -> Rc<Vec<String>> {
        let state = &self.state;
        self.servers
            .get_or_insert_with(|| {
                let mut servers: Vec<String> = Vec::new();
                for server in state.joined().map(|user| crate::federation::server_of(user)) {
                    if server != us && !servers.iter().any(|s| s == server) {
                        servers.push(server.to_owned());
                    }
                }
                Rc::new(servers)
            })
            .clone()
    }

    /// The members to wake when an event arrives, grouped by the shard that
    /// holds their sync state: joined and invited members.
    pub fn audience(&mut self, shard_of: impl Fn(&str) -> usize, shards: usize) -> &[Arc<Vec<String>>] {
        if self.audience.is_none() {
            let mut per_shard = vec![Vec::new(); shards];
            for (user, event) in self.state.of_type("m.room.member") {
                // Knockers too: their knock's answer (an invite, a leave)
                // must reach their syncs.
                if matches!(event.content.get("membership").and_then(|m| m.as_str()), Some("join" | "invite" | "knock"))
                {
                    per_shard[shard_of(user)].push(user.clone());
                }
            }
            self.audience = Some(per_shard.into_iter().map(Arc::new).collect());
        }
        self.audience.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn event(id: &str, event_type: &str, state_key: &str, content: Value, auth: &[&str]) -> (Arc<RoomEvent>, Vec<u8>) {
        let pdu = json!({
            "room_id": "!r:x", "sender": "@a:x", "type": event_type, "state_key": state_key, "content": content,
            "origin_server_ts": 1, "depth": 1, "prev_events": [], "auth_events": auth,
        });
        let bytes = serde_json::to_vec(&pdu).unwrap();
        let mut event = RoomEvent::from_pdu(&bytes).unwrap();
        event.event_id = id.into();
        (Arc::new(event), bytes)
    }

    fn indexed(ops: &[Op]) -> Vec<(EventNid, Vec<EventNid>)> {
        ops.iter()
            .filter_map(|op| match op {
                Op::PutAuthEvents { events, .. } => Some(events.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn auth_events_are_indexed_by_number_from_the_state_the_outliers_and_known_numbers() {
        let placement = Placement::new(4, 1);
        let mut room = Room::empty("!r:x".into(), 0, 7, RoomVersionRules::get("11").unwrap()).unwrap();
        let create = event("$create", "m.room.create", "", json!({ "creator": "@a:x" }), &[]);
        let join = event("$join", "m.room.member", "@a:x", json!({ "membership": "join" }), &["$create"]);
        // The power levels the state has moved on from: an outlier.
        let old_levels = event("$pl1", "m.room.power_levels", "", json!({}), &["$create", "$join"]);
        let levels = event("$pl2", "m.room.power_levels", "", json!({}), &["$create", "$join", "$pl1"]);
        let mut ops = Vec::new();
        room.adopt_state(vec![create, join, levels], vec![old_levels], &placement, &mut ops);
        // Numbered outliers first: $pl1 0, $create 1, $join 2, $pl2 3.
        assert_eq!(indexed(&ops), [(0, vec![1, 2]), (1, vec![]), (2, vec![1]), (3, vec![1, 2, 0])]);

        // A new event names current state (found there) and the outlier
        // (found only through `known`, as the store would answer).
        let (topic, pdu) = event("$topic", "m.room.topic", "", json!({ "topic": "t" }), &["$create", "$join", "$pl1"]);
        assert_eq!(room.auth_events_elsewhere(&topic), ["$pl1"]);
        let known = HashMap::from([("$pl1".to_owned(), 0)]);
        let mut ops = Vec::new();
        room.apply(topic, pdu, 5, &known, &placement, &mut ops);
        assert_eq!(indexed(&ops), [(4, vec![1, 2, 0])]);
        // One whose auth event is nowhere is left out of the index (its
        // chain is walked from the events instead).
        let (name, pdu) = event("$name", "m.room.name", "", json!({ "name": "n" }), &["$create", "$gone"]);
        let mut ops = Vec::new();
        room.apply(name, pdu, 6, &HashMap::new(), &placement, &mut ops);
        assert_eq!(indexed(&ops), []);
    }
}
