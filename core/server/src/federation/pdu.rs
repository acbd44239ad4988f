//! Checking an event another server sent (server-server API § Checks
//! performed on receipt of a PDU, steps 1–3): it is a valid event of its
//! room's version, its ID is what its content makes it, the servers that
//! must have signed it did, and its content matches its hash. The auth
//! rules (steps 4–6) are the room's job, against its own state.

use std::sync::Arc;

use tessera_proto::canonical_json::{parse_object_with, to_bytes, Numbers, Object, Value as CanonicalValue};
use tessera_proto::hashes::{event_id, room_id_from_create_event};
use tessera_proto::redaction::redact;
use tessera_proto::room_version::RoomVersionRules;
use tessera_proto::signatures::{required_signers, verify_event, ContentHash, KnownKeys};

use super::keys::key_for;
use crate::error::ApiError;
use crate::rooms::event::RoomEvent;
use crate::state::AppShard;

/// What to do with an event whose content does not match its hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnHashMismatch {
    /// Refuse it: a join or leave we are asked to vouch for.
    Reject,
    /// Keep its redacted form, as the spec says for events in transactions:
    /// "it is assumed that this is because we have only been given a
    /// redacted version of the event".
    Redact,
}

/// A checked event: ready for the auth rules and the room.
pub struct Checked {
    pub event: Arc<RoomEvent>,
    /// The PDU as stored: canonical JSON, without `unsigned`.
    pub bytes: Vec<u8>,
}

/// Runs the checks on `pdu` (JSON bytes) as an event of `room_id`, a room
/// of version `rules`: `M_BAD_JSON` for what is not a valid event of the
/// room (numbers included: rooms v6+ refuse floats and big integers), 403
/// `M_FORBIDDEN` for a missing or bad signature (or content hash, when
/// `mismatch` is [`OnHashMismatch::Reject`]).
pub async fn check(
    shard: &AppShard,
    room_id: &str,
    rules: &RoomVersionRules,
    pdu: &[u8],
    mismatch: OnHashMismatch,
) -> Result<Checked, ApiError> {
    let mut object = parse_object_with(pdu, Numbers::for_room_version(rules))
        .map_err(|e| ApiError::bad_json(format!("event: {e}")))?;
    // A room v12 create event names no room: the room's ID is its hash.
    let of_room = match object.get("room_id") {
        Some(id) => id.as_str() == Some(room_id),
        None => room_id_from_create_event(&object, rules).is_some_and(|id| id.as_str() == room_id),
    };
    if !of_room {
        return Err(ApiError::bad_json("the event is not of this room"));
    }
    let id = match rules.event_id_server_signs {
        true => object.get("event_id").and_then(CanonicalValue::as_str).map(str::to_owned),
        false => event_id(&object, rules).ok().map(|id| id.to_string()),
    };
    let id = id.ok_or_else(|| ApiError::bad_json("the event has no valid ID"))?;
    let keys = signing_keys(shard, &object, rules).await;
    match verify_event(&object, rules, &keys) {
        Ok(verified) if verified.content_hash == ContentHash::Matches => {}
        Ok(_) if mismatch == OnHashMismatch::Redact => object = redact(&object, rules),
        Ok(_) => return Err(ApiError::forbidden("the event's content hash does not match")),
        Err(e) => return Err(ApiError::forbidden(format!("the event's signatures do not verify: {e}"))),
    }
    // `unsigned` is the sender's say, not part of the signed event.
    object.remove("unsigned");
    let bytes = to_bytes(&CanonicalValue::Object(object));
    let mut event = RoomEvent::from_pdu(&bytes).ok_or_else(|| ApiError::bad_json("the event lacks a field"))?;
    event.event_id = id;
    event.room_id = room_id.to_owned();
    Ok(Checked { event: Arc::new(event), bytes })
}

/// The keys the servers that must sign `pdu` signed it with, as far as
/// they can be had; [`verify_event`] then decides. Only those servers: a
/// hostile event listing many signers must not make us fetch from each.
async fn signing_keys(shard: &AppShard, pdu: &Object, rules: &RoomVersionRules) -> KnownKeys {
    let mut known = KnownKeys::new();
    let (Ok(required), Some(signatures)) =
        (required_signers(pdu, rules), pdu.get("signatures").and_then(CanonicalValue::as_object))
    else {
        return known;
    };
    for server in required {
        let Some(by_key) = signatures.get(server).and_then(CanonicalValue::as_object) else { continue };
        for (key_id, _) in by_key.iter() {
            if let Ok(keys) = key_for(shard, server, key_id).await {
                known.merge(keys);
            }
        }
    }
    known
}
