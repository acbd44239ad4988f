//! `GET /_matrix/federation/v1/make_{join,leave}/{roomId}/{userId}` and
//! `PUT /_matrix/federation/v{1,2}/send_{join,leave}/{roomId}/{eventId}`
//!
//! Spec (server-server API, "Joining Rooms"): make_join "asks the
//! receiving server to return information that the sending server will
//! need to prepare a join event to get into the room": the room version
//! and an unsigned event template, refused with 400
//! `M_INCOMPATIBLE_ROOM_VERSION` when the room's version is not among the
//! `ver` the joining server supports (only `1` when it names none) and 403
//! when the join would not be allowed. send_join "submits a signed join
//! event to the resident server for it to accept it into the room's
//! graph"; the answer is the room's state and its auth chain. v1 wraps the
//! answer as `[200, {...}]` (MSC1802 dropped that for v2). Leaves work
//! the same way ("Leaving Rooms (Rejecting Invites)"), answered with `{}`.
//! Both are refused with 404 `M_NOT_FOUND` once no user of this server is
//! in the room: this server can no longer speak for it.
//!
//! A join or leave is accepted only from the server of its user, signed by
//! that server (and, in rooms v1–2, by the server in its event ID), with a
//! matching content hash and an ID that matches the path, and only if the
//! auth rules allow it against the room's current state.

use std::collections::HashSet;

use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::canonical_json::{parse_object_with, to_bytes, Numbers, Object, Value as CanonicalValue};
use tessera_proto::hashes::event_id;
use tessera_proto::room_version::RoomVersionRules;
use tessera_proto::signatures::{required_signers, verify_event, ContentHash, KnownKeys};
use tessera_storage::Store;

use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::auth::authenticate;
use crate::federation::keys::key_for;
use crate::federation::server_of;
use crate::request::now_ms;
use crate::rooms::event::{Draft, RoomEvent};
use crate::rooms::{append, on_room};
use crate::state::AppShard;

/// Most auth chain events one answer carries; a deeper chain is a room
/// this path is not built for yet (huge rooms join with partial state).
const MAX_AUTH_CHAIN: usize = 100_000;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    for kind in [Kind::Join, Kind::Leave] {
        let name = kind.membership();
        endpoint(
            router,
            shard,
            Method::Get,
            &format!("/_matrix/federation/v1/make_{name}/{{roomId}}/{{userId}}"),
            move |s, r| make(s, r, kind),
        );
        for (version, v1) in [("v1", true), ("v2", false)] {
            let path = format!("/_matrix/federation/{version}/send_{name}/{{roomId}}/{{eventId}}");
            endpoint(router, shard, Method::Put, &path, move |s, r| send(s, r, kind, v1));
        }
    }
}

/// Which handshake.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Join,
    Leave,
}

impl Kind {
    fn membership(self) -> &'static str {
        match self {
            Kind::Join => "join",
            Kind::Leave => "leave",
        }
    }
}

/// 404 unless a user of this server is still joined to `room`.
fn require_resident(room: &crate::rooms::room::Room, us: &str) -> Result<(), ApiError> {
    match room.state.joined().any(|user| server_of(user) == us) {
        true => Ok(()),
        false => Err(ApiError::not_found("this server has no joined users in the room")),
    }
}

async fn make(shard: AppShard, req: Request, kind: Kind) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let (room_id, user_id) = (req.params[0].clone(), req.params[1].clone());
    if server_of(&user_id) != origin {
        return Err(ApiError::forbidden("a server may only make memberships for its own users"));
    }
    let query = crate::request::Query::of(&req);
    let mut supported: Vec<String> = query.get_all("ver").map(str::to_owned).collect();
    if supported.is_empty() {
        supported.push("1".to_owned());
    }
    on_room(&shard, &room_id, move |shard, room| async move {
        let room = room.borrow();
        require_resident(&room, &shard.state.config.server_name)?;
        let version = room.version.id;
        if kind == Kind::Join && !supported.iter().any(|v| v == version) {
            return Err(ApiError::new(
                400,
                "M_INCOMPATIBLE_ROOM_VERSION",
                "the room's version is not supported by the joining server",
            )
            .with("room_version", version));
        }
        let draft = Draft {
            sender: user_id.clone(),
            event_type: "m.room.member".into(),
            state_key: Some(user_id),
            content: json!({ "membership": kind.membership() }),
            redacts: None,
        };
        let template = room.template(draft, now_ms())?;
        Ok(Response::json(&json!({ "room_version": version, "event": template })))
    })
    .await
}

async fn send(shard: AppShard, req: Request, kind: Kind, v1: bool) -> ApiResult {
    let origin = authenticate(&shard, &req).await?;
    let (room_id, claimed_id) = (req.params[0].clone(), req.params[1].clone());
    let body = req.body.clone();
    let target = room_id.clone();
    let answer = on_room(&shard, &target, move |shard, room| async move {
        let rules = room.borrow().version;
        let mut pdu = parse_object_with(&body, Numbers::for_room_version(rules))
            .map_err(|e| ApiError::bad_json(format!("event: {e}")))?;
        let id = match rules.event_id_server_signs {
            true => pdu.get("event_id").and_then(CanonicalValue::as_str).map(str::to_owned),
            false => event_id(&pdu, rules).ok().map(|id| id.to_string()),
        };
        if id.as_deref() != Some(claimed_id.as_str()) {
            return Err(ApiError::bad_json("the event ID does not match the path"));
        }
        let field = |name: &str| pdu.get(name).and_then(CanonicalValue::as_str).map(str::to_owned);
        let sender = field("sender").unwrap_or_default();
        let membership = pdu
            .get("content")
            .and_then(CanonicalValue::as_object)
            .and_then(|c| c.get("membership"))
            .and_then(CanonicalValue::as_str);
        if field("type").as_deref() != Some("m.room.member")
            || membership != Some(kind.membership())
            || field("state_key").as_deref() != Some(sender.as_str())
            || field("room_id").as_deref() != Some(room_id.as_str())
        {
            return Err(ApiError::bad_json(format!("not a {} of its sender in this room", kind.membership())));
        }
        if server_of(&sender) != origin {
            return Err(ApiError::forbidden("a server may only send memberships of its own users"));
        }
        let keys = signing_keys(&shard, &pdu, rules).await;
        match verify_event(&pdu, rules, &keys) {
            Ok(verified) if verified.content_hash == ContentHash::Matches => {}
            Ok(_) => return Err(ApiError::forbidden("the event's content hash does not match")),
            Err(e) => return Err(ApiError::forbidden(format!("the event's signatures do not verify: {e}"))),
        }
        // Stored without what only travels (`unsigned` is the sender's
        // say, not part of the signed event).
        pdu.remove("unsigned");
        let bytes = to_bytes(&CanonicalValue::Object(pdu));
        let mut event = RoomEvent::from_pdu(&bytes).ok_or_else(|| ApiError::bad_json("event lacks a field"))?;
        event.event_id = claimed_id.clone();
        event.room_id = room_id.clone();
        let state_ids: Vec<String> = {
            let room = room.borrow();
            require_resident(&room, &shard.state.config.server_name)?;
            room.check_remote(&event)?;
            room.state.events().map(|e| e.event_id.clone()).collect()
        };
        if kind == Kind::Leave {
            append(&shard, &room, Some((std::sync::Arc::new(event), bytes)), Vec::new(), None, Vec::new()).await?;
            return Ok(json!({}));
        }
        let state = pdus(&shard, &state_ids).await?;
        let auth_chain = auth_chain(&shard, &state_ids).await?;
        append(&shard, &room, Some((std::sync::Arc::new(event), bytes)), Vec::new(), None, Vec::new()).await?;
        Ok(json!({
            "origin": shard.state.config.server_name,
            "state": state,
            "auth_chain": auth_chain,
            "members_omitted": false,
        }))
    })
    .await?;
    Ok(Response::json(&if v1 { json!([200, answer]) } else { answer }))
}

/// The keys the servers that must sign `pdu` signed it with, as far as
/// they can be had; [`verify_event`] then decides. Only those servers: a
/// hostile event listing many signers must not make us fetch from each.
async fn signing_keys(shard: &AppShard, pdu: &Object, rules: &RoomVersionRules) -> KnownKeys {
    let mut known = KnownKeys::new();
    let (Ok(required), Some(signatures)) =
        (required_signers(pdu, rules), pdu.get("signatures").and_then(CanonicalValue::as_object))
    else {
        return known;
    };
    for server in required {
        let Some(by_key) = signatures.get(server).and_then(CanonicalValue::as_object) else { continue };
        for (key_id, _) in by_key.iter() {
            if let Ok(keys) = key_for(shard, server, key_id).await {
                known.merge(keys);
            }
        }
    }
    known
}

/// The stored PDUs of `ids`, as other servers are sent them.
async fn pdus(shard: &AppShard, ids: &[String]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let record = shard.state.store.event(id).await?;
        let pdu: Value = record
            .and_then(|r| serde_json::from_slice(&r.json).ok())
            .ok_or_else(|| ApiError::internal(format!("event {id} is not stored")))?;
        out.push(pdu);
    }
    Ok(out)
}

/// Every event in the auth chains of `ids` (their auth events, and theirs,
/// and so on), excluding `ids` themselves unless one authorises another.
async fn auth_chain(shard: &AppShard, ids: &[String]) -> Result<Vec<Value>, ApiError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut pending: Vec<String> = Vec::new();
    for id in ids {
        if let Some(event) = crate::rooms::stored_event(&shard.state.store, id).await? {
            pending.extend(event.auth_events.iter().cloned());
        }
    }
    let mut out = Vec::new();
    while let Some(id) = pending.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        if seen.len() > MAX_AUTH_CHAIN {
            return Err(ApiError::new(503, "M_UNKNOWN", "the room's auth chain is too large to send at once"));
        }
        let Some(record) = shard.state.store.event(&id).await? else { continue };
        if let Some(event) = RoomEvent::from_pdu(&record.json) {
            pending.extend(event.auth_events.iter().filter(|a| !seen.contains(*a)).cloned());
        }
        if let Ok(pdu) = serde_json::from_slice::<Value>(&record.json) {
            out.push(pdu);
        }
    }
    Ok(out)
}
