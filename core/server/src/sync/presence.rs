//! Presence (spec: client-server API, "Presence"), held in memory on each
//! user's shard, as Synapse holds it in memory (it is not persisted: after
//! a restart everyone is offline until they sync or set it again).
//!
//! A change of a user's presence (`PUT /presence/{userId}/status`, or a
//! `/sync` with `set_presence` that changes it) is pushed to the users who
//! share a room with them (see [`super::tidings`]) and, as an `m.presence`
//! EDU, to the servers of those rooms. Presence that did not change while a user could see
//! it is pulled instead: a sync that shows a room afresh, or a new member's
//! join, asks the members' shards for their current presence. Rooms of
//! more than [`LARGE_ROOM`] members get no pushes (see there).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};

use super::tidings::{tell_room_mates, Tiding};
use super::UserSync;
use crate::error::ApiError;
use crate::request::now_ms;
use crate::state::AppShard;

/// Rooms with more members than this carry no presence: a change is not
/// pushed to their members and a sync pulls no more than this many of
/// their members' presence, so a crowd joining one room does not cost the
/// square of its size.
pub const LARGE_ROOM: usize = 500;

/// The presence states of the spec.
pub const STATES: &[&str] = &["online", "unavailable", "offline"];

/// A user's presence.
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// `online`, `unavailable` or `offline`.
    pub state: String,
    pub status_msg: Option<String>,
    /// When the user was last active (POSIX ms).
    pub last_active: u64,
}

impl Presence {
    /// The `m.presence` event of `user_id` with this presence, as now.
    pub fn event(&self, user_id: &str) -> Value {
        json!({ "type": "m.presence", "sender": user_id, "content": self.content() })
    }

    /// The content of `m.presence` and of `GET /presence/{userId}/status`.
    pub fn content(&self) -> Value {
        let mut content = json!({
            "presence": self.state,
            "last_active_ago": now_ms().saturating_sub(self.last_active),
            "currently_active": self.state == "online",
        });
        if let Some(msg) = &self.status_msg {
            content["status_msg"] = msg.clone().into();
        }
        content
    }
}

/// The presence of `user_id` (run on the user's shard); offline if never
/// set in this run.
pub fn get(shard: &AppShard, user_id: &str) -> Presence {
    shard.state.sync.presence.borrow().get(user_id).cloned().unwrap_or(Presence {
        state: "offline".into(),
        status_msg: None,
        last_active: 0,
    })
}

/// Sets `user_id`'s presence (run on the user's shard). `status_msg` of
/// `None` keeps the current message (a sync sets the state only). Pushes
/// the change to the users sharing a room when the state or message
/// changed; otherwise it only counts as activity.
pub async fn set(shard: &AppShard, user_id: &str, state: &str, status_msg: Option<Option<String>>) {
    let now = now_ms();
    let changed = {
        let mut all = shard.state.sync.presence.borrow_mut();
        let entry = all.entry(user_id.to_owned()).or_insert_with(|| Presence {
            state: String::new(),
            status_msg: None,
            last_active: now,
        });
        let before = (entry.state.clone(), entry.status_msg.clone());
        entry.state = state.to_owned();
        if let Some(msg) = status_msg {
            entry.status_msg = msg;
        }
        if state == "online" || before.0 != state {
            entry.last_active = now;
        }
        (before.0.as_str(), &before.1) != (entry.state.as_str(), &entry.status_msg)
    };
    if changed {
        let event = Arc::new(get(shard, user_id).event(user_id));
        // Server-server API § Presence: `push` holds the users' updates.
        let edu = json!({ "edu_type": "m.presence", "content": { "push": [push_entry(&event)] } });
        if let Err(e) = tell_room_mates(shard, user_id, Tiding::Presence(event), Some(Arc::new(edu))).await {
            tracing::warn!(user = user_id, error = e.message, "presence not pushed");
        }
    }
}

/// Takes the presence another server sent for one of its users (an
/// `m.presence` EDU's `push` entry; run on the user's shard) and pushes it
/// to our users who share a room with them.
pub async fn set_remote(shard: &AppShard, user_id: &str, content: &Value) {
    let Some(state) = content.get("presence").and_then(Value::as_str).filter(|s| STATES.contains(s)) else {
        return;
    };
    let ago = content.get("last_active_ago").and_then(Value::as_u64).unwrap_or(0);
    let presence = Presence {
        state: state.to_owned(),
        status_msg: content.get("status_msg").and_then(Value::as_str).map(str::to_owned),
        last_active: now_ms().saturating_sub(ago),
    };
    let event = Arc::new(presence.event(user_id));
    shard.state.sync.presence.borrow_mut().insert(user_id.to_owned(), presence);
    if let Err(e) = tell_room_mates(shard, user_id, Tiding::Presence(event), None).await {
        tracing::warn!(user = user_id, error = e.message, "remote presence not pushed");
    }
}

/// Sends the current presence of `users` (ours) to `servers`, which just
/// began sharing a room with them: pushes only carry changes, so a server
/// that joins (or that our user joins) would otherwise not know it.
pub fn share_on_join(shard: &AppShard, users: Vec<String>, servers: Vec<String>) {
    if users.is_empty() || servers.is_empty() {
        return;
    }
    let shard = shard.clone();
    tessera_net::runtime::spawn(async move {
        let Ok(events) = current(&shard, users.into_iter().collect(), false).await else { return };
        let push: Vec<Value> = events.iter().map(push_entry).collect();
        if !push.is_empty() {
            let edu = json!({ "edu_type": "m.presence", "content": { "push": push } });
            crate::federation::outbound::send_edu(&shard, servers, Arc::new(edu));
        }
    });
}

/// An `m.presence` event as an entry of the EDU's `push` (server-server
/// API § Presence): its content with the `user_id`.
fn push_entry(event: &Value) -> Value {
    let mut update = event["content"].clone();
    update["user_id"] = event["sender"].clone();
    update
}

/// The presence updates `user` received after stream version `since` (all
/// of them when `None`).
pub(super) fn received(user: &UserSync, since: Option<u64>) -> HashMap<String, Arc<Value>> {
    user.presence.borrow().since(since).map(|(sender, event)| (sender.clone(), event.clone())).collect()
}

/// The current presence of `users` (of any shard), asked of their shards
/// at once: of those that have one in this run, or of all of them (offline
/// when unknown) with `include_offline`.
pub async fn current(shard: &AppShard, users: HashSet<String>, include_offline: bool) -> Result<Vec<Value>, ApiError> {
    let placement = &shard.state.placement;
    let mut per_shard: Vec<Vec<String>> = vec![Vec::new(); placement.shard_count()];
    for user in users {
        per_shard[placement.shard(&user)].push(user);
    }
    let asks = per_shard.into_iter().enumerate().filter(|(_, u)| !u.is_empty()).map(|(k, users)| {
        shard.ask(k, move |shard| {
            let known = shard.state.sync.presence.borrow();
            let wanted = |u: &&String| include_offline || known.contains_key(*u);
            users.iter().filter(wanted).map(|u| get(shard, u).event(u)).collect::<Vec<Value>>()
        })
    });
    let mut events = Vec::new();
    for reply in futures_util::future::join_all(asks).await {
        events.extend(reply?);
    }
    Ok(events)
}
