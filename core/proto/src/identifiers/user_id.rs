//! User IDs (spec: appendices § User Identifiers, § Historical User IDs).

use super::{check_opaque_localpart, split_sigil_localpart, IdError};

identifier! {
    /// `@localpart:server_name`.
    ///
    /// [`UserId::parse`] accepts the historical grammar, since the spec says
    /// servers "MUST accept user IDs with localparts consisting of any legal
    /// non-surrogate Unicode code points except for `:` and `NUL`", including
    /// the empty string. Use [`UserId::parse_new`] for IDs this server mints.
    UserId
}

impl UserId {
    fn validate(s: &str) -> Result<(), IdError> {
        let (localpart, _) = split_sigil_localpart(s, '@')?;
        check_opaque_localpart(localpart)
    }

    /// Parses a user ID that must follow the current grammar (spec v1.8+):
    /// a non-empty localpart of `a-z`, `0-9`, `.`, `_`, `=`, `-`, `/`, `+`.
    pub fn parse_new(s: &str) -> Result<Self, IdError> {
        let (localpart, _) = split_sigil_localpart(s, '@')?;
        if localpart.is_empty() {
            return Err(IdError::EmptyLocalpart);
        }
        if let Some(c) = localpart.chars().find(|&c| !is_user_id_char(c)) {
            return Err(IdError::InvalidLocalpartChar(c));
        }
        Ok(Self(s.into()))
    }

    /// The part between `@` and the first `:`.
    pub fn localpart(&self) -> &str {
        let end = self.0.find(':').expect("validated user ID has a ':'");
        &self.0[1..end]
    }

    /// The server name after the first `:`.
    pub fn server_name(&self) -> &str {
        let start = self.0.find(':').expect("validated user ID has a ':'");
        &self.0[start + 1..]
    }

    /// Whether the localpart is non-empty and within U+0021–U+007E. Spec:
    /// other user IDs "are considered non-compliant" and should not be
    /// forwarded to clients outside the context of an event.
    pub fn is_compliant(&self) -> bool {
        let localpart = self.localpart();
        !localpart.is_empty() && localpart.bytes().all(|b| (0x21..=0x7e).contains(&b))
    }
}

fn is_user_id_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/' | '+')
}
