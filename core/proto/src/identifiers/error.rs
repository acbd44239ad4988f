/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("identifier is empty")]
    Empty,
    #[error("identifier is {0} bytes long, more than the 255 allowed")]
    TooLong(usize),
    #[error("identifier does not start with the sigil {0:?}")]
    MissingSigil(char),
    #[error("identifier has no ':' followed by a server name")]
    MissingServerName,
    #[error("localpart is empty")]
    EmptyLocalpart,
    #[error("identifier contains a NUL character")]
    NulCharacter,
    #[error("localpart contains {0:?}, outside a-z 0-9 . _ = - / +")]
    InvalidLocalpartChar(char),
    #[error("server name has an empty host")]
    EmptyHost,
    #[error("server name host contains {0:?}, not a letter, digit, '-' or '.'")]
    InvalidHostChar(char),
    #[error("server name host is longer than 255 characters")]
    HostTooLong,
    #[error("IPv6 literal is not a valid RFC 3513 address")]
    InvalidIpv6,
    #[error("IPv6 literal has no closing ']'")]
    UnclosedIpv6,
    #[error("port must be 1 to 5 digits")]
    InvalidPort,
    #[error("hash-based identifier is not 43 characters of unpadded base64 for 32 bytes")]
    InvalidHash,
    #[error("key algorithm must be non-empty lowercase letters, digits or '_'")]
    InvalidKeyAlgorithm,
    #[error("key version must be non-empty [a-zA-Z0-9_]")]
    InvalidKeyVersion,
    #[error("key ID has no ':' between algorithm and version")]
    MissingKeyVersion,
}
