//! `GET /health`: 200 `OK` while the shard that answers is serving, for load
//! balancers and container health checks (the same contract as Synapse's).

use tessera_net::http::{Method, Response, Router};

/// Registers the endpoint.
pub fn register(router: &mut Router) {
    router.ready(Method::Get, "/health", |_| Response::with_status(200, "text/plain", "OK"));
}
