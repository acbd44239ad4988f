//! `/sync` state, on each user's shard (spec: client-server API,
//! "Syncing").
//!
//! A user's shard keeps, per user who has synced: the rooms they are in and,
//! per room, the newest position it has been told of. Rooms' shards send
//! [`Notice`]s when events become durable (see `rooms::stream`); a notice
//! records the change and wakes the user's waiting long-polls. A sync then
//! asks only the shards of changed rooms for their part of the response.

pub mod presence;
pub mod room;
pub mod tidings;
pub mod to_device;
pub mod token;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{join_all, select};
use serde_json::{json, Map, Value};
use tessera_net::wait_list::WaitList;
use tessera_storage::records::StreamPos;
use tessera_storage::Store;

use crate::api::client::filter::Filter;
use crate::error::ApiError;
use crate::push::counts::UserRules;
use crate::push::rules::PUSH_RULES;
use crate::rooms::{self, Notice};
use crate::state::AppShard;
use room::{room_part, RoomPart, RoomQuery, Section};
use token::SyncToken;

/// Account data type listing the users whose events a user ignores (spec:
/// client-server API, "Ignoring Users").
pub const IGNORED_USER_LIST: &str = "m.ignored_user_list";

/// Longest long-poll honoured: clients ask for 30 s; proxies time out at 60.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// One synced user's state.
struct UserSync {
    /// Room → membership, as notices report it; `None` until loaded.
    rooms: RefCell<Option<HashMap<String, String>>>,
    /// Membership changes that arrived while loading.
    pending: RefCell<Vec<(String, String)>>,
    /// Room → (its shard, newest position heard of).
    changed: RefCell<HashMap<String, (usize, StreamPos)>>,
    /// Bumped on every change; long-polls wait for it to move.
    version: Cell<u64>,
    /// Account data changed in this epoch: `(room, type)` → the stream
    /// version it changed at.
    account_data: RefCell<HashMap<(Option<String>, String), u64>>,
    /// The user's stream version: account data changes and presence
    /// updates received, counted in this epoch.
    stream_version: Cell<u64>,
    /// The users this user ignores; `None` until read (again, after a
    /// change).
    ignored: RefCell<Option<Arc<HashSet<String>>>>,
    /// The user's push rules; `None` until read (again, after a change).
    push_rules: RefCell<Option<Arc<UserRules>>>,
    /// Lazy-loading: per (device, room), the members whose member event
    /// the device has been sent, so it is not sent again (spec: "the server
    /// MAY assume that clients will remember membership events they have
    /// already been sent").
    members_sent: RefCell<HashMap<(String, String), HashSet<String>>>,
    /// Presence updates received, by sender, at their stream versions.
    presence: RefCell<tidings::Latest<Arc<Value>>>,
    /// Users whose devices changed, at the stream versions it was heard.
    device_changes: RefCell<tidings::Latest<()>>,
    /// Users who left a room the user is in, or whose room the user left:
    /// `device_lists.left` if no other room is shared.
    device_left: RefCell<tidings::Latest<()>>,
    /// The to-device inboxes of the user's devices, by device.
    inboxes: RefCell<HashMap<String, to_device::Inbox>>,
    waiters: WaitList,
}

/// The sync state of one shard's users.
pub struct SyncHub {
    users: RefCell<HashMap<String, Rc<UserSync>>>,
    /// Per shard, the highest durable position it has told us of.
    heard: RefCell<Vec<StreamPos>>,
    /// This process's epoch (its start time, ms).
    pub epoch: u64,
    /// To-device transactions this shard's users sent.
    pub to_device_txns: RefCell<to_device::SentTxns>,
    /// The presence of this shard's users (memory only).
    pub presence: RefCell<HashMap<String, presence::Presence>>,
}

impl SyncHub {
    /// Empty state for a server of `shards` shards whose streams start
    /// above `start`.
    pub fn new(shards: usize, start: StreamPos, epoch: u64) -> Self {
        Self {
            users: Default::default(),
            heard: RefCell::new(vec![start; shards]),
            epoch,
            to_device_txns: Default::default(),
            presence: Default::default(),
        }
    }
}

/// Applies notices from shard `from` (run on the members' shard).
pub fn deliver(shard: &AppShard, from: usize, watermark: StreamPos, notices: Vec<Notice>) {
    let hub = &shard.state.sync;
    {
        let mut heard = hub.heard.borrow_mut();
        heard[from] = heard[from].max(watermark);
    }
    let users = hub.users.borrow();
    let mut touched: HashSet<*const UserSync> = HashSet::new();
    for notice in &notices {
        let target = notice.membership.as_ref().map(|(u, _)| u.as_str());
        let recipients = notice.users.iter().map(String::as_str).chain(target);
        for user_id in recipients {
            let Some(user) = users.get(user_id) else { continue };
            user.changed.borrow_mut().insert(notice.room_id.to_string(), (from, notice.pos));
            if let Some((target, membership)) = &notice.membership {
                if target == user_id {
                    let change = (notice.room_id.to_string(), membership.clone());
                    match &mut *user.rooms.borrow_mut() {
                        Some(rooms) => drop(rooms.insert(change.0, change.1)),
                        None => user.pending.borrow_mut().push(change),
                    }
                }
            }
            touched.insert(Rc::as_ptr(user));
        }
    }
    for user in users.values().filter(|u| touched.contains(&Rc::as_ptr(u))) {
        user.wake();
    }
}

/// Drops a room `user_id` has forgotten from their sync state (run on the
/// user's shard after the forget is stored): it no longer shows in the
/// `leave` section. The store no longer lists it either, so a reload agrees.
pub fn room_forgotten(shard: &AppShard, user_id: &str, room_id: &str) {
    let Some(user) = shard.state.sync.users.borrow().get(user_id).cloned() else { return };
    if let Some(rooms) = &mut *user.rooms.borrow_mut() {
        rooms.remove(room_id);
    }
    user.pending.borrow_mut().retain(|(room, _)| room != room_id);
    user.changed.borrow_mut().remove(room_id);
}

/// Records a durable change of `user_id`'s account data (run on the user's
/// shard after the write) and wakes the user's waiting syncs.
pub fn account_data_changed(shard: &AppShard, user_id: &str, room_id: Option<&str>, data_type: &str) {
    let Some(user) = shard.state.sync.users.borrow().get(user_id).cloned() else {
        // Never synced in this run: its first sync sends all account data.
        return;
    };
    let version = user.next_stream_version();
    user.account_data.borrow_mut().insert((room_id.map(str::to_owned), data_type.to_owned()), version);
    if room_id.is_none() && data_type == IGNORED_USER_LIST {
        *user.ignored.borrow_mut() = None;
    }
    if room_id.is_none() && data_type == PUSH_RULES {
        *user.push_rules.borrow_mut() = None;
    }
    user.wake();
}

impl UserSync {
    /// Counts one change of the user's stream; returns its version.
    fn next_stream_version(&self) -> u64 {
        let version = self.stream_version.get() + 1;
        self.stream_version.set(version);
        version
    }

    fn wake(&self) {
        self.version.set(self.version.get() + 1);
        self.waiters.wake_all();
    }
}

/// The user's sync state, loaded on first use. Must run on the user's shard.
async fn user_state(shard: &AppShard, user_id: &str) -> Result<Rc<UserSync>, ApiError> {
    let hub = &shard.state.sync;
    let existing = hub.users.borrow().get(user_id).cloned();
    let user = match existing {
        Some(user) => user,
        None => {
            let user = Rc::new(UserSync {
                rooms: RefCell::new(None),
                pending: Default::default(),
                changed: Default::default(),
                version: Cell::new(0),
                account_data: Default::default(),
                stream_version: Cell::new(0),
                ignored: RefCell::new(None),
                push_rules: RefCell::new(None),
                members_sent: Default::default(),
                presence: Default::default(),
                device_changes: Default::default(),
                device_left: Default::default(),
                inboxes: Default::default(),
                waiters: Default::default(),
            });
            hub.users.borrow_mut().insert(user_id.to_owned(), user.clone());
            user
        }
    };
    if user.rooms.borrow().is_none() {
        let vshard = shard.state.placement.vshard(user_id);
        let stored = shard.state.store.user_rooms(vshard, user_id, None).await;
        let stored = match stored {
            Ok(rows) => rows,
            Err(e) => {
                hub.users.borrow_mut().remove(user_id);
                return Err(e.into());
            }
        };
        if user.rooms.borrow().is_none() {
            let mut rooms: HashMap<String, String> = stored.into_iter().map(|r| (r.room_id, r.membership)).collect();
            rooms.extend(user.pending.borrow_mut().drain(..));
            *user.rooms.borrow_mut() = Some(rooms);
        }
    }
    Ok(user)
}

/// The token of now for `user_id`: what an empty sync would return as
/// `next_batch`. The deprecated v1 `/events` and `/initialSync` start
/// their streams from it.
pub async fn current_token(shard: &AppShard, user_id: &str) -> Result<SyncToken, ApiError> {
    let owner = shard.state.placement.shard(user_id);
    let user_id = user_id.to_owned();
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move {
                let user = user_state(&shard, &user_id).await?;
                let hub = &shard.state.sync;
                let positions = hub.heard.borrow().clone();
                // No to-device position: what the device has not acknowledged
                // is still to come.
                Ok(SyncToken { epoch: hub.epoch, user_stream: user.stream_version.get(), to_device: 0, positions })
            }
        })
        .await?
}

/// `(changed, left)` of `user_id`'s device lists between two of their sync
/// tokens (`GET /keys/changes`): nothing across a restart, whose changes
/// this memory did not see.
pub async fn device_changes(
    shard: &AppShard,
    user_id: &str,
    from: &SyncToken,
    to: &SyncToken,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let owner = shard.state.placement.shard(user_id);
    let (user_id, from, to) = (user_id.to_owned(), from.clone(), to.clone());
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move {
                let user = user_state(&shard, &user_id).await?;
                if from.epoch != shard.state.sync.epoch {
                    return Ok(Default::default());
                }
                device_lists(&shard, &user, from.user_stream, to.user_stream).await
            }
        })
        .await?
}

/// `(changed, left)` device lists heard after stream version `after` up
/// to `upto`: a user who left is `left` only if they share no joined room
/// with the user any more, else their change (if any) stands.
async fn device_lists(
    shard: &AppShard,
    user: &UserSync,
    after: u64,
    upto: u64,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let changed: Vec<String> =
        user.device_changes.borrow().between(Some(after), upto).map(|(u, _)| u.clone()).collect();
    let candidates: HashSet<String> =
        user.device_left.borrow().between(Some(after), upto).map(|(u, _)| u.clone()).collect();
    if candidates.is_empty() {
        return Ok((changed, Vec::new()));
    }
    let shared = sharing(shard, user, candidates.clone()).await?;
    let left: Vec<String> = candidates.into_iter().filter(|u| !shared.contains(u)).collect();
    let changed = changed.into_iter().filter(|u| !left.contains(u)).collect();
    Ok((changed, left))
}

/// Those of `candidates` joined to a room the user is joined to, asked of
/// the rooms' shards at once.
async fn sharing(shard: &AppShard, user: &UserSync, candidates: HashSet<String>) -> Result<HashSet<String>, ApiError> {
    let placement = &shard.state.placement;
    let mut per_shard: Vec<Vec<String>> = vec![Vec::new(); placement.shard_count()];
    for (room_id, membership) in user.rooms.borrow().iter().flatten() {
        if membership == "join" {
            per_shard[placement.shard(room_id)].push(room_id.clone());
        }
    }
    let candidates = Arc::new(candidates);
    let asks = per_shard.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(k, rooms)| {
        let candidates = candidates.clone();
        shard.ask_async(k, move |shard| {
            let shard = shard.clone();
            async move {
                let mut found = HashSet::new();
                for room_id in rooms {
                    if let Ok(Some(room)) = crate::rooms::get(&shard, &room_id).await {
                        let room = room.borrow();
                        found.extend(candidates.iter().filter(|c| room.state.joined_at(c).is_some()).cloned());
                    }
                }
                found
            }
        })
    });
    let mut shared = HashSet::new();
    for found in join_all(asks).await {
        shared.extend(found?);
    }
    Ok(shared)
}

/// A `/sync` request, as the user's shard runs it.
pub struct SyncRequest {
    pub user_id: String,
    /// The requesting device (its own sends carry their transaction IDs).
    pub device_id: String,
    pub since: Option<SyncToken>,
    pub timeout: Duration,
    pub full_state: bool,
    pub timeline_limit: usize,
    pub filter: Arc<Filter>,
    /// The presence to set (`set_presence`); `None` leaves it alone.
    pub set_presence: Option<String>,
}

/// Runs a sync on the user's shard, waiting up to `timeout` for something
/// to report when the answer would be empty.
pub async fn sync(shard: &AppShard, request: SyncRequest) -> Result<Value, ApiError> {
    let owner = shard.state.placement.shard(&request.user_id);
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move { sync_here(&shard, request).await }
        })
        .await?
}

async fn sync_here(shard: &AppShard, request: SyncRequest) -> Result<Value, ApiError> {
    let user = user_state(shard, &request.user_id).await?;
    if let Some(state) = &request.set_presence {
        presence::set(shard, &request.user_id, state, None).await;
    }
    let deadline = tessera_net::runtime::Instant::now() + request.timeout.min(MAX_TIMEOUT);
    loop {
        let seen = user.version.get();
        let (body, empty) = collect(shard, &user, &request).await?;
        let now = tessera_net::runtime::Instant::now();
        if !empty || request.since.is_none() || now >= deadline || shard.state.shutdown.is_triggered() {
            return Ok(body);
        }
        let changed = user.waiters.wait_until(|| user.version.get() != seen);
        let shutdown = shard.state.shutdown.clone();
        let (changed, stopping) = (pin!(changed), pin!(shutdown.wait()));
        let wait = select(changed, stopping);
        if tessera_net::runtime::timeout(deadline - now, wait).await.is_err() {
            // Timed out: answer with the token we have (the body is empty).
            return Ok(body);
        }
    }
}

/// Builds the response once; `true` if it reports nothing.
async fn collect(shard: &AppShard, user: &Rc<UserSync>, request: &SyncRequest) -> Result<(Value, bool), ApiError> {
    let state = &shard.state;
    let shards = state.placement.shard_count();
    let hub = &state.sync;
    let filter = &request.filter;
    let same_epoch = request.since.as_ref().is_some_and(|t| t.epoch == hub.epoch);
    let since: Vec<Option<StreamPos>> =
        (0..shards).map(|k| request.since.as_ref().map(|t| t.position(k, shards))).collect();
    let ignored = ignored_users(shard, user, &request.user_id).await?;
    let push_rules = push_rules(shard, user, &request.user_id).await?;
    let mut upto: Vec<Option<StreamPos>> = vec![None; shards];
    let mut answered: HashSet<String> = HashSet::new();
    let mut sections: [Map<String, Value>; 4] = Default::default();
    let mut newcomers: HashSet<String> = HashSet::new();
    loop {
        // Rooms still to ask about, by shard.
        let mut asks: Vec<Vec<String>> = vec![Vec::new(); shards];
        {
            let rooms = user.rooms.borrow();
            let changed = user.changed.borrow();
            for (room_id, membership) in rooms.iter().flatten() {
                if answered.contains(room_id) || !filter.room.allows_room(room_id) {
                    continue;
                }
                let k = state.placement.shard(room_id);
                let changed_since = |since_k: StreamPos| {
                    // Another epoch: this process has not seen what changed.
                    !same_epoch
                        || changed
                            .get(room_id)
                            .is_some_and(|&(_, pos)| pos > since_k && upto[k].is_none_or(|u| pos <= u))
                };
                let current = matches!(membership.as_str(), "join" | "invite" | "knock");
                let wanted = match since[k] {
                    None => current || filter.room.include_leave,
                    Some(since_k) if request.full_state => {
                        current || filter.room.include_leave || changed_since(since_k)
                    }
                    Some(since_k) => changed_since(since_k),
                };
                if wanted {
                    asks[k].push(room_id.clone());
                }
            }
        }
        if asks.iter().all(Vec::is_empty) {
            break;
        }
        let mut replies = Vec::new();
        let mut shards_asked = Vec::new();
        for (k, rooms) in asks.into_iter().enumerate() {
            if rooms.is_empty() {
                continue;
            }
            answered.extend(rooms.iter().cloned());
            let query = RoomQuery {
                user_id: request.user_id.clone(),
                device_id: request.device_id.clone(),
                since: since[k],
                full_state: request.full_state,
                timeline_limit: request.timeline_limit,
                filter: filter.clone(),
                ignored: ignored.clone(),
                push_rules: push_rules.clone(),
            };
            let upto_k = upto[k];
            shards_asked.push(k);
            replies.push(shard.ask_async(k, move |shard| rooms_part(shard.clone(), rooms, upto_k, query)));
        }
        // All shards are asked at once; their answers come back batched.
        for (k, reply) in shards_asked.into_iter().zip(join_all(replies).await) {
            let (parts, watermark) = reply??;
            upto[k].get_or_insert(watermark);
            for mut part in parts {
                newcomers.extend(part.newcomers.drain(..));
                let at = match part.section {
                    Section::Join => 0,
                    Section::Invite => 1,
                    Section::Leave => 2,
                    Section::Knock => 3,
                };
                let (room_id, body) = lazy_members(user, request, part);
                sections[at].insert(room_id, body);
            }
        }
    }
    // Read before the data: a change landing meanwhile is sent again next
    // time rather than skipped.
    let stream_version = user.stream_version.get();
    let (global_data, room_data) = account_data(shard, user, request, same_epoch).await?;
    for (room_id, events) in room_data {
        if !filter.room.allows_room(&room_id) {
            continue;
        }
        let events: Vec<Value> = events
            .into_iter()
            .filter(|e| filter.room.account_data.event.allows(e["type"].as_str().unwrap_or_default(), ""))
            .collect();
        if events.is_empty() {
            continue;
        }
        let entry = sections[0].entry(room_id).or_insert_with(|| {
            json!({
                "timeline": { "events": [], "limited": false },
                "state": { "events": [] },
                "ephemeral": { "events": [] },
            })
        });
        entry["account_data"] = json!({ "events": events });
    }
    let since_to_device = request.since.as_ref().map_or(0, |t| t.to_device);
    let (to_device, to_device_pos) =
        to_device::take(shard, user, &request.user_id, &request.device_id, since_to_device).await?;
    // Device lists on an incremental sync (an initial one fetches all).
    let (changed, left) = match request.since.as_ref().filter(|_| same_epoch) {
        Some(token) => device_lists(shard, user, token.user_stream, stream_version).await?,
        None => Default::default(),
    };
    let counts = crate::accounts::keys::counts(shard, &request.user_id, &request.device_id).await?;
    let presence = presence_events(shard, user, request, same_epoch, newcomers).await?;
    let global_data: Vec<Value> = global_data
        .into_iter()
        .filter(|e| filter.account_data.allows(e["type"].as_str().unwrap_or_default(), ""))
        .collect();
    let heard = hub.heard.borrow();
    let positions = (0..shards)
        .map(|k| match upto[k] {
            Some(u) => u.max(since[k].unwrap_or(0)),
            None => heard[k].max(since[k].unwrap_or(0)),
        })
        .collect();
    let next_batch =
        SyncToken { epoch: hub.epoch, user_stream: stream_version, to_device: to_device_pos, positions }.to_string();
    let empty = sections.iter().all(Map::is_empty)
        && global_data.is_empty()
        && to_device.is_empty()
        && presence.is_empty()
        && changed.is_empty()
        && left.is_empty();
    let [join, invite, leave, knock] = sections;
    let body = json!({
        "next_batch": next_batch,
        "rooms": { "join": join, "invite": invite, "leave": leave, "knock": knock },
        "presence": { "events": presence },
        "account_data": { "events": global_data },
        "to_device": { "events": to_device },
        "device_lists": { "changed": changed, "left": left },
        "device_one_time_keys_count": counts.one_time,
        "device_unused_fallback_key_types": counts.unused_fallback,
    });
    Ok((body, empty))
}

/// The presence events of a sync: updates received since the token (all
/// of them on an initial sync), and the current presence of `pull` (and,
/// on an initial sync, the user's own), as the presence filter allows.
async fn presence_events(
    shard: &AppShard,
    user: &UserSync,
    request: &SyncRequest,
    same_epoch: bool,
    mut pull: HashSet<String>,
) -> Result<Vec<Value>, ApiError> {
    let filter = &request.filter.presence;
    if filter.allows_nothing() {
        return Ok(Vec::new());
    }
    let since = request.since.as_ref().filter(|_| same_epoch).map(|t| t.user_stream);
    if since.is_none() {
        pull.insert(request.user_id.clone());
    }
    let mut by_sender: HashMap<String, Value> =
        presence::received(user, since).into_iter().map(|(sender, event)| (sender, (*event).clone())).collect();
    pull.retain(|u| !by_sender.contains_key(u));
    // Members of rooms the client gets afresh or who joined: their presence
    // even if offline (as Synapse); on an initial sync only who is known.
    for event in presence::current(shard, pull, since.is_some()).await? {
        let sender = event["sender"].as_str().unwrap_or_default().to_owned();
        by_sender.insert(sender, event);
    }
    let mut events: Vec<Value> = by_sender
        .into_iter()
        .filter(|(sender, _)| filter.allows("m.presence", sender) && !ignored_sender(user, sender))
        .map(|(_, event)| event)
        .collect();
    events.sort_by(|a, b| a["sender"].as_str().cmp(&b["sender"].as_str()));
    Ok(events)
}

/// Whether the user ignores `sender` (as last read).
fn ignored_sender(user: &UserSync, sender: &str) -> bool {
    user.ignored.borrow().as_ref().is_some_and(|i| i.contains(sender))
}

/// Adds the lazy-loaded member events of a room's part to its state,
/// leaving out those the device was sent already (unless the filter asks
/// for redundant ones), and remembers what was sent.
fn lazy_members(user: &UserSync, request: &SyncRequest, part: RoomPart) -> (String, Value) {
    let RoomPart { room_id, mut body, members, full, .. } = part;
    if !request.filter.room.state.lazy_load_members {
        return (room_id, body);
    }
    let mut sent_all = user.members_sent.borrow_mut();
    let sent = sent_all.entry((request.device_id.clone(), room_id.clone())).or_default();
    if full {
        sent.clear();
    }
    let redundant = request.filter.room.state.include_redundant_members;
    if let Some(Value::Array(state)) = body.pointer_mut("/state/events") {
        for (member, event) in members {
            if sent.insert(member) || redundant {
                state.push(event);
            }
        }
    }
    (room_id, body)
}

/// The users `user_id` ignores (`m.ignored_user_list`), read once per
/// change.
async fn ignored_users(shard: &AppShard, user: &UserSync, user_id: &str) -> Result<Arc<HashSet<String>>, ApiError> {
    if let Some(ignored) = user.ignored.borrow().clone() {
        return Ok(ignored);
    }
    let vshard = shard.state.placement.vshard(user_id);
    let record = shard.state.store.account_data(vshard, user_id, None, IGNORED_USER_LIST).await?;
    let content: Value = record.and_then(|r| serde_json::from_slice(&r.content).ok()).unwrap_or(Value::Null);
    let ignored: HashSet<String> = match content.get("ignored_users") {
        Some(Value::Object(users)) => users.keys().cloned().collect(),
        _ => HashSet::new(),
    };
    let ignored = Arc::new(ignored);
    *user.ignored.borrow_mut() = Some(ignored.clone());
    Ok(ignored)
}

/// The user's push rules (`m.push_rules`), read once per change.
async fn push_rules(shard: &AppShard, user: &UserSync, user_id: &str) -> Result<Arc<UserRules>, ApiError> {
    if let Some(rules) = user.push_rules.borrow().clone() {
        return Ok(rules);
    }
    let vshard = shard.state.placement.vshard(user_id);
    let record = shard.state.store.account_data(vshard, user_id, None, PUSH_RULES).await?;
    let stored: Option<Value> = record.and_then(|r| serde_json::from_slice(&r.content).ok());
    let rules = Arc::new(UserRules::new(user_id, stored.as_ref()));
    *user.push_rules.borrow_mut() = Some(rules.clone());
    Ok(rules)
}

/// Account data events to send: all of them on an initial sync or with a
/// token of another run, else those changed after the token. Returns the
/// global ones and the per-room ones by room.
async fn account_data(
    shard: &AppShard,
    user: &Rc<UserSync>,
    request: &SyncRequest,
    same_epoch: bool,
) -> Result<(Vec<Value>, HashMap<String, Vec<Value>>), ApiError> {
    let store = &shard.state.store;
    let vshard = shard.state.placement.vshard(&request.user_id);
    let records = match request.since.as_ref().filter(|_| same_epoch && !request.full_state) {
        None => store.all_account_data(vshard, &request.user_id).await?,
        Some(since) => {
            let changed: Vec<(Option<String>, String)> = user
                .account_data
                .borrow()
                .iter()
                .filter(|(_, &v)| v > since.user_stream)
                .map(|(k, _)| k.clone())
                .collect();
            let mut records = Vec::with_capacity(changed.len());
            for (room_id, data_type) in changed {
                if let Some(record) =
                    store.account_data(vshard, &request.user_id, room_id.as_deref(), &data_type).await?
                {
                    records.push(record);
                }
            }
            records
        }
    };
    let mut global = Vec::new();
    let mut per_room: HashMap<String, Vec<Value>> = HashMap::new();
    for record in records {
        let content: Value = serde_json::from_slice(&record.content).unwrap_or_else(|_| json!({}));
        let event = json!({ "type": record.data_type, "content": content });
        match record.room_id {
            None => global.push(event),
            Some(room_id) => per_room.entry(room_id).or_default().push(event),
        }
    }
    Ok((global, per_room))
}

/// On a room shard: the sync parts of `rooms` for the query, up to `upto`
/// (default: everything durable now), and the position served up to.
async fn rooms_part(
    shard: AppShard,
    rooms: Vec<String>,
    upto: Option<StreamPos>,
    query: RoomQuery,
) -> Result<(Vec<RoomPart>, StreamPos), ApiError> {
    let upto = upto.unwrap_or_else(|| shard.state.rooms.stream.durable());
    let mut parts = Vec::new();
    for room_id in rooms {
        let Some(room) = rooms::get(&shard, &room_id).await? else { continue };
        if let Some(part) = room_part(&shard, &room, &query, upto).await? {
            parts.push(part);
        }
    }
    Ok((parts, upto))
}
