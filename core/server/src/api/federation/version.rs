//! `GET /_matrix/federation/v1/version`
//!
//! Spec (server-server-api, "Server implementation"): "Get the
//! implementation name and version of this homeserver."

use bytes::Bytes;
use tessera_net::http::{Method, Response, Router};

/// Registers the endpoint.
pub fn register(router: &mut Router) {
    let body = Bytes::from(
        serde_json::json!({ "server": { "name": "Tessera", "version": env!("CARGO_PKG_VERSION") } }).to_string(),
    );
    router.ready(Method::Get, "/_matrix/federation/v1/version", move |_| Response::json_bytes(body.clone()));
}
