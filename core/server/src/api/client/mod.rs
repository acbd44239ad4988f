//! The Client-Server API (`/_matrix/client`).

pub mod versions;
