//! `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}` (spec:
//! client-server API, "Receipts"): `m.read` and `m.read.private`, optionally
//! per thread. Stored on the room's shard and sent to members through
//! `/sync`'s `ephemeral` (private receipts only to their owner).

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::ReceiptRecord;

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::{json_body, now_ms};
use crate::rooms::ephemeral::put_receipt;
use crate::rooms::on_room;
use crate::rooms::read::require_joined;
use crate::state::AppShard;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/receipt/{receiptType}/{eventId}", post);
}

#[derive(Deserialize)]
struct Body {
    thread_id: Option<String>,
}

async fn post(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: Body = json_body(&req)?;
    let (room_id, receipt_type, event_id) = (req.params[0].clone(), req.params[1].clone(), req.params[2].clone());
    if !matches!(receipt_type.as_str(), "m.read" | "m.read.private") {
        // m.fully_read belongs to /read_markers.
        return Err(ApiError::invalid_param(format!("receipt type {receipt_type} is not supported here")));
    }
    let user_id = me.user_id.clone();
    on_room(&shard, &room_id, move |shard, room| async move {
        require_joined(&room.borrow(), &user_id)?;
        let event = crate::rooms::stored_event(&shard.state.store, &event_id).await?;
        if event.is_none_or(|e| e.room_id != room.borrow().id) {
            return Err(ApiError::not_found("no such event in the room"));
        }
        let receipt = ReceiptRecord { receipt_type, user_id, thread_id: body.thread_id, event_id, ts: now_ms() };
        put_receipt(&shard, &room, receipt).await
    })
    .await?;
    Ok(Response::json(&json!({})))
}
