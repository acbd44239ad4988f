//! Key IDs (spec: appendices § Signing Details; server-server API § Publishing
//! Keys: "The version must have characters matching the regular expression
//! `[a-zA-Z0-9_]`").

use super::{check_length, IdError};

identifier! {
    /// `algorithm:version`, for example `ed25519:a_AbCd`.
    KeyId
}

impl KeyId {
    fn validate(s: &str) -> Result<(), IdError> {
        check_length(s)?;
        let (algorithm, version) = s.split_once(':').ok_or(IdError::MissingKeyVersion)?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !algorithm_ok {
            return Err(IdError::InvalidKeyAlgorithm);
        }
        if !is_valid_version(version) {
            return Err(IdError::InvalidKeyVersion);
        }
        Ok(())
    }

    /// An `ed25519:<version>` key ID.
    pub fn ed25519(version: &str) -> Result<Self, IdError> {
        Self::parse(&format!("ed25519:{version}"))
    }

    /// The signing algorithm, e.g. `ed25519`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').expect("validated key ID has a ':'").0
    }

    /// The key version, e.g. `a_AbCd`.
    pub fn version(&self) -> &str {
        self.0.split_once(':').expect("validated key ID has a ':'").1
    }
}

/// Whether `version` is a non-empty run of `[a-zA-Z0-9_]`.
pub(crate) fn is_valid_version(version: &str) -> bool {
    !version.is_empty() && version.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
