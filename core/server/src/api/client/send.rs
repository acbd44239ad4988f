//! `PUT /rooms/{roomId}/send/{eventType}/{txnId}` and
//! `PUT /rooms/{roomId}/state/{eventType}/{stateKey}` (spec: client-server
//! API, "Sending events to a room"). Sends are idempotent per device and
//! transaction ID: a retry gets the first event's ID back.

use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::pdu::MAX_TYPE_AND_STATE_KEY_BYTES;

use crate::api::client::directory::check_canonical_alias;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::rate_limit::{self, Action};
use crate::request::json_body;
use crate::rooms::event::Draft;
use crate::rooms::guests::remove_guests;
use crate::rooms::send;
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Put, "/rooms/{roomId}/send/{eventType}/{txnId}", message);
    // r0's transaction-less send, still served by Synapse: never retried
    // idempotently, so it gets a transaction ID of its own.
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/send/{eventType}", message);
    client_endpoint(router, shard, Method::Put, "/rooms/{roomId}/state/{eventType}/{stateKey}", state);
    // An empty state key leaves no segment (matrix-nio drops the slash).
    client_endpoint(router, shard, Method::Put, "/rooms/{roomId}/state/{eventType}", state);
}

fn check_type(event_type: &str) -> Result<(), ApiError> {
    if event_type.len() > MAX_TYPE_AND_STATE_KEY_BYTES {
        return Err(ApiError::new(413, "M_TOO_LARGE", "event type is longer than 255 bytes"));
    }
    Ok(())
}

/// 400 for a tombstone that names its own room as the replacement: clients
/// following it would loop.
fn check_tombstone(room_id: &str, event_type: &str, content: &Value) -> Result<(), ApiError> {
    if event_type == "m.room.tombstone" && content.get("replacement_room").and_then(Value::as_str) == Some(room_id) {
        return Err(ApiError::invalid_param("a room cannot be replaced by itself"));
    }
    Ok(())
}

async fn message(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    rate_limit::take(&shard, Action::Message, &me.user_id)?;
    let content: Value = json_body(&req)?;
    let (room_id, event_type) = (&req.params[0], &req.params[1]);
    let txn_id = req.params.get(2).cloned().unwrap_or_else(|| format!("tessera-{}", crate::request::random_string(16)));
    check_type(event_type)?;
    check_tombstone(room_id, event_type, &content)?;
    let draft =
        Draft { sender: me.user_id.clone(), event_type: event_type.clone(), state_key: None, content, redacts: None };
    let txn = Some((me.device_id.clone(), txn_id));
    let event_id = send(&shard, room_id, draft, txn).await?;
    Ok(Response::json(&json!({ "event_id": event_id })))
}

async fn state(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    rate_limit::take(&shard, Action::Message, &me.user_id)?;
    let content: Value = json_body(&req)?;
    let (room_id, event_type) = (&req.params[0], &req.params[1]);
    let state_key = req.params.get(2).cloned().unwrap_or_default();
    check_type(event_type)?;
    check_tombstone(room_id, event_type, &content)?;
    if state_key.len() > MAX_TYPE_AND_STATE_KEY_BYTES {
        return Err(ApiError::new(413, "M_TOO_LARGE", "state key is longer than 255 bytes"));
    }
    if event_type == "m.room.canonical_alias" && state_key.is_empty() {
        check_canonical_alias(&shard, room_id, &content).await?;
    }
    let draft = Draft {
        sender: me.user_id.clone(),
        event_type: event_type.clone(),
        state_key: Some(state_key),
        content,
        redacts: None,
    };
    let revokes_guests = event_type == "m.room.guest_access"
        && draft.state_key.as_deref() == Some("")
        && draft.content.get("guest_access").and_then(Value::as_str) != Some("can_join");
    let event_id = send(&shard, room_id, draft, None).await?;
    if revokes_guests {
        remove_guests(&shard, room_id).await?;
    }
    Ok(Response::json(&json!({ "event_id": event_id })))
}
