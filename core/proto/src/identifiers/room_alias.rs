//! Room aliases (spec: appendices § Room Aliases).

use super::{check_opaque_localpart, split_sigil_localpart, IdError};

identifier! {
    /// `#alias:server_name`; the alias may hold any code point but `:` and NUL.
    RoomAlias
}

impl RoomAlias {
    fn validate(s: &str) -> Result<(), IdError> {
        let (alias, _) = split_sigil_localpart(s, '#')?;
        if alias.is_empty() {
            return Err(IdError::EmptyLocalpart);
        }
        check_opaque_localpart(alias)
    }

    /// The part between `#` and the first `:`.
    pub fn alias(&self) -> &str {
        let end = self.0.find(':').expect("validated alias has a ':'");
        &self.0[1..end]
    }

    /// The server name of the homeserver that created the alias.
    pub fn server_name(&self) -> &str {
        let start = self.0.find(':').expect("validated alias has a ':'");
        &self.0[start + 1..]
    }
}
