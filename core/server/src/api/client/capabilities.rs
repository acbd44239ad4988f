//! `GET /_matrix/client/v3/capabilities`.
//!
//! Spec (client-server API, "Capabilities negotiation"): "Gets information
//! about the server's supported feature set and other relevant
//! capabilities." Tessera answers `m.change_password` (enabled:
//! `POST /account/password` exists), `m.room_versions` (the default for new
//! rooms and every stable version), `m.set_displayname` and
//! `m.set_avatar_url` (enabled) and `m.3pid_changes` (disabled: Tessera has
//! no third-party identifiers).

use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::room_version::STABLE;

use super::create_room::DEFAULT_ROOM_VERSION;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::ApiResult;
use crate::state::AppShard;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/capabilities", get);
}

/// The capabilities object (the same for every user).
fn capabilities() -> Value {
    let available: Map<String, Value> = STABLE.iter().map(|rules| (rules.id.to_owned(), "stable".into())).collect();
    json!({
        "m.change_password": { "enabled": true },
        "m.room_versions": { "default": DEFAULT_ROOM_VERSION, "available": available },
        "m.set_displayname": { "enabled": true },
        "m.set_avatar_url": { "enabled": true },
        "m.3pid_changes": { "enabled": false },
    })
}

async fn get(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    Ok(Response::json(&json!({ "capabilities": capabilities() })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_room_version_is_one_of_the_available_stable_versions() {
        let caps = capabilities();
        let versions = &caps["m.room_versions"];
        assert_eq!(versions["available"][versions["default"].as_str().unwrap()], "stable");
        assert_eq!(versions["available"].as_object().unwrap().len(), STABLE.len());
    }
}
