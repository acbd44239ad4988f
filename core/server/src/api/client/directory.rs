//! Room aliases and the public room directory (spec: client-server API,
//! "Room aliases", "Listing rooms"): `/directory/room/{roomAlias}`,
//! `/rooms/{roomId}/aliases`, `/directory/list/room/{roomId}` and
//! `/publicRooms`.
//!
//! An alias is written only by the shard its name hashes to, so two
//! requests creating the same alias cannot both succeed.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::AliasRecord;
use tessera_storage::{Op, Store};

use crate::api::client_endpoint;
use crate::auth::{authenticate, is_server_admin};
use crate::error::{ApiError, ApiResult};
use crate::federation;
use crate::request::{json_body, query_encode, Query};
use crate::rooms::event::Draft;
use crate::rooms::read::require_joined;
use crate::rooms::room::Room;
use crate::rooms::{self, on_room, send};
use crate::state::AppShard;

/// Most rooms one `/publicRooms` page lists.
const MAX_PUBLIC_ROOMS: usize = 500;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/directory/room/{roomAlias}", get_alias);
    client_endpoint(router, shard, Method::Put, "/directory/room/{roomAlias}", put_alias);
    client_endpoint(router, shard, Method::Delete, "/directory/room/{roomAlias}", delete_alias);
    client_endpoint(router, shard, Method::Get, "/rooms/{roomId}/aliases", room_aliases);
    client_endpoint(router, shard, Method::Get, "/directory/list/room/{roomId}", get_visibility);
    client_endpoint(router, shard, Method::Put, "/directory/list/room/{roomId}", put_visibility);
    client_endpoint(router, shard, Method::Get, "/publicRooms", public_rooms);
    client_endpoint(router, shard, Method::Post, "/publicRooms", public_rooms);
}

/// Checks an alias is `#localpart:our.server`: 400 `M_INVALID_PARAM`
/// otherwise (other servers' aliases need federation).
pub fn check_local_alias(shard: &AppShard, alias: &str) -> Result<(), ApiError> {
    let server_name = &shard.state.config.server_name;
    match alias.strip_prefix('#').and_then(|a| a.split_once(':')) {
        Some((local, server)) if !local.is_empty() && server == server_name && alias.len() <= 255 => Ok(()),
        Some((_, server)) if server != server_name => {
            Err(ApiError::invalid_param("aliases of other servers need federation, which is not served yet"))
        }
        _ => Err(ApiError::invalid_param(format!("{alias} is not a room alias"))),
    }
}

/// The room an alias names: 404 `M_NOT_FOUND` if none.
pub async fn resolve(shard: &AppShard, alias: &str) -> Result<String, ApiError> {
    check_local_alias(shard, alias)?;
    let record = shard.state.store.alias(alias).await?;
    record.map(|r| r.room_id).ok_or_else(|| ApiError::not_found(format!("no room has the alias {alias}")))
}

/// Creates an alias on the alias's shard: 409 `M_UNKNOWN` if it exists.
pub async fn create_alias(shard: &AppShard, alias: &str, room_id: &str, creator: &str) -> Result<(), ApiError> {
    check_local_alias(shard, alias)?;
    let owner = shard.state.placement.shard(alias);
    let record = AliasRecord { alias: alias.to_owned(), room_id: room_id.to_owned(), creator: creator.to_owned() };
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move {
                if shard.state.store.alias(&record.alias).await?.is_some() {
                    return Err(ApiError::new(409, "M_UNKNOWN", "room alias already exists"));
                }
                shard.state.store.write(vec![Op::PutAlias(record)]).await?;
                Ok(())
            }
        })
        .await?
}

/// Spec: "Requests that a server resolve a room alias to a room ID. The
/// server will use the federation API to resolve the alias if the domain
/// part of the alias does not correspond to the server's own domain."
async fn get_alias(shard: AppShard, req: Request) -> ApiResult {
    let (room_id, servers) = lookup(&shard, &req.params[0]).await?;
    Ok(Response::json(&json!({ "room_id": room_id, "servers": servers })))
}

/// The room an alias names and servers to join it through, asking the
/// alias's server when it is not ours.
pub async fn lookup(shard: &AppShard, alias: &str) -> Result<(String, Vec<String>), ApiError> {
    if let Some(server) = remote_alias_server(shard, alias) {
        let path = format!("/_matrix/federation/v1/query/directory?room_alias={}", query_encode(alias));
        let answer = federation::request::request(shard, server, Method::Get, &path, None).await?;
        let servers: Option<Vec<String>> =
            answer["servers"].as_array().map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        let (Some(room_id), Some(servers)) = (answer["room_id"].as_str(), servers) else {
            return Err(ApiError::new(
                502,
                "M_UNKNOWN",
                format!("{server} answered an alias query without room_id and servers"),
            ));
        };
        return Ok((room_id.to_owned(), servers));
    }
    let room_id = resolve(shard, alias).await?;
    let servers = rooms::resident_servers(shard, &room_id).await?;
    Ok((room_id, servers))
}

/// The server of a well-formed alias that is not ours.
fn remote_alias_server<'a>(shard: &AppShard, alias: &'a str) -> Option<&'a str> {
    let (local, server) = alias.strip_prefix('#')?.split_once(':')?;
    (!local.is_empty() && server != shard.state.config.server_name && alias.len() <= 255).then_some(server)
}

#[derive(Deserialize)]
struct PutAlias {
    room_id: String,
}

async fn put_alias(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: PutAlias = json_body(&req)?;
    // The room must exist here.
    on_room(&shard, &body.room_id, |_, _| async { Ok(()) }).await?;
    create_alias(&shard, &req.params[0], &body.room_id, &me.user_id).await?;
    Ok(Response::json(&json!({})))
}

/// Deletes an alias: its creator, a server admin, or a member with the
/// power to change the room's `m.room.canonical_alias` may (as in Synapse).
/// The room's canonical alias event stops naming it.
async fn delete_alias(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let alias = req.params[0].clone();
    check_local_alias(&shard, &alias)?;
    let record = shard.state.store.alias(&alias).await?.ok_or_else(|| ApiError::not_found("no such alias"))?;
    let room_id = record.room_id.clone();
    let allowed =
        record.creator == me.user_id || is_server_admin(&shard, &me.user_id).await? || {
            let user_id = me.user_id.clone();
            on_room(&shard, &room_id, move |_, room| async move {
                Ok(require_alias_power(&room.borrow(), &user_id).is_ok())
            })
            .await
            .unwrap_or(false)
        };
    if !allowed {
        return Err(ApiError::forbidden("only the alias's creator, a server admin or a room moderator may delete it"));
    }
    let owner = shard.state.placement.shard(&alias);
    let deleted = alias.clone();
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move {
                if shard.state.store.alias(&deleted).await?.is_none() {
                    return Err(ApiError::not_found("no such alias"));
                }
                shard.state.store.write(vec![Op::DeleteAlias { alias: deleted }]).await?;
                Ok(())
            }
        })
        .await??;
    if let Err(e) = drop_from_canonical_alias(&shard, &room_id, &me.user_id, &alias).await {
        tracing::warn!(room = room_id, alias, error = e.message, "canonical alias still names a deleted alias");
    }
    Ok(Response::json(&json!({})))
}

/// Sends a new `m.room.canonical_alias` without `alias` if the current one
/// names it (as `alias` or among `alt_aliases`), as `user_id`.
async fn drop_from_canonical_alias(
    shard: &AppShard,
    room_id: &str,
    user_id: &str,
    alias: &str,
) -> Result<(), ApiError> {
    let current = on_room(shard, room_id, |_, room| async move {
        Ok(room.borrow().state.event("m.room.canonical_alias", "").map(|e| e.content.clone()))
    })
    .await?;
    let Some(Value::Object(mut content)) = current else { return Ok(()) };
    let mut changed = false;
    if content.get("alias").and_then(Value::as_str) == Some(alias) {
        content.remove("alias");
        changed = true;
    }
    if let Some(Value::Array(alt)) = content.get_mut("alt_aliases") {
        let before = alt.len();
        alt.retain(|a| a.as_str() != Some(alias));
        changed |= alt.len() != before;
    }
    if !changed {
        return Ok(());
    }
    let draft = Draft {
        sender: user_id.to_owned(),
        event_type: "m.room.canonical_alias".into(),
        state_key: Some(String::new()),
        content: Value::Object(content),
        redacts: None,
    };
    send(shard, room_id, draft, None).await.map(drop)
}

/// Checks the aliases an `m.room.canonical_alias` event names (spec: 400
/// `M_BAD_ALIAS` for one that does not point to the room; `M_INVALID_PARAM`
/// for one that is not an alias).
pub async fn check_canonical_alias(shard: &AppShard, room_id: &str, content: &Value) -> Result<(), ApiError> {
    let mut aliases = Vec::new();
    match content.get("alias") {
        None | Some(Value::Null) => {}
        Some(Value::String(alias)) => aliases.push(alias.as_str()),
        Some(_) => return Err(ApiError::bad_json("`alias` must be a string")),
    }
    match content.get("alt_aliases") {
        None => {}
        Some(Value::Array(alt)) => {
            for alias in alt {
                aliases.push(alias.as_str().ok_or_else(|| ApiError::bad_json("`alt_aliases` must hold strings"))?);
            }
        }
        Some(_) => return Err(ApiError::bad_json("`alt_aliases` must be a list")),
    }
    for alias in aliases {
        check_local_alias(shard, alias)?;
        if shard.state.store.alias(alias).await?.is_none_or(|r| r.room_id != room_id) {
            return Err(ApiError::new(400, "M_BAD_ALIAS", format!("{alias} does not point to this room")));
        }
    }
    Ok(())
}

async fn room_aliases(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = me.user_id.clone();
    let room_id = req.params[0].clone();
    on_room(&shard, &room_id, move |_, room| async move { require_joined(&room.borrow(), &user_id) }).await?;
    let aliases = shard.state.store.room_aliases(&room_id).await?;
    Ok(Response::json(&json!({ "aliases": aliases })))
}

async fn get_visibility(shard: AppShard, req: Request) -> ApiResult {
    let room_id = req.params[0].clone();
    on_room(&shard, &room_id, |_, _| async { Ok(()) }).await?;
    let published = shard.state.store.published_rooms().await?.contains(&room_id);
    Ok(Response::json(&json!({ "visibility": if published { "public" } else { "private" } })))
}

#[derive(Deserialize)]
struct PutVisibility {
    visibility: String,
}

/// 403 unless `user_id` may change the room's published addresses (the
/// power to send `m.room.canonical_alias`, as Synapse requires).
fn require_alias_power(room: &Room, user_id: &str) -> Result<(), ApiError> {
    require_joined(room, user_id)?;
    if room.has_power(user_id, |levels| levels.event("m.room.canonical_alias", true)) {
        Ok(())
    } else {
        Err(ApiError::forbidden("your power level does not allow publishing this room"))
    }
}

async fn put_visibility(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: PutVisibility = json_body(&req)?;
    let published = match body.visibility.as_str() {
        "public" => true,
        "private" => false,
        _ => return Err(ApiError::invalid_param("`visibility` must be public or private")),
    };
    let user_id = me.user_id.clone();
    on_room(&shard, &req.params[0], move |shard, room| async move {
        require_alias_power(&room.borrow(), &user_id)?;
        let room_id = room.borrow().id.clone();
        shard.state.store.write(vec![Op::SetRoomPublished { room_id, published }]).await?;
        Ok(())
    })
    .await?;
    Ok(Response::json(&json!({})))
}

/// A directory entry (spec: `PublishedRoomsChunk`), read on the room's
/// shard.
fn summary(room: &Room) -> Value {
    let content = |t: &str, field: &str| room.state.event(t, "").and_then(|e| e.content.get(field)).cloned();
    let joined = room
        .state
        .of_type("m.room.member")
        .filter(|(_, e)| e.content.get("membership").and_then(Value::as_str) == Some("join"))
        .count();
    let mut entry = json!({
        "room_id": room.id,
        "num_joined_members": joined,
        "world_readable": content("m.room.history_visibility", "history_visibility") == Some(json!("world_readable")),
        "guest_can_join": content("m.room.guest_access", "guest_access") == Some(json!("can_join")),
        "join_rule": content("m.room.join_rules", "join_rule").unwrap_or(json!("invite")),
    });
    for (key, event_type, field) in [
        ("name", "m.room.name", "name"),
        ("topic", "m.room.topic", "topic"),
        ("canonical_alias", "m.room.canonical_alias", "alias"),
        ("avatar_url", "m.room.avatar", "url"),
        ("room_type", "m.room.create", "type"),
    ] {
        if let Some(value) = content(event_type, field).filter(Value::is_string) {
            entry[key] = value;
        }
    }
    entry
}

/// A public room list request: `POST` body, or `GET` query.
#[derive(Deserialize, Default, Serialize)]
pub struct PublicRoomsBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<PublicRoomsFilter>,
}

#[derive(Deserialize, Default, Serialize)]
struct PublicRoomsFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    generic_search_term: Option<String>,
}

impl PublicRoomsBody {
    /// The request as sent: the body of a `POST`, the query of a `GET`.
    pub fn of(req: &Request) -> Result<Self, ApiError> {
        if req.method == Method::Post {
            return json_body(req);
        }
        let query = Query::of(req);
        Ok(PublicRoomsBody {
            limit: query.number("limit")?,
            since: query.get("since").map(str::to_owned),
            filter: None,
        })
    }
}

async fn public_rooms(shard: AppShard, req: Request) -> ApiResult {
    let request = PublicRoomsBody::of(&req)?;
    let query = Query::of(&req);
    if let Some(server) = query.get("server").filter(|s| *s != shard.state.config.server_name) {
        // Another server's directory, asked over federation.
        let body = serde_json::to_value(&request).map_err(|e| ApiError::internal(e.to_string()))?;
        let answer = federation::request::request(
            &shard,
            server,
            Method::Post,
            "/_matrix/federation/v1/publicRooms",
            Some(&body),
        )
        .await?;
        return Ok(Response::json(&answer));
    }
    Ok(Response::json(&list_public_rooms(&shard, request).await?))
}

/// This server's public room directory, one page of it.
pub async fn list_public_rooms(shard: &AppShard, request: PublicRoomsBody) -> Result<Value, ApiError> {
    let limit = request.limit.unwrap_or(MAX_PUBLIC_ROOMS).clamp(1, MAX_PUBLIC_ROOMS);
    let offset: usize = match request.since.as_deref() {
        Some(token) => token
            .strip_prefix('o')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::invalid_param("`since` is not a directory token"))?,
        None => 0,
    };
    let term = request.filter.and_then(|f| f.generic_search_term).map(|t| t.to_lowercase());
    let published = shard.state.store.published_rooms().await?;
    // Every room's shard is asked at once; the answers come back batched.
    let asks =
        published.iter().map(|room_id| on_room(shard, room_id, |_, room| async move { Ok(summary(&room.borrow())) }));
    let mut entries: Vec<Value> = join_all(asks).await.into_iter().filter_map(Result::ok).collect();
    if let Some(term) = &term {
        entries.retain(|e| {
            ["name", "topic", "canonical_alias"]
                .iter()
                .any(|k| e[k].as_str().is_some_and(|v| v.to_lowercase().contains(term.as_str())))
        });
    }
    // Largest rooms first, as Synapse lists them.
    entries.sort_by(|a, b| b["num_joined_members"].as_u64().cmp(&a["num_joined_members"].as_u64()));
    let total = entries.len();
    let chunk: Vec<Value> = entries.into_iter().skip(offset).take(limit).collect();
    let mut body = json!({ "chunk": chunk, "total_room_count_estimate": total });
    if offset + limit < total {
        body["next_batch"] = format!("o{}", offset + limit).into();
    }
    if offset > 0 {
        body["prev_batch"] = format!("o{}", offset.saturating_sub(limit)).into();
    }
    Ok(body)
}
