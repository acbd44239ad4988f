//! `POST /user/{userId}/filter` and `GET /user/{userId}/filter/{filterId}`.
//!
//! Spec (client-server API, "Filtering"): "Uploads a new filter definition
//! to the homeserver. Returns a filter ID that may be used in future
//! requests to restrict which events are returned to the client." and
//! "Download a filter" (404 when "unknown filter").
//!
//! Filters are not stored. The ID is the filter itself: `f` followed by the
//! URL-safe unpadded base64 of the canonical JSON of the validated filter,
//! so any shard decodes it without a read ([`decode_filter`]), and it never
//! starts with `{` as an inline filter does. The price is a bounded size:
//! filters are at most [`MAX_FILTER_BYTES`] of canonical JSON (400
//! `M_TOO_LARGE` beyond). Filters are only for oneself (403 `M_FORBIDDEN`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::canonical_json;

use super::account_data::require_self;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::state::AppShard;

/// Largest filter, as canonical JSON.
pub const MAX_FILTER_BYTES: usize = 4096;

/// Prefix of filter IDs.
const PREFIX: char = 'f';

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/user/{userId}/filter", post);
    client_endpoint(router, shard, Method::Get, "/user/{userId}/filter/{filterId}", get);
}

/// The filter an ID stands for; `None` if it is not one of ours.
pub fn decode_filter(id: &str) -> Option<Value> {
    let encoded = id.strip_prefix(PREFIX)?;
    if encoded.len() > MAX_FILTER_BYTES.div_ceil(3) * 4 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok().filter(Value::is_object)
}

/// The ID of a filter (validated already): 400 if its canonical JSON is
/// too large or not expressible (floats, integers beyond 2^53).
fn encode_filter(filter: &Value) -> Result<String, ApiError> {
    let json = serde_json::to_vec(filter).expect("a Value serialises");
    let canonical = canonical_json::parse(&json)
        .map_err(|e| ApiError::bad_json(format!("filter is not expressible as canonical JSON: {e}")))?;
    let bytes = canonical_json::to_bytes(&canonical);
    if bytes.len() > MAX_FILTER_BYTES {
        return Err(ApiError::new(400, "M_TOO_LARGE", format!("filter is larger than {MAX_FILTER_BYTES} bytes")));
    }
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Checks a filter's shape against the spec's `Filter` definition: known
/// fields have their types; unknown fields are kept.
fn validate(filter: &Map<String, Value>) -> Result<(), ApiError> {
    let bad = |path: &str, what: &str| ApiError::bad_json(format!("filter: `{path}` must be {what}"));
    let strings = |obj: &Map<String, Value>, path: &str, key: &str| -> Result<(), ApiError> {
        match obj.get(key) {
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
            Some(_) => Err(bad(&format!("{path}{key}"), "an array of strings")),
            None => Ok(()),
        }
    };
    let boolean = |obj: &Map<String, Value>, path: &str, key: &str| match obj.get(key) {
        Some(v) if !v.is_boolean() => Err(bad(&format!("{path}{key}"), "a boolean")),
        _ => Ok(()),
    };
    let object = |obj: &Map<String, Value>, path: &str, key: &str| -> Result<Option<Map<String, Value>>, ApiError> {
        match obj.get(key) {
            Some(Value::Object(inner)) => Ok(Some(inner.clone())),
            Some(_) => Err(bad(&format!("{path}{key}"), "an object")),
            None => Ok(None),
        }
    };
    // `EventFilter` and `RoomEventFilter`.
    let event_filter = |obj: &Map<String, Value>, path: &str| -> Result<(), ApiError> {
        if obj.get("limit").is_some_and(|l| l.as_u64().is_none()) {
            return Err(bad(&format!("{path}limit"), "a non-negative integer"));
        }
        for key in ["types", "not_types", "senders", "not_senders", "rooms", "not_rooms"] {
            strings(obj, path, key)?;
        }
        for key in ["lazy_load_members", "include_redundant_members", "unread_thread_notifications", "contains_url"] {
            boolean(obj, path, key)?;
        }
        Ok(())
    };
    strings(filter, "", "event_fields")?;
    if filter.get("event_format").is_some_and(|f| f != "client" && f != "federation") {
        return Err(bad("event_format", "`client` or `federation`"));
    }
    for key in ["presence", "account_data"] {
        if let Some(inner) = object(filter, "", key)? {
            event_filter(&inner, &format!("{key}."))?;
        }
    }
    if let Some(room) = object(filter, "", "room")? {
        strings(&room, "room.", "rooms")?;
        strings(&room, "room.", "not_rooms")?;
        boolean(&room, "room.", "include_leave")?;
        for key in ["timeline", "state", "ephemeral", "account_data"] {
            if let Some(inner) = object(&room, "room.", key)? {
                event_filter(&inner, &format!("room.{key}."))?;
            }
        }
    }
    Ok(())
}

async fn post(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    require_self(&me.user_id, &req.params[0], "create the filters")?;
    let filter: Map<String, Value> = json_body(&req)?;
    validate(&filter)?;
    let filter_id = encode_filter(&Value::Object(filter))?;
    Ok(Response::json(&json!({ "filter_id": filter_id })))
}

async fn get(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    require_self(&me.user_id, &req.params[0], "read the filters")?;
    let filter = decode_filter(&req.params[1]).ok_or_else(|| ApiError::not_found("unknown filter"))?;
    Ok(Response::json(&filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_ids_decode_to_the_filter_and_are_canonical() {
        let filter =
            json!({ "room": { "timeline": { "limit": 5, "types": ["m.room.message"] } }, "event_format": "client" });
        let id = encode_filter(&filter).unwrap();
        assert!(id.starts_with('f') && !id.contains(['+', '/', '=', '{']));
        assert_eq!(decode_filter(&id).unwrap(), filter);
        // Key order and whitespace do not change the ID.
        let same: Value = serde_json::from_str(
            r#"{ "event_format":"client", "room":{"timeline":{"types":["m.room.message"],"limit":5}} }"#,
        )
        .unwrap();
        assert_eq!(encode_filter(&same).unwrap(), id);
    }

    #[test]
    fn undecodable_ids_are_no_filter() {
        for id in ["", "0", "{}", "f", "f!!", "fWzFd" /* [1] */, &format!("f{}", "A".repeat(6000))] {
            assert_eq!(decode_filter(id), None, "{id}");
        }
    }

    #[test]
    fn filters_over_4_kib_are_too_large() {
        let big = json!({ "room": { "rooms": ["!x".repeat(2100)] } });
        assert_eq!(encode_filter(&big).unwrap_err().errcode, "M_TOO_LARGE");
        assert_eq!(encode_filter(&json!({ "x": 1.5 })).unwrap_err().errcode, "M_BAD_JSON");
    }

    #[test]
    fn wrongly_typed_known_fields_are_bad_json() {
        let check = |v: Value| validate(v.as_object().unwrap());
        assert!(check(json!({ "room": { "timeline": { "limit": 10 } }, "x.custom": 1 })).is_ok());
        for bad in [
            json!({ "room": { "timeline": { "limit": -1 } } }),
            json!({ "room": { "timeline": { "limit": "10" } } }),
            json!({ "room": { "state": { "types": [1] } } }),
            json!({ "room": 5 }),
            json!({ "presence": { "not_senders": "@a:x" } }),
            json!({ "event_format": "other" }),
            json!({ "room": { "include_leave": "yes" } }),
        ] {
            assert_eq!(check(bad.clone()).unwrap_err().errcode, "M_BAD_JSON", "{bad}");
        }
    }
}
