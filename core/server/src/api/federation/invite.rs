//! `PUT /_matrix/federation/v{1,2}/invite/{roomId}/{eventId}`
//!
//! Spec (server-server API, "Inviting to a room"): "Invites a remote user
//! to a room. Once the destination server has signed the event, it should
//! return the signed event"; v2 sends `room_version`, `event` and
//! `invite_room_state` ("an optional list of stripped state events to
//! help the receiver of the invite identify the room"); v1 sends the event
//! alone (stripped state in its `unsigned`), for rooms v1 and v2, and
//! wraps the answer as `[200, {...}]`. 400 `M_INCOMPATIBLE_ROOM_VERSION`
//! for a room version this server does not support.
//!
//! The invite must be of a user of ours, sent by a user of the origin,
//! signed and hashed as its version says. When a user of ours is in the
//! room the invite arrives in the room's graph anyway; otherwise it goes
//! into this server's view of the room (a room with no state but the
//! invite, created here if new) with the stripped state kept in the
//! stored event's `unsigned`, which is what the invitee's `/sync` shows.

use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::canonical_json::{parse_object_with, to_bytes, Numbers, Value as CanonicalValue};
use tessera_proto::room_version::RoomVersionRules;
use tessera_proto::signatures::hash_and_sign_event;
use tessera_storage::Store;

use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::acl;
use crate::federation::auth::authenticate;
use crate::federation::pdu::{check, Checked, OnHashMismatch};
use crate::federation::server_of;
use crate::rooms::{on_room_shard, remember_outside};
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Put, "/_matrix/federation/v1/invite/{roomId}/{eventId}", |s, r| invite(s, r, true));
    endpoint(router, shard, Method::Put, "/_matrix/federation/v2/invite/{roomId}/{eventId}", |s, r| {
        invite(s, r, false)
    });
}

async fn invite(shard: AppShard, req: Request, v1: bool) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let (room_id, claimed_id) = (req.params[0].clone(), req.params[1].clone());
    // A room we know: its ACL first.
    let server = origin.clone();
    on_room_shard(&shard, &room_id, move |_, room| async move {
        room.map_or(Ok(()), |room| acl::require_allowed(&room.borrow(), &server))
    })
    .await?;
    let body: Value = serde_json::from_slice(&req.body).map_err(|e| ApiError::not_json(e.to_string()))?;
    let (version, event, stripped) = match v1 {
        true => ("1", &body, body.pointer("/unsigned/invite_room_state")),
        false => (
            body.get("room_version").and_then(Value::as_str).ok_or_else(|| ApiError::bad_json("no room_version"))?,
            body.get("event").ok_or_else(|| ApiError::bad_json("no event"))?,
            body.get("invite_room_state"),
        ),
    };
    let rules = RoomVersionRules::get(version).ok_or_else(|| {
        ApiError::new(400, "M_INCOMPATIBLE_ROOM_VERSION", "this server does not support the room's version")
            .with("room_version", version)
    })?;
    let bytes = serde_json::to_vec(event).map_err(|e| ApiError::bad_json(e.to_string()))?;
    let Checked { event, bytes } = check(&shard, &room_id, rules, &bytes, OnHashMismatch::Reject).await?;
    let us = shard.state.config.server_name.clone();
    let invitee = event.state_key.clone().unwrap_or_default();
    if event.event_id != claimed_id {
        return Err(ApiError::bad_json("the event ID does not match the path"));
    }
    if event.event_type != "m.room.member"
        || event.content.get("membership").and_then(Value::as_str) != Some("invite")
        || server_of(&invitee) != us
    {
        return Err(ApiError::bad_json("not an invite of a user of this server"));
    }
    if server_of(&event.sender) != origin {
        return Err(ApiError::forbidden("a server may only send invites by its own users"));
    }
    let vshard = shard.state.placement.vshard(&invitee);
    if shard.state.store.user(vshard, &invitee).await?.is_none() {
        return Err(ApiError::not_found(format!("{invitee} does not exist")));
    }
    // Our signature, beside the inviting server's.
    let mut object =
        parse_object_with(&bytes, Numbers::for_room_version(rules)).map_err(|e| ApiError::internal(e.to_string()))?;
    hash_and_sign_event(&mut object, &us, &shard.state.keys.current[0], rules);
    let signed = to_bytes(&CanonicalValue::Object(object));
    let answer: Value = serde_json::from_slice(&signed).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut kept = answer.clone();
    if let Some(stripped @ Value::Array(_)) = stripped {
        kept["unsigned"] = json!({ "invite_room_state": stripped });
    }
    let kept = serde_json::to_vec(&kept).map_err(|e| ApiError::internal(e.to_string()))?;
    let event_id = event.event_id.clone();
    let id = room_id.clone();
    on_room_shard(&shard, &room_id, move |shard, room| async move {
        remember_outside(&shard, &id, room, rules, event_id, kept).await
    })
    .await?;
    Ok(Response::json(&if v1 { json!([200, { "event": answer }]) } else { json!({ "event": answer }) }))
}
