//! Leaving a room this server is not in: rejecting (or retracting a knock
//! on) another server's room (server-server API § Leaving Rooms (Rejecting
//! Invites)): "the homeserver may send a `make_leave` request to a
//! resident server", then sign and `send_leave` the template.
//!
//! When no resident server can be reached (the room emptied since the
//! invite, or its server is down) the user still gets out, as Synapse
//! does: the leave is made here, on top of the invite, and kept to this
//! server; it is what this server's view of the room shows.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::join::make_membership;
use super::request::put_v2_or_v1;
use super::server_of;
use crate::error::ApiError;
use crate::request::{now_ms, query_encode};
use crate::rooms::event::{Draft, Placement, RoomEvent};
use crate::rooms::room::Room;
use crate::rooms::{append, on_room_shard, send};
use crate::state::AppShard;

/// `draft.sender` (ours) leaves `room_id`: locally when a user of ours is
/// in the room, else through the room's servers as above.
pub async fn leave(shard: &AppShard, room_id: &str, draft: Draft) -> Result<(), ApiError> {
    let room_id = room_id.to_owned();
    on_room_shard(shard, &room_id.clone(), move |shard, room| async move {
        let us = shard.state.config.server_name.clone();
        let invite = room.as_ref().and_then(|room| {
            let room = room.borrow();
            let member = room.state.event("m.room.member", &draft.sender)?;
            let pending = matches!(member.content.get("membership").and_then(Value::as_str), Some("invite" | "knock"));
            (pending && !room.has_member_of(&us)).then(|| member.clone())
        });
        match (room, invite) {
            (Some(room), Some(invite)) => leave_remote(&shard, &room, invite, draft).await,
            _ => send(&shard, &room_id, draft, None).await.map(drop),
        }
    })
    .await
}

/// Leaves through the inviting server (then the room ID's), or out of band.
async fn leave_remote(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    invite: Arc<RoomEvent>,
    draft: Draft,
) -> Result<(), ApiError> {
    let room_id = room.borrow().id.clone();
    let Value::Object(content) = draft.content else {
        return Err(ApiError::internal("a leave's content is not an object"));
    };
    let us = shard.state.config.server_name.as_str();
    let mut tried = HashSet::new();
    let servers = [server_of(&invite.sender), server_of(&room_id)];
    for server in servers.into_iter().filter(|s| !s.is_empty() && *s != us) {
        if !tried.insert(server) {
            continue;
        }
        match leave_via(shard, server, &room_id, &draft.sender, content.clone()).await {
            Ok((event, bytes)) => {
                append(shard, room, Some((event, bytes)), Vec::new(), None, Vec::new()).await?;
                return Ok(());
            }
            Err(e) => tracing::info!(server, room = room_id, error = %e.message, "leave through this server failed"),
        }
    }
    let out_of_band = out_of_band_leave(shard, room, &invite, &draft.sender, content)?;
    append(shard, room, Some(out_of_band), Vec::new(), None, Vec::new()).await?;
    Ok(())
}

async fn leave_via(
    shard: &AppShard,
    server: &str,
    room_id: &str,
    user_id: &str,
    content: Map<String, Value>,
) -> Result<(Arc<RoomEvent>, Vec<u8>), ApiError> {
    let (_, event, bytes) = make_membership(shard, server, room_id, user_id, "leave", content).await?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let path = format!("/_matrix/federation/v2/send_leave/{}/{}", query_encode(room_id), query_encode(&event.event_id));
    put_v2_or_v1(shard, server, &path, &body, &body).await?;
    Ok((event, bytes))
}

/// A leave made here on top of the invite, for this server's view only.
fn out_of_band_leave(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    invite: &RoomEvent,
    user_id: &str,
    mut content: Map<String, Value>,
) -> Result<(Arc<RoomEvent>, Vec<u8>), ApiError> {
    content.insert("membership".into(), "leave".into());
    let draft = Draft {
        sender: user_id.to_owned(),
        event_type: "m.room.member".into(),
        state_key: Some(user_id.to_owned()),
        content: Value::Object(content),
        redacts: None,
    };
    let room = room.borrow();
    let at = Placement {
        room_id: Some(&room.id),
        prev_events: vec![invite.event_id.clone()],
        auth_events: vec![invite.event_id.clone()],
        depth: invite.depth + 1,
        origin_server_ts: now_ms(),
    };
    RoomEvent::create(draft, at, room.version, &shard.state.keys)
}
