//! The Client-Server API (`/_matrix/client`), one module per endpoint or
//! close family of endpoints.

pub mod account;
pub mod account_data;
pub mod capabilities;
pub mod context;
pub mod create_room;
pub mod devices;
pub mod directory;
pub mod events;
pub mod filter;
pub mod initial_sync;
pub mod keys;
pub mod login;
pub mod logout;
pub mod membership;
pub mod messages;
pub mod presence;
pub mod profile;
pub mod push_rules;
pub mod receipts;
pub mod redact;
pub mod refresh;
pub mod register;
pub mod room_state;
pub mod send;
pub mod sso;
pub mod sync;
pub mod tags;
pub mod to_device;
pub mod typing;
pub mod uia;
pub mod upgrade;
pub mod versions;
pub mod whois;

use tessera_net::http::Router;

use crate::state::AppShard;

/// Registers every Client-Server endpoint but `/versions`.
pub fn register(router: &mut Router, shard: &AppShard) {
    register::register(router, shard);
    login::register(router, shard);
    sso::register(router, shard);
    logout::register(router, shard);
    refresh::register(router, shard);
    account::register(router, shard);
    create_room::register(router, shard);
    membership::register(router, shard);
    send::register(router, shard);
    room_state::register(router, shard);
    messages::register(router, shard);
    context::register(router, shard);
    sync::register(router, shard);
    initial_sync::register(router, shard);
    events::register(router, shard);
    receipts::register(router, shard);
    redact::register(router, shard);
    typing::register(router, shard);
    profile::register(router, shard);
    account_data::register(router, shard);
    tags::register(router, shard);
    capabilities::register(router, shard);
    filter::register(router, shard);
    devices::register(router, shard);
    keys::register(router, shard);
    directory::register(router, shard);
    upgrade::register(router, shard);
    whois::register(router, shard);
    to_device::register(router, shard);
    presence::register(router, shard);
    push_rules::register(router, shard);
}
