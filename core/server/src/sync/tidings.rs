//! News about a user that goes to everyone sharing a room with them: their
//! presence, and that their devices changed (so clients that encrypt for
//! them fetch their keys again).
//!
//! The user's shard reads the user's joined rooms and tells each room's
//! shard, which hands the news to the rooms' members' shards, one message
//! per shard; there it enters each member's stream and wakes their syncs.
//! With an EDU, the rooms' other servers are sent it too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use tessera_storage::Store;

use super::presence::LARGE_ROOM;
use crate::error::ApiError;
use crate::rooms;
use crate::state::AppShard;

/// What a user's room-mates are told.
#[derive(Clone)]
pub enum Tiding {
    /// The user's `m.presence` event. Not sent into rooms of more than
    /// [`LARGE_ROOM`] members (see there).
    Presence(Arc<Value>),
    /// The user's devices or their keys changed: every member must hear
    /// of it, however large the room, or their messages stop being
    /// readable on the new device.
    Devices,
    /// The user left a room: members who share no other room with them
    /// may stop tracking their devices (checked when a sync reports it).
    Left,
}

/// The newest value per key (a user), found by the stream version at which
/// it arrived.
pub struct Latest<T> {
    by_key: HashMap<String, (u64, T)>,
    order: BTreeMap<u64, String>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self { by_key: HashMap::new(), order: BTreeMap::new() }
    }
}

impl<T> Latest<T> {
    /// Records `value` for `key` at `version`, replacing the older one.
    pub fn record(&mut self, key: String, version: u64, value: T) {
        if let Some((old, _)) = self.by_key.insert(key.clone(), (version, value)) {
            self.order.remove(&old);
        }
        self.order.insert(version, key);
    }

    /// The keys and values recorded after `since` (all with `None`).
    pub fn since(&self, since: Option<u64>) -> impl Iterator<Item = (&String, &T)> {
        self.between(since, u64::MAX)
    }

    /// The keys and values recorded after `after` (all with `None`), up to
    /// and including `upto`.
    pub fn between(&self, after: Option<u64>, upto: u64) -> impl Iterator<Item = (&String, &T)> {
        let start = after.map_or(0, |s| s.saturating_add(1));
        let range = (start <= upto).then(|| self.order.range(start..=upto)).into_iter().flatten();
        range.filter_map(|(_, key)| Some((key, &self.by_key.get(key)?.1)))
    }
}

/// Tells the local members of `user_id`'s joined rooms (and the user) the
/// tiding; with `edu`, also the rooms' other servers.
pub async fn tell_room_mates(
    shard: &AppShard,
    user_id: &str,
    tiding: Tiding,
    edu: Option<Arc<Value>>,
) -> Result<(), ApiError> {
    let own_shard = shard.state.placement.shard(user_id);
    let (me, news) = (user_id.to_owned(), tiding.clone());
    shard.tell(own_shard, move |shard| receive(shard, std::slice::from_ref(&me), &me, &news));
    let vshard = shard.state.placement.vshard(user_id);
    let rooms = shard.state.store.user_rooms(vshard, user_id, Some("join")).await?;
    let placement = &shard.state.placement;
    let mut per_shard: Vec<Vec<String>> = vec![Vec::new(); placement.shard_count()];
    for room in rooms {
        per_shard[placement.shard(&room.room_id)].push(room.room_id);
    }
    // Awaited, so that once the change is answered its news is on its way
    // to every member's shard: a sync after the answer sees it.
    let asks = per_shard.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).map(|(k, rooms)| {
        let (user_id, tiding, edu) = (user_id.to_owned(), tiding.clone(), edu.clone());
        shard.ask_async(k, move |shard| {
            let shard = shard.clone();
            async move { fan_out(&shard, &rooms, &user_id, tiding, edu).await }
        })
    });
    for asked in futures_util::future::join_all(asks).await {
        asked?;
    }
    Ok(())
}

/// On a rooms' shard: hands the tiding to the rooms' members' shards, each
/// member once per shard, and the EDU to the rooms' other servers.
async fn fan_out(shard: &AppShard, rooms: &[String], user_id: &str, tiding: Tiding, edu: Option<Arc<Value>>) {
    let placement = &shard.state.placement;
    let us = shard.state.config.server_name.clone();
    let mut per_shard: Vec<HashSet<String>> = vec![HashSet::new(); placement.shard_count()];
    let mut servers: HashSet<String> = HashSet::new();
    for room_id in rooms {
        let Ok(Some(room)) = rooms::get(shard, room_id).await else { continue };
        let mut room = room.borrow_mut();
        let audience = room.audience(|u| placement.shard(u), placement.shard_count());
        let size: usize = audience.iter().map(|users| users.len()).sum();
        if matches!(tiding, Tiding::Presence(_)) && size > LARGE_ROOM {
            continue;
        }
        for (k, users) in audience.iter().enumerate() {
            per_shard[k].extend(users.iter().filter(|u| *u != user_id).cloned());
        }
        if edu.is_some() {
            servers.extend(room.remote_servers(&us).iter().cloned());
        }
    }
    if let (Some(edu), false) = (edu, servers.is_empty()) {
        crate::federation::outbound::send_edu(shard, servers.into_iter().collect(), edu);
    }
    for (k, users) in per_shard.into_iter().enumerate().filter(|(_, u)| !u.is_empty()) {
        let (user_id, tiding) = (user_id.to_owned(), tiding.clone());
        let users: Vec<String> = users.into_iter().collect();
        shard.tell(k, move |shard| receive(shard, &users, &user_id, &tiding));
    }
}

/// A user joined a room (`Tiding::Devices`) or left it (`Tiding::Left`):
/// they and its members now share a room, or may no longer share any, so
/// each side's clients must fetch, or may stop tracking, the other's
/// device keys (spec: device list changes "when the user joins a room with
/// a user they did not share a room with before" and `left`).
/// `audience`: the room's local members by shard; `members`: the room's
/// joined members, when the user is ours.
pub fn membership_changed(
    shard: &AppShard,
    user_id: &str,
    audience: &[Arc<Vec<String>>],
    members: Option<Vec<String>>,
    tiding: Tiding,
) {
    for (k, users) in audience.iter().enumerate().filter(|(_, u)| !u.is_empty()) {
        let (users, user_id, tiding) = (users.clone(), user_id.to_owned(), tiding.clone());
        shard.tell(k, move |shard| receive(shard, &users, &user_id, &tiding));
    }
    if let Some(members) = members {
        let user_id = user_id.to_owned();
        shard.tell(shard.state.placement.shard(&user_id), move |shard| {
            for member in members.iter().filter(|m| **m != user_id) {
                receive(shard, std::slice::from_ref(&user_id), member, &tiding);
            }
        });
    }
}

/// On the members' shard: records the tiding about `about` in the streams
/// of `users` who sync here, and wakes them.
pub(super) fn receive(shard: &AppShard, users: &[String], about: &str, tiding: &Tiding) {
    let synced = shard.state.sync.users.borrow();
    for user_id in users {
        let Some(user) = synced.get(user_id) else { continue };
        let version = user.next_stream_version();
        match tiding {
            Tiding::Presence(event) => user.presence.borrow_mut().record(about.to_owned(), version, event.clone()),
            Tiding::Devices => user.device_changes.borrow_mut().record(about.to_owned(), version, ()),
            Tiding::Left => user.device_left.borrow_mut().record(about.to_owned(), version, ()),
        }
        user.wake();
    }
}
