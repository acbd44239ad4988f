//! `POST /user/{userId}/filter` and `GET /user/{userId}/filter/{filterId}`,
//! and the filter types every endpoint that takes a filter reads.
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
//!
//! [`Filter::parse`] checks a filter against the spec's `Filter`,
//! `RoomFilter`, `RoomEventFilter` and `EventFilter` definitions (400
//! `M_BAD_JSON` naming the field) and keeps it typed; unknown fields are
//! allowed, for forward compatibility.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::canonical_json;
use tessera_proto::identifiers::{RoomId, UserId};

use super::account_data::require_self;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::rooms::event::RoomEvent;
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

/// `event_format`: "The format to use for events. `client` will return the
/// events in a format suitable for clients. `federation` will return the
/// raw event as received over federation."
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventFormat {
    #[default]
    Client,
    Federation,
}

/// The spec's `Filter`: what `/sync` returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Dot-separated paths of the event fields to include; `None` for all.
    pub event_fields: Option<Vec<String>>,
    pub event_format: EventFormat,
    /// Presence updates to include.
    pub presence: EventFilter,
    /// Global account data to include.
    pub account_data: EventFilter,
    pub room: RoomFilter,
}

/// The spec's `EventFilter`. Absent lists allow everything; a `not_` list
/// wins over its positive list. Types may end with `*` to match a prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// The most events to return; `None` leaves it to the endpoint.
    pub limit: Option<u64>,
    pub types: Option<Vec<String>>,
    pub not_types: Vec<String>,
    pub senders: Option<Vec<String>>,
    pub not_senders: Vec<String>,
}

/// The spec's `RoomFilter`: which rooms and which of their parts `/sync`
/// includes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomFilter {
    pub rooms: Option<Vec<String>>,
    pub not_rooms: Vec<String>,
    /// Include rooms the user has left (initial syncs leave them out
    /// otherwise).
    pub include_leave: bool,
    pub timeline: RoomEventFilter,
    pub state: StateFilter,
    pub ephemeral: RoomEventFilter,
    pub account_data: RoomEventFilter,
}

/// The spec's `RoomEventFilter`: an [`EventFilter`] that also filters by
/// room and by `content.url`, and carries the lazy-loading switches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomEventFilter {
    pub event: EventFilter,
    pub rooms: Option<Vec<String>>,
    pub not_rooms: Vec<String>,
    /// `Some(true)`: only events whose content has a `url`; `Some(false)`:
    /// only events without one.
    pub contains_url: Option<bool>,
    pub lazy_load_members: bool,
    pub include_redundant_members: bool,
    pub unread_thread_notifications: bool,
}

/// The spec's `StateFilter` has the fields of a `RoomEventFilter`.
pub type StateFilter = RoomEventFilter;

/// Whether `value` matches a filter entry: equal, or a prefix of it when
/// the entry ends with `*`.
fn matches_wildcard(value: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

/// Whether `value` passes an allow list (absent: all) and a deny list.
fn passes(value: &str, allowed: &Option<Vec<String>>, denied: &[String], eq: fn(&str, &str) -> bool) -> bool {
    !denied.iter().any(|d| eq(value, d)) && allowed.as_ref().is_none_or(|a| a.iter().any(|x| eq(value, x)))
}

fn exact(value: &str, entry: &str) -> bool {
    value == entry
}

impl EventFilter {
    /// Whether an event of `event_type` sent by `sender` passes.
    pub fn allows(&self, event_type: &str, sender: &str) -> bool {
        passes(event_type, &self.types, &self.not_types, matches_wildcard)
            && passes(sender, &self.senders, &self.not_senders, exact)
    }

    /// Whether no event type can pass: `types: []`, or `not_types`
    /// holding `*` (how clients and load generators switch a section off).
    /// Sections that allow nothing are not computed at all.
    pub fn allows_nothing(&self) -> bool {
        self.types.as_ref().is_some_and(Vec::is_empty) || self.not_types.iter().any(|t| t == "*")
    }
}

impl RoomEventFilter {
    /// Whether a room's events may pass at all.
    pub fn allows_room(&self, room_id: &str) -> bool {
        passes(room_id, &self.rooms, &self.not_rooms, exact)
    }

    /// Whether `event` passes (type, sender, room, `contains_url`).
    pub fn allows(&self, event: &RoomEvent) -> bool {
        self.event.allows(&event.event_type, &event.sender)
            && self.allows_room(&event.room_id)
            && self.contains_url.is_none_or(|want| want == event.content.get("url").is_some_and(Value::is_string))
    }

    /// A `RoomEventFilter` given as the `filter` query parameter of
    /// `/messages` or `/context`: JSON, 400 `M_NOT_JSON` if it is not,
    /// `M_BAD_JSON` if it breaks the definition.
    pub fn from_param(param: &str) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_str(param).map_err(|e| ApiError::not_json(format!("`filter` is not JSON: {e}")))?;
        match &value {
            Value::Object(obj) => Self::parse(obj, ""),
            _ => Err(ApiError::bad_json("`filter` must be a JSON object")),
        }
    }

    fn parse(obj: &Map<String, Value>, path: &str) -> Result<Self, ApiError> {
        Ok(Self {
            event: EventFilter::parse(obj, path)?,
            rooms: room_ids(obj, path, "rooms")?,
            not_rooms: room_ids(obj, path, "not_rooms")?.unwrap_or_default(),
            contains_url: boolean(obj, path, "contains_url")?,
            lazy_load_members: boolean(obj, path, "lazy_load_members")?.unwrap_or(false),
            include_redundant_members: boolean(obj, path, "include_redundant_members")?.unwrap_or(false),
            unread_thread_notifications: boolean(obj, path, "unread_thread_notifications")?.unwrap_or(false),
        })
    }
}

impl EventFilter {
    fn parse(obj: &Map<String, Value>, path: &str) -> Result<Self, ApiError> {
        let limit = match obj.get("limit") {
            None => None,
            Some(limit) => Some(limit.as_u64().ok_or_else(|| bad(path, "limit", "a non-negative integer"))?),
        };
        Ok(Self {
            limit,
            types: strings(obj, path, "types")?,
            not_types: strings(obj, path, "not_types")?.unwrap_or_default(),
            senders: user_ids(obj, path, "senders")?,
            not_senders: user_ids(obj, path, "not_senders")?.unwrap_or_default(),
        })
    }
}

impl RoomFilter {
    /// Whether `/sync` includes the room at all.
    pub fn allows_room(&self, room_id: &str) -> bool {
        passes(room_id, &self.rooms, &self.not_rooms, exact)
    }

    fn parse(obj: &Map<String, Value>) -> Result<Self, ApiError> {
        let part = |key: &str| -> Result<RoomEventFilter, ApiError> {
            match object(obj, "room.", key)? {
                Some(inner) => RoomEventFilter::parse(inner, &format!("room.{key}.")),
                None => Ok(RoomEventFilter::default()),
            }
        };
        Ok(Self {
            rooms: room_ids(obj, "room.", "rooms")?,
            not_rooms: room_ids(obj, "room.", "not_rooms")?.unwrap_or_default(),
            include_leave: boolean(obj, "room.", "include_leave")?.unwrap_or(false),
            timeline: part("timeline")?,
            state: part("state")?,
            ephemeral: part("ephemeral")?,
            account_data: part("account_data")?,
        })
    }
}

impl Filter {
    /// Reads a filter, checking it against the spec's definition: 400
    /// `M_BAD_JSON` naming the first field that breaks it.
    pub fn parse(filter: &Map<String, Value>) -> Result<Self, ApiError> {
        let event_format = match filter.get("event_format") {
            None => EventFormat::Client,
            Some(f) if f == "client" => EventFormat::Client,
            Some(f) if f == "federation" => EventFormat::Federation,
            Some(_) => return Err(bad("", "event_format", "`client` or `federation`")),
        };
        let event_filter = |key: &str| -> Result<EventFilter, ApiError> {
            match object(filter, "", key)? {
                Some(inner) => EventFilter::parse(inner, &format!("{key}.")),
                None => Ok(EventFilter::default()),
            }
        };
        Ok(Self {
            event_fields: strings(filter, "", "event_fields")?,
            event_format,
            presence: event_filter("presence")?,
            account_data: event_filter("account_data")?,
            room: match object(filter, "", "room")? {
                Some(room) => RoomFilter::parse(room)?,
                None => RoomFilter::default(),
            },
        })
    }

    /// [`from_param`](Self::from_param), remembered per shard thread: a
    /// client sends the same filter (or filter ID) with every sync, and
    /// parsing it each time cost about 5% of a shard serving syncs (perf,
    /// 1,000 messages/s to 10-member rooms). Bounded: a shard that has seen
    /// too many different filters starts over.
    pub fn cached(param: &str) -> Result<Arc<Self>, ApiError> {
        const MAX_CACHED: usize = 1024;
        thread_local! {
            static PARSED: RefCell<HashMap<String, Arc<Filter>>> = RefCell::default();
        }
        if let Some(found) = PARSED.with(|parsed| parsed.borrow().get(param).cloned()) {
            return Ok(found);
        }
        let filter = Arc::new(Self::from_param(param)?);
        PARSED.with(|parsed| {
            let mut parsed = parsed.borrow_mut();
            if parsed.len() >= MAX_CACHED {
                parsed.clear();
            }
            parsed.insert(param.to_owned(), filter.clone());
        });
        Ok(filter)
    }

    /// The `filter` query parameter of `/sync`: a filter as JSON (it starts
    /// with `{`; 400 `M_NOT_JSON` if it is not JSON, `M_BAD_JSON` if it
    /// breaks the definition) or a filter ID (400 `M_INVALID_PARAM` for one
    /// that is not ours).
    pub fn from_param(param: &str) -> Result<Self, ApiError> {
        let value = if param.starts_with('{') {
            serde_json::from_str(param).map_err(|e| ApiError::not_json(format!("`filter` is not JSON: {e}")))?
        } else {
            decode_filter(param).ok_or_else(|| ApiError::invalid_param("`filter` is neither JSON nor a filter ID"))?
        };
        match &value {
            Value::Object(obj) => Self::parse(obj),
            _ => Err(ApiError::bad_json("`filter` must be a JSON object")),
        }
    }
}

/// Keeps only the `event_fields` paths of a serialised event (spec:
/// "dot-separated paths for each property to include"; a literal dot in a
/// name is escaped as `\.`).
pub fn only_fields(event: &Value, fields: &[String]) -> Value {
    let mut out = Map::new();
    for field in fields {
        let path = split_field(field);
        copy_path(event, &mut out, &path);
    }
    Value::Object(out)
}

fn split_field(field: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => parts.last_mut().expect("never empty").extend(chars.next()),
            '.' => parts.push(String::new()),
            c => parts.last_mut().expect("never empty").push(c),
        }
    }
    parts
}

fn copy_path(from: &Value, to: &mut Map<String, Value>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    let Some(value) = from.get(first) else { return };
    if rest.is_empty() {
        to.insert(first.clone(), value.clone());
        return;
    }
    if let Value::Object(_) = value {
        let slot = to.entry(first.clone()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(inner) = slot {
            copy_path(value, inner, rest);
        }
    }
}

fn bad(path: &str, key: &str, what: &str) -> ApiError {
    ApiError::bad_json(format!("filter: `{path}{key}` must be {what}"))
}

fn object<'a>(obj: &'a Map<String, Value>, path: &str, key: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(bad(path, key, "an object")),
    }
}

fn boolean(obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(path, key, "a boolean")),
    }
}

/// A list of strings, each passing `valid` (`what` names a valid item).
fn list(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    what: &str,
    valid: fn(&str) -> bool,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(value) = obj.get(key) else { return Ok(None) };
    let items = value.as_array().ok_or_else(|| bad(path, key, &format!("an array of {what}")))?;
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(s) if valid(s) => Ok(s.to_owned()),
            _ => Err(bad(path, key, &format!("an array of {what}"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn strings(obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    list(obj, path, key, "strings", |_| true)
}

fn user_ids(obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    list(obj, path, key, "user IDs", |s| UserId::parse(s).is_ok())
}

fn room_ids(obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    list(obj, path, key, "room IDs", |s| RoomId::parse(s).is_ok())
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

async fn post(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    require_self(&me.user_id, &req.params[0], "create the filters")?;
    let filter: Map<String, Value> = json_body(&req)?;
    Filter::parse(&filter)?;
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
    fn sections_switched_off_with_not_types_star_are_not_computed() {
        let parse = |v: Value| Filter::parse(v.as_object().unwrap()).unwrap();
        let off = parse(json!({ "presence": { "not_types": ["*"] }, "room": { "state": { "types": [] } } }));
        assert!(off.presence.allows_nothing() && off.room.state.event.allows_nothing());
        let on = parse(json!({ "presence": { "not_types": ["m.*"] }, "room": { "state": { "types": ["*"] } } }));
        assert!(!on.presence.allows_nothing() && !on.room.state.event.allows_nothing());
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
        let check = |v: Value| Filter::parse(v.as_object().unwrap());
        assert!(check(json!({ "room": { "timeline": { "limit": 10 } }, "x.custom": 1 })).is_ok());
        for bad in [
            json!({ "room": { "timeline": { "limit": -1 } } }),
            json!({ "room": { "timeline": { "limit": "10" } } }),
            json!({ "room": { "state": { "types": [1] } } }),
            json!({ "room": 5 }),
            json!({ "presence": { "not_senders": "@a:x" } }),
            json!({ "event_format": "other" }),
            json!({ "room": { "include_leave": "yes" } }),
            json!({ "presence": "not_an_object" }),
            json!({ "room": { "ephemeral": "not_an_object" } }),
            json!({ "room": { "timeline": { "not_rooms": "not_a_list" } } }),
            json!({ "room": { "timeline": { "rooms": ["not_a_room_id"] } } }),
            json!({ "room": { "timeline": { "senders": ["not_a_sender_id"] } } }),
            json!({ "room": { "rooms": ["#alias:x"] } }),
            json!({ "event_fields": "content" }),
        ] {
            assert_eq!(check(bad.clone()).unwrap_err().errcode, "M_BAD_JSON", "{bad}");
        }
    }

    #[test]
    fn parsed_filters_keep_every_field_typed() {
        let filter = Filter::parse(
            json!({
                "event_format": "federation",
                "event_fields": ["content.body"],
                "presence": { "not_senders": ["@a:x"] },
                "room": {
                    "not_rooms": ["!r:x"],
                    "include_leave": true,
                    "timeline": { "limit": 0, "types": ["m.room.*"], "contains_url": true },
                    "state": { "lazy_load_members": true, "include_redundant_members": true },
                },
            })
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(filter.event_format, EventFormat::Federation);
        assert_eq!(filter.event_fields.as_deref(), Some(&["content.body".to_owned()][..]));
        assert_eq!(filter.presence.not_senders, ["@a:x"]);
        assert!(filter.room.include_leave && !filter.room.allows_room("!r:x") && filter.room.allows_room("!s:x"));
        assert_eq!(filter.room.timeline.event.limit, Some(0));
        assert_eq!(filter.room.timeline.contains_url, Some(true));
        assert!(filter.room.state.lazy_load_members && filter.room.state.include_redundant_members);
        assert_eq!(Filter::parse(&Map::new()).unwrap(), Filter::default());
    }

    #[test]
    fn event_filters_match_types_by_prefix_and_deny_lists_win() {
        let filter = EventFilter {
            types: Some(vec!["m.room.*".into(), "x.y".into()]),
            not_types: vec!["m.room.member".into()],
            not_senders: vec!["@bad:x".into()],
            ..Default::default()
        };
        assert!(filter.allows("m.room.message", "@a:x") && filter.allows("x.y", "@a:x"));
        assert!(!filter.allows("m.room.member", "@a:x") && !filter.allows("x.yz", "@a:x"));
        assert!(!filter.allows("m.room.message", "@bad:x"));
        assert!(EventFilter::default().allows("anything", "@a:x"));
    }

    #[test]
    fn contains_url_splits_events_by_a_string_url() {
        let event = |content: Value| RoomEvent {
            event_id: "$e".into(),
            room_id: "!r:x".into(),
            sender: "@a:x".into(),
            event_type: "m.room.message".into(),
            state_key: None,
            content,
            origin_server_ts: 0,
            depth: 1,
            prev_events: vec![],
            auth_events: vec![],
            redacts: None,
            signers: vec![],
            room_id_in_pdu: true,
            txn: None,
            invite_state: None,
        };
        let with_url = RoomEventFilter { contains_url: Some(true), ..Default::default() };
        let without = RoomEventFilter { contains_url: Some(false), ..Default::default() };
        assert!(with_url.allows(&event(json!({ "url": "mxc://x/y" }))));
        assert!(!with_url.allows(&event(json!({ "url": 5 }))));
        assert!(without.allows(&event(json!({ "body": "hi" }))));
        let elsewhere = RoomEventFilter { not_rooms: vec!["!r:x".into()], ..Default::default() };
        assert!(!elsewhere.allows(&event(json!({}))));
    }

    #[test]
    fn query_filters_are_json_or_ids_with_distinct_errors() {
        let id = encode_filter(&json!({ "room": { "timeline": { "limit": 4 } } })).unwrap();
        assert_eq!(Filter::from_param(&id).unwrap().room.timeline.event.limit, Some(4));
        assert_eq!(
            Filter::from_param(r#"{"room":{"timeline":{"limit":3}}}"#).unwrap().room.timeline.event.limit,
            Some(3)
        );
        assert_eq!(Filter::from_param("{bad").unwrap_err().errcode, "M_NOT_JSON");
        assert_eq!(Filter::from_param(r#"{"room":5}"#).unwrap_err().errcode, "M_BAD_JSON");
        assert_eq!(Filter::from_param("0").unwrap_err().errcode, "M_INVALID_PARAM");
        assert_eq!(
            RoomEventFilter::from_param(r#"{"types":["m.room.message"]}"#).unwrap().event.types.unwrap().len(),
            1
        );
        assert_eq!(RoomEventFilter::from_param("[]").unwrap_err().errcode, "M_BAD_JSON");
        assert_eq!(RoomEventFilter::from_param("nope").unwrap_err().errcode, "M_NOT_JSON");
    }

    #[test]
    fn event_fields_keep_only_the_named_paths() {
        let event = json!({ "type": "m.room.message", "content": { "body": "hi", "msgtype": "m.text", "a.b": 1 } });
        let kept =
            only_fields(&event, &["type".into(), "content.body".into(), "content.a\\.b".into(), "nope.x".into()]);
        assert_eq!(kept, json!({ "type": "m.room.message", "content": { "body": "hi", "a.b": 1 } }));
    }
}
