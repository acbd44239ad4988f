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
pub mod synapse_admin;
pub mod well_known;

use std::future::Future;
use std::rc::Rc;

use tessera_net::http::{Method, Request, Response, Router};

use crate::error::ApiResult;
use crate::state::AppShard;

/// Adds an endpoint whose handler gets this shard and answers with a
/// response or an [`ApiError`](crate::error::ApiError). The router holds the
/// shard weakly: the shard owns its listeners, which own their routers.
pub fn endpoint<F, Fut>(router: &mut Router, shard: &AppShard, method: Method, path: &str, handler: F)
where
    F: Fn(AppShard, Request) -> Fut + Clone + 'static,
    Fut: Future<Output = ApiResult> + 'static,
{
    let weak = Rc::downgrade(shard);
    router.route(method, path, move |req| {
        let shard = weak.upgrade();
        let handler = handler.clone();
        async move {
            match shard {
                Some(shard) => handler(shard, req).await.unwrap_or_else(Response::from),
                None => Response::error(503, "M_UNKNOWN", "the server is shutting down"),
            }
        }
    });
}

/// Adds a Client-Server endpoint under `/_matrix/client/v3` and, for
/// endpoints that existed before v1.1, also under the older `r0` prefix
/// that some clients (matrix-nio among them) still call.
pub fn client_endpoint<F, Fut>(router: &mut Router, shard: &AppShard, method: Method, path: &str, handler: F)
where
    F: Fn(AppShard, Request) -> Fut + Clone + 'static,
    Fut: Future<Output = ApiResult> + 'static,
{
    for prefix in ["/_matrix/client/v3", "/_matrix/client/r0"] {
        endpoint(router, shard, method, &format!("{prefix}{path}"), handler.clone());
    }
}

/// Routes of the client listener.
pub fn client_router(shard: &AppShard) -> Router {
    let config = &shard.state.config;
    let mut router = Router::new();
    client::versions::register(&mut router);
    client::register(&mut router, shard);
    synapse_admin::register(&mut router, shard);
    well_known::register(&mut router, config);
    health::register(&mut router);
    if config.metrics.enable {
        metrics::register(&mut router, shard);
    }
    if config.listeners.client.serve_federation {
        server_server_routes(&mut router, shard);
    }
    router
}

/// Routes of the federation listener.
pub fn federation_router(shard: &AppShard) -> Router {
    let mut router = Router::new();
    server_server_routes(&mut router, shard);
    well_known::register(&mut router, &shard.state.config);
    health::register(&mut router);
    router
}

/// The Server-Server API and the key endpoints, on whichever listener
/// serves them.
fn server_server_routes(router: &mut Router, shard: &AppShard) {
    federation::register(router, shard);
    key::server::register(router, &shard.state.keys);
    key::query::register(router, shard);
}
