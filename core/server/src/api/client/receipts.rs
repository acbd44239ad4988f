//! `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}` (spec:
//! client-server API, "Receipts"): `m.read` and `m.read.private`, optionally
//! per thread. Stored on the room's shard and sent to members through
//! `/sync`'s `ephemeral` (private receipts only to their owner).
//!
//! `POST /rooms/{roomId}/read_markers` ("Fully read markers") sets the
//! `m.fully_read` room account data and, with it, receipts.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::ReceiptRecord;

use crate::api::client::account_data::update;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::{json_body, now_ms};
use crate::rooms::ephemeral::{put_receipt, share_receipt};
use crate::rooms::on_room;
use crate::rooms::read::require_joined;
use crate::rooms::visibility::position;
use crate::state::AppShard;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/receipt/{receiptType}/{eventId}", post);
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/read_markers", read_markers);
}

#[derive(Deserialize)]
struct Markers {
    #[serde(rename = "m.fully_read")]
    fully_read: Option<String>,
    #[serde(rename = "m.read")]
    read: Option<String>,
    #[serde(rename = "m.read.private")]
    read_private: Option<String>,
}

async fn read_markers(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: Markers = json_body(&req)?;
    let room_id = req.params[0].clone();
    for (receipt_type, event_id) in [("m.read", body.read), ("m.read.private", body.read_private)] {
        if let Some(event_id) = event_id {
            receipt(&shard, &room_id, me.user_id.clone(), receipt_type.to_owned(), event_id, None).await?;
        }
    }
    if let Some(event_id) = body.fully_read {
        let user_id = me.user_id.clone();
        let target = event_id.clone();
        on_room(&shard, &room_id, move |shard, room| async move {
            require_joined(&room.borrow(), &user_id)?;
            let event = crate::rooms::stored_event(&shard.state.store, &target).await?;
            match event {
                Some(e) if e.room_id == room.borrow().id => Ok(()),
                _ => Err(ApiError::not_found("no such event in the room")),
            }
        })
        .await?;
        let content = json!({ "event_id": event_id });
        update(&shard, &me.user_id, Some(room_id), "m.fully_read".into(), move |_| Ok(Some(content))).await?;
    }
    Ok(Response::json(&json!({})))
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
    receipt(&shard, &room_id, me.user_id.clone(), receipt_type, event_id, body.thread_id).await?;
    Ok(Response::json(&json!({})))
}

/// Stores a receipt of `user_id` for an event of the room, on the room's
/// shard (404 for an event not in the room).
async fn receipt(
    shard: &AppShard,
    room_id: &str,
    user_id: String,
    receipt_type: String,
    event_id: String,
    thread_id: Option<String>,
) -> Result<(), ApiError> {
    on_room(shard, room_id, move |shard, room| async move {
        require_joined(&room.borrow(), &user_id)?;
        let event = crate::rooms::stored_event_at(&shard.state.store, &event_id).await?;
        let pos = match event {
            Some((pos, e)) if e.room_id == room.borrow().id => pos,
            _ => return Err(ApiError::not_found("no such event in the room")),
        };
        // Receipts only move forward (as in Synapse): one for an event
        // before the current receipt's is ignored.
        let key = (receipt_type.clone(), user_id.clone(), thread_id.clone());
        let current = room.borrow().receipts.get(&key).map(|r| r.event_id.clone());
        if let (Some(current), Some(pos)) = (current, pos) {
            if position(&shard, &room, &current).await?.is_some_and(|at| at > pos) {
                return Ok(());
            }
        }
        let receipt = ReceiptRecord { receipt_type, user_id, thread_id, event_id, ts: now_ms() };
        put_receipt(&shard, &room, receipt.clone()).await?;
        share_receipt(&shard, &mut room.borrow_mut(), &receipt);
        Ok(())
    })
    .await
}
