//! `GET /metrics`: Prometheus text exposition.
//!
//! Every shard keeps its own counters; the shard answering asks each shard
//! for a snapshot over the mesh and merges them, so no counter is shared
//! between cores on the request path.

use tessera_net::http::{Method, Response, Router};
use tessera_net::metrics::{render, HttpSnapshot};

use crate::state::AppShard;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    let shard = shard.clone();
    router.route(Method::Get, "/metrics", move |_| {
        let shard = shard.clone();
        async move {
            let mut merged = HttpSnapshot::default();
            for k in 0..shard.shard_count() {
                match shard.ask(k, |s| s.state.http_snapshot(s.id())).await {
                    Ok(snapshot) => merged.merge(snapshot),
                    Err(_) => return Response::error(503, "M_UNKNOWN", "A shard is shutting down"),
                }
            }
            let text = render(&merged, &shard.mesh().stats());
            Response::with_status(200, "text/plain; version=0.0.4", text)
        }
    });
}
