//! Event IDs (spec: appendices § Event IDs; room versions 1, 3 and 4
//! § Event IDs).

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

use super::{check_length, check_opaque_localpart, split_sigil_localpart, IdError};

/// How a room version forms its event IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventIdFormat {
    /// Rooms v1–2: `$opaque:server_name`, chosen by the origin server and
    /// carried in the event's `event_id` field.
    DomainScoped,
    /// Room v3: `$` + the reference hash in unpadded standard base64.
    Base64,
    /// Rooms v4+: `$` + the reference hash in unpadded URL-safe base64.
    UrlSafeBase64,
}

identifier! {
    /// `$opaque:server_name` (rooms v1–2) or `$` + a base64 SHA-256 reference
    /// hash (rooms v3+). Parsing accepts every format; [`EventId::format`]
    /// tells which one an ID has, for checking it against a room version.
    EventId
}

impl EventId {
    fn validate(s: &str) -> Result<(), IdError> {
        if s.contains(':') {
            let (localpart, _) = split_sigil_localpart(s, '$')?;
            if localpart.is_empty() {
                return Err(IdError::EmptyLocalpart);
            }
            return check_opaque_localpart(localpart);
        }
        check_length(s)?;
        let hash = s.strip_prefix('$').ok_or(IdError::MissingSigil('$'))?;
        decode_hash(hash).map(|_| ())
    }

    /// The event ID whose hash part is `reference_hash` in `format`; `None`
    /// for [`EventIdFormat::DomainScoped`], where IDs are not hashes.
    pub fn from_reference_hash(reference_hash: &[u8; 32], format: EventIdFormat) -> Option<Self> {
        let encoded = match format {
            EventIdFormat::DomainScoped => return None,
            EventIdFormat::Base64 => STANDARD_NO_PAD.encode(reference_hash),
            EventIdFormat::UrlSafeBase64 => URL_SAFE_NO_PAD.encode(reference_hash),
        };
        Some(Self(format!("${encoded}").into()))
    }

    /// Which format this ID is in. A hash containing neither `+`/`/` nor
    /// `-`/`_` is valid in both base64 alphabets and reported as URL-safe.
    pub fn format(&self) -> EventIdFormat {
        if self.0.contains(':') {
            EventIdFormat::DomainScoped
        } else if self.0.contains(['+', '/']) {
            EventIdFormat::Base64
        } else {
            EventIdFormat::UrlSafeBase64
        }
    }

    /// Whether this ID is well-formed for a room whose event IDs use `format`.
    pub fn is_valid_for(&self, format: EventIdFormat) -> bool {
        match format {
            EventIdFormat::DomainScoped => self.format() == EventIdFormat::DomainScoped,
            EventIdFormat::Base64 => self.format() != EventIdFormat::DomainScoped && !self.0.contains(['-', '_']),
            EventIdFormat::UrlSafeBase64 => self.format() == EventIdFormat::UrlSafeBase64,
        }
    }

    /// The server name of a v1–2 event ID; `None` for hash-based IDs.
    pub fn server_name(&self) -> Option<&str> {
        self.0.split_once(':').map(|(_, server)| server)
    }
}

/// Decodes a 43-character unpadded base64 SHA-256 in either alphabet.
pub(super) fn decode_hash(hash: &str) -> Result<[u8; 32], IdError> {
    let engine = if hash.contains(['-', '_']) { &URL_SAFE_NO_PAD } else { &STANDARD_NO_PAD };
    let mut out = [0u8; 32];
    if hash.len() != 43 || engine.decode_slice(hash, &mut out) != Ok(32) {
        return Err(IdError::InvalidHash);
    }
    Ok(out)
}
