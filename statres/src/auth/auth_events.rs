//! Authorisation rule 3 (v12 numbering; rule 2 before): checks on an event's
//! own `auth_events`, and the *auth events selection* algorithm of the
//! server-server API ("Auth events selection") that they refer to.

use serde_json::Value;

use super::Rejection;
use crate::event::{types, Event, Membership};
use crate::rules::RoomRules;

/// The `(type, state_key)` pairs an event's `auth_events` may contain
/// (server-server API, "Auth events selection").
pub fn auth_types_for_event<'a, E: Event>(rules: &RoomRules, event: &'a E) -> Vec<(&'static str, &'a str)> {
    if event.event_type() == types::CREATE {
        return Vec::new();
    }
    let mut keys = Vec::with_capacity(6);
    if rules.create_in_auth_events {
        keys.push((types::CREATE, ""));
    }
    keys.push((types::POWER_LEVELS, ""));
    keys.push((types::MEMBER, event.sender()));
    if event.event_type() == types::MEMBER {
        let Some(target) = event.state_key() else { return keys };
        keys.push((types::MEMBER, target));
        let content = event.content();
        let membership = Membership::of_content(content);
        if matches!(membership, Membership::Join | Membership::Invite | Membership::Knock) {
            keys.push((types::JOIN_RULES, ""));
        }
        if membership == Membership::Invite {
            let token = content.pointer("/third_party_invite/signed/token").and_then(Value::as_str);
            if let Some(token) = token {
                keys.push((types::THIRD_PARTY_INVITE, token));
            }
        }
        if membership == Membership::Join && rules.restricted_joins {
            if let Some(via) = content.get("join_authorised_via_users_server").and_then(Value::as_str) {
                keys.push((types::MEMBER, via));
            }
        }
    }
    keys
}

/// Rule 3: `auth_events` are the given events (already fetched, in any order).
pub fn check_auth_events<E: Event>(rules: &RoomRules, event: &E, auth_events: &[&E]) -> Result<(), Rejection> {
    let allowed = auth_types_for_event(rules, event);
    let mut seen: Vec<(&str, &str)> = Vec::with_capacity(auth_events.len());
    for auth in auth_events {
        let Some(state_key) = auth.state_key() else {
            return Err(Rejection("auth event is not a state event"));
        };
        let key = (auth.event_type(), state_key);
        // 3.1
        if seen.contains(&key) {
            return Err(Rejection("duplicate (type, state_key) in auth_events"));
        }
        seen.push(key);
        // 3.2
        if !allowed.contains(&key) {
            return Err(Rejection("auth event not selected by the auth events selection algorithm"));
        }
        // 3.3
        if auth.rejected() {
            return Err(Rejection("auth event was rejected"));
        }
        // 3.5
        if auth.room_id() != event.room_id() {
            return Err(Rejection("auth event is in another room"));
        }
    }
    // 3.4 (v1–v11)
    if rules.create_in_auth_events && !seen.contains(&(types::CREATE, "")) {
        return Err(Rejection("no m.room.create among auth_events"));
    }
    Ok(())
}
