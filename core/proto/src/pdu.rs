//! Persistent data units, the events rooms are made of, checked against
//! their room version's format (spec: server-server API § PDUs; the `pdu_v1`
//! … `pdu_v12` schemas; room versions § Event format).

use crate::canonical_json::{parse_object_with, write_object_except, Numbers, Object, ParseError, Value};
use crate::hashes::EVENT_BUFFER_BYTES;
use crate::identifiers::{EventId, IdError, RoomId, UserId};
use crate::room_version::{RoomIdFormat, RoomVersionRules};

/// Spec, § Size limits: "The complete event MUST NOT be larger than 65536
/// bytes, when formatted with the federation event format, including any
/// signatures, and encoded as Canonical JSON."
///
/// `unsigned` is left out of the measurement: no signature or hash covers
/// it, so counting it would let any server relaying a valid event pad
/// `unsigned` to get it dropped. Synapse likewise strips `unsigned` of
/// everything but `age` (and, on member events, the stripped room state of
/// invites and knocks) before measuring a received PDU.
pub const MAX_PDU_BYTES: usize = 65_536;

/// Spec, client-server API § Size limits: "`state_key` MUST NOT exceed 255
/// bytes. `type` MUST NOT exceed 255 bytes."
pub const MAX_TYPE_AND_STATE_KEY_BYTES: usize = 255;

/// `prev_events` "Must contain less than or equal to 20 events." (same
/// schemas).
pub const MAX_PREV_EVENTS: usize = 20;

/// `auth_events` "Must contain less than or equal to 10 events" (the
/// `pdu_v1` … `pdu_v12` schemas in data/api/server-server/definitions, via
/// `components/auth_events_prev_events_v4.yaml` from v4).
pub const MAX_AUTH_EVENTS: usize = 10;

/// Why some JSON is not a valid PDU for its room version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("PDU is {0} bytes as canonical JSON, more than {MAX_PDU_BYTES}")]
    TooLarge(usize),
    #[error(transparent)]
    Json(#[from] ParseError),
    #[error("required field `{0}` is missing")]
    Missing(&'static str),
    #[error("field `{field}` must be {expected}")]
    WrongType { field: &'static str, expected: &'static str },
    #[error("field `{field}` is not a valid identifier: {source}")]
    InvalidId { field: &'static str, source: IdError },
    #[error("field `{field}` has an ID in the wrong format for room version {version}")]
    WrongIdFormat { field: &'static str, version: &'static str },
    #[error("field `{field}` lists {count} events, more than {max}")]
    TooMany { field: &'static str, count: usize, max: usize },
    #[error("field `{field}` is {bytes} bytes long, more than {MAX_TYPE_AND_STATE_KEY_BYTES}")]
    TooLong { field: &'static str, bytes: usize },
    #[error("room version {0} has strict canonical JSON, but the event holds a float or an integer beyond ±(2^53-1)")]
    NotCanonicalJson(&'static str),
    #[error("`depth` must not be negative")]
    NegativeDepth,
    #[error("an m.room.create event in room version {0} must not have a `room_id`")]
    RoomIdOnCreate(&'static str),
}

/// A PDU whose fields have the types and formats its room version requires.
/// The full JSON stays available for hashing, signing and redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    json: Object,
    event_type: String,
    sender: UserId,
    room_id: Option<RoomId>,
    state_key: Option<String>,
    prev_events: Vec<EventId>,
    auth_events: Vec<EventId>,
    depth: i64,
    origin_server_ts: i64,
    redacts: Option<EventId>,
}

impl Pdu {
    /// Parses PDU bytes as received over federation, with the canonical
    /// JSON strictness of the room version: from v6 only integers within
    /// ±(2^53−1); in v1–5 any finite number (see
    /// [`crate::canonical_json::RawNumber`]).
    pub fn parse(bytes: &[u8], rules: &RoomVersionRules) -> Result<Self, PduError> {
        Self::from_json(parse_object_with(bytes, Numbers::for_room_version(rules))?, rules)
    }

    /// Checks an already parsed event.
    pub fn from_json(json: Object, rules: &RoomVersionRules) -> Result<Self, PduError> {
        let mut canonical = Vec::with_capacity(EVENT_BUFFER_BYTES);
        write_object_except(&json, &["unsigned"], &mut canonical);
        let size = canonical.len();
        if size > MAX_PDU_BYTES {
            return Err(PduError::TooLarge(size));
        }
        if rules.strict_canonical_json && json.iter().any(|(_, value)| has_raw_number(value)) {
            return Err(PduError::NotCanonicalJson(rules.id));
        }
        let fields = Fields { json: &json, rules };
        let event_type = fields.short_string("type")?.to_owned();
        let sender = fields.id("sender", UserId::parse)?;
        fields.object("content")?;
        fields.object("hashes")?;
        fields.object("signatures")?;
        let origin_server_ts = fields.integer("origin_server_ts")?;
        let depth = fields.integer("depth")?;
        if depth < 0 {
            return Err(PduError::NegativeDepth);
        }
        let state_key = match json.get("state_key") {
            None => None,
            Some(_) => Some(fields.short_string("state_key")?.to_owned()),
        };
        let room_id = fields.room_id(&event_type, state_key.as_deref())?;
        let prev_events = fields.event_list("prev_events", MAX_PREV_EVENTS)?;
        let auth_events = fields.event_list("auth_events", MAX_AUTH_EVENTS)?;
        if rules.event_id_server_signs {
            fields.event_id(fields.get("event_id")?, "event_id")?;
        }
        let redacts = fields.redacts(&event_type)?;
        Ok(Self {
            json,
            event_type,
            sender,
            room_id,
            state_key,
            prev_events,
            auth_events,
            depth,
            origin_server_ts,
            redacts,
        })
    }

    /// The whole event as JSON.
    pub fn json(&self) -> &Object {
        &self.json
    }

    /// The whole event as JSON, consuming the PDU.
    pub fn into_json(self) -> Object {
        self.json
    }

    /// `type`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// `sender`.
    pub fn sender(&self) -> &UserId {
        &self.sender
    }

    /// `room_id`; `None` only for a room v12 `m.room.create` event, whose
    /// room ID is derived from its own hash.
    pub fn room_id(&self) -> Option<&RoomId> {
        self.room_id.as_ref()
    }

    /// `state_key`, present on state events.
    pub fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }

    /// The IDs in `prev_events` (for rooms v1–2, without their hashes).
    pub fn prev_events(&self) -> &[EventId] {
        &self.prev_events
    }

    /// The IDs in `auth_events` (for rooms v1–2, without their hashes).
    pub fn auth_events(&self) -> &[EventId] {
        &self.auth_events
    }

    /// `depth`.
    pub fn depth(&self) -> i64 {
        self.depth
    }

    /// `origin_server_ts`, POSIX milliseconds.
    pub fn origin_server_ts(&self) -> i64 {
        self.origin_server_ts
    }

    /// The event an `m.room.redaction` redacts: top-level `redacts` before
    /// room v11, `content.redacts` from v11.
    pub fn redacts(&self) -> Option<&EventId> {
        self.redacts.as_ref()
    }
}

/// Whether `value` holds a number only lax (room v1–5) parsing accepts.
fn has_raw_number(value: &Value) -> bool {
    match value {
        Value::RawNumber(_) => true,
        Value::Array(items) => items.iter().any(has_raw_number),
        Value::Object(object) => object.iter().any(|(_, value)| has_raw_number(value)),
        Value::Null | Value::Bool(_) | Value::Integer(_) | Value::String(_) => false,
    }
}

/// Typed access to an event's fields, with errors naming the field.
struct Fields<'a> {
    json: &'a Object,
    rules: &'a RoomVersionRules,
}

impl<'a> Fields<'a> {
    fn get(&self, field: &'static str) -> Result<&'a Value, PduError> {
        self.json.get(field).ok_or(PduError::Missing(field))
    }

    fn string(&self, field: &'static str) -> Result<&'a str, PduError> {
        self.get(field)?.as_str().ok_or(PduError::WrongType { field, expected: "a string" })
    }

    fn object(&self, field: &'static str) -> Result<&'a Object, PduError> {
        self.get(field)?.as_object().ok_or(PduError::WrongType { field, expected: "an object" })
    }

    fn integer(&self, field: &'static str) -> Result<i64, PduError> {
        self.get(field)?.as_integer().ok_or(PduError::WrongType { field, expected: "an integer" })
    }

    /// `type` or `state_key`, at most 255 bytes. Synapse refuses over 255
    /// code points in every room version, and over 255 bytes from v11 (in
    /// v1–10 it keeps such an event as rejected); we follow the spec's
    /// byte limit everywhere.
    fn short_string(&self, field: &'static str) -> Result<&'a str, PduError> {
        let value = self.string(field)?;
        if value.len() > MAX_TYPE_AND_STATE_KEY_BYTES {
            return Err(PduError::TooLong { field, bytes: value.len() });
        }
        Ok(value)
    }

    fn id<T>(&self, field: &'static str, parse: fn(&str) -> Result<T, IdError>) -> Result<T, PduError> {
        parse(self.string(field)?).map_err(|source| PduError::InvalidId { field, source })
    }

    fn room_id(&self, event_type: &str, state_key: Option<&str>) -> Result<Option<RoomId>, PduError> {
        let is_create = event_type == "m.room.create" && state_key == Some("");
        let version = self.rules.id;
        match self.rules.room_id_format {
            RoomIdFormat::CreateEventHash if is_create => match self.json.get("room_id") {
                Some(_) => Err(PduError::RoomIdOnCreate(version)),
                None => Ok(None),
            },
            format => {
                let room_id = self.id("room_id", RoomId::parse)?;
                let domain_scoped = room_id.server_name().is_some();
                if domain_scoped != (format == RoomIdFormat::DomainScoped) {
                    return Err(PduError::WrongIdFormat { field: "room_id", version });
                }
                Ok(Some(room_id))
            }
        }
    }

    /// An event ID in the format of this room version.
    fn event_id(&self, value: &Value, field: &'static str) -> Result<EventId, PduError> {
        let id = value.as_str().ok_or(PduError::WrongType { field, expected: "an event ID string" })?;
        let id = EventId::parse(id).map_err(|source| PduError::InvalidId { field, source })?;
        if !id.is_valid_for(self.rules.event_id_format) {
            return Err(PduError::WrongIdFormat { field, version: self.rules.id });
        }
        Ok(id)
    }

    /// `prev_events` or `auth_events`: event IDs, or in rooms v1–2 pairs
    /// of an event ID and its hashes (`[["$id:server", {"sha256": "…"}]]`).
    fn event_list(&self, field: &'static str, max: usize) -> Result<Vec<EventId>, PduError> {
        let items = self.get(field)?.as_array().ok_or(PduError::WrongType { field, expected: "an array" })?;
        if items.len() > max {
            return Err(PduError::TooMany { field, count: items.len(), max });
        }
        items
            .iter()
            .map(|item| {
                if !self.rules.event_id_server_signs {
                    return self.event_id(item, field);
                }
                match item.as_array() {
                    Some([id, Value::Object(_)]) => self.event_id(id, field),
                    _ => Err(PduError::WrongType { field, expected: "a list of [event ID, hashes] pairs" }),
                }
            })
            .collect()
    }

    fn redacts(&self, event_type: &str) -> Result<Option<EventId>, PduError> {
        if event_type != "m.room.redaction" {
            return Ok(None);
        }
        let source = match self.rules.redacts_in_content {
            true => self.json.get("content").and_then(Value::as_object).and_then(|c| c.get("redacts")),
            false => self.json.get("redacts"),
        };
        source.map(|value| self.event_id(value, "redacts")).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical_json::parse_object;
    use crate::room_version::STABLE;

    fn rules(version: &str) -> &'static RoomVersionRules {
        RoomVersionRules::get(version).unwrap()
    }

    const V4_ID: &str = "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg";
    const V3_ID: &str = "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk";
    const V12_ROOM: &str = "!Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg";

    fn event(version: &str) -> Object {
        let (room_id, prev) = match version {
            "1" | "2" => ("!r:example.org", r#"[["$p:example.org", {"sha256": "x"}]]"#.to_owned()),
            "3" => ("!r:example.org", format!(r#"["{V3_ID}"]"#)),
            "12" => (V12_ROOM, format!(r#"["{V4_ID}"]"#)),
            _ => ("!r:example.org", format!(r#"["{V4_ID}"]"#)),
        };
        let text = format!(
            r#"{{"type":"m.room.message","sender":"@u:example.org","room_id":"{room_id}","content":{{"body":"hi"}},
                "origin_server_ts":1,"depth":2,"hashes":{{"sha256":"x"}},"signatures":{{}},"prev_events":{prev},
                "auth_events":{prev},"event_id":"$e:example.org"}}"#
        );
        parse_object(text.as_bytes()).unwrap()
    }

    fn check(version: &str, edit: impl FnOnce(&mut Object)) -> Result<Pdu, PduError> {
        let mut json = event(version);
        edit(&mut json);
        Pdu::from_json(json, rules(version))
    }

    #[test]
    fn accepts_a_well_formed_event_in_every_version() {
        for rules in &STABLE {
            let pdu = check(rules.id, |_| ()).unwrap_or_else(|e| panic!("v{}: {e}", rules.id));
            assert_eq!((pdu.event_type(), pdu.sender().as_str(), pdu.depth()), ("m.room.message", "@u:example.org", 2));
            assert_eq!(pdu.prev_events().len(), 1);
        }
    }

    #[test]
    fn rejects_missing_required_fields() {
        for field in ["type", "sender", "content", "hashes", "signatures", "origin_server_ts", "depth", "prev_events"] {
            assert_eq!(check("11", |j| drop(j.remove(field))), Err(PduError::Missing(field)));
        }
        assert_eq!(check("1", |j| drop(j.remove("event_id"))), Err(PduError::Missing("event_id")));
    }

    #[test]
    fn rejects_event_ids_in_another_versions_format() {
        let v3_prev = |j: &mut Object| drop(j.insert("prev_events", Value::Array(vec![V3_ID.into()])));
        assert_eq!(check("4", v3_prev), Err(PduError::WrongIdFormat { field: "prev_events", version: "4" }));
        let v4_prev = |j: &mut Object| drop(j.insert("prev_events", Value::Array(vec![V4_ID.into()])));
        assert_eq!(check("3", v4_prev), Err(PduError::WrongIdFormat { field: "prev_events", version: "3" }));
        assert!(matches!(check("2", v4_prev), Err(PduError::WrongType { field: "prev_events", .. })));
    }

    #[test]
    fn rejects_room_ids_in_another_versions_format() {
        assert_eq!(
            check("12", |j| drop(j.insert("room_id", "!r:example.org"))),
            Err(PduError::WrongIdFormat { field: "room_id", version: "12" })
        );
        assert_eq!(
            check("11", |j| drop(j.insert("room_id", V12_ROOM))),
            Err(PduError::WrongIdFormat { field: "room_id", version: "11" })
        );
    }

    #[test]
    fn v12_create_events_have_no_room_id() {
        let create = |j: &mut Object| {
            j.insert("type", "m.room.create");
            j.insert("state_key", "");
        };
        assert_eq!(check("12", create), Err(PduError::RoomIdOnCreate("12")));
        let pdu = check("12", |j| {
            create(j);
            j.remove("room_id");
        })
        .unwrap();
        assert_eq!(pdu.room_id(), None);
        assert_eq!(
            check("11", |j| {
                create(j);
                j.remove("room_id");
            }),
            Err(PduError::Missing("room_id"))
        );
    }

    #[test]
    fn reads_redacts_from_where_the_version_keeps_it() {
        let redaction = |j: &mut Object| {
            j.insert("type", "m.room.redaction");
            j.insert("redacts", V4_ID);
            let mut content = Object::new();
            content.insert("redacts", "$acR1l0raoZnm60CBwAVgqbZqoO_mYU81xysh1u7XcJk");
            j.insert("content", content);
        };
        assert_eq!(check("10", redaction).unwrap().redacts().unwrap().as_str(), V4_ID);
        assert_eq!(
            check("11", redaction).unwrap().redacts().unwrap().as_str(),
            "$acR1l0raoZnm60CBwAVgqbZqoO_mYU81xysh1u7XcJk"
        );
    }

    #[test]
    fn rejects_oversized_events_and_long_prev_events() {
        let padded = check("11", |j| drop(j.insert("pad", "x".repeat(MAX_PDU_BYTES))));
        assert!(matches!(padded, Err(PduError::TooLarge(size)) if size > MAX_PDU_BYTES));
        let many = Value::Array(vec![V4_ID.into(); MAX_PREV_EVENTS + 1]);
        assert_eq!(
            check("11", |j| drop(j.insert("prev_events", many))),
            Err(PduError::TooMany { field: "prev_events", count: 21, max: 20 })
        );
    }

    #[test]
    fn rejects_wrongly_typed_fields() {
        assert_eq!(check("11", |j| drop(j.insert("depth", Value::Integer(-1)))), Err(PduError::NegativeDepth));
        assert_eq!(
            check("11", |j| drop(j.insert("content", "text"))),
            Err(PduError::WrongType { field: "content", expected: "an object" })
        );
        assert!(matches!(
            check("11", |j| drop(j.insert("sender", "nobody"))),
            Err(PduError::InvalidId { field: "sender", .. })
        ));
    }

    #[test]
    fn rejects_type_or_state_key_over_255_bytes() {
        // 255 bytes is fine; 256 is not, even when fewer code points (é is
        // two bytes).
        let ok = |field: &'static str, value: String| check("11", move |j| drop(j.insert(field, value)));
        assert!(ok("type", "t".repeat(255)).is_ok());
        assert!(ok("state_key", "s".repeat(255)).is_ok());
        for field in ["type", "state_key"] {
            assert_eq!(ok(field, "x".repeat(256)), Err(PduError::TooLong { field, bytes: 256 }));
            assert_eq!(ok(field, "é".repeat(128)), Err(PduError::TooLong { field, bytes: 256 }));
        }
    }

    #[test]
    fn padding_unsigned_cannot_get_a_valid_event_dropped_as_too_large() {
        let mut unsigned = Object::new();
        unsigned.insert("pad", "x".repeat(MAX_PDU_BYTES));
        assert!(check("11", |j| drop(j.insert("unsigned", unsigned))).is_ok());
        // Right at the limit without `unsigned` is still fine, one byte over is not.
        let size = |j: &Object| crate::canonical_json::to_bytes(&Value::Object(j.clone())).len();
        let base = size(&event("11")) + r#","pad":"""#.len();
        let at_limit = check("11", |j| drop(j.insert("pad", "x".repeat(MAX_PDU_BYTES - base))));
        assert!(at_limit.is_ok());
        let over = check("11", |j| drop(j.insert("pad", "x".repeat(MAX_PDU_BYTES - base + 1))));
        assert_eq!(over, Err(PduError::TooLarge(MAX_PDU_BYTES + 1)));
    }

    #[test]
    fn rejects_more_auth_events_than_the_pdu_schemas_allow() {
        assert_eq!(MAX_AUTH_EVENTS, 10);
        let ten = Value::Array(vec![V4_ID.into(); 10]);
        assert!(check("11", |j| drop(j.insert("auth_events", ten))).is_ok());
        let eleven = Value::Array(vec![V4_ID.into(); 11]);
        assert_eq!(
            check("11", |j| drop(j.insert("auth_events", eleven))),
            Err(PduError::TooMany { field: "auth_events", count: 11, max: 10 })
        );
    }

    /// Room versions 1–5 must not strictly enforce canonical JSON: a float
    /// power level there is valid, and the event must still verify.
    #[test]
    fn v1_to_5_events_with_floats_are_not_refused() {
        use crate::canonical_json::{to_bytes, ParseErrorReason};
        use crate::keys::SigningKey;
        use crate::signatures::{hash_and_sign_event, verify_event, ContentHash, KnownKey, KnownKeys};

        let key = SigningKey::from_seed("1", [1; 32]).unwrap();
        let mut known = KnownKeys::new();
        known.insert("example.org", "ed25519:1", KnownKey { key: key.public_key(), valid_until_ts: None });
        for version in ["1", "5", "6"] {
            let rules = rules(version);
            let mut json = event(version);
            let content = r#"{"users_default": 50.57, "events": {"m.x": 1e2}, "big": 12345678901234567890}"#;
            json.insert("content", Value::Object(parse_object_with(content.as_bytes(), Numbers::Lax).unwrap()));
            json.insert("type", "m.room.power_levels");
            json.insert("state_key", "");
            hash_and_sign_event(&mut json, "example.org", &key, rules);
            let bytes = to_bytes(&Value::Object(json));
            assert!(String::from_utf8_lossy(&bytes)
                .contains(r#""content":{"big":12345678901234567890,"events":{"m.x":100.0},"users_default":50.57}"#));
            let parsed = Pdu::parse(&bytes, rules);
            if rules.strict_canonical_json {
                // The first number in canonical order is the large integer.
                let reason = ParseErrorReason::IntegerOutOfRange;
                assert!(matches!(parsed, Err(PduError::Json(ParseError { reason: r, .. })) if r == reason));
                continue;
            }
            let pdu = parsed.unwrap_or_else(|e| panic!("v{version}: {e}"));
            // Already parsed JSON with lax numbers is refused from v6.
            assert_eq!(
                Pdu::from_json(pdu.json().clone(), super::RoomVersionRules::get("6").unwrap()),
                Err(PduError::NotCanonicalJson("6"))
            );
            let verified = verify_event(pdu.json(), rules, &known).unwrap();
            assert_eq!(verified.content_hash, ContentHash::Matches);
        }
    }
}
