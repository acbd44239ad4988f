//! Synapse's admin API (`/_synapse/admin`), the parts operator tools expect
//! of any homeserver.

pub mod register;
pub mod registration_tokens;

use tessera_net::http::Router;

use crate::state::AppShard;

/// Registers the admin endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    register::register(router, shard);
    registration_tokens::register(router, shard);
}
