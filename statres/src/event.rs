//! The event-access trait: everything the auth rules and state resolution
//! read from a PDU (server-server API, "PDUs"), and nothing else.
//!
//! The event core implements it for its own PDU type; tests implement it for a
//! plain struct. No method may allocate: the hot loops call them per event.

use serde_json::Value;

/// Read access to one PDU.
pub trait Event {
    /// The event ID, with its `$` sigil.
    fn event_id(&self) -> &str;
    /// The room ID; `None` only for a room v12 `m.room.create`, which has none.
    fn room_id(&self) -> Option<&str>;
    /// The `sender` user ID.
    fn sender(&self) -> &str;
    /// The event `type`.
    fn event_type(&self) -> &str;
    /// The `state_key`, `None` for a message event.
    fn state_key(&self) -> Option<&str>;
    /// The event `content` as parsed JSON.
    fn content(&self) -> &Value;
    /// `origin_server_ts`, milliseconds since the epoch.
    fn origin_server_ts(&self) -> u64;
    /// The PDU `depth` (read only by room v1 state resolution).
    fn depth(&self) -> u64;
    /// The `prev_events` IDs.
    fn prev_events(&self) -> impl ExactSizeIterator<Item = &str>;
    /// The `auth_events` IDs.
    fn auth_events(&self) -> impl ExactSizeIterator<Item = &str>;
    /// For `m.room.redaction`, the ID of the redacted event (top level before
    /// room v11, in `content` from v11; the implementor knows which).
    fn redacts(&self) -> Option<&str>;
    /// Whether this event was rejected by the checks on receipt of a PDU.
    /// Rejected events are never used as auth events.
    fn rejected(&self) -> bool;
    /// Whether the event carries a valid signature of `server_name` (used by
    /// the `join_authorised_via_users_server` rule; the event core has checked
    /// signatures on receipt, so this is a look-up, not a verification).
    fn is_signed_by(&self, server_name: &str) -> bool;
}

/// The server name of a user ID (`@localpart:server`), or the domain of a
/// room-v1/v2 style room or event ID; `None` if it has none.
pub(crate) fn server_of(user_id: &str) -> Option<&str> {
    user_id.split_once(':').map(|(_, server)| server).filter(|server| !server.is_empty())
}

/// A membership value as the auth rules distinguish them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Join,
    Invite,
    Leave,
    Ban,
    Knock,
    /// Absent, not a string, or a value no rule knows.
    Unknown,
}

impl Membership {
    /// Reads `content.membership`.
    pub fn of_content(content: &Value) -> Membership {
        match content.get("membership").and_then(Value::as_str) {
            Some("join") => Membership::Join,
            Some("invite") => Membership::Invite,
            Some("leave") => Membership::Leave,
            Some("ban") => Membership::Ban,
            Some("knock") => Membership::Knock,
            _ => Membership::Unknown,
        }
    }
}

/// Event types the auth rules read.
pub mod types {
    pub const CREATE: &str = "m.room.create";
    pub const MEMBER: &str = "m.room.member";
    pub const POWER_LEVELS: &str = "m.room.power_levels";
    pub const JOIN_RULES: &str = "m.room.join_rules";
    pub const THIRD_PARTY_INVITE: &str = "m.room.third_party_invite";
    pub const ALIASES: &str = "m.room.aliases";
    pub const REDACTION: &str = "m.room.redaction";
}

/// A *power event* (state resolution v2, "Definitions"): power levels, join
/// rules, or a kick/ban (leave or ban whose sender is not the target).
pub fn is_power_event<E: Event>(event: &E) -> bool {
    let Some(state_key) = event.state_key() else { return false };
    match event.event_type() {
        types::POWER_LEVELS | types::JOIN_RULES => state_key.is_empty(),
        types::MEMBER => {
            matches!(Membership::of_content(event.content()), Membership::Leave | Membership::Ban)
                && state_key != event.sender()
        }
        _ => false,
    }
}
