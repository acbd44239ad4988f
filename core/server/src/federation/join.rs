//! Joining a room through another server (server-server API § Joining
//! Rooms): "the joining server ... will first send a `make_join` request
//! to a resident server", completes and signs the template it gets, and
//! submits it with `send_join`; the answer is "the full state of the room
//! before the join event, and the auth chain" of that state.
//!
//! What the resident server sends is hostile until checked: every event
//! must pass the checks on receipt ([`super::pdu::check`]) and the auth
//! rules against its own auth events, in depth order, or it is left out;
//! the room must have its create event and our join must be allowed by the
//! state. Only then does the room exist here, with that state adopted as
//! its current state and our join as its first timeline event, stored in
//! one write.
//!
//! Runs on the room's shard, which owns the room from then on. A room this
//! server knows but has no member in any more is joined the same way: its
//! state here is stale, the resident server's is adopted.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Map, Value};
use tessera_net::http::Method;
use tessera_proto::canonical_json::{parse_object_with, Numbers};
use tessera_proto::hashes::event_id;
use tessera_proto::room_version::{RoomVersionRules, STABLE};
use tessera_statres::{check_auth, check_auth_events, RoomRules, StateView};

use super::pdu::{check, OnHashMismatch};
use super::request::{put_v2_or_v1, request};
use super::server_of;
use crate::error::ApiError;
use crate::request::{now_ms, query_encode};
use crate::rooms::event::{Draft, RoomEvent};
use crate::rooms::room::Room;
use crate::rooms::upgrade::carry_user_data;
use crate::rooms::{append, get, insert_open, new_room, on_room_shard, send};
use crate::state::AppShard;

/// Most events (state and auth chain) a join answer may hold: a bigger
/// room needs the partial-state join, not built yet.
const MAX_JOIN_EVENTS: usize = 200_000;

/// Events checked between two yields to the shard's other work.
const YIELD_EVERY: usize = 64;

/// Joins `user_id` (ours) to `room_id`, which this shard owns and this
/// server is not in, through the first of `via` that lets us; `content`
/// is the join's content. Each server is tried in turn; the last one's
/// refusal is the answer when none works.
pub async fn join_through(
    shard: &AppShard,
    room_id: &str,
    user_id: &str,
    content: Map<String, Value>,
    via: &[String],
) -> Result<(), ApiError> {
    through_first(shard, room_id, via, "join", |server| join_via(shard, server, room_id, user_id, content.clone()))
        .await
}

/// Runs `attempt` through each server of `via` but this one (each once,
/// in order) until one succeeds; the last refusal is the answer when none
/// does. `what` names the handshake in the log and the error.
pub async fn through_first<'a, F, Fut>(
    shard: &AppShard,
    room_id: &str,
    via: &'a [String],
    what: &str,
    mut attempt: F,
) -> Result<(), ApiError>
where
    F: FnMut(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let us = shard.state.config.server_name.as_str();
    let mut last = ApiError::not_found(format!("no server to {what} the room through"));
    let mut tried = HashSet::new();
    for server in via.iter().filter(|s| *s != us) {
        if !tried.insert(server) {
            continue;
        }
        match attempt(server).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::info!(server, room = room_id, error = %e.message, "{what} through this server failed");
                last = e;
            }
        }
    }
    Err(last)
}

async fn join_via(
    shard: &AppShard,
    server: &str,
    room_id: &str,
    user_id: &str,
    content: Map<String, Value>,
) -> Result<(), ApiError> {
    let (rules, event, bytes) = make_membership(shard, server, room_id, user_id, "join", content).await?;
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let path = format!("/_matrix/federation/v2/send_join/{}/{}", query_encode(room_id), query_encode(&event.event_id));
    let answer = put_v2_or_v1(shard, server, &path, &body, &body).await?;
    let list = |name: &str| answer.get(name).and_then(Value::as_array).cloned().unwrap_or_default();
    let (state, auth_chain) = (list("state"), list("auth_chain"));
    if state.len() + auth_chain.len() > MAX_JOIN_EVENTS {
        return Err(ApiError::new(
            502,
            "M_UNKNOWN",
            "the room's state is too large to join (partial state joins are not built yet)",
        ));
    }
    let checked = check_all(shard, room_id, rules, state.iter().chain(&auth_chain)).await;
    let accepted =
        auth_in_order(RoomRules::for_version(rules.id).ok_or_else(|| ApiError::internal("no auth rules"))?, &checked);
    let state_events: Vec<_> = checked
        .values()
        .filter(|(e, _)| accepted.contains(e.event_id.as_str()) && e.state_key.is_some())
        .cloned()
        .collect();
    let state_events = current_state(state_events, &state, rules);
    create_room(shard, room_id, rules, state_events, &checked, &accepted, (event, bytes)).await
}

/// Asks `server` for the template of `user_id`'s membership (`make_join`
/// offering every stable version, or `make_leave`), completes it with
/// `content` and signs it.
pub async fn make_membership(
    shard: &AppShard,
    server: &str,
    room_id: &str,
    user_id: &str,
    membership: &str,
    content: Map<String, Value>,
) -> Result<(&'static RoomVersionRules, Arc<RoomEvent>, Vec<u8>), ApiError> {
    let mut path =
        format!("/_matrix/federation/v1/make_{membership}/{}/{}", query_encode(room_id), query_encode(user_id));
    if matches!(membership, "join" | "knock") {
        let versions: Vec<String> = STABLE.iter().map(|v| format!("ver={}", v.id)).collect();
        path = format!("{path}?{}", versions.join("&"));
    }
    let answer = request(shard, server, Method::Get, &path, None).await?;
    let version = answer.get("room_version").and_then(Value::as_str).unwrap_or("1");
    let rules = RoomVersionRules::get(version).ok_or_else(|| {
        ApiError::new(400, "M_UNSUPPORTED_ROOM_VERSION", format!("{server} offered room version {version}"))
    })?;
    let template = answer.get("event").and_then(Value::as_object).cloned().unwrap_or_default();
    let pdu = complete(template, room_id, user_id, membership, content, rules)?;
    let (event, bytes) = RoomEvent::sign(pdu, Some(room_id.to_owned()), rules, &shard.state.keys)?;
    Ok((rules, event, bytes))
}

/// The make_join/make_leave template with our content and time, after
/// checking it is the membership we asked for.
fn complete(
    mut template: Map<String, Value>,
    room_id: &str,
    user_id: &str,
    membership: &str,
    mut content: Map<String, Value>,
    rules: &RoomVersionRules,
) -> Result<Map<String, Value>, ApiError> {
    let field = |t: &Map<String, Value>, name: &str| t.get(name).and_then(Value::as_str).map(str::to_owned);
    if field(&template, "type").as_deref() != Some("m.room.member")
        || field(&template, "sender").as_deref() != Some(user_id)
        || field(&template, "state_key").as_deref() != Some(user_id)
        || field(&template, "room_id").as_deref() != Some(room_id)
    {
        return Err(ApiError::new(
            502,
            "M_UNKNOWN",
            format!("make_{membership} answered a template for another event"),
        ));
    }
    // Restricted joins: the resident server names the user it authorises
    // the join by, and must stay named.
    let via = template.get("content").and_then(|c| c.get("join_authorised_via_users_server")).cloned();
    if let (Some(via), true) = (via, rules.restricted_join_rule) {
        content.insert("join_authorised_via_users_server".into(), via);
    }
    content.insert("membership".into(), membership.into());
    template.insert("content".into(), Value::Object(content));
    template.insert("origin_server_ts".into(), now_ms().into());
    for computed in ["event_id", "hashes", "signatures", "unsigned"] {
        template.remove(computed);
    }
    Ok(template)
}

/// Each event that passes the checks on receipt, by ID.
async fn check_all<'a>(
    shard: &AppShard,
    room_id: &str,
    rules: &RoomVersionRules,
    pdus: impl Iterator<Item = &'a Value>,
) -> HashMap<String, (Arc<RoomEvent>, Vec<u8>)> {
    let mut checked = HashMap::new();
    for (n, pdu) in pdus.enumerate() {
        // Signature checks are CPU work: a big room's state must not hold
        // the shard's other requests up.
        if n % YIELD_EVERY == YIELD_EVERY - 1 {
            tessera_net::runtime::yield_now().await;
        }
        let Ok(bytes) = serde_json::to_vec(pdu) else { continue };
        match check(shard, room_id, rules, &bytes, OnHashMismatch::Redact).await {
            Ok(c) => drop(checked.insert(c.event.event_id.clone(), (c.event, c.bytes))),
            Err(e) => tracing::info!(room = room_id, error = %e.message, "join answer: an event fails its checks"),
        }
    }
    checked
}

/// An event's auth events as the auth rules read them.
struct AuthEvents<'a>(HashMap<(&'a str, &'a str), &'a RoomEvent>);

impl StateView<RoomEvent> for AuthEvents<'_> {
    fn get(&self, event_type: &str, state_key: &str) -> Option<&RoomEvent> {
        self.0.get(&(event_type, state_key)).copied()
    }
}

/// The IDs of the events the auth rules allow, each judged against its own
/// auth events (which must be allowed before it), in depth order.
fn auth_in_order<'a>(rules: &RoomRules, events: &'a HashMap<String, (Arc<RoomEvent>, Vec<u8>)>) -> HashSet<&'a str> {
    let mut order: Vec<&RoomEvent> = events.values().map(|(e, _)| &**e).collect();
    order.sort_by(|a, b| (a.depth, &a.event_id).cmp(&(b.depth, &b.event_id)));
    // From room v12 the create event is no auth event: the room ID names
    // it, and the rules read it from there.
    let create = (!rules.create_in_auth_events)
        .then(|| order.iter().find(|e| e.event_type == "m.room.create" && e.state_key.as_deref() == Some("")))
        .flatten()
        .copied();
    let mut accepted: HashSet<&str> = HashSet::new();
    for event in order {
        let auth: Option<Vec<&RoomEvent>> = event
            .auth_events
            .iter()
            .map(|id| events.get(id).filter(|_| accepted.contains(id.as_str())).map(|(e, _)| &**e))
            .collect();
        let Some(auth) = auth else { continue };
        let is_create = event.event_type == "m.room.create";
        if !is_create && check_auth_events(rules, event, &auth).is_err() {
            continue;
        }
        let implied = create.filter(|c| accepted.contains(c.event_id.as_str()));
        let view = AuthEvents(
            auth.iter()
                .chain(implied.as_ref())
                .filter_map(|e| Some(((e.event_type.as_str(), e.state_key.as_deref()?), *e)))
                .collect(),
        );
        if check_auth(rules, event, &view).is_ok() {
            accepted.insert(event.event_id.as_str());
        }
    }
    accepted
}

/// The events of the answer's `state` among `candidates` (those that
/// passed), one per state key: a key given twice keeps the deepest.
fn current_state(
    candidates: Vec<(Arc<RoomEvent>, Vec<u8>)>,
    answer_state: &[Value],
    rules: &RoomVersionRules,
) -> Vec<(Arc<RoomEvent>, Vec<u8>)> {
    let in_answer: HashSet<String> = answer_state.iter().filter_map(|pdu| id_of(pdu, rules)).collect();
    let mut by_key: HashMap<(String, String), (Arc<RoomEvent>, Vec<u8>)> = HashMap::new();
    for (event, bytes) in candidates.into_iter().filter(|(e, _)| in_answer.contains(&e.event_id)) {
        let key = (event.event_type.clone(), event.state_key.clone().unwrap_or_default());
        match by_key.get(&key) {
            Some((kept, _)) if kept.depth >= event.depth => {}
            _ => drop(by_key.insert(key, (event, bytes))),
        }
    }
    by_key.into_values().collect()
}

/// The ID of a PDU as sent: its `event_id` in rooms v1–2, its reference
/// hash from v3.
fn id_of(pdu: &Value, rules: &RoomVersionRules) -> Option<String> {
    if rules.event_id_server_signs {
        return pdu.get("event_id").and_then(Value::as_str).map(str::to_owned);
    }
    let bytes = serde_json::to_vec(pdu).ok()?;
    let object = parse_object_with(&bytes, Numbers::Lax).ok()?;
    event_id(&object, rules).ok().map(|id| id.to_string())
}

/// Creates the room here from the adopted state, with our join as its
/// first event, in one write; the auth chain is stored with it (outliers),
/// so the events other servers build on it are known.
async fn create_room(
    shard: &AppShard,
    room_id: &str,
    rules: &'static RoomVersionRules,
    state: Vec<(Arc<RoomEvent>, Vec<u8>)>,
    checked: &HashMap<String, (Arc<RoomEvent>, Vec<u8>)>,
    accepted: &HashSet<&str>,
    join: (Arc<RoomEvent>, Vec<u8>),
) -> Result<(), ApiError> {
    if !state.iter().any(|(e, _)| e.event_type == "m.room.create" && e.state_key.as_deref() == Some("")) {
        return Err(ApiError::new(502, "M_UNKNOWN", "the room's state as sent has no valid create event"));
    }
    // A room we were in before starts over from the state we were sent,
    // keeping its numbering.
    let (mut room, mut ops) = match get(shard, room_id).await? {
        Some(old) => (old.borrow().without_state().ok_or_else(|| ApiError::internal("no auth rules"))?, Vec::new()),
        None => new_room(shard, room_id, rules).await?,
    };
    let state_ids: HashSet<String> = state.iter().map(|(e, _)| e.event_id.clone()).collect();
    let outliers = checked
        .iter()
        .filter(|(id, _)| accepted.contains(id.as_str()) && !state_ids.contains(*id))
        .map(|(_, event)| event.clone())
        .collect();
    room.adopt_state(state, outliers, &shard.state.placement, &mut ops);
    room.check_remote(&join.0)?;
    let user_id = join.0.sender.clone();
    let room: Rc<RefCell<Room>> = insert_open(shard, room);
    append(shard, &room, Some(join), Vec::new(), None, ops).await?;
    let servers = room.borrow_mut().remote_servers(&shard.state.config.server_name).to_vec();
    crate::sync::presence::share_on_join(shard, vec![user_id], servers);
    Ok(())
}

/// Joins `draft.sender` (ours) to `room_id`: locally when a user of ours
/// is in the room (or no other server is named to join through), else
/// through the first of `via` that lets us in.
pub async fn join(shard: &AppShard, room_id: &str, draft: Draft, via: Vec<String>) -> Result<(), ApiError> {
    let user_id = draft.sender.clone();
    let id = room_id.to_owned();
    let predecessor = on_room_shard(shard, room_id, move |shard, room| async move {
        join_on_room_shard(&shard, id.clone(), room, draft, via).await?;
        let room = get(&shard, &id).await?;
        let create = room.and_then(|r| r.borrow().state.event("m.room.create", "").cloned());
        Ok(create.and_then(|c| c.content.pointer("/predecessor/room_id").and_then(Value::as_str).map(str::to_owned)))
    })
    .await?;
    // A room that succeeds another: the user's tags and direct chats of the
    // old one carry over, as on an upgrade.
    if let Some(old) = predecessor {
        if let Err(e) = carry_user_data(shard, &user_id, &old, room_id).await {
            tracing::warn!(user = user_id, room = room_id, error = e.message, "room data not carried to the new room");
        }
    }
    Ok(())
}

/// The join, on the room's shard.
async fn join_on_room_shard(
    shard: &AppShard,
    room_id: String,
    room: Option<Rc<RefCell<Room>>>,
    draft: Draft,
    mut via: Vec<String>,
) -> Result<(), ApiError> {
    let us = shard.state.config.server_name.clone();
    let resident = match room {
        Some(room) => {
            let room = room.borrow();
            // Invited (or knocked, or left): the server whose user made
            // that membership is one to try first.
            if let Some(member) = room.state.event("m.room.member", &draft.sender) {
                via.insert(0, server_of(&member.sender).to_owned());
            }
            room.has_member_of(&us)
        }
        None => false,
    };
    if resident || via.iter().all(|server| *server == us) {
        return send(shard, &room_id, draft, None).await.map(drop);
    }
    let Value::Object(content) = draft.content else {
        return Err(ApiError::internal("a join's content is not an object"));
    };
    join_through(shard, &room_id, &draft.sender, content, &via).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(
        id: &str,
        sender: &str,
        kind: &str,
        key: &str,
        content: Value,
        auth: &[&str],
        depth: u64,
    ) -> (String, (Arc<RoomEvent>, Vec<u8>)) {
        let pdu = json!({
            "room_id": "!r:x", "sender": sender, "type": kind, "state_key": key, "content": content,
            "origin_server_ts": 1, "depth": depth, "prev_events": auth.last().into_iter().collect::<Vec<_>>(), "auth_events": auth,
        });
        let bytes = serde_json::to_vec(&pdu).unwrap();
        let mut event = RoomEvent::from_pdu(&bytes).unwrap();
        event.event_id = id.to_owned();
        event.room_id = "!r:x".to_owned();
        (id.to_owned(), (Arc::new(event), bytes))
    }

    #[test]
    fn state_from_a_join_answer_that_its_own_auth_events_do_not_allow_is_left_out() {
        let rules = RoomRules::for_version("11").unwrap();
        let events: HashMap<_, _> = [
            event("$create", "@a:x", "m.room.create", "", json!({}), &[], 1),
            event("$join", "@a:x", "m.room.member", "@a:x", json!({ "membership": "join" }), &["$create"], 2),
            event("$name", "@a:x", "m.room.name", "", json!({ "name": "ok" }), &["$create", "$join"], 3),
            event("$forged", "@evil:y", "m.room.name", "", json!({ "name": "evil" }), &["$create"], 3),
            event("$dangling", "@a:x", "m.room.topic", "", json!({ "topic": "t" }), &["$create", "$join", "$gone"], 3),
        ]
        .into_iter()
        .collect();
        let accepted = auth_in_order(rules, &events);
        let mut accepted: Vec<&str> = accepted.into_iter().collect();
        accepted.sort();
        assert_eq!(accepted, ["$create", "$join", "$name"]);
    }
}
