//! EDUs another server sent in a transaction (server-server API §
//! Ephemeral Data Units): typing notifications and receipts of its users,
//! applied on each room's shard, and presence and to-device messages, on
//! each user's shard, like our own users' ones; a device list update tells
//! our users sharing a room with its user. Every other kind is ignored
//! (cross-signing, receipts of other types). A to-device message arrives once per
//! transaction (retried transactions are answered from memory); its
//! `message_id` is not remembered beyond that.
//!
//! A server speaks only for its own users, and only for users joined to
//! the room: anything else is dropped, silently, as an EDU has no answer.

use std::time::Duration;

use serde_json::Value;
use tessera_storage::records::ReceiptRecord;

use super::{acl, server_of};
use crate::request::now_ms;
use crate::rooms::ephemeral::{put_receipt, set_typing};
use crate::rooms::on_room;
use crate::state::AppShard;

/// How long a remote user's typing lasts unless renewed or stopped (the
/// EDU carries no timeout; Synapse's is a minute as well).
const REMOTE_TYPING: Duration = Duration::from_secs(60);

/// Applies the EDUs of `origin` in order.
pub async fn receive(shard: &AppShard, origin: &str, edus: Vec<Value>) {
    for edu in edus {
        let content = edu.get("content").cloned().unwrap_or(Value::Null);
        match edu.get("edu_type").and_then(Value::as_str) {
            Some("m.typing") => typing(shard, origin, content).await,
            Some("m.receipt") => receipts(shard, origin, content).await,
            Some("m.presence") => presence(shard, origin, content),
            Some("m.direct_to_device") => to_device(shard, origin, content).await,
            Some("m.device_list_update") => device_list(shard, origin, content).await,
            _ => {}
        }
    }
}

async fn typing(shard: &AppShard, origin: &str, content: Value) {
    let field = |name: &str| content.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(room_id), Some(user_id)) = (field("room_id"), field("user_id")) else { return };
    if server_of(&user_id) != origin {
        return;
    }
    let typing = content.get("typing").and_then(Value::as_bool).unwrap_or(false);
    let origin = origin.to_owned();
    let applied = on_room(shard, &room_id, move |shard, room| async move {
        let allowed = acl::allows(&room.borrow(), &origin);
        if allowed && room.borrow().state.joined_at(&user_id).is_some() {
            set_typing(&shard, &room, &user_id, typing.then_some(REMOTE_TYPING));
        }
        Ok(())
    })
    .await;
    if let Err(e) = applied {
        tracing::debug!(room = room_id, error = %e.message, "typing EDU dropped");
    }
}

/// `content`: room ID → receipt type → user ID → `{event_ids, data}`.
async fn receipts(shard: &AppShard, origin: &str, content: Value) {
    let Value::Object(rooms) = content else { return };
    for (room_id, by_type) in rooms {
        let mut receipts = Vec::new();
        for (receipt_type, by_user) in by_type.as_object().into_iter().flatten() {
            // Private receipts never leave their server.
            if receipt_type != "m.read" {
                continue;
            }
            for (user_id, receipt) in by_user.as_object().into_iter().flatten() {
                let event_id = receipt.pointer("/event_ids/0").and_then(Value::as_str);
                let (true, Some(event_id)) = (server_of(user_id) == origin, event_id) else { continue };
                receipts.push(ReceiptRecord {
                    receipt_type: receipt_type.clone(),
                    user_id: user_id.clone(),
                    thread_id: receipt.pointer("/data/thread_id").and_then(Value::as_str).map(str::to_owned),
                    event_id: event_id.to_owned(),
                    ts: receipt.pointer("/data/ts").and_then(Value::as_u64).unwrap_or_else(now_ms),
                });
            }
        }
        let origin = origin.to_owned();
        let applied = on_room(shard, &room_id, move |shard, room| async move {
            if !acl::allows(&room.borrow(), &origin) {
                return Ok(());
            }
            for receipt in receipts {
                if room.borrow().state.joined_at(&receipt.user_id).is_some() {
                    put_receipt(&shard, &room, receipt).await?;
                }
            }
            Ok(())
        })
        .await;
        if let Err(e) = applied {
            tracing::debug!(room = room_id, error = %e.message, "receipt EDU dropped");
        }
    }
}

/// `content.push`: presence updates of the origin's users.
fn presence(shard: &AppShard, origin: &str, content: Value) {
    let Some(Value::Array(updates)) = content.get("push").cloned() else { return };
    for update in updates {
        let Some(user_id) = update.get("user_id").and_then(Value::as_str).map(str::to_owned) else { continue };
        if server_of(&user_id) != origin {
            continue;
        }
        let owner = shard.state.placement.shard(&user_id);
        shard.tell(owner, move |shard| {
            let shard = shard.clone();
            tessera_net::runtime::spawn(
                async move { crate::sync::presence::set_remote(&shard, &user_id, &update).await },
            );
        });
    }
}

/// `content`: `sender`, `type`, `messages` (user ID → device ID or `*` →
/// content), for our users.
async fn to_device(shard: &AppShard, origin: &str, content: Value) {
    let field = |name: &str| content.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(sender), Some(event_type)) = (field("sender"), field("type")) else { return };
    if server_of(&sender) != origin {
        return;
    }
    let us = shard.state.config.server_name.clone();
    let Some(Value::Object(messages)) = content.get("messages").cloned() else { return };
    for (user_id, devices) in messages {
        let Value::Object(devices) = devices else { continue };
        if server_of(&user_id) != us {
            continue;
        }
        let (sender, event_type) = (sender.clone(), event_type.clone());
        let owner = shard.state.placement.shard(&user_id);
        let delivered = shard
            .ask_async(owner, move |shard| {
                let shard = shard.clone();
                async move {
                    let devices = devices.into_iter().collect();
                    crate::sync::to_device::deliver(&shard, &sender, &event_type, &user_id, devices).await
                }
            })
            .await;
        if let Ok(Err(e)) = delivered {
            tracing::debug!(error = %e.message, "to-device EDU not delivered");
        }
    }
}

/// A user of the origin added, changed or deleted a device: our users in
/// their rooms hear of it (their clients ask for the keys again).
async fn device_list(shard: &AppShard, origin: &str, content: Value) {
    let Some(user_id) = content.get("user_id").and_then(Value::as_str) else { return };
    if server_of(user_id) != origin {
        return;
    }
    let told = crate::sync::tidings::tell_room_mates(shard, user_id, crate::sync::tidings::Tiding::Devices, None);
    if let Err(e) = told.await {
        tracing::debug!(user = user_id, error = %e.message, "device list update not told");
    }
}
