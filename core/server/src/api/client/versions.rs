//! `GET /_matrix/client/versions`
//!
//! Spec (client-server-api, "API Standards"): "Gets the versions of the
//! specification supported by the server." A client uses the list to decide
//! whether it can talk to us at all, so it must name only versions whose
//! every required endpoint we serve. The list grows as the Client-Server API
//! lands; advertising a version early would make clients call endpoints
//! that answer 404.

use bytes::Bytes;
use tessera_net::http::{Method, Response, Router};

/// Spec versions whose required Client-Server endpoints are all served.
pub const SUPPORTED_VERSIONS: &[&str] = &[];

/// Registers the endpoint. The body never changes while the process runs,
/// so it is serialised once.
pub fn register(router: &mut Router) {
    let body = Bytes::from(serde_json::json!({ "versions": SUPPORTED_VERSIONS, "unstable_features": {} }).to_string());
    router.ready(Method::Get, "/_matrix/client/versions", move |_| Response::json_bytes(body.clone()));
}
