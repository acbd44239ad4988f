//! `GET /_matrix/federation/v1/make_{join,leave,knock}/{roomId}/{userId}` and
//! `PUT /_matrix/federation/v{1,2}/send_{join,leave}/{roomId}/{eventId}`,
//! `PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}`
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
//! Knocks too ("Knocking upon a room", v1 only): make_knock needs `ver`
//! and a room version with knocking, send_knock is answered with the
//! stripped state the knocker is shown (`knock_room_state`).
//! Both are refused with 404 `M_NOT_FOUND` once no user of this server is
//! in the room: this server can no longer speak for it.
//!
//! A join or leave is accepted only from the server of its user, signed by
//! that server (and, in rooms v1–2, by the server in its event ID), with a
//! matching content hash and an ID that matches the path, and only if the
//! auth rules allow it against the room's current state.

use std::sync::Arc;

use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};

use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::acl::require_allowed;
use crate::federation::auth::authenticate;
use crate::federation::graph::{auth_chain_ids, pdus};
use crate::federation::outbound::send_pdu;
use crate::federation::pdu::{check, Checked, OnHashMismatch};
use crate::federation::server_of;
use crate::request::now_ms;
use crate::rooms::event::Draft;
use crate::rooms::{append, on_room};
use crate::state::AppShard;
use crate::sync::room::invite_state;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    for kind in [Kind::Join, Kind::Leave, Kind::Knock] {
        let name = kind.membership();
        endpoint(
            router,
            shard,
            Method::Get,
            &format!("/_matrix/federation/v1/make_{name}/{{roomId}}/{{userId}}"),
            move |s, r| make(s, r, kind),
        );
        let versions: &[(&str, bool)] = match kind {
            // v1 answers of send_knock are plain objects, as v2 answers are.
            Kind::Knock => &[("v1", false)],
            _ => &[("v1", true), ("v2", false)],
        };
        for &(version, v1) in versions {
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
    Knock,
}

impl Kind {
    fn membership(self) -> &'static str {
        match self {
            Kind::Join => "join",
            Kind::Leave => "leave",
            Kind::Knock => "knock",
        }
    }
}

/// 404 unless a user of this server is still joined to `room`.
fn require_resident(room: &crate::rooms::room::Room, us: &str) -> Result<(), ApiError> {
    match room.has_member_of(us) {
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
        require_allowed(&room, &origin)?;
        let version = room.version.id;
        if kind == Kind::Knock && !room.version.knocking {
            return Err(ApiError::new(400, "M_INCOMPATIBLE_ROOM_VERSION", "the room's version has no knocking")
                .with("room_version", version));
        }
        if kind != Kind::Leave && !supported.iter().any(|v| v == version) {
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
        let Checked { event, bytes } = check(&shard, &room_id, rules, &body, OnHashMismatch::Reject).await?;
        if event.event_id != claimed_id {
            return Err(ApiError::bad_json("the event ID does not match the path"));
        }
        let membership = event.content.get("membership").and_then(Value::as_str);
        if event.event_type != "m.room.member"
            || membership != Some(kind.membership())
            || event.state_key.as_deref() != Some(event.sender.as_str())
        {
            return Err(ApiError::bad_json(format!("not a {} of its sender in this room", kind.membership())));
        }
        if server_of(&event.sender) != origin {
            return Err(ApiError::forbidden("a server may only send memberships of its own users"));
        }
        let us = shard.state.config.server_name.as_str();
        let (state_ids, others) = {
            let mut room = room.borrow_mut();
            require_resident(&room, us)?;
            require_allowed(&room, &origin)?;
            room.check_remote(&event)?;
            let others: Vec<String> = room.remote_servers(us).iter().filter(|s| **s != origin).cloned().collect();
            (room.state.events().map(|e| e.event_id.clone()).collect::<Vec<String>>(), others)
        };
        // The room's other servers hear of the membership from us, the
        // server it was sent to.
        let pdu: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?;
        if kind == Kind::Leave {
            append(&shard, &room, Some((event, bytes)), Vec::new(), None, Vec::new()).await?;
            send_pdu(&shard, others, Arc::new(pdu));
            return Ok(json!({}));
        }
        if kind == Kind::Knock {
            let stripped = invite_state(&room.borrow());
            append(&shard, &room, Some((event, bytes)), Vec::new(), None, Vec::new()).await?;
            send_pdu(&shard, others, Arc::new(pdu));
            return Ok(json!({ "knock_room_state": stripped }));
        }
        let state = pdus(&shard, &state_ids).await?;
        let nid = room.borrow().nid;
        let auth_chain = pdus(&shard, &auth_chain_ids(&shard, nid, &state_ids).await?).await?;
        append(&shard, &room, Some((event, bytes)), Vec::new(), None, Vec::new()).await?;
        send_pdu(&shard, others, Arc::new(pdu));
        let ours: Vec<String> = room.borrow().state.joined().filter(|u| server_of(u) == us).cloned().collect();
        crate::sync::presence::share_on_join(&shard, ours, vec![origin.clone()]);
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
