//! Room upgrades (spec: client-server API, "Room Upgrades", server
//! behaviour): a new room of the asked version that carries the old room's
//! important state, bans, aliases and directory listing over, and a
//! tombstone in the old room pointing to it, after which the old room's
//! power levels stop ordinary members from talking or inviting there.

use serde_json::{json, Map, Value};
use tessera_proto::room_version::{RoomIdFormat, RoomVersionRules};
use tessera_storage::records::AliasRecord;
use tessera_storage::{Op, Store};

use crate::api::client::account_data;
use crate::error::ApiError;
use crate::rooms::create::{create_room, new_room_id, CreateRoom, Preset};
use crate::rooms::event::Draft;
use crate::rooms::{on_room, send};
use crate::state::AppShard;

/// State copied to the new room as it is (Synapse copies the same).
const COPIED_STATE: &[&str] = &[
    "m.room.join_rules",
    "m.room.name",
    "m.room.topic",
    "m.room.history_visibility",
    "m.room.guest_access",
    "m.room.avatar",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.canonical_alias",
];

/// Keys of the old `m.room.create` content the new one keeps.
const COPIED_CREATION: &[&str] = &["m.federate", "type"];

/// What the old room holds that the new one needs.
struct OldRoom {
    /// Joined members of this server, whose own data about the room follows
    /// it.
    local_members: Vec<String>,
    /// The old room lists the upgrader nowhere because they created a room
    /// of a version that gives creators unlimited power.
    privileged_creator: bool,
    state: Vec<(String, Value)>,
    power_levels: Option<Map<String, Value>>,
    banned: Vec<String>,
    creation: Map<String, Value>,
}

fn draft(sender: &str, event_type: &str, state_key: &str, content: Value) -> Draft {
    Draft {
        sender: sender.to_owned(),
        event_type: event_type.into(),
        state_key: Some(state_key.into()),
        content,
        redacts: None,
    }
}

/// Upgrades `room_id` to `version` as `user_id`; returns the new room's ID.
/// 403 unless the user may send the tombstone.
pub async fn upgrade_room(
    shard: &AppShard,
    room_id: &str,
    user_id: &str,
    version: &'static RoomVersionRules,
) -> Result<String, ApiError> {
    let user = user_id.to_owned();
    let shard_server_name = shard.state.config.server_name.clone();
    let old = on_room(shard, room_id, move |_, room| async move {
        let room = room.borrow();
        if room.state.membership(&user) != Some("join") {
            return Err(ApiError::forbidden(format!("{user} is not in the room")));
        }
        if !room.has_power(&user, |levels| levels.event("m.room.tombstone", true)) {
            return Err(ApiError::forbidden("your power level does not allow upgrading the room"));
        }
        let content = |t: &str| room.state.event(t, "").map(|e| e.content.clone());
        let state = COPIED_STATE.iter().filter_map(|t| Some((t.to_string(), content(t)?))).collect();
        let power_levels = content("m.room.power_levels").and_then(|c| c.as_object().cloned());
        let banned = room
            .state
            .of_type("m.room.member")
            .filter(|(_, e)| e.content.get("membership").and_then(Value::as_str) == Some("ban"))
            .map(|(u, _)| u.clone())
            .collect();
        let old_creation = content("m.room.create").and_then(|c| c.as_object().cloned()).unwrap_or_default();
        let creation =
            old_creation.into_iter().filter(|(k, _)| COPIED_CREATION.contains(&k.as_str())).collect::<Map<_, _>>();
        let listed = power_levels.as_ref().and_then(|p| p.get("users")).and_then(|u| u.get(&user)).is_some();
        let privileged_creator = room.version.privileged_creators && !listed;
        let suffix = format!(":{}", shard_server_name);
        let local_members = room
            .state
            .of_type("m.room.member")
            .filter(|(u, e)| {
                u.ends_with(&suffix) && e.content.get("membership").and_then(Value::as_str) == Some("join")
            })
            .map(|(u, _)| u.clone())
            .collect();
        Ok(OldRoom { local_members, privileged_creator, state, power_levels, banned, creation })
    })
    .await?;

    let tombstone = |new_room: &str| {
        let content = json!({ "body": "This room has been replaced", "replacement_room": new_room });
        draft(user_id, "m.room.tombstone", "", content)
    };
    let mut creation = old.creation.clone();
    let new_room = match version.room_id_format {
        // The new room's ID is chosen first, so the tombstone can name it
        // and the new room's create event can name the tombstone.
        RoomIdFormat::DomainScoped => {
            let new_room = new_room_id(&shard.state.config.server_name);
            let tombstone_id = send(shard, room_id, tombstone(&new_room), None).await?;
            creation.insert("predecessor".into(), json!({ "room_id": room_id, "event_id": tombstone_id }));
            create_room(shard, new_request(user_id, version, &old, creation, Some(new_room))).await?
        }
        // The room ID is the create event's hash: create first, then point
        // the tombstone at it (the predecessor has no event ID then).
        _ => {
            creation.insert("predecessor".into(), json!({ "room_id": room_id }));
            let new_room = create_room(shard, new_request(user_id, version, &old, creation, None)).await?;
            send(shard, room_id, tombstone(&new_room), None).await?;
            new_room
        }
    };
    move_addresses(shard, room_id, &new_room, user_id).await?;
    for member in &old.local_members {
        if let Err(e) = carry_user_data(shard, member, room_id, &new_room).await {
            tracing::warn!(user = member, room = room_id, error = e.message, "room data not carried to the new room");
        }
    }
    if let Some(levels) = restricted(old.power_levels) {
        let draft = draft(user_id, "m.room.power_levels", "", Value::Object(levels));
        if let Err(e) = send(shard, room_id, draft, None).await {
            tracing::warn!(room = room_id, error = e.message, "could not restrict the old room's power levels");
        }
    }
    Ok(new_room)
}

/// The new room: the old power levels, the copied state, and the bans
/// again. The upgrader keeps their level; a creator of an old room that
/// gave creators unlimited power gets 100 in a version that does not (and
/// is listed nowhere in one that does).
fn new_request(
    user_id: &str,
    version: &'static RoomVersionRules,
    old: &OldRoom,
    creation_content: Map<String, Value>,
    room_id: Option<String>,
) -> CreateRoom {
    let mut power_levels = old.power_levels.clone();
    if let Some(levels) = power_levels.as_mut() {
        let users = levels.entry("users").or_insert_with(|| json!({}));
        if let Value::Object(users) = users {
            if version.privileged_creators {
                users.remove(user_id);
            } else if old.privileged_creator {
                users.insert(user_id.to_owned(), 100.into());
            }
        }
    }
    let mut initial_state: Vec<Draft> = old.state.iter().map(|(t, c)| draft(user_id, t, "", c.clone())).collect();
    initial_state.extend(old.banned.iter().map(|u| draft(user_id, "m.room.member", u, json!({ "membership": "ban" }))));
    CreateRoom {
        creator: user_id.to_owned(),
        version,
        preset: Preset::PrivateChat,
        creation_content,
        power_level_override: power_levels,
        initial_state,
        name: None,
        topic: None,
        invite: Vec::new(),
        is_direct: false,
        alias: None,
        room_id,
    }
}

/// Points the old room's local aliases at the new room, lists the new room
/// in the directory instead of the old one, and empties the old room's
/// canonical alias.
async fn move_addresses(shard: &AppShard, old_room: &str, new_room: &str, user_id: &str) -> Result<(), ApiError> {
    let store = &shard.state.store;
    for alias in store.room_aliases(old_room).await? {
        let owner = shard.state.placement.shard(&alias);
        let (old_room, new_room) = (old_room.to_owned(), new_room.to_owned());
        shard
            .ask_async(owner, move |shard| {
                let shard = shard.clone();
                async move {
                    // Written on the alias's shard, like every alias change.
                    let Some(record) = shard.state.store.alias(&alias).await? else { return Ok(()) };
                    if record.room_id != old_room {
                        return Ok(());
                    }
                    let moved = AliasRecord { alias: alias.clone(), room_id: new_room, creator: record.creator };
                    shard.state.store.write(vec![Op::DeleteAlias { alias }, Op::PutAlias(moved)]).await?;
                    Ok::<(), ApiError>(())
                }
            })
            .await??;
    }
    if store.published_rooms().await?.iter().any(|r| r == old_room) {
        store
            .write(vec![
                Op::SetRoomPublished { room_id: new_room.to_owned(), published: true },
                Op::SetRoomPublished { room_id: old_room.to_owned(), published: false },
            ])
            .await?;
    }
    let had_alias = on_room(shard, old_room, |_, room| async move {
        Ok(room.borrow().state.event("m.room.canonical_alias", "").is_some_and(|e| e.content != json!({})))
    })
    .await?;
    if had_alias {
        let draft = draft(user_id, "m.room.canonical_alias", "", json!({}));
        if let Err(e) = send(shard, old_room, draft, None).await {
            tracing::warn!(room = old_room, error = e.message, "could not empty the old room's canonical alias");
        }
    }
    Ok(())
}

/// A member's own data about the old room now also about the new one (as
/// Synapse carries it): the room's tags, and its place among the member's
/// direct chats (`m.direct`). Also run when a user joins a room that
/// succeeds another (on the user's server, which may not be the one that
/// upgraded it).
pub async fn carry_user_data(shard: &AppShard, user_id: &str, old_room: &str, new_room: &str) -> Result<(), ApiError> {
    let tags = account_data::read(shard, user_id, Some(old_room), "m.tag").await?;
    if let Some(tags) = tags {
        account_data::update(shard, user_id, Some(new_room.to_owned()), "m.tag".into(), |_| Ok(Some(tags))).await?;
    }
    let (old_room, new_room) = (old_room.to_owned(), new_room.to_owned());
    account_data::update(shard, user_id, None, "m.direct".into(), move |direct| {
        let Some(Value::Object(mut direct)) = direct else { return Ok(None) };
        let mut changed = false;
        for rooms in direct.values_mut() {
            if let Value::Array(rooms) = rooms {
                if rooms.iter().any(|r| r == old_room.as_str()) && !rooms.iter().any(|r| r == new_room.as_str()) {
                    rooms.push(new_room.clone().into());
                    changed = true;
                }
            }
        }
        Ok(changed.then_some(Value::Object(direct)))
    })
    .await?;
    Ok(())
}

/// The old room's power levels with sending messages and inviting raised
/// to at least moderator level (50), and above the default user level, so
/// that only moderators speak in the old room; `None` if nothing changes.
fn restricted(levels: Option<Map<String, Value>>) -> Option<Map<String, Value>> {
    let mut levels = levels?;
    let level = |levels: &Map<String, Value>, key: &str| levels.get(key).and_then(Value::as_i64).unwrap_or(0);
    let restricted = (level(&levels, "users_default") + 1).max(50);
    let mut changed = false;
    for key in ["events_default", "invite"] {
        if level(&levels, key) < restricted {
            levels.insert(key.into(), restricted.into());
            changed = true;
        }
    }
    changed.then_some(levels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_power_levels_are_raised_to_moderator_or_above_the_user_default() {
        let usual = json!({ "events_default": 0, "invite": 0, "users_default": 0 });
        let usual = restricted(usual.as_object().cloned()).unwrap();
        assert_eq!((usual["events_default"].as_i64(), usual["invite"].as_i64()), (Some(50), Some(50)));
        let unusual = json!({ "events_default": 0, "users_default": 80 });
        let unusual = restricted(unusual.as_object().cloned()).unwrap();
        assert_eq!((unusual["events_default"].as_i64(), unusual["invite"].as_i64()), (Some(81), Some(81)));
        assert_eq!(restricted(json!({ "events_default": 60, "invite": 60 }).as_object().cloned()), None);
    }
}
