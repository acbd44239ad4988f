//! `GET /user/{userId}/rooms/{roomId}/tags`, `PUT` and `DELETE
//! /user/{userId}/rooms/{roomId}/tags/{tag}`.
//!
//! Spec (client-server API, "Room Tagging"): "Users can add tags to rooms.
//! [...] The tags on a room are received as single `m.tag` event in the
//! `account_data` section of a room", with content `{"tags": {tag: {order?}}}`.
//! So the tags are stored as the room account data `m.tag`, and a tag's
//! data is a JSON object (`order`, when present, a number). Only the user
//! may read or change their tags (403 `M_FORBIDDEN`).

use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};

use super::account_data::{check_room_id, read, require_self, update};
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::state::AppShard;

/// The account data type holding a room's tags.
const TAG_TYPE: &str = "m.tag";

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/user/{userId}/rooms/{roomId}/tags", get);
    client_endpoint(router, shard, Method::Put, "/user/{userId}/rooms/{roomId}/tags/{tag}", put);
    client_endpoint(router, shard, Method::Delete, "/user/{userId}/rooms/{roomId}/tags/{tag}", delete);
}

/// The `tags` object of an `m.tag` content (empty if absent or malformed).
fn tags_of(content: Option<Value>) -> Map<String, Value> {
    match content {
        Some(Value::Object(mut content)) => match content.remove("tags") {
            Some(Value::Object(tags)) => tags,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

async fn get(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let (user_id, room_id) = (&req.params[0], &req.params[1]);
    require_self(&me.user_id, user_id, "read the tags")?;
    check_room_id(room_id)?;
    let tags = tags_of(read(&shard, user_id, Some(room_id), TAG_TYPE).await?);
    Ok(Response::json(&json!({ "tags": tags })))
}

async fn put(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let (user_id, room_id, tag) = (req.params[0].clone(), req.params[1].clone(), req.params[2].clone());
    require_self(&me.user_id, &user_id, "set the tags")?;
    check_room_id(&room_id)?;
    if tag.is_empty() || tag.len() > 255 {
        return Err(ApiError::invalid_param("a tag is 1 to 255 bytes long"));
    }
    let data: Map<String, Value> = json_body(&req)?;
    if data.get("order").is_some_and(|order| !order.is_number()) {
        return Err(ApiError::bad_json("`order` must be a number"));
    }
    update(&shard, &user_id, Some(room_id), TAG_TYPE.into(), move |content| {
        let mut tags = tags_of(content);
        tags.insert(tag, Value::Object(data));
        Ok(Some(json!({ "tags": tags })))
    })
    .await?;
    Ok(Response::json(&json!({})))
}

async fn delete(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let (user_id, room_id, tag) = (req.params[0].clone(), req.params[1].clone(), req.params[2].clone());
    require_self(&me.user_id, &user_id, "delete the tags")?;
    check_room_id(&room_id)?;
    update(&shard, &user_id, Some(room_id), TAG_TYPE.into(), move |content| {
        let mut tags = tags_of(content);
        // Deleting a tag the room does not have changes nothing.
        Ok(tags.remove(&tag).map(|_| json!({ "tags": tags })))
    })
    .await?;
    Ok(Response::json(&json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_stored_tags_read_as_none() {
        assert!(tags_of(None).is_empty());
        assert!(tags_of(Some(json!({ "tags": [1] }))).is_empty());
        assert_eq!(tags_of(Some(json!({ "tags": { "u.work": {} } }))).len(), 1);
    }
}
