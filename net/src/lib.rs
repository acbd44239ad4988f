//! Tessera's runtime and transport layer. It knows nothing of Matrix.
//!
//! - [`runtime`]: the thin interface over monoio on io_uring.
//! - [`shard`]: one pinned thread per core, each with its own runtime.
//! - [`mesh`]: bounded, batched cross-core messaging between shards.
//! - [`vshard`]: the fixed virtual shards that data is partitioned by.
//! - [`http`]: the HTTP/1.1 server (keep-alive, pipelining, limits, CORS).
//! - [`tls`]: rustls configuration for TLS listeners.
//! - [`metrics`]: per-shard request statistics and Prometheus rendering.
//! - [`shutdown`]: graceful shutdown on SIGTERM/SIGINT.

pub mod blocking;
pub mod http;
pub mod mesh;
pub mod metrics;
pub mod runtime;
pub mod shard;
pub mod shutdown;
pub mod tls;
pub mod vshard;
pub mod wait_list;
