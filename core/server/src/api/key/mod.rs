//! The key API (`/_matrix/key`): how other servers learn our signing keys,
//! and other servers' keys through us (notary).

pub mod query;
pub mod server;
