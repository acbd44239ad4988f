//! `PUT /sendToDevice/{eventType}/{txnId}` (spec: client-server API,
//! "Send-to-Device messaging"): "This endpoint is used to send send-to-device
//! events to a set of client devices." The body's `messages` maps user IDs
//! to device IDs (or `*`, "all known devices for the user") to the content
//! of each message.
//!
//! The sender's shard runs the send, so a retried transaction ID is found
//! there and sends nothing again; each recipient's shard stores the
//! recipient's messages (see `crate::sync::to_device`). Users of other
//! servers get theirs in one `m.direct_to_device` EDU per server
//! (server-server API § Send-to-device messaging).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::identifiers::UserId;

use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::federation::outbound::send_edu;
use crate::request::{json_body, random_string};
use crate::state::AppShard;
use crate::sync::to_device::deliver;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Put, "/sendToDevice/{eventType}/{txnId}", put);
}

#[derive(Deserialize)]
struct Body {
    messages: HashMap<String, HashMap<String, Value>>,
}

async fn put(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: Body = json_body(&req)?;
    let event_type = req.params[0].clone();
    let txn = (me.user_id.clone(), me.device_id.clone(), req.params[1].clone());
    let server_name = &shard.state.config.server_name;
    let mut recipients = Vec::with_capacity(body.messages.len());
    let mut remote: HashMap<String, Map<String, Value>> = HashMap::new();
    for (user_id, devices) in body.messages {
        let parsed = UserId::parse(&user_id).map_err(|e| ApiError::invalid_param(format!("{user_id}: {e}")))?;
        if parsed.server_name() == server_name {
            recipients.push((user_id, devices.into_iter().collect::<Vec<_>>()));
        } else {
            let devices = Value::Object(devices.into_iter().collect());
            remote.entry(parsed.server_name().to_owned()).or_default().insert(user_id, devices);
        }
    }
    // Server-server API: the EDU's `message_id` is "unique ID for the
    // message, used for idempotence".
    let remote: Vec<(String, Value)> = remote
        .into_iter()
        .map(|(server, messages)| {
            let content = json!({
                "sender": me.user_id, "type": req.params[0], "message_id": random_string(24), "messages": messages,
            });
            (server, json!({ "edu_type": "m.direct_to_device", "content": content }))
        })
        .collect();
    let owner = shard.state.placement.shard(&me.user_id);
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move { send(&shard, txn, event_type, recipients, remote).await }
        })
        .await??;
    Ok(Response::json(&json!({})))
}

/// On the sender's shard: sends unless the transaction was sent already.
async fn send(
    shard: &AppShard,
    txn: (String, String, String),
    event_type: String,
    recipients: Vec<(String, Vec<(String, Value)>)>,
    remote: Vec<(String, Value)>,
) -> Result<(), ApiError> {
    if shard.state.sync.to_device_txns.borrow().contains(&txn) {
        return Ok(());
    }
    let sender = txn.0.clone();
    let sends = recipients.into_iter().map(|(user_id, messages)| {
        let (sender, event_type) = (sender.clone(), event_type.clone());
        let owner = shard.state.placement.shard(&user_id);
        shard.ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move { deliver(&shard, &sender, &event_type, &user_id, messages).await }
        })
    });
    for result in futures_util::future::join_all(sends).await {
        result??;
    }
    for (server, edu) in remote {
        send_edu(shard, vec![server], Arc::new(edu));
    }
    shard.state.sync.to_device_txns.borrow_mut().insert(txn);
    Ok(())
}
