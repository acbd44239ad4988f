//! `POST /_matrix/client/v3/createRoom` (spec: client-server API,
//! "Creation").

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::identifiers::UserId;
use tessera_proto::room_version::RoomVersionRules;
use tessera_storage::Store;

use crate::api::client::directory::{check_local_alias, create_alias};
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::federation::invite::invite_remote;
use crate::federation::server_of;
use crate::rate_limit::{self, Action};
use crate::request::json_body;
use crate::rooms::create::{create_room, invite_content, CreateRoom, Preset};
use crate::rooms::event::Draft;
use crate::state::AppShard;

/// The room version of new rooms when the request names none (Synapse
/// 1.163 creates v12 rooms too).
pub const DEFAULT_ROOM_VERSION: &str = "12";

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/createRoom", post);
}

#[derive(Deserialize)]
struct Body {
    visibility: Option<String>,
    room_alias_name: Option<String>,
    name: Option<String>,
    topic: Option<String>,
    #[serde(default)]
    invite: Vec<String>,
    #[serde(default)]
    invite_3pid: Vec<Value>,
    room_version: Option<String>,
    #[serde(default)]
    creation_content: Map<String, Value>,
    #[serde(default)]
    initial_state: Vec<StateEvent>,
    preset: Option<String>,
    #[serde(default)]
    is_direct: bool,
    power_level_content_override: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct StateEvent {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    state_key: String,
    content: Map<String, Value>,
}

async fn post(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    rate_limit::take(&shard, Action::RoomCreation, &me.user_id)?;
    if me.is_guest {
        return Err(ApiError::new(403, "M_GUEST_ACCESS_FORBIDDEN", "guests cannot create rooms"));
    }
    let body: Body = json_body(&req)?;
    let alias = match &body.room_alias_name {
        Some(name) => {
            let alias = format!("#{name}:{}", shard.state.config.server_name);
            check_local_alias(&shard, &alias)?;
            if shard.state.store.alias(&alias).await?.is_some() {
                return Err(ApiError::new(400, "M_ROOM_IN_USE", "room alias already taken"));
            }
            Some(alias)
        }
        None => None,
    };
    if !body.invite_3pid.is_empty() {
        return Err(ApiError::new(400, "M_UNRECOGNIZED", "third-party invites are not supported yet"));
    }
    let version_id = body.room_version.as_deref().unwrap_or(DEFAULT_ROOM_VERSION);
    let version = RoomVersionRules::get(version_id).ok_or_else(|| {
        ApiError::new(400, "M_UNSUPPORTED_ROOM_VERSION", format!("unknown room version {version_id}"))
    })?;
    let public = match body.visibility.as_deref() {
        None | Some("private") => false,
        Some("public") => true,
        Some(_) => return Err(ApiError::invalid_param("`visibility` must be public or private")),
    };
    let preset = match body.preset.as_deref() {
        Some(p) => Preset::parse(p).ok_or_else(|| ApiError::invalid_param(format!("unknown preset {p}")))?,
        None if public => Preset::PublicChat,
        None => Preset::PrivateChat,
    };
    let server_name = &shard.state.config.server_name;
    for invitee in &body.invite {
        UserId::parse(invitee).map_err(|e| ApiError::invalid_param(format!("{invitee}: {e}")))?;
    }
    let remote_invites: Vec<String> = body.invite.iter().filter(|i| server_of(i) != server_name).cloned().collect();
    let mut creation_content = body.creation_content;
    // The server sets these; a client cannot.
    creation_content.remove("creator");
    creation_content.remove("room_version");
    let initial_state = body
        .initial_state
        .into_iter()
        .map(|e| Draft {
            sender: me.user_id.clone(),
            event_type: e.event_type,
            state_key: Some(e.state_key),
            content: Value::Object(e.content),
            redacts: None,
        })
        .collect();
    let is_direct = body.is_direct;
    let request = CreateRoom {
        creator: me.user_id.clone(),
        version,
        preset,
        creation_content,
        power_level_override: body.power_level_content_override,
        initial_state,
        name: body.name,
        topic: body.topic,
        invite: body.invite,
        is_direct,
        alias: alias.clone(),
        room_id: None,
    };
    let room_id = create_room(&shard, request).await?;
    for invitee in remote_invites {
        let draft = Draft {
            sender: me.user_id.clone(),
            event_type: "m.room.member".into(),
            state_key: Some(invitee.clone()),
            content: invite_content(is_direct),
            redacts: None,
        };
        if let Err(e) = invite_remote(&shard, &room_id, draft).await {
            tracing::warn!(room = room_id, invitee, error = e.message, "createRoom could not invite a remote user");
        }
    }
    if let Some(alias) = alias {
        create_alias(&shard, &alias, &room_id, &me.user_id)
            .await
            .map_err(|_| ApiError::new(400, "M_ROOM_IN_USE", "room alias was taken while the room was created"))?;
    }
    if public {
        let op = tessera_storage::Op::SetRoomPublished { room_id: room_id.clone(), published: true };
        shard.state.store.write(vec![op]).await?;
    }
    Ok(Response::json(&json!({ "room_id": room_id })))
}
