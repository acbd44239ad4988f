//! Content hashes, reference hashes and the IDs derived from them (spec:
//! server-server API § Calculating the content hash for an event,
//! § Calculating the reference hash for an event; room versions § Event IDs).

use sha2::{Digest, Sha256};

use crate::canonical_json::{write_object_except, Object, Value};
use crate::identifiers::{EventId, EventIdFormat, IdError, RoomId};
use crate::redaction::write_redacted;
use crate::room_version::{RoomIdFormat, RoomVersionRules};

/// Top-level keys left out of the content hash: "any existing `unsigned`,
/// `signatures`, and `hashes` properties are removed".
const NOT_IN_CONTENT_HASH: &[&str] = &["hashes", "signatures", "unsigned"];

/// Top-level keys left out of what is signed and reference-hashed.
pub(crate) const NOT_SIGNED: &[&str] = &["signatures", "unsigned"];

/// Room for the canonical JSON of most events, so encoding one for hashing
/// or signing allocates once instead of growing the buffer as it goes.
pub(crate) const EVENT_BUFFER_BYTES: usize = 4096;

/// Why an event has no event ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    #[error("room versions 1 and 2 carry the event ID in `event_id`, which is missing or not a string")]
    MissingEventId,
    #[error("`event_id` is invalid: {0}")]
    InvalidEventId(IdError),
    #[error("`event_id` {0} is not in the domain-scoped format rooms v1 and v2 use")]
    WrongFormat(EventId),
}

/// SHA-256 of the event without `unsigned`, `signatures` and `hashes`,
/// encoded as canonical JSON. Stored, base64, as `hashes.sha256`.
pub fn content_hash(event: &Object) -> [u8; 32] {
    let mut json = Vec::with_capacity(EVENT_BUFFER_BYTES);
    write_object_except(event, NOT_IN_CONTENT_HASH, &mut json);
    Sha256::digest(&json).into()
}

/// Appends the bytes an event's signatures cover: the redacted event without
/// `signatures` and `unsigned`, as canonical JSON. Its SHA-256 is the
/// reference hash.
pub(crate) fn write_signed_part(event: &Object, rules: &RoomVersionRules, out: &mut Vec<u8>) {
    write_redacted(event, rules, NOT_SIGNED, out);
}

/// SHA-256 of the redacted event without `signatures` and `unsigned`.
pub fn reference_hash(event: &Object, rules: &RoomVersionRules) -> [u8; 32] {
    let mut json = Vec::with_capacity(EVENT_BUFFER_BYTES);
    write_signed_part(event, rules, &mut json);
    Sha256::digest(&json).into()
}

/// The event's ID under `rules`: its `event_id` field in rooms v1–2, its
/// reference hash in base64 (v3) or URL-safe base64 (v4+) otherwise.
pub fn event_id(event: &Object, rules: &RoomVersionRules) -> Result<EventId, EventIdError> {
    let hash_id = match rules.event_id_format {
        EventIdFormat::DomainScoped => None,
        format => EventId::from_reference_hash(&reference_hash(event, rules), format),
    };
    if let Some(id) = hash_id {
        return Ok(id);
    }
    let id = event.get("event_id").and_then(Value::as_str).ok_or(EventIdError::MissingEventId)?;
    let id = EventId::parse(id).map_err(EventIdError::InvalidEventId)?;
    if id.format() != EventIdFormat::DomainScoped {
        return Err(EventIdError::WrongFormat(id));
    }
    Ok(id)
}

/// The room ID of the room an `m.room.create` event creates, in versions
/// whose room IDs are the create event's hash (v12); `None` in versions
/// where the creating server picks the room ID.
pub fn room_id_from_create_event(create_event: &Object, rules: &RoomVersionRules) -> Option<RoomId> {
    match rules.room_id_format {
        RoomIdFormat::CreateEventHash => {
            Some(RoomId::from_create_event_reference_hash(&reference_hash(create_event, rules)))
        }
        RoomIdFormat::DomainScoped => None,
    }
}
