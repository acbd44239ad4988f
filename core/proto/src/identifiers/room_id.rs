//! Room IDs (spec: appendices § Room IDs; room version 12 § Event format).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::event_id::decode_hash;
use super::{check_length, check_opaque_localpart, split_sigil_localpart, IdError};

identifier! {
    /// `!opaque:server_name` (rooms v1–11) or, from room v12, `!` + the
    /// URL-safe unpadded base64 reference hash of the room's `m.room.create`
    /// event ("the event ID of the `m.room.create` event using `!` as the
    /// sigil instead of `$`").
    RoomId
}

impl RoomId {
    fn validate(s: &str) -> Result<(), IdError> {
        if s.contains(':') {
            let (localpart, _) = split_sigil_localpart(s, '!')?;
            if localpart.is_empty() {
                return Err(IdError::EmptyLocalpart);
            }
            return check_opaque_localpart(localpart);
        }
        check_length(s)?;
        let hash = s.strip_prefix('!').ok_or(IdError::MissingSigil('!'))?;
        if hash.contains(['+', '/']) {
            return Err(IdError::InvalidHash);
        }
        decode_hash(hash).map(|_| ())
    }

    /// The v12 room ID of a room whose create event has `reference_hash`.
    pub fn from_create_event_reference_hash(reference_hash: &[u8; 32]) -> Self {
        Self(format!("!{}", URL_SAFE_NO_PAD.encode(reference_hash)).into())
    }

    /// The server name of a domain-scoped room ID; `None` for v12 room IDs.
    pub fn server_name(&self) -> Option<&str> {
        self.0.split_once(':').map(|(_, server)| server)
    }
}
