//! Reading a room's events as another server:
//! `GET /_matrix/federation/v1/event/{eventId}`,
//! `GET /_matrix/federation/v1/state/{roomId}`,
//! `GET /_matrix/federation/v1/state_ids/{roomId}`,
//! `GET /_matrix/federation/v1/backfill/{roomId}`,
//! `GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}` and
//! `POST /_matrix/federation/v1/get_missing_events/{roomId}`.
//!
//! Spec (server-server API): `/event` "retrieves a single event";
//! `/state` "retrieves a snapshot of a room's state at a given event"
//! (the state before it, with the auth chain), `/state_ids` the same as
//! IDs; `/backfill` "retrieves a sliding-window history of previous PDUs
//! that occurred in the given room", starting from the `v` events
//! inclusive (newest first); `/get_missing_events` retrieves "previous events that the
//! sender is missing", walking back from `latest_events` and stopping at
//! `earliest_events`; `/event_auth` "retrieves the complete auth chain for
//! a given event".
//!
//! Only a server with a user in the room, or any server for a
//! world-readable room, may read it (403 otherwise), on the room's shard.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};

use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::auth::authenticate;
use crate::federation::graph::{auth_chain_ids, pdus, require_readable, walk_back};
use crate::request::{json_body, now_ms, Query};
use crate::rooms::visibility::{position, state_at};
use crate::rooms::{on_room, stored_event};
use crate::state::AppShard;

/// Most events one `/backfill` or `/get_missing_events` answer holds.
const MAX_EVENTS: usize = 100;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/event/{eventId}", event);
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/state/{roomId}", |s, r| state(s, r, false));
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/state_ids/{roomId}", |s, r| state(s, r, true));
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/backfill/{roomId}", backfill);
    endpoint(router, shard, Method::Post, "/_matrix/federation/v1/get_missing_events/{roomId}", missing);
    endpoint(router, shard, Method::Get, "/_matrix/federation/v1/event_auth/{roomId}/{eventId}", event_auth);
}

/// A transaction-shaped answer of PDUs (`/event`, `/backfill`).
fn transaction(shard: &AppShard, pdus: Vec<Value>) -> Response {
    Response::json(&json!({
        "origin": shard.state.config.server_name,
        "origin_server_ts": now_ms(),
        "pdus": pdus,
    }))
}

async fn event(shard: AppShard, req: Request) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let event_id = req.params[0].clone();
    let stored = stored_event(&shard.state.store, &event_id).await?;
    let room_id = stored.map(|e| e.room_id.clone()).ok_or_else(|| ApiError::not_found("unknown event"))?;
    let pdus = on_room(&shard, &room_id, move |shard, room| async move {
        require_readable(&room.borrow(), &origin)?;
        pdus(&shard, &[event_id]).await
    })
    .await?;
    Ok(transaction(&shard, pdus))
}

async fn state(shard: AppShard, req: Request, ids_only: bool) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let event_id = Query::of(&req)
        .get("event_id")
        .map(str::to_owned)
        .ok_or_else(|| ApiError::missing_param("`event_id` is required"))?;
    let room_id = req.params[0].clone();
    let answer = on_room(&shard, &room_id, move |shard, room| async move {
        require_readable(&room.borrow(), &origin)?;
        // An event of this room's timeline: not another room's, not an
        // outlier (whose state this server does not know).
        let stored = stored_event(&shard.state.store, &event_id).await?;
        let pos = match stored {
            Some(event) if event.room_id == room.borrow().id => position(&shard, &room, &event_id).await?,
            _ => None,
        };
        let pos = pos.ok_or_else(|| ApiError::not_found("no such event in the room's timeline"))?;
        // The state before the event: after everything before its position.
        let state: Vec<String> = state_at(&shard, &room, pos.saturating_sub(1), |_, _| true)
            .await?
            .iter()
            .map(|e| e.event_id.clone())
            .collect();
        let nid = room.borrow().nid;
        let chain = auth_chain_ids(&shard, nid, &state).await?;
        Ok(match ids_only {
            true => json!({ "pdu_ids": state, "auth_chain_ids": chain }),
            false => json!({ "pdus": pdus(&shard, &state).await?, "auth_chain": pdus(&shard, &chain).await? }),
        })
    })
    .await?;
    Ok(Response::json(&answer))
}

async fn backfill(shard: AppShard, req: Request) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let from: Vec<String> = query.get_all("v").map(str::to_owned).collect();
    if from.is_empty() {
        return Err(ApiError::missing_param("`v` is required"));
    }
    let limit = query.number::<usize>("limit")?.ok_or_else(|| ApiError::missing_param("`limit` is required"))?;
    let room_id = req.params[0].clone();
    let pdus = on_room(&shard, &room_id.clone(), move |shard, room| async move {
        require_readable(&room.borrow(), &origin)?;
        let found = walk_back(&shard, &room_id, &from, true, &HashSet::new(), limit.min(MAX_EVENTS), 0).await?;
        // Newest first, the `v` events leading, as Synapse answers.
        let ids: Vec<String> = found.into_iter().rev().map(|(_, id)| id).collect();
        pdus(&shard, &ids).await
    })
    .await?;
    Ok(transaction(&shard, pdus))
}

#[derive(Deserialize)]
struct MissingBody {
    #[serde(default)]
    earliest_events: Vec<String>,
    #[serde(default)]
    latest_events: Vec<String>,
    limit: Option<usize>,
    #[serde(default)]
    min_depth: u64,
}

async fn missing(shard: AppShard, req: Request) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let room_id = req.params[0].clone();
    let events = on_room(&shard, &room_id.clone(), move |shard, room| async move {
        // The ACL before the body: a denied server learns nothing more.
        require_readable(&room.borrow(), &origin)?;
        let body: MissingBody = json_body(&req)?;
        let stop: HashSet<String> = body.earliest_events.into_iter().collect();
        let limit = body.limit.unwrap_or(10).min(MAX_EVENTS);
        let found = walk_back(&shard, &room_id, &body.latest_events, false, &stop, limit, body.min_depth).await?;
        let ids: Vec<String> = found.into_iter().map(|(_, id)| id).collect();
        pdus(&shard, &ids).await
    })
    .await?;
    Ok(Response::json(&json!({ "events": events })))
}

async fn event_auth(shard: AppShard, req: Request) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let (room_id, event_id) = (req.params[0].clone(), req.params[1].clone());
    let chain = on_room(&shard, &room_id, move |shard, room| async move {
        require_readable(&room.borrow(), &origin)?;
        let stored = stored_event(&shard.state.store, &event_id).await?;
        if stored.is_none_or(|e| e.room_id != room.borrow().id) {
            return Err(ApiError::not_found("no such event in the room"));
        }
        let nid = room.borrow().nid;
        pdus(&shard, &auth_chain_ids(&shard, nid, &[event_id]).await?).await
    })
    .await?;
    Ok(Response::json(&json!({ "auth_chain": chain })))
}
