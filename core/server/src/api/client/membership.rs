//! Membership endpoints (spec: client-server API, "Room membership"):
//! join, knock, invite, leave, kick, ban, unban. Each is an `m.room.member` event
//! sent on the room's shard; the auth rules decide whether it is allowed.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::{Op, Store};

use crate::api::client::directory::lookup;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::federation::invite::invite_remote;
use crate::federation::join::join;
use crate::federation::knock::knock;
use crate::federation::leave::leave;
use crate::federation::server_of;
use crate::rate_limit::{self, Action};
use crate::request::{json_body, Query};
use crate::rooms::event::Draft;
use crate::rooms::{member_content, on_room, send};
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/join", |s, r| change(s, r, Change::Join));
    client_endpoint(router, shard, Method::Post, "/join/{roomIdOrAlias}", |s, r| change(s, r, Change::Join));
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/leave", |s, r| change(s, r, Change::Leave));
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/invite", |s, r| change(s, r, Change::Invite));
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/kick", |s, r| change(s, r, Change::Kick));
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/ban", |s, r| change(s, r, Change::Ban));
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/unban", |s, r| change(s, r, Change::Unban));
    client_endpoint(router, shard, Method::Post, "/rooms/{roomId}/forget", forget);
    client_endpoint(router, shard, Method::Post, "/knock/{roomIdOrAlias}", |s, r| change(s, r, Change::Knock));
}

/// `POST /rooms/{roomId}/forget`: a room the user has left stops being
/// theirs to read (its history, its state when they left) and leaves their
/// `/sync`. 400 while they are still in it.
async fn forget(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = me.user_id.clone();
    on_room(&shard, &req.params[0], move |shard, room| async move {
        if let Some(m @ ("join" | "invite" | "knock")) = room.borrow().state.membership(&user_id) {
            return Err(ApiError::new(400, "M_UNKNOWN", format!("{user_id} is still in the room ({m})")));
        }
        let room_id = room.borrow().id.clone();
        let vshard_user = shard.state.placement.vshard(&user_id);
        // Written by the room's shard, in order with the room's membership
        // writes, so a rejoin stored later brings the room back.
        let forget = Op::ForgetRoom { vshard_user, user_id: user_id.clone(), room_id: room_id.clone() };
        shard.state.store.write(vec![forget]).await?;
        let owner = shard.state.placement.shard(&user_id);
        shard.tell(owner, move |shard| crate::sync::room_forgotten(shard, &user_id, &room_id));
        Ok(())
    })
    .await?;
    Ok(Response::json(&json!({})))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Join,
    /// Spec: "Knocking on rooms" (room versions 7 and up, join rule
    /// `knock` or `knock_restricted`); the auth rules decide.
    Knock,
    Leave,
    Invite,
    Kick,
    Ban,
    Unban,
}

#[derive(Deserialize)]
struct Body {
    user_id: Option<String>,
    reason: Option<String>,
    /// For a join: the rest of the body, which goes into the member event's
    /// content as Synapse puts it (clients add their own keys).
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Keys of a join's body that are request parameters, not event content.
const JOIN_PARAMETERS: &[&str] = &["third_party_signed", "membership"];

async fn change(shard: AppShard, req: Request, change: Change) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    if change == Change::Join {
        rate_limit::take(&shard, Action::Join, &me.user_id)?;
    }
    let body: Body = json_body(&req)?;
    if change == Change::Kick {
        let target = body.user_id.clone().ok_or_else(|| ApiError::missing_param("`user_id` is required"))?;
        require_in_room(&shard, &req.params[0], target).await?;
    }
    // Servers to join through: those the client names, those the alias
    // names, the room ID's own.
    let query = Query::of(&req);
    let mut via: Vec<String> = query.get_all("via").chain(query.get_all("server_name")).map(str::to_owned).collect();
    let room_id = match req.params[0].clone() {
        alias if alias.starts_with('#') && matches!(change, Change::Join | Change::Knock) => {
            let (room_id, servers) = lookup(&shard, &alias).await?;
            via.extend(servers);
            room_id
        }
        room_id if room_id.starts_with('!') => room_id,
        other => return Err(ApiError::invalid_param(format!("{other} is not a room ID"))),
    };
    if let Some((_, server)) = room_id.split_once(':') {
        via.push(server.to_owned());
    }
    let (target, membership) = match change {
        Change::Join => (me.user_id.clone(), "join"),
        Change::Knock => (me.user_id.clone(), "knock"),
        Change::Leave => (me.user_id.clone(), "leave"),
        _ => {
            let target = body.user_id.clone().ok_or_else(|| ApiError::missing_param("`user_id` is required"))?;
            let membership = match change {
                Change::Invite => "invite",
                Change::Ban => "ban",
                _ => "leave",
            };
            (target, membership)
        }
    };
    let server_name = &shard.state.config.server_name;
    let remote_invite = change == Change::Invite && server_of(&target) != server_name;
    let mut content = match member_content(&shard, &target, membership).await? {
        Value::Object(content) if target == me.user_id => content,
        _ => Map::from_iter([("membership".to_owned(), Value::from(membership))]),
    };
    if change == Change::Join {
        for (key, value) in body.extra {
            if !JOIN_PARAMETERS.contains(&key.as_str()) {
                content.entry(key).or_insert(value);
            }
        }
    }
    if let Some(reason) = body.reason {
        content.insert("reason".into(), reason.into());
    }
    let draft = Draft {
        sender: me.user_id.clone(),
        event_type: "m.room.member".into(),
        state_key: Some(target),
        content: Value::Object(content),
        redacts: None,
    };
    if me.is_guest && change == Change::Join {
        let guests_allowed = on_room(&shard, &room_id, |_, room| async move {
            let room = room.borrow();
            let access =
                room.state.event("m.room.guest_access", "").and_then(|e| e.content.get("guest_access").cloned());
            Ok(access == Some(Value::from("can_join")))
        })
        .await?;
        if !guests_allowed {
            return Err(ApiError::new(403, "M_GUEST_ACCESS_FORBIDDEN", "guests may not join this room"));
        }
    }
    match change {
        Change::Join => join(&shard, &room_id, draft, via).await?,
        Change::Knock => knock(&shard, &room_id, draft, via).await?,
        Change::Leave => leave(&shard, &room_id, draft).await?,
        Change::Invite if remote_invite => invite_remote(&shard, &room_id, draft).await?,
        _ => drop(send(&shard, &room_id, draft, None).await?),
    }
    let answer = match change {
        Change::Join | Change::Knock => json!({ "room_id": room_id }),
        _ => json!({}),
    };
    Ok(Response::json(&answer))
}

/// 403 unless `target` is in the room (joined, invited or knocking): the
/// auth rules would let a kick turn a `leave` into a `leave`, or a `ban`
/// into a `leave` that lifts it, which a kick must not do.
async fn require_in_room(shard: &AppShard, room_id: &str, target: String) -> Result<(), ApiError> {
    on_room(shard, room_id, move |_, room| async move {
        match room.borrow().state.membership(&target) {
            Some("join" | "invite" | "knock") => Ok(()),
            _ => Err(ApiError::forbidden(format!("{target} is not in the room"))),
        }
    })
    .await
}
