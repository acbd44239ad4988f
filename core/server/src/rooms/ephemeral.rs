//! Receipts and typing notifications (spec: client-server API, "Receipts",
//! "Typing Notifications"): room data outside the timeline. Both live with
//! the room on its shard and take a position in the shard's stream when
//! they change, so `/sync` learns of them like of events.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tessera_storage::records::{ReceiptRecord, StreamPos};
use tessera_storage::{Op, Store};

use crate::error::ApiError;
use crate::request::now_ms;
use crate::rooms::room::Room;
use crate::rooms::{dispatch, stream_name, Outgoing};
use crate::state::AppShard;

/// Longest a typing notice lasts without being renewed.
pub const MAX_TYPING: Duration = Duration::from_secs(120);

/// Tells the room's members that something at `pos` changed, once the
/// watermark passes it.
fn announce(shard: &AppShard, room: &mut Room, pos: StreamPos) {
    let placement = &shard.state.placement;
    let audience = room.audience(|u| placement.shard(u), placement.shard_count()).to_vec();
    let notice = Outgoing { room_id: Arc::from(room.id.as_str()), pos, audience, membership: None };
    let (released, watermark) = shard.state.rooms.stream.finish(pos, vec![notice]);
    dispatch(shard, released, watermark);
}

/// Stores a receipt of a joined member, on the room's shard.
pub async fn put_receipt(shard: &AppShard, room: &Rc<RefCell<Room>>, receipt: ReceiptRecord) -> Result<(), ApiError> {
    let stream = &shard.state.rooms.stream;
    let pos = stream.allocate();
    let (vshard, room_id) = {
        let room = room.borrow();
        (room.vshard, room.id.clone())
    };
    let ops = vec![
        Op::PutReceipt { vshard, room_id, receipt: receipt.clone() },
        Op::SetStreamPosition { stream: stream_name(shard.id()), pos },
    ];
    if let Err(e) = shard.state.store.write(ops).await {
        let (released, watermark) = stream.finish(pos, Vec::new());
        dispatch(shard, released, watermark);
        return Err(e.into());
    }
    let mut room = room.borrow_mut();
    let key = (receipt.receipt_type.clone(), receipt.user_id.clone(), receipt.thread_id.clone());
    room.receipts.insert(key, receipt);
    room.receipts_pos = pos;
    announce(shard, &mut room, pos);
    Ok(())
}

/// Starts or stops a member's typing notice, on the room's shard. A
/// started notice ends by itself after `timeout` unless renewed.
pub fn set_typing(shard: &AppShard, room: &Rc<RefCell<Room>>, user_id: &str, timeout: Option<Duration>) {
    let pos = shard.state.rooms.stream.allocate();
    let mut r = room.borrow_mut();
    let expiry = timeout.map(|t| now_ms() + t.min(MAX_TYPING).as_millis() as u64);
    match expiry {
        Some(expiry) => drop(r.typing.insert(user_id.to_owned(), expiry)),
        None => drop(r.typing.remove(user_id)),
    }
    r.typing_pos = pos;
    announce(shard, &mut r, pos);
    drop(r);
    if let (Some(expiry), Some(timeout)) = (expiry, timeout) {
        let (shard, room, user_id) = (shard.clone(), room.clone(), user_id.to_owned());
        tessera_net::runtime::spawn(async move {
            tessera_net::runtime::sleep(timeout.min(MAX_TYPING)).await;
            // Only if not renewed or stopped since.
            let current = room.borrow().typing.get(&user_id).copied();
            if current == Some(expiry) {
                set_typing(&shard, &room, &user_id, None);
            }
        });
    }
}

/// Tells the room's other servers of a typing change of `user_id` (ours):
/// an `m.typing` EDU (server-server API § Typing Notifications).
pub fn share_typing(shard: &AppShard, room: &mut Room, user_id: &str, typing: bool) {
    let servers = room.remote_servers(&shard.state.config.server_name);
    if servers.is_empty() {
        return;
    }
    let edu = json!({
        "edu_type": "m.typing",
        "content": { "room_id": room.id, "user_id": user_id, "typing": typing },
    });
    crate::federation::outbound::send_edu(shard, servers.to_vec(), Arc::new(edu));
}

/// Tells the room's other servers of a public receipt of ours: an
/// `m.receipt` EDU (server-server API § Receipts).
pub fn share_receipt(shard: &AppShard, room: &mut Room, receipt: &ReceiptRecord) {
    let servers = room.remote_servers(&shard.state.config.server_name);
    if servers.is_empty() || receipt.receipt_type != "m.read" {
        return;
    }
    let mut data = json!({ "ts": receipt.ts });
    if let Some(thread) = &receipt.thread_id {
        data["thread_id"] = thread.clone().into();
    }
    let mut by_user = Map::new();
    by_user.insert(receipt.user_id.clone(), json!({ "event_ids": [receipt.event_id], "data": data }));
    let mut by_room = Map::new();
    by_room.insert(room.id.clone(), json!({ "m.read": by_user }));
    let edu = json!({ "edu_type": "m.receipt", "content": by_room });
    crate::federation::outbound::send_edu(shard, servers.to_vec(), Arc::new(edu));
}

/// The room's ephemeral events for `user_id` changed in `(since, upto]`
/// (all of them when `since` is `None`).
pub fn ephemeral_events(room: &Room, user_id: &str, since: Option<StreamPos>, upto: StreamPos) -> Vec<Value> {
    // An initial sync gets what there is; an incremental one what changed.
    let changed = |pos: StreamPos| since.is_some_and(|s| pos > s && pos <= upto);
    let mut events = Vec::new();
    // An initial sync shows the typing list of every room where anyone
    // typed since the room was loaded, empty or not, as Synapse does.
    if changed(room.typing_pos) || since.is_none() && room.typing_pos != 0 {
        let mut users: Vec<&String> = room.typing.keys().collect();
        users.sort();
        events.push(json!({ "type": "m.typing", "content": { "user_ids": users } }));
    }
    if (changed(room.receipts_pos) || since.is_none()) && !room.receipts.is_empty() {
        let mut content: Map<String, Value> = Map::new();
        for receipt in room.receipts.values() {
            // Private receipts are for their owner only.
            if receipt.receipt_type == "m.read.private" && receipt.user_id != user_id {
                continue;
            }
            let mut entry = json!({ "ts": receipt.ts });
            if let Some(thread) = &receipt.thread_id {
                entry["thread_id"] = thread.clone().into();
            }
            let by_type = content.entry(receipt.event_id.clone()).or_insert_with(|| json!({}));
            by_type[&receipt.receipt_type][&receipt.user_id] = entry;
        }
        if !content.is_empty() {
            events.push(json!({ "type": "m.receipt", "content": content }));
        }
    }
    events
}
