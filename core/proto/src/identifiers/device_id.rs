//! Device IDs (spec: client-server API § Relationship between access tokens
//! and devices). The spec gives no grammar: they are opaque strings.

use super::{check_length, IdError};

identifier! {
    /// An opaque device ID; this crate only requires 1–255 bytes without NUL.
    DeviceId
}

impl DeviceId {
    fn validate(s: &str) -> Result<(), IdError> {
        check_length(s)?;
        if s.contains('\0') {
            return Err(IdError::NulCharacter);
        }
        Ok(())
    }
}
