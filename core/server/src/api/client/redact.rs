//! `PUT /rooms/{roomId}/redact/{eventId}/{txnId}` (spec: client-server API,
//! "Redactions"), idempotent per device and transaction ID.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::ApiResult;
use crate::rate_limit::{self, Action};
use crate::request::json_body;
use crate::rooms::redact::redact_event;
use crate::state::AppShard;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Put, "/rooms/{roomId}/redact/{eventId}/{txnId}", put);
}

#[derive(Deserialize)]
struct Body {
    reason: Option<String>,
}

async fn put(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    rate_limit::take(&shard, Action::Message, &me.user_id)?;
    let body: Body = json_body(&req)?;
    let (room_id, event_id, txn_id) = (&req.params[0], &req.params[1], &req.params[2]);
    let txn = (me.device_id.clone(), txn_id.clone());
    let id = redact_event(&shard, room_id, me.user_id.clone(), event_id.clone(), body.reason, txn).await?;
    Ok(Response::json(&json!({ "event_id": id })))
}
