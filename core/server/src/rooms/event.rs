//! A room event as the homeserver holds it in memory: the fields the auth
//! rules, `/sync` and `/messages` read, parsed once from the stored PDU.
//! Shared between shards as `Arc<RoomEvent>` (a sync on the user's shard
//! serialises events the room's shard produced).

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use tessera_proto::canonical_json::{to_bytes, Object, Value as CanonicalValue};
use tessera_proto::hashes::{event_id, room_id_from_create_event};
use tessera_proto::pdu::MAX_PDU_BYTES;
use tessera_proto::room_version::RoomVersionRules;
use tessera_proto::signatures::hash_and_sign_event;

use crate::error::ApiError;
use crate::request::random_string;
use crate::state::ServerKeys;

/// An event of a room.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEvent {
    pub event_id: String,
    pub room_id: String,
    pub sender: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub content: Value,
    pub origin_server_ts: u64,
    pub depth: u64,
    pub prev_events: Vec<String>,
    pub auth_events: Vec<String>,
    pub redacts: Option<String>,
    /// Servers with a signature on the event.
    pub signers: Vec<String>,
    /// Whether the PDU itself names the room: not so for a room v12
    /// `m.room.create`, whose ID the room ID is derived from.
    pub room_id_in_pdu: bool,
    /// For an event this server sent for a client: `(device, transaction
    /// ID)`, shown back to that device as `unsigned.transaction_id` so it
    /// can match its local echo. Memory only.
    pub txn: Option<(String, String)>,
    /// For an invite another server sent us, or a knock it accepted, for a
    /// room we are not in: the stripped state it sent along
    /// (`unsigned.invite_room_state` or `knock_room_state`), what the user
    /// is shown of the room.
    pub invite_state: Option<Arc<Vec<Value>>>,
}

/// Who an event is serialised for: `(user ID, device ID)`.
pub type Viewer<'a> = (&'a str, &'a str);

/// What a new event says; the room fills in the rest.
pub struct Draft {
    pub sender: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub content: Value,
    /// For `m.room.redaction`: the redacted event.
    pub redacts: Option<String>,
}

/// The fields of a new event that depend on the room's position.
pub struct Placement<'a> {
    /// `None` only for a room v12 `m.room.create`.
    pub room_id: Option<&'a str>,
    pub prev_events: Vec<String>,
    pub auth_events: Vec<String>,
    pub depth: u64,
    pub origin_server_ts: u64,
}

impl RoomEvent {
    /// Builds, hashes and signs a new event of this server. Returns the
    /// event and its PDU as canonical JSON. 413 `M_TOO_LARGE` beyond the
    /// spec's 64 KiB; `M_BAD_JSON` for content that has no canonical form
    /// (floats, out-of-range integers).
    pub fn create(
        draft: Draft,
        at: Placement<'_>,
        rules: &RoomVersionRules,
        keys: &ServerKeys,
    ) -> Result<(Arc<RoomEvent>, Vec<u8>), ApiError> {
        let room_id_given = at.room_id.map(str::to_owned);
        Self::sign(Self::template(draft, at, rules), room_id_given, rules, keys)
    }

    /// Hashes and signs an event of this server from its fields (a
    /// [`RoomEvent::template`], ours or one another server's `make_join`
    /// gave): adds the ID where the version puts it in the event, and
    /// reads the room ID from `room_id` or else derives it (room v12
    /// `m.room.create`).
    pub fn sign(
        mut pdu: Map<String, Value>,
        room_id_given: Option<String>,
        rules: &RoomVersionRules,
        keys: &ServerKeys,
    ) -> Result<(Arc<RoomEvent>, Vec<u8>), ApiError> {
        let server_name = keys.server_name.as_str();
        if rules.event_id_server_signs {
            pdu.insert("event_id".into(), format!("${}:{server_name}", random_string(18)).into());
        }
        let mut object = Object::try_from(Value::Object(pdu))
            .map_err(|e| ApiError::bad_json(format!("event content has no canonical JSON form: {e}")))?;
        hash_and_sign_event(&mut object, server_name, &keys.current[0], rules);
        let id = match object.get("event_id").and_then(CanonicalValue::as_str) {
            Some(id) => id.to_owned(),
            None => event_id(&object, rules).map_err(|e| ApiError::internal(format!("event ID: {e}")))?.to_string(),
        };
        let room_id = match room_id_given {
            Some(room_id) => room_id,
            None => room_id_from_create_event(&object, rules)
                .ok_or_else(|| ApiError::internal("room ID of a create event"))?
                .to_string(),
        };
        let bytes = to_bytes(&CanonicalValue::Object(object));
        if bytes.len() > MAX_PDU_BYTES {
            return Err(ApiError::new(413, "M_TOO_LARGE", "event is larger than 65536 bytes"));
        }
        let mut event = Self::from_pdu(&bytes).ok_or_else(|| ApiError::internal("built an unreadable event"))?;
        event.event_id = id;
        event.room_id = room_id;
        Ok((Arc::new(event), bytes))
    }

    /// The event's fields before hashes, signatures and (rooms v1–2) its
    /// ID: what this server signs, or what `make_join` hands another server
    /// to complete and sign.
    pub fn template(draft: Draft, at: Placement<'_>, rules: &RoomVersionRules) -> Map<String, Value> {
        let mut pdu = Map::new();
        if let Some(room_id) = at.room_id {
            pdu.insert("room_id".into(), room_id.into());
        }
        pdu.insert("sender".into(), draft.sender.into());
        pdu.insert("type".into(), draft.event_type.into());
        if let Some(key) = draft.state_key {
            pdu.insert("state_key".into(), key.into());
        }
        let mut content = draft.content;
        if let Some(redacts) = draft.redacts {
            // v11 moved `redacts` into `content`; earlier versions have it at
            // the top level.
            match (&mut content, rules.redacts_in_content) {
                (Value::Object(content), true) => drop(content.insert("redacts".into(), redacts.into())),
                _ => drop(pdu.insert("redacts".into(), redacts.into())),
            }
        }
        pdu.insert("content".into(), content);
        pdu.insert("origin_server_ts".into(), at.origin_server_ts.into());
        pdu.insert("depth".into(), at.depth.into());
        pdu.insert("prev_events".into(), prev_list(at.prev_events, rules));
        pdu.insert("auth_events".into(), prev_list(at.auth_events, rules));
        pdu
    }

    /// Reads a stored PDU (already checked when it was accepted). `None`
    /// if it lacks a field every PDU has.
    pub fn from_pdu(bytes: &[u8]) -> Option<RoomEvent> {
        let Value::Object(mut pdu) = serde_json::from_slice(bytes).ok()? else { return None };
        let string = |pdu: &Map<String, Value>, key: &str| pdu.get(key).and_then(Value::as_str).map(str::to_owned);
        let ids = |pdu: &Map<String, Value>, key: &str| -> Vec<String> {
            match pdu.get(key) {
                // v1–2: [[id, {hashes}], ...]; later: [id, ...].
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|item| match item {
                        Value::String(id) => Some(id.clone()),
                        Value::Array(pair) => pair.first().and_then(Value::as_str).map(str::to_owned),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let content = pdu.remove("content").unwrap_or(Value::Object(Map::new()));
        let redacts =
            string(&pdu, "redacts").or_else(|| content.get("redacts").and_then(Value::as_str).map(str::to_owned));
        let signers = match pdu.get("signatures") {
            Some(Value::Object(servers)) => servers.keys().cloned().collect(),
            _ => Vec::new(),
        };
        Some(RoomEvent {
            event_id: string(&pdu, "event_id").unwrap_or_default(),
            room_id: string(&pdu, "room_id").unwrap_or_default(),
            sender: string(&pdu, "sender")?,
            event_type: string(&pdu, "type")?,
            state_key: string(&pdu, "state_key"),
            origin_server_ts: pdu.get("origin_server_ts").and_then(Value::as_u64)?,
            depth: pdu.get("depth").and_then(Value::as_u64).unwrap_or(0),
            prev_events: ids(&pdu, "prev_events"),
            auth_events: ids(&pdu, "auth_events"),
            redacts,
            signers,
            room_id_in_pdu: pdu.contains_key("room_id"),
            txn: None,
            invite_state: pdu
                .get("unsigned")
                .and_then(|u| u.get("invite_room_state").or_else(|| u.get("knock_room_state")))
                .and_then(Value::as_array)
                .map(|events| Arc::new(events.clone())),
            content,
        })
    }

    /// The event as clients see it (spec: `ClientEvent`), with `room_id`
    /// or without it (`ClientEventWithoutRoomID`, in `/sync`), as `viewer`
    /// sees it.
    pub fn client<'a>(&'a self, with_room_id: bool, viewer: Option<Viewer<'a>>) -> ClientEvent<'a> {
        ClientEvent { event: self, with_room_id, viewer }
    }
}

/// `prev_events`/`auth_events` in the room version's format: v1–2 pair each
/// ID with its hashes (we send an empty object, as Synapse does).
fn prev_list(ids: Vec<String>, rules: &RoomVersionRules) -> Value {
    if rules.event_id_server_signs {
        Value::Array(ids.into_iter().map(|id| Value::Array(vec![id.into(), Value::Object(Map::new())])).collect())
    } else {
        Value::Array(ids.into_iter().map(Value::String).collect())
    }
}

/// Serialises an event in the client format without building a JSON tree.
pub struct ClientEvent<'a> {
    event: &'a RoomEvent,
    with_room_id: bool,
    viewer: Option<Viewer<'a>>,
}

impl Serialize for ClientEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.event;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("content", &e.content)?;
        map.serialize_entry("event_id", &e.event_id)?;
        map.serialize_entry("origin_server_ts", &e.origin_server_ts)?;
        if self.with_room_id {
            map.serialize_entry("room_id", &e.room_id)?;
        }
        map.serialize_entry("sender", &e.sender)?;
        if let Some(key) = &e.state_key {
            map.serialize_entry("state_key", key)?;
        }
        map.serialize_entry("type", &e.event_type)?;
        if let Some(redacts) = &e.redacts {
            map.serialize_entry("redacts", redacts)?;
        }
        let own_txn = match (&e.txn, self.viewer) {
            (Some((device, txn)), Some((user, viewer_device))) if user == e.sender && viewer_device == device => {
                Some(txn)
            }
            _ => None,
        };
        match own_txn {
            Some(txn) => map.serialize_entry("unsigned", &serde_json::json!({ "transaction_id": txn }))?,
            None => map.serialize_entry("unsigned", &serde_json::json!({}))?,
        }
        map.end()
    }
}

impl tessera_statres::Event for RoomEvent {
    fn event_id(&self) -> &str {
        &self.event_id
    }
    fn room_id(&self) -> Option<&str> {
        Some(self.room_id.as_str()).filter(|_| self.room_id_in_pdu)
    }
    fn sender(&self) -> &str {
        &self.sender
    }
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn content(&self) -> &Value {
        &self.content
    }
    fn origin_server_ts(&self) -> u64 {
        self.origin_server_ts
    }
    fn depth(&self) -> u64 {
        self.depth
    }
    fn prev_events(&self) -> impl ExactSizeIterator<Item = &str> {
        self.prev_events.iter().map(String::as_str)
    }
    fn auth_events(&self) -> impl ExactSizeIterator<Item = &str> {
        self.auth_events.iter().map(String::as_str)
    }
    fn redacts(&self) -> Option<&str> {
        self.redacts.as_deref()
    }
    fn rejected(&self) -> bool {
        false
    }
    fn is_signed_by(&self, server_name: &str) -> bool {
        self.signers.iter().any(|s| s == server_name)
    }
}
