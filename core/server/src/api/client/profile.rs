//! `GET /profile/{userId}`, `GET`/`PUT /profile/{userId}/displayname` and
//! `GET`/`PUT /profile/{userId}/avatar_url`.
//!
//! Spec (client-server API, "Profiles"): "`GET /profile/{userId}`: Get the
//! complete profile for a user", 404 when "there is no profile information
//! for this user or this user does not exist"; `GET
//! /profile/{userId}/{keyName}`: 404 when "there is no profile field with
//! this key for this user, or the user does not exist"; `PUT` sets a field,
//! "must be authenticated with an access token authorised to make changes"
//! (403 `M_FORBIDDEN` otherwise). Values must be strings (400
//! `M_INVALID_PARAM`), at most 256 characters for a display name and 1000
//! for an avatar URL, as Synapse allows; an empty string clears the field.
//!
//! Spec ("Profiles", "Events on change of profile information"): "an
//! `m.room.member` event (with a `join` membership) is sent to every room
//! the user is a member of, to update the `displayname` and `avatar_url`."
//! Like Synapse, Tessera sends it only when the value changed, and a room
//! that refuses the event is logged and skipped.

use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::UserRecord;
use tessera_storage::{Op, Store};

use crate::accounts::user_writes::on_user_shard;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::federation;
use crate::request::{json_body, query_encode};
use crate::rooms;
use crate::state::AppShard;

/// Longest display name, in characters (Synapse's `MAX_DISPLAYNAME_LEN`).
pub const MAX_DISPLAYNAME_CHARS: usize = 256;

/// Longest avatar URL, in characters (Synapse's `MAX_AVATAR_URL_LEN`).
pub const MAX_AVATAR_URL_CHARS: usize = 1000;

/// A profile field Tessera stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Displayname,
    AvatarUrl,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Displayname => "displayname",
            Field::AvatarUrl => "avatar_url",
        }
    }

    fn max_chars(self) -> usize {
        match self {
            Field::Displayname => MAX_DISPLAYNAME_CHARS,
            Field::AvatarUrl => MAX_AVATAR_URL_CHARS,
        }
    }

    fn of(self, user: &UserRecord) -> &Option<String> {
        match self {
            Field::Displayname => &user.displayname,
            Field::AvatarUrl => &user.avatar_url,
        }
    }

    fn of_mut(self, user: &mut UserRecord) -> &mut Option<String> {
        match self {
            Field::Displayname => &mut user.displayname,
            Field::AvatarUrl => &mut user.avatar_url,
        }
    }
}

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/profile/{userId}", get_profile);
    client_endpoint(router, shard, Method::Get, "/profile/{userId}/displayname", |s, r| {
        get_field(s, r, Field::Displayname)
    });
    client_endpoint(router, shard, Method::Get, "/profile/{userId}/avatar_url", |s, r| {
        get_field(s, r, Field::AvatarUrl)
    });
    client_endpoint(router, shard, Method::Put, "/profile/{userId}/displayname", |s, r| {
        put_field(s, r, Field::Displayname)
    });
    client_endpoint(router, shard, Method::Put, "/profile/{userId}/avatar_url", |s, r| {
        put_field(s, r, Field::AvatarUrl)
    });
}

/// The account behind a profile: 404 `M_NOT_FOUND` for unknown and
/// deactivated users.
async fn profile_owner(shard: &AppShard, user_id: &str) -> Result<UserRecord, ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    match shard.state.store.user(vshard, user_id).await? {
        Some(user) if !user.deactivated => Ok(user),
        _ => Err(ApiError::not_found("profile not found")),
    }
}

/// A remote user's profile, `field` or all of it, asked of their server
/// (spec: the server-server profile query).
async fn remote_profile(shard: &AppShard, user_id: &str, field: Option<Field>) -> Result<Option<Value>, ApiError> {
    let server = federation::server_of(user_id);
    if server.is_empty() || server == shard.state.config.server_name {
        return Ok(None);
    }
    let mut path = format!("/_matrix/federation/v1/query/profile?user_id={}", query_encode(user_id));
    if let Some(field) = field {
        path.push_str("&field=");
        path.push_str(field.key());
    }
    let answer = federation::request::request(shard, server, Method::Get, &path, None).await?;
    Ok(Some(answer))
}

async fn get_profile(shard: AppShard, req: Request) -> ApiResult {
    if let Some(answer) = remote_profile(&shard, &req.params[0], None).await? {
        let profile: Map<String, Value> = [Field::Displayname, Field::AvatarUrl]
            .into_iter()
            .filter_map(|f| Some((f.key().to_owned(), answer.get(f.key()).filter(|v| v.is_string())?.clone())))
            .collect();
        return Ok(Response::json(&profile));
    }
    let user = profile_owner(&shard, &req.params[0]).await?;
    let mut profile = Map::new();
    for field in [Field::Displayname, Field::AvatarUrl] {
        if let Some(value) = field.of(&user) {
            profile.insert(field.key().into(), value.clone().into());
        }
    }
    Ok(Response::json(&profile))
}

async fn get_field(shard: AppShard, req: Request, field: Field) -> ApiResult {
    if let Some(answer) = remote_profile(&shard, &req.params[0], Some(field)).await? {
        let value = answer.get(field.key()).filter(|v| v.is_string()).cloned();
        let value = value.ok_or_else(|| ApiError::not_found(format!("no {} set", field.key())))?;
        return Ok(Response::json(&json!({ field.key(): value })));
    }
    let user = profile_owner(&shard, &req.params[0]).await?;
    let value = field.of(&user).clone().ok_or_else(|| ApiError::not_found(format!("no {} set", field.key())))?;
    Ok(Response::json(&json!({ field.key(): value })))
}

/// The new value of `field` from a `PUT` body (`None`: clear it).
fn new_value(body: &Map<String, Value>, field: Field) -> Result<Option<String>, ApiError> {
    let key = field.key();
    let value = body.get(key).ok_or_else(|| ApiError::missing_param(format!("`{key}` is required")))?;
    let value = value.as_str().ok_or_else(|| ApiError::invalid_param(format!("`{key}` must be a string")))?;
    if value.chars().count() > field.max_chars() {
        return Err(ApiError::invalid_param(format!("`{key}` is too long (max {})", field.max_chars())));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

async fn put_field(shard: AppShard, req: Request, field: Field) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = req.params[0].clone();
    if me.user_id != user_id {
        return Err(ApiError::forbidden(format!("cannot set the {} of other users", field.key())));
    }
    let body: Map<String, Value> = json_body(&req)?;
    let value = new_value(&body, field)?;
    let owner = user_id.clone();
    let changed = on_user_shard(&shard, &user_id, move |shard| async move {
        let vshard = shard.state.placement.vshard(&owner);
        let mut user = profile_owner(&shard, &owner).await?;
        if *field.of(&user) == value {
            return Ok(false);
        }
        *field.of_mut(&mut user) = value;
        shard.state.store.write(vec![Op::PutUser { vshard, user }]).await?;
        Ok(true)
    })
    .await?;
    if changed {
        propagate(&shard, &user_id).await?;
    }
    Ok(Response::json(&json!({})))
}

/// Sends a join event with the user's current profile into every room they
/// are joined to. Rooms are done concurrently; one that fails is logged.
async fn propagate(shard: &AppShard, user_id: &str) -> Result<(), ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    let rooms = shard.state.store.user_rooms(vshard, user_id, Some("join")).await?;
    let rooms: Vec<String> = rooms.into_iter().map(|r| r.room_id).collect();
    rooms::send_own_membership(shard, user_id, &rooms, "join", "profile change not sent to room").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_values_are_strings_within_synapses_lengths_and_empty_clears() {
        let body = |v: Value| json!({ "displayname": v }).as_object().unwrap().clone();
        assert_eq!(new_value(&body(json!("Alice")), Field::Displayname).unwrap().as_deref(), Some("Alice"));
        assert_eq!(new_value(&body(json!("")), Field::Displayname).unwrap(), None);
        assert!(new_value(&body(json!("é".repeat(256))), Field::Displayname).is_ok());
        assert_eq!(
            new_value(&body(json!("a".repeat(257))), Field::Displayname).unwrap_err().errcode,
            "M_INVALID_PARAM"
        );
        assert_eq!(new_value(&body(json!(5)), Field::Displayname).unwrap_err().errcode, "M_INVALID_PARAM");
        assert_eq!(new_value(&body(Value::Null), Field::Displayname).unwrap_err().errcode, "M_INVALID_PARAM");
        assert_eq!(new_value(&body(json!("x")), Field::AvatarUrl).unwrap_err().errcode, "M_MISSING_PARAM");
    }
}
