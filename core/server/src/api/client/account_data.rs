//! `GET`/`PUT /user/{userId}/account_data/{type}` and
//! `GET`/`PUT /user/{userId}/rooms/{roomId}/account_data/{type}`.
//!
//! Spec (client-server API, "Client Config"): "Clients can store custom
//! config data for their account on their homeserver. [...] Users may only
//! view the account data for their own account." Setting another user's
//! data is 403 `M_FORBIDDEN`, missing data is 404 `M_NOT_FOUND`, a body
//! that is not a JSON object is 400 `M_BAD_JSON`/`M_NOT_JSON`, a malformed
//! room ID is 400 `M_INVALID_PARAM`, and types the server manages
//! (`m.fully_read`, `m.push_rules`) are refused with 405 `M_BAD_JSON`, for
//! global and per-room data alike.
//!
//! Writes run on the user's shard, in the user's turn
//! ([`on_user_shard`]), and complete in [`update`].

use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::AccountDataRecord;
use tessera_storage::{Op, Store};

use crate::accounts::user_writes::on_user_shard;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::state::AppShard;

/// Types only the server may set (spec: "Client Config", "Server
/// behaviour").
const SERVER_MANAGED: [&str; 2] = ["m.fully_read", "m.push_rules"];

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/user/{userId}/account_data/{type}", get_global);
    client_endpoint(router, shard, Method::Put, "/user/{userId}/account_data/{type}", put_global);
    client_endpoint(router, shard, Method::Get, "/user/{userId}/rooms/{roomId}/account_data/{type}", get_room);
    client_endpoint(router, shard, Method::Put, "/user/{userId}/rooms/{roomId}/account_data/{type}", put_room);
}

/// 403 unless the requester is `user_id`.
pub(crate) fn require_self(me: &str, user_id: &str, what: &str) -> Result<(), ApiError> {
    if me != user_id {
        return Err(ApiError::forbidden(format!("cannot {what} of other users")));
    }
    Ok(())
}

/// 400 `M_INVALID_PARAM` unless `room_id` looks like a room ID (`!`, and
/// at most 255 bytes; from room version 12 on it has no server name).
pub(crate) fn check_room_id(room_id: &str) -> Result<(), ApiError> {
    if !room_id.starts_with('!') || room_id.len() < 2 || room_id.len() > 255 {
        return Err(ApiError::invalid_param(format!("{room_id} is not a valid room ID")));
    }
    Ok(())
}

/// One piece of a user's account data, read where the request is (reads
/// see every completed write).
pub(crate) async fn read(
    shard: &AppShard,
    user_id: &str,
    room_id: Option<&str>,
    data_type: &str,
) -> Result<Option<Value>, ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    let Some(record) = shard.state.store.account_data(vshard, user_id, room_id, data_type).await? else {
        return Ok(None);
    };
    let content = serde_json::from_slice(&record.content)
        .map_err(|e| ApiError::internal(format!("stored account data is not JSON: {e}")))?;
    Ok(Some(content))
}

/// Read-modify-write of one piece of account data on the user's shard:
/// `change` gets the current content and returns the new one, or `None` to
/// leave it as it is. Returns whether it wrote. This is where every
/// account-data write of these endpoints completes.
pub(crate) async fn update<F>(
    shard: &AppShard,
    user_id: &str,
    room_id: Option<String>,
    data_type: String,
    change: F,
) -> Result<bool, ApiError>
where
    F: FnOnce(Option<Value>) -> Result<Option<Value>, ApiError> + Send + 'static,
{
    let owner_user = user_id.to_owned();
    on_user_shard(shard, user_id, move |shard| async move {
        let user_id = owner_user;
        let current = read(&shard, &user_id, room_id.as_deref(), &data_type).await?;
        let Some(content) = change(current)? else { return Ok(false) };
        let vshard = shard.state.placement.vshard(&user_id);
        let data = AccountDataRecord {
            user_id,
            room_id,
            data_type,
            content: serde_json::to_vec(&content).expect("a Value serialises"),
        };
        let changed = (data.user_id.clone(), data.room_id.clone(), data.data_type.clone());
        shard.state.store.write(vec![Op::PutAccountData { vshard, data }]).await?;
        crate::sync::account_data_changed(&shard, &changed.0, changed.1.as_deref(), &changed.2);
        Ok(true)
    })
    .await
}

async fn get(shard: AppShard, req: Request, room_id: Option<&str>, data_type: &str) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = &req.params[0];
    require_self(&me.user_id, user_id, "read the account data")?;
    if let Some(room_id) = room_id {
        check_room_id(room_id)?;
    }
    let content = read(&shard, user_id, room_id, data_type)
        .await?
        .ok_or_else(|| ApiError::not_found("account data not found"))?;
    Ok(Response::json(&content))
}

async fn put(shard: AppShard, req: Request, room_id: Option<String>, data_type: String) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let user_id = req.params[0].clone();
    require_self(&me.user_id, &user_id, "set the account data")?;
    if let Some(room_id) = &room_id {
        check_room_id(room_id)?;
    }
    if SERVER_MANAGED.contains(&data_type.as_str()) {
        return Err(ApiError::new(405, "M_BAD_JSON", format!("cannot set {data_type} through this API")));
    }
    let content: Map<String, Value> = json_body(&req)?;
    update(&shard, &user_id, room_id, data_type, move |_| Ok(Some(Value::Object(content)))).await?;
    Ok(Response::json(&json!({})))
}

async fn get_global(shard: AppShard, req: Request) -> ApiResult {
    let data_type = req.params[1].clone();
    get(shard, req, None, &data_type).await
}

async fn put_global(shard: AppShard, req: Request) -> ApiResult {
    let data_type = req.params[1].clone();
    put(shard, req, None, data_type).await
}

async fn get_room(shard: AppShard, req: Request) -> ApiResult {
    let (room_id, data_type) = (req.params[1].clone(), req.params[2].clone());
    get(shard, req, Some(&room_id), &data_type).await
}

async fn put_room(shard: AppShard, req: Request) -> ApiResult {
    let (room_id, data_type) = (req.params[1].clone(), req.params[2].clone());
    put(shard, req, Some(room_id), data_type).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_need_the_sigil_and_fit_in_255_bytes() {
        assert!(check_room_id("!abc:x.org").is_ok());
        assert!(check_room_id("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM").is_ok());
        for bad in ["", "!", "#alias:x.org", "abc"] {
            assert_eq!(check_room_id(bad).unwrap_err().errcode, "M_INVALID_PARAM", "{bad}");
        }
        assert!(check_room_id(&format!("!{}", "a".repeat(255))).is_err());
    }
}
