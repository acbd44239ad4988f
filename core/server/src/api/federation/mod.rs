//! The Server-Server API (`/_matrix/federation`).

pub mod version;
