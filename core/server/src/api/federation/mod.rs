//! The Server-Server API (`/_matrix/federation`).

pub mod events;
pub mod invite;
pub mod membership;
pub mod public_rooms;
pub mod query;
pub mod send;
pub mod user_keys;
pub mod version;

use tessera_net::http::Router;

use crate::state::AppShard;

/// Registers every Server-Server endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    version::register(router);
    query::register(router, shard);
    membership::register(router, shard);
    invite::register(router, shard);
    events::register(router, shard);
    public_rooms::register(router, shard);
    send::register(router, shard);
    user_keys::register(router, shard);
}
