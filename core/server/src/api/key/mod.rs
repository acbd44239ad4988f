//! The key API (`/_matrix/key`): how other servers learn our signing keys.

pub mod server;
