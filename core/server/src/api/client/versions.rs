//! `GET /_matrix/client/versions`
//!
//! Spec (client-server-api, "API Standards"): "Gets the versions of the
//! specification supported by the server." Clients use the list to decide
//! whether they can talk to us at all: Element refuses a server that names
//! no version from v1.1 on, and with an empty list no mainstream client
//! would log in. The versions named are those whose messaging core (accounts,
//! rooms, `/sync`, push rules, and the r0 paths, which are served beside v3)
//! Tessera implements. Optional modules that are not built yet (end-to-end
//! encryption keys, media, search, threads, third-party IDs) answer 404
//! `M_UNRECOGNIZED`, which clients treat as a server without the feature;
//! the list stops at v1.12, before versions that make clients depend on
//! more of them.

use bytes::Bytes;
use tessera_net::http::{Method, Response, Router};

/// Spec versions advertised (see the module comment).
pub const SUPPORTED_VERSIONS: &[&str] = &[
    "r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4",
    "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12",
];

/// Registers the endpoint. The body never changes while the process runs,
/// so it is serialised once.
pub fn register(router: &mut Router) {
    let body = Bytes::from(serde_json::json!({ "versions": SUPPORTED_VERSIONS, "unstable_features": {} }).to_string());
    router.ready(Method::Get, "/_matrix/client/versions", move |_| Response::json_bytes(body.clone()));
}
