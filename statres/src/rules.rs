//! Per-room-version behaviour, as one struct of flags per version.
//!
//! Every difference between the authorisation rules and state resolution
//! algorithms of room versions 1–12 that this crate implements is one named
//! flag here; the rule code reads flags, never version numbers. Sources: the
//! "Authorisation rules" and "State resolution" sections of each
//! `content/rooms/vN.md` of the specification.

/// Which state resolution algorithm a room version uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateResAlgorithm {
    /// Room version 1 (`content/rooms/v1.md`, "State resolution").
    V1,
    /// Room versions 2–11 (`fragments/v2-state-res.md`).
    V2,
    /// Room version 12: v2 with iterative auth checks from an empty state and
    /// the conflicted state subgraph in the full conflicted set.
    V2_1,
}

/// The authorisation and state-resolution rules of one room version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRules {
    /// The room version identifier, e.g. `"11"`.
    pub id: &'static str,
    /// State resolution algorithm.
    pub state_res: StateResAlgorithm,
    /// v1–v5: `m.room.aliases` has its own rule (sender domain must equal state key).
    pub aliases_rule: bool,
    /// v1–v2: `m.room.redaction` is checked by the auth rules (redact level or
    /// same event-ID domain); later versions check redactions on application.
    pub redaction_rule: bool,
    /// v6+: `notifications` entries of power levels are checked like `events`.
    pub notifications_levels: bool,
    /// v7+: `knock` membership and join rule.
    pub knocking: bool,
    /// v8+: `restricted` join rule and `join_authorised_via_users_server`.
    pub restricted_joins: bool,
    /// v10+: `knock_restricted` join rule.
    pub knock_restricted: bool,
    /// v10+: power levels must be JSON integers (no strings, no floats).
    pub integer_power_levels: bool,
    /// v1–v10: the creator is `content.creator` of `m.room.create`, which must
    /// be present; from v11 the creator is the create event's `sender`.
    pub creator_field: bool,
    /// v1–v11: `m.room.create` is among an event's `auth_events` and the
    /// create event has a `room_id` whose domain matches its sender's.
    /// v12: the room ID is the create event's ID with sigil `!` instead.
    pub create_in_auth_events: bool,
    /// v12: creators (sender plus `additional_creators`) have infinite power
    /// and may not appear in `users` of `m.room.power_levels`.
    pub privileged_creators: bool,
}

const V1: RoomRules = RoomRules {
    id: "1",
    state_res: StateResAlgorithm::V1,
    aliases_rule: true,
    redaction_rule: true,
    notifications_levels: false,
    knocking: false,
    restricted_joins: false,
    knock_restricted: false,
    integer_power_levels: false,
    creator_field: true,
    create_in_auth_events: true,
    privileged_creators: false,
};
const V2: RoomRules = RoomRules { id: "2", state_res: StateResAlgorithm::V2, ..V1 };
const V3: RoomRules = RoomRules { id: "3", redaction_rule: false, ..V2 };
const V4: RoomRules = RoomRules { id: "4", ..V3 };
const V5: RoomRules = RoomRules { id: "5", ..V4 };
const V6: RoomRules = RoomRules { id: "6", aliases_rule: false, notifications_levels: true, ..V5 };
const V7: RoomRules = RoomRules { id: "7", knocking: true, ..V6 };
const V8: RoomRules = RoomRules { id: "8", restricted_joins: true, ..V7 };
const V9: RoomRules = RoomRules { id: "9", ..V8 };
const V10: RoomRules = RoomRules { id: "10", knock_restricted: true, integer_power_levels: true, ..V9 };
const V11: RoomRules = RoomRules { id: "11", creator_field: false, ..V10 };
const V12: RoomRules = RoomRules {
    id: "12",
    state_res: StateResAlgorithm::V2_1,
    create_in_auth_events: false,
    privileged_creators: true,
    ..V11
};

static ALL: [RoomRules; 12] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12];

impl RoomRules {
    /// The rules of a stable room version by identifier, `None` if unknown.
    pub fn for_version(id: &str) -> Option<&'static RoomRules> {
        ALL.iter().find(|rules| rules.id == id)
    }

    /// Every stable room version this crate implements, oldest first.
    pub fn all() -> &'static [RoomRules] {
        &ALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_version_is_not_silently_mapped() {
        assert!(RoomRules::for_version("13").is_none());
        assert!(RoomRules::for_version("").is_none());
        assert!(RoomRules::for_version("org.matrix.msc1234").is_none());
    }

    #[test]
    fn flags_change_at_the_versions_the_spec_says() {
        let first = |flag: fn(&RoomRules) -> bool| RoomRules::all().iter().find(|r| flag(r)).map(|r| r.id);
        assert_eq!(first(|r| !r.aliases_rule), Some("6"));
        assert_eq!(first(|r| !r.redaction_rule), Some("3"));
        assert_eq!(first(|r| r.notifications_levels), Some("6"));
        assert_eq!(first(|r| r.knocking), Some("7"));
        assert_eq!(first(|r| r.restricted_joins), Some("8"));
        assert_eq!(first(|r| r.knock_restricted), Some("10"));
        assert_eq!(first(|r| r.integer_power_levels), Some("10"));
        assert_eq!(first(|r| !r.creator_field), Some("11"));
        assert_eq!(first(|r| r.privileged_creators), Some("12"));
        assert_eq!(first(|r| r.state_res == StateResAlgorithm::V2), Some("2"));
        assert_eq!(first(|r| r.state_res == StateResAlgorithm::V2_1), Some("12"));
    }
}
