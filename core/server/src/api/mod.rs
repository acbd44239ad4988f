//! The HTTP API, one module per endpoint, grouped by API.
//!
//! Each listener gets its own router, built on every shard: the client
//! listener serves the Client-Server API and operations endpoints, the
//! federation listener the Server-Server API.

pub mod client;
pub mod federation;
pub mod health;
pub mod key;
pub mod metrics;
pub mod well_known;

use tessera_net::http::Router;

use crate::state::AppShard;

/// Routes of the client listener.
pub fn client_router(shard: &AppShard) -> Router {
    let config = &shard.state.config;
    let mut router = Router::new();
    client::versions::register(&mut router);
    well_known::register(&mut router, config);
    health::register(&mut router);
    if config.metrics.enable {
        metrics::register(&mut router, shard);
    }
    router
}

/// Routes of the federation listener.
pub fn federation_router(shard: &AppShard) -> Router {
    let mut router = Router::new();
    federation::version::register(&mut router);
    key::server::register(&mut router, &shard.state.keys);
    well_known::register(&mut router, &shard.state.config);
    health::register(&mut router);
    router
}
