//! The rules of each stable room version, 1 to 12, as data (spec: § Room
//! Versions and the per-version pages `rooms/v1` … `rooms/v12`).
//!
//! Code elsewhere asks a [`RoomVersionRules`] flag ("does this version
//! support knocking?") instead of matching on version numbers.

use crate::identifiers::EventIdFormat;

/// Which redaction algorithm a version uses; see [`crate::redaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedactionRules {
    /// Rooms v1–5: the original algorithm.
    V1,
    /// Rooms v6–7: `m.room.aliases` no longer keeps `aliases`.
    V6,
    /// Room v8: `m.room.join_rules` also keeps `allow`.
    V8,
    /// Rooms v9–10: `m.room.member` also keeps `join_authorised_via_users_server`.
    V9,
    /// Rooms v11+: top-level `origin`, `membership`, `prev_state` are no longer
    /// kept; create keeps all content; power levels keep `invite`; redaction
    /// keeps `redacts`; member keeps `third_party_invite.signed`.
    V11,
}

/// Which state resolution algorithm a version uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateResolution {
    /// Room v1.
    V1,
    /// Rooms v2–11.
    V2,
    /// Room v12 ("state resolution v2.1").
    V2_1,
}

/// How room IDs are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomIdFormat {
    /// `!opaque:server_name`, chosen by the creating server (rooms v1–11).
    DomainScoped,
    /// The create event's reference hash, URL-safe base64 (room v12). The
    /// create event itself then has no `room_id`, and other events do not
    /// list it in `auth_events`.
    CreateEventHash,
}

/// Everything that differs between room versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RoomVersionRules {
    /// The version string, as in `m.room.create`'s `room_version`.
    pub id: &'static str,
    /// How event IDs are formed (v1–2 domain-scoped; v3 base64; v4+ URL-safe).
    pub event_id_format: EventIdFormat,
    /// How room IDs are formed.
    pub room_id_format: RoomIdFormat,
    /// Which redaction algorithm applies.
    pub redaction: RedactionRules,
    /// Which state resolution algorithm applies.
    pub state_resolution: StateResolution,
    /// v1–2: the event's `event_id` server must also sign it.
    pub event_id_server_signs: bool,
    /// v5+: keys must be valid (`valid_until_ts`) at the event's `origin_server_ts`.
    pub enforce_key_validity: bool,
    /// v1–5: `m.room.aliases` events have their own auth rule.
    pub special_case_aliases_auth: bool,
    /// v6+: event JSON must be strict canonical JSON (integers only, in range).
    pub strict_canonical_json: bool,
    /// v6+: the `notifications` power level is checked by the auth rules.
    pub limit_notifications_power_levels: bool,
    /// v7+: the `knock` join rule and membership exist.
    pub knocking: bool,
    /// v8+: the `restricted` join rule exists.
    pub restricted_join_rule: bool,
    /// v10+: the `knock_restricted` join rule exists.
    pub knock_restricted_join_rule: bool,
    /// v10+: power level values must be integers, not strings.
    pub integer_power_levels: bool,
    /// v1–10: `m.room.create` content has `creator`; from v11 the `sender` is
    /// the creator.
    pub create_event_has_creator: bool,
    /// v11+: `m.room.redaction` carries `redacts` in `content`, not top level.
    pub redacts_in_content: bool,
    /// v12: the create event's sender and `additional_creators` have infinite
    /// power and cannot be listed in `m.room.power_levels`.
    pub privileged_creators: bool,
}

const V1: RoomVersionRules = RoomVersionRules {
    id: "1",
    event_id_format: EventIdFormat::DomainScoped,
    room_id_format: RoomIdFormat::DomainScoped,
    redaction: RedactionRules::V1,
    state_resolution: StateResolution::V1,
    event_id_server_signs: true,
    enforce_key_validity: false,
    special_case_aliases_auth: true,
    strict_canonical_json: false,
    limit_notifications_power_levels: false,
    knocking: false,
    restricted_join_rule: false,
    knock_restricted_join_rule: false,
    integer_power_levels: false,
    create_event_has_creator: true,
    redacts_in_content: false,
    privileged_creators: false,
};
const V2: RoomVersionRules = RoomVersionRules { id: "2", state_resolution: StateResolution::V2, ..V1 };
const V3: RoomVersionRules =
    RoomVersionRules { id: "3", event_id_format: EventIdFormat::Base64, event_id_server_signs: false, ..V2 };
const V4: RoomVersionRules = RoomVersionRules { id: "4", event_id_format: EventIdFormat::UrlSafeBase64, ..V3 };
const V5: RoomVersionRules = RoomVersionRules { id: "5", enforce_key_validity: true, ..V4 };
const V6: RoomVersionRules = RoomVersionRules {
    id: "6",
    redaction: RedactionRules::V6,
    special_case_aliases_auth: false,
    strict_canonical_json: true,
    limit_notifications_power_levels: true,
    ..V5
};
const V7: RoomVersionRules = RoomVersionRules { id: "7", knocking: true, ..V6 };
const V8: RoomVersionRules =
    RoomVersionRules { id: "8", redaction: RedactionRules::V8, restricted_join_rule: true, ..V7 };
const V9: RoomVersionRules = RoomVersionRules { id: "9", redaction: RedactionRules::V9, ..V8 };
const V10: RoomVersionRules =
    RoomVersionRules { id: "10", knock_restricted_join_rule: true, integer_power_levels: true, ..V9 };
const V11: RoomVersionRules = RoomVersionRules {
    id: "11",
    redaction: RedactionRules::V11,
    create_event_has_creator: false,
    redacts_in_content: true,
    ..V10
};
const V12: RoomVersionRules = RoomVersionRules {
    id: "12",
    room_id_format: RoomIdFormat::CreateEventHash,
    state_resolution: StateResolution::V2_1,
    privileged_creators: true,
    ..V11
};

/// Every stable room version, oldest first.
pub const STABLE: [RoomVersionRules; 12] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12];

impl RoomVersionRules {
    /// The rules of the stable room version called `id`, or `None` if this
    /// server does not know it.
    pub fn get(id: &str) -> Option<&'static RoomVersionRules> {
        STABLE.iter().find(|rules| rules.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_every_stable_version_by_its_id() {
        for (i, rules) in STABLE.iter().enumerate() {
            assert_eq!(rules.id, (i + 1).to_string());
            assert_eq!(RoomVersionRules::get(rules.id), Some(rules));
        }
        assert_eq!(RoomVersionRules::get("13"), None);
        assert_eq!(RoomVersionRules::get("org.matrix.msc1234"), None);
    }

    #[test]
    fn each_flag_switches_on_in_the_version_the_spec_introduced_it() {
        let first = |flag: fn(&RoomVersionRules) -> bool| STABLE.iter().position(flag).map(|i| i + 1);
        assert_eq!(first(|r| r.event_id_format == EventIdFormat::Base64), Some(3));
        assert_eq!(first(|r| r.event_id_format == EventIdFormat::UrlSafeBase64), Some(4));
        assert_eq!(first(|r| r.state_resolution == StateResolution::V2), Some(2));
        assert_eq!(first(|r| r.enforce_key_validity), Some(5));
        assert_eq!(first(|r| r.strict_canonical_json), Some(6));
        assert_eq!(first(|r| !r.special_case_aliases_auth), Some(6));
        assert_eq!(first(|r| r.knocking), Some(7));
        assert_eq!(first(|r| r.restricted_join_rule), Some(8));
        assert_eq!(first(|r| r.redaction == RedactionRules::V9), Some(9));
        assert_eq!(first(|r| r.integer_power_levels), Some(10));
        assert_eq!(first(|r| r.knock_restricted_join_rule), Some(10));
        assert_eq!(first(|r| r.redacts_in_content), Some(11));
        assert_eq!(first(|r| !r.create_event_has_creator), Some(11));
        assert_eq!(first(|r| r.privileged_creators), Some(12));
        assert_eq!(first(|r| r.room_id_format == RoomIdFormat::CreateEventHash), Some(12));
        assert_eq!(first(|r| !r.event_id_server_signs), Some(3));
    }
}
