//! Inviting a user of another server (server-server API § Inviting to a
//! room): "the inviting homeserver sends the invite event to the invited
//! homeserver ... expected to sign the event" and send it back; only then
//! does the event go into the room, with both signatures, and out to the
//! room's other servers.

use std::sync::Arc;

use serde_json::{json, Value};

use super::outbound::send_pdu;
use super::pdu::{check, OnHashMismatch};
use super::request::put_v2_or_v1;
use super::server_of;
use crate::error::ApiError;
use crate::request::{now_ms, query_encode};
use crate::rooms::event::Draft;
use crate::rooms::{append, on_room};
use crate::state::AppShard;
use crate::sync::room::invite_state;

/// Invites `draft.state_key`, a user of another server, into `room_id`.
pub async fn invite_remote(shard: &AppShard, room_id: &str, draft: Draft) -> Result<(), ApiError> {
    on_room(shard, room_id, move |shard, room| async move {
        let invitee_server = server_of(draft.state_key.as_deref().unwrap_or_default()).to_owned();
        let (event, pdu, stripped, rules) = {
            let room = room.borrow();
            let (event, pdu) = room.prepare(draft, &shard.state.keys, now_ms())?;
            (event, pdu, invite_state(&room), room.version)
        };
        let pdu: Value = serde_json::from_slice(&pdu).map_err(|e| ApiError::internal(e.to_string()))?;
        // v1 (rooms v1 and v2 only) sends the event alone, the stripped
        // state in its `unsigned`.
        let mut body_v1 = pdu.clone();
        body_v1["unsigned"] = json!({ "invite_room_state": stripped });
        let body = json!({ "room_version": rules.id, "event": pdu, "invite_room_state": stripped });
        let path =
            format!("/_matrix/federation/v2/invite/{}/{}", query_encode(&event.room_id), query_encode(&event.event_id));
        let answer = put_v2_or_v1(&shard, &invitee_server, &path, &body, &body_v1).await?;
        let signed = answer.get("event").ok_or_else(|| bad_answer(&invitee_server, "no event"))?;
        let bytes = serde_json::to_vec(signed).map_err(|e| ApiError::internal(e.to_string()))?;
        let checked = check(&shard, &event.room_id, rules, &bytes, OnHashMismatch::Reject).await?;
        if checked.event.event_id != event.event_id || !checked.event.signers.contains(&invitee_server) {
            return Err(bad_answer(&invitee_server, "not our invite with its signature"));
        }
        let us = shard.state.config.server_name.clone();
        let others: Vec<String> = {
            let mut room = room.borrow_mut();
            // Still allowed now that the answer is here.
            room.check_remote(&checked.event)?;
            // The invitee's server too when it is in the room already: the
            // invite reaches its view of the room only this way.
            room.remote_servers(&us).to_vec()
        };
        let stored: Value = serde_json::from_slice(&checked.bytes).map_err(|e| ApiError::internal(e.to_string()))?;
        append(&shard, &room, Some((checked.event, checked.bytes)), Vec::new(), None, Vec::new()).await?;
        send_pdu(&shard, others, Arc::new(stored));
        Ok(())
    })
    .await
}

fn bad_answer(server: &str, what: &str) -> ApiError {
    ApiError::new(502, "M_UNKNOWN", format!("{server} answered the invite with {what}"))
}
