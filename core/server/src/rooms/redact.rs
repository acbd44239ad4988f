//! Redactions (spec: client-server API, "Redactions"): an
//! `m.room.redaction` event, and the redacted event stripped of what its
//! room version's redaction algorithm removes. Both are stored in one
//! atomic write; afterwards the room serves only the redacted form.
//!
//! From room v3 the auth rules leave redactions to the server applying
//! them: the sender must have the `redact` power level unless redacting
//! their own event.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;
use tessera_proto::canonical_json::{parse_object_with, to_bytes, Numbers, Value as CanonicalValue};
use tessera_proto::redaction::redact;
use tessera_storage::records::EventRecord;
use tessera_storage::{Op, Store};

use crate::error::ApiError;
use crate::rooms::event::{Draft, RoomEvent};
use crate::rooms::room::Room;
use crate::rooms::{append, on_room, Txn};
use crate::state::AppShard;

/// Redacts `target` in `room_id` as `sender`; returns the redaction's ID.
pub async fn redact_event(
    shard: &AppShard,
    room_id: &str,
    sender: String,
    target: String,
    reason: Option<String>,
    txn: Txn,
) -> Result<String, ApiError> {
    on_room(shard, room_id, move |shard, room| async move {
        let key = (sender.clone(), txn.0.clone(), txn.1.clone());
        if let Some(event_id) = room.borrow().txns.get(&key) {
            return Ok(event_id.clone());
        }
        let store = &shard.state.store;
        let record = store.event(&target).await?.ok_or_else(|| ApiError::not_found("no such event"))?;
        if record.room_id != room.borrow().id {
            return Err(ApiError::invalid_param("the event is in another room"));
        }
        let original = RoomEvent::from_pdu(&record.json).ok_or_else(|| ApiError::internal("unreadable event"))?;
        check_power(&room.borrow(), &sender, &original.sender)?;
        let redacted = redacted_record(&room.borrow(), record)?;
        let mut content = serde_json::Map::new();
        if let Some(reason) = reason {
            content.insert("reason".into(), reason.into());
        }
        let draft = Draft {
            sender,
            event_type: "m.room.redaction".into(),
            state_key: None,
            content: Value::Object(content),
            redacts: Some(target.clone()),
        };
        let events = append(&shard, &room, None, vec![draft], Some(txn), vec![Op::PutEvent(redacted.clone())]).await?;
        forget_original(&room, &redacted);
        Ok(events[0].event_id.clone())
    })
    .await
}

/// 403 unless `sender` may redact an event of `original_sender`.
fn check_power(room: &Room, sender: &str, original_sender: &str) -> Result<(), ApiError> {
    if sender == original_sender || room.has_power(sender, |levels| levels.redact()) {
        Ok(())
    } else {
        Err(ApiError::forbidden("your power level is below the room's redact level"))
    }
}

/// The stored event with its PDU redacted, same position.
fn redacted_record(room: &Room, mut record: EventRecord) -> Result<EventRecord, ApiError> {
    let numbers = Numbers::for_room_version(room.version);
    let pdu = parse_object_with(&record.json, numbers).map_err(|e| ApiError::internal(format!("stored event: {e}")))?;
    record.json = to_bytes(&CanonicalValue::Object(redact(&pdu, room.version)));
    Ok(record)
}

/// Replaces the in-memory copies of the redacted event.
fn forget_original(room: &Rc<RefCell<Room>>, redacted: &EventRecord) {
    let Some(mut event) = RoomEvent::from_pdu(&redacted.json) else { return };
    event.event_id = redacted.event_id.clone();
    event.room_id = redacted.room_id.clone();
    let event = Arc::new(event);
    let mut room = room.borrow_mut();
    for (_, recent) in room.recent.iter_mut() {
        if recent.event_id == event.event_id {
            *recent = event.clone();
        }
    }
    room.replace_state_event(&event);
}
