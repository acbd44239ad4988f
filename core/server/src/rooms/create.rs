//! `createRoom`'s event sequence (spec: client-server API, "Creation"):
//! `m.room.create`, the creator's join, `m.room.power_levels` (with the
//! override merged in), the preset's join rules, history visibility and
//! guest access, `initial_state`, name, topic, then the invites. All of it
//! is one atomic write on the room's shard.

use serde_json::{json, Map, Value};
use tessera_proto::room_version::{RoomIdFormat, RoomVersionRules};

use crate::error::ApiError;
use crate::request::random_string;
use crate::rooms::event::Draft;
use crate::rooms::room::Room;
use crate::rooms::{allocate_room_nid, append, insert_open};
use crate::state::AppShard;

/// A validated `createRoom` request.
pub struct CreateRoom {
    pub creator: String,
    pub version: &'static RoomVersionRules,
    pub preset: Preset,
    pub creation_content: Map<String, Value>,
    pub power_level_override: Option<Map<String, Value>>,
    pub initial_state: Vec<Draft>,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<String>,
    pub is_direct: bool,
    /// `#room_alias_name:server`, published as `m.room.canonical_alias`.
    pub alias: Option<String>,
    /// The room ID, chosen beforehand: an upgrade names the replacement room
    /// in the old room's tombstone before creating it. Only for versions
    /// whose room IDs are not derived from the create event.
    pub room_id: Option<String>,
}

/// The presets of `createRoom`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    PrivateChat,
    TrustedPrivateChat,
    PublicChat,
}

impl Preset {
    /// Parses the `preset` field.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private_chat" => Some(Self::PrivateChat),
            "trusted_private_chat" => Some(Self::TrustedPrivateChat),
            "public_chat" => Some(Self::PublicChat),
            _ => None,
        }
    }
}

/// Creates the room; returns its ID.
pub async fn create_room(shard: &AppShard, request: CreateRoom) -> Result<String, ApiError> {
    let version = request.version;
    let server_name = shard.state.config.server_name.clone();
    // The create event is built here: in room v12 it decides the room ID,
    // and with it the shard the room lives on.
    let provisional_id = match version.room_id_format {
        RoomIdFormat::DomainScoped => request.room_id.clone().unwrap_or_else(|| new_room_id(&server_name)),
        _ => String::new(),
    };
    let mut content = request.creation_content.clone();
    content.insert("room_version".into(), version.id.into());
    if version.create_event_has_creator {
        content.insert("creator".into(), request.creator.clone().into());
    }
    let create = Draft {
        sender: request.creator.clone(),
        event_type: "m.room.create".into(),
        state_key: Some(String::new()),
        content: Value::Object(content),
        redacts: None,
    };
    let shell = Room::empty(provisional_id, 0, 0, version).ok_or_else(|| ApiError::internal("no auth rules"))?;
    let (create_event, pdu) = shell.prepare(create, &shard.state.keys, create_event_ts())?;
    let room_id = create_event.room_id.clone();
    let mut drafts = sequence(&request);
    // The creator's join carries their profile, as every join does.
    drafts[0].content = crate::rooms::member_content(shard, &request.creator, "join").await?;
    let owner = shard.state.placement.shard(&room_id);
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move {
                let vshard = shard.state.placement.vshard(&room_id);
                if crate::rooms::get(&shard, &room_id).await?.is_some() {
                    // Only possible for two identical v12 create events,
                    // which `create_event_ts` rules out within a process.
                    return Err(ApiError::internal("room ID collision; try again"));
                }
                let (nid, nid_op) = allocate_room_nid(&shard, vshard).await?;
                let room = Room::empty(room_id.clone(), vshard, nid, version)
                    .ok_or_else(|| ApiError::internal("no auth rules"))?;
                let room = insert_open(&shard, room);
                let extra =
                    vec![nid_op, tessera_storage::Op::PutRoomNid { vshard, room_id: room_id.clone(), room: nid }];
                append(&shard, &room, Some((create_event, pdu)), drafts, None, extra).await?;
                Ok(room_id)
            }
        })
        .await?
}

/// A new random room ID of this server, for versions whose room IDs are
/// not derived from the create event.
pub fn new_room_id(server_name: &str) -> String {
    format!("!{}:{server_name}", random_string(18))
}

/// The `origin_server_ts` of a new create event: now, but strictly after
/// the previous one of this process. From room v12 the room ID is the hash
/// of the create event, so two identical `createRoom` requests in the same
/// millisecond would otherwise name the same room (seen with 50 concurrent
/// creations by one user). One atomic shared by the shards, touched only
/// by `createRoom`.
fn create_event_ts() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = crate::request::now_ms();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Every event after `m.room.create`, in the spec's order.
fn sequence(r: &CreateRoom) -> Vec<Draft> {
    let state = |event_type: &str, state_key: &str, content: Value| Draft {
        sender: r.creator.clone(),
        event_type: event_type.into(),
        state_key: Some(state_key.into()),
        content,
        redacts: None,
    };
    let mut drafts = vec![state("m.room.member", &r.creator, json!({ "membership": "join" }))];
    drafts.push(state("m.room.power_levels", "", power_levels(r)));
    if let Some(alias) = &r.alias {
        drafts.push(state("m.room.canonical_alias", "", json!({ "alias": alias })));
    }
    // Only the private presets let guests join; a public chat sends no
    // `m.room.guest_access` at all (absent means forbidden), as Synapse.
    let (join_rule, guest_access) = match r.preset {
        Preset::PublicChat => ("public", None),
        Preset::PrivateChat | Preset::TrustedPrivateChat => ("invite", Some("can_join")),
    };
    let overridden = |t: &str| r.initial_state.iter().any(|d| d.event_type == t && d.state_key.as_deref() == Some(""));
    if !overridden("m.room.join_rules") {
        drafts.push(state("m.room.join_rules", "", json!({ "join_rule": join_rule })));
    }
    if !overridden("m.room.history_visibility") {
        drafts.push(state("m.room.history_visibility", "", json!({ "history_visibility": "shared" })));
    }
    if let Some(guest_access) = guest_access.filter(|_| !overridden("m.room.guest_access")) {
        drafts.push(state("m.room.guest_access", "", json!({ "guest_access": guest_access })));
    }
    drafts.extend(r.initial_state.iter().map(|d| Draft {
        sender: r.creator.clone(),
        event_type: d.event_type.clone(),
        state_key: d.state_key.clone(),
        content: d.content.clone(),
        redacts: None,
    }));
    if let Some(name) = &r.name {
        drafts.push(state("m.room.name", "", json!({ "name": name })));
    }
    if let Some(topic) = &r.topic {
        drafts.push(state("m.room.topic", "", json!({ "topic": topic })));
    }
    // Users of other servers are invited once the room exists, through
    // their servers (`federation::invite`).
    let ours = crate::federation::server_of(&r.creator);
    for invitee in r.invite.iter().filter(|i| crate::federation::server_of(i) == ours) {
        drafts.push(state("m.room.member", invitee, invite_content(r.is_direct)));
    }
    drafts
}

/// The content of a `createRoom` invite.
pub fn invite_content(is_direct: bool) -> Value {
    let mut content = json!({ "membership": "invite" });
    if is_direct {
        content["is_direct"] = true.into();
    }
    content
}

/// Synapse's default power levels, with the creator at 100 (from v12 the
/// creator has infinite power and must not be listed), trusted private chats
/// giving invitees 100, and `power_level_content_override` merged on top.
fn power_levels(r: &CreateRoom) -> Value {
    let mut users = Map::new();
    if !r.version.privileged_creators {
        users.insert(r.creator.clone(), 100.into());
    }
    if r.preset == Preset::TrustedPrivateChat {
        for invitee in &r.invite {
            users.insert(invitee.clone(), 100.into());
        }
    }
    let mut content = json!({
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        // Synapse's presets: anyone in a private chat may invite.
        "invite": if r.preset == Preset::PublicChat { 50 } else { 0 },
        "historical": 100,
    });
    if let (Some(overrides), Value::Object(base)) = (&r.power_level_override, &mut content) {
        for (key, value) in overrides {
            base.insert(key.clone(), value.clone());
        }
    }
    content
}
