//! `PUT /_matrix/federation/v1/send/{txnId}`
//!
//! Spec (server-server API, "Transactions"): "Push messages representing
//! live activity to another server." A transaction holds at most 50 PDUs
//! and 100 EDUs; the answer names each PDU's outcome ("an empty object if
//! the PDU was processed successfully, or an error"), and the same
//! transaction ID from the same origin must not be processed twice.
//!
//! Each room's PDUs go to the room's shard, in the order sent, and pass
//! the checks on receipt there ([`crate::federation::pdu::check`], then
//! the auth rules against the room's current state). A PDU whose
//! `prev_events` are not all known has the gap fetched from the origin
//! (`get_missing_events`, up to 50 events) first; if that does not close
//! it, the PDU is refused. PDUs of rooms this server is
//! not in are dropped, as Synapse does. A PDU the auth rules reject is
//! answered as processed (no error, as Synapse answers) but kept out of the
//! room. EDUs go to [`crate::federation::edus`] (typing and receipts are
//! applied; the other kinds are counted against the limit, then ignored).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::canonical_json::{parse_object_with, to_bytes, Numbers, Value as CanonicalValue};
use tessera_storage::Store;

use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::acl;
use crate::federation::auth::authenticate;
use crate::federation::pdu::{check, Checked, OnHashMismatch};
use crate::federation::request::request;
use crate::request::query_encode;
use crate::rooms::event::RoomEvent;
use crate::rooms::room::Room;
use crate::rooms::{append, on_room};
use crate::state::AppShard;

/// Spec: "A transaction can contain up to 50 PDUs and 100 EDUs."
const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;

/// Rejected event IDs a room remembers.
const MAX_REJECTED: usize = 1024;

/// Most events one gap fill fetches.
const MAX_GAP: usize = 50;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Put, "/_matrix/federation/v1/send/{txnId}", send);
}

async fn send(shard: AppShard, req: Request) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let key = (origin, req.params[0].clone());
    if let Some(answer) = shard.state.federation.transactions.get(&key) {
        return Ok(Response::json_bytes(answer));
    }
    // Canonical JSON, numbers taken as they come: each PDU is written back
    // byte for byte as signed, and refused later if its room's version
    // does not allow its numbers.
    let body = parse_object_with(&req.body, Numbers::Lax).map_err(|e| ApiError::not_json(e.to_string()))?;
    let list = |name: &str| body.get(name).and_then(CanonicalValue::as_array).unwrap_or_default();
    let (pdus, edus) = (list("pdus"), list("edus"));
    if pdus.len() > MAX_PDUS || edus.len() > MAX_EDUS {
        return Err(ApiError::bad_json(format!("at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs per transaction")));
    }
    // Per room, in the order sent.
    let mut rooms: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for pdu in pdus {
        let room_id = pdu.as_object().and_then(|p| p.get("room_id")).and_then(CanonicalValue::as_str);
        let Some(room_id) = room_id else { continue };
        let bytes = to_bytes(pdu);
        match rooms.iter_mut().find(|(id, _)| id == room_id) {
            Some((_, list)) => list.push(bytes),
            None => rooms.push((room_id.to_owned(), vec![bytes])),
        }
    }
    let mut outcomes = Map::new();
    for (room_id, pdus) in rooms {
        let id = room_id.clone();
        let origin = key.0.clone();
        let received = on_room(&shard, &id, move |shard, room| async move {
            Ok(receive(&shard, &origin, &room_id, &room, pdus).await)
        });
        match received.await {
            Ok(results) => outcomes.extend(results),
            Err(e) => tracing::debug!(room = %id, error = %e.message, "transaction PDUs for an unknown room dropped"),
        }
    }
    let edus: Vec<Value> = edus.iter().filter_map(|edu| serde_json::from_slice(&to_bytes(edu)).ok()).collect();
    crate::federation::edus::receive(&shard, &key.0, edus).await;
    let answer = Bytes::from(json!({ "pdus": outcomes }).to_string());
    shard.state.federation.transactions.insert(key, answer.clone());
    Ok(Response::json_bytes(answer))
}

/// Checks and appends a room's PDUs in order, on the room's shard; each
/// PDU's outcome by event ID.
async fn receive(
    shard: &AppShard,
    origin: &str,
    room_id: &str,
    room: &Rc<RefCell<Room>>,
    pdus: Vec<Vec<u8>>,
) -> HashMap<String, Value> {
    let mut outcomes = HashMap::new();
    for pdu in pdus {
        let rules = room.borrow().version;
        let checked = match check(shard, room_id, rules, &pdu, OnHashMismatch::Redact).await {
            Ok(checked) => checked,
            Err(e) => {
                tracing::debug!(room = room_id, error = %e.message, "PDU refused");
                continue;
            }
        };
        let event_id = checked.event.event_id.clone();
        // Spec: a PDU of a server the room's ACL denies "MUST be ignored
        // with an appropriate error".
        if !acl::allows(&room.borrow(), origin) {
            outcomes.insert(event_id, json!({ "error": "the room's server ACL denies the sending server" }));
            continue;
        }
        let outcome = accept(shard, room, checked, Some(origin)).await;
        outcomes.insert(event_id, outcome.map_or_else(|e| json!({ "error": e.message }), |()| json!({})));
    }
    outcomes
}

/// Accepts one checked PDU into the room: known already, or its
/// `prev_events` known (after asking `fetch_from` for the gap, if given),
/// then the auth rules decide.
async fn accept(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    checked: Checked,
    fetch_from: Option<&str>,
) -> Result<(), ApiError> {
    let store = &shard.state.store;
    if store.event(&checked.event.event_id).await?.is_some() {
        return Ok(());
    }
    if let (Some(server), false) = (fetch_from, prevs_known(shard, room, &checked.event).await?) {
        fill_gap(shard, room, server, &checked.event).await;
    }
    if !prevs_known(shard, room, &checked.event).await? {
        return Err(ApiError::forbidden("its prev_events are unknown here and could not be fetched"));
    }
    // A redaction may only name an event of its own room.
    let target = match &checked.event.redacts {
        Some(target) => store.event(target).await?,
        None => None,
    };
    let refused = match target.is_some_and(|t| t.room_id != checked.event.room_id) {
        true => Err(ApiError::forbidden("a redaction of an event in another room")),
        false => room.borrow().check_remote(&checked.event),
    };
    if let Err(e) = refused {
        // Processed, and rejected: the answer is no error (as Synapse
        // answers), the event stays out of the room, and is remembered so
        // that events built on it are not held up.
        tracing::debug!(event = %checked.event.event_id, reason = %e.message, "PDU rejected by the auth rules");
        let mut room = room.borrow_mut();
        room.rejected.push_back(checked.event.event_id.clone());
        if room.rejected.len() > MAX_REJECTED {
            room.rejected.pop_front();
        }
        return Ok(());
    }
    append(shard, room, Some((checked.event, checked.bytes)), Vec::new(), None, Vec::new()).await?;
    Ok(())
}

/// Whether every `prev_event` of `event` is stored here (or was rejected).
async fn prevs_known(shard: &AppShard, room: &Rc<RefCell<Room>>, event: &RoomEvent) -> Result<bool, ApiError> {
    for prev in &event.prev_events {
        // Not borrowed across the read: the room may change meanwhile.
        let rejected = room.borrow().rejected.contains(prev);
        if !rejected && shard.state.store.event(prev).await?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Asks `server` for the events between the room's newest ones here and
/// `event` (server-server API § `get_missing_events`: "retrieves
/// previous events that the sender is missing") and accepts them oldest
/// first, each checked like a PDU of a transaction. At most
/// [`MAX_GAP`] events: a longer gap stays a gap.
async fn fill_gap(shard: &AppShard, room: &Rc<RefCell<Room>>, server: &str, event: &RoomEvent) {
    let (room_id, rules, earliest) = {
        let room = room.borrow();
        (room.id.clone(), room.version, room.head.forward_extremities.clone())
    };
    let body = json!({
        "earliest_events": earliest, "latest_events": [event.event_id], "limit": MAX_GAP, "min_depth": 0,
    });
    let path = format!("/_matrix/federation/v1/get_missing_events/{}", query_encode(&room_id));
    let answer = match request(shard, server, Method::Post, &path, Some(&body)).await {
        Ok(answer) => answer,
        Err(e) => return tracing::info!(room = room_id, server, error = %e, "missing events not fetched"),
    };
    let mut events = Vec::new();
    for pdu in answer.get("events").and_then(Value::as_array).into_iter().flatten().take(MAX_GAP) {
        let Ok(bytes) = serde_json::to_vec(pdu) else { continue };
        match check(shard, &room_id, rules, &bytes, OnHashMismatch::Redact).await {
            Ok(checked) => events.push(checked),
            Err(e) => tracing::debug!(room = room_id, error = %e.message, "a missing event fails its checks"),
        }
    }
    events.sort_by_key(|c| c.event.depth);
    for checked in events {
        let id = checked.event.event_id.clone();
        if let Err(e) = Box::pin(accept(shard, room, checked, None)).await {
            tracing::debug!(room = room_id, event = id, error = %e.message, "a missing event was not accepted");
        }
    }
}
