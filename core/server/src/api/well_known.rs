//! `GET /.well-known/matrix/client` and `GET /.well-known/matrix/server`
//!
//! Discovery documents (client-server-api "Server Discovery",
//! server-server-api "Resolving server names"). Each is served when its
//! `[well_known]` key is set; otherwise the spec's 404 `M_NOT_FOUND` tells
//! clients and servers to fall back to the server name itself.

use bytes::Bytes;
use tessera_net::http::{Method, Response, Router};

use crate::config::Config;

/// Registers both documents.
pub fn register(router: &mut Router, config: &Config) {
    let client = config
        .well_known
        .client
        .as_ref()
        .map(|url| Bytes::from(serde_json::json!({ "m.homeserver": { "base_url": url } }).to_string()));
    let server =
        config.well_known.server.as_ref().map(|s| Bytes::from(serde_json::json!({ "m.server": s }).to_string()));
    router.ready(Method::Get, "/.well-known/matrix/client", move |_| document(&client));
    router.ready(Method::Get, "/.well-known/matrix/server", move |_| document(&server));
}

fn document(body: &Option<Bytes>) -> Response {
    match body {
        Some(body) => Response::json_bytes(body.clone()),
        None => Response::error(404, "M_NOT_FOUND", "No discovery document is configured"),
    }
}
