//! Matrix identifiers (spec: appendices § Identifier Grammar).
//!
//! Each type holds a validated string in an `Arc<str>`, so cloning is a
//! reference-count increment and comparison is a string comparison. Parsing
//! rejects invalid input with an [`IdError`] saying which rule it breaks.

#[macro_use]
mod macros;
mod device_id;
mod error;
mod event_id;
mod key_id;
mod room_alias;
mod room_id;
mod server_name;
mod user_id;

pub use device_id::DeviceId;
pub use error::IdError;
pub use event_id::{EventId, EventIdFormat};
pub use key_id::KeyId;
pub use room_alias::RoomAlias;
pub use room_id::RoomId;
pub use server_name::ServerName;
pub use user_id::UserId;

/// Spec: user IDs, room IDs, room aliases and event IDs "MUST NOT exceed 255
/// bytes" including sigil and domain; this crate applies the same bound to
/// every identifier.
pub const MAX_BYTES: usize = 255;

fn check_length(s: &str) -> Result<(), IdError> {
    match s.len() {
        0 => Err(IdError::Empty),
        len if len > MAX_BYTES => Err(IdError::TooLong(len)),
        _ => Ok(()),
    }
}

/// Splits `&localpart:server_name` into its parts after checking the sigil,
/// validating the server name. The localpart is everything up to the first
/// `:`, which no localpart may contain.
fn split_sigil_localpart(s: &str, sigil: char) -> Result<(&str, &str), IdError> {
    check_length(s)?;
    let rest = s.strip_prefix(sigil).ok_or(IdError::MissingSigil(sigil))?;
    let (localpart, server_name) = rest.split_once(':').ok_or(IdError::MissingServerName)?;
    server_name::validate(server_name)?;
    Ok((localpart, server_name))
}

/// The historical localpart rule shared by user IDs, room IDs, aliases and
/// v1–2 event IDs: any code point except `:` (already split off) and NUL.
fn check_opaque_localpart(localpart: &str) -> Result<(), IdError> {
    if localpart.contains('\0') {
        return Err(IdError::NulCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
