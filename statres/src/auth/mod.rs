//! Event authorisation rules for room versions 1–12 (each `content/rooms/vN.md`,
//! "Authorisation rules"; rule numbers below are those of room v12).
//!
//! [`check_auth`] applies the rules that depend on the room state (what the
//! iterative auth checks of state resolution apply); [`check_auth_events`]
//! applies the rules about an event's own `auth_events` list, which are checked
//! once on receipt.

mod auth_events;
mod create;
mod membership;
pub mod power_levels;
mod third_party;

use serde_json::Value;

pub use auth_events::{auth_types_for_event, check_auth_events};

use crate::event::{server_of, types, Event, Membership};
use crate::rules::RoomRules;
use power_levels::PowerLevels;

/// Why an event was rejected: a short human-readable reason naming the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection(pub &'static str);

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Rejection {}

/// The room state an event is checked against: state events by
/// `(type, state_key)`.
pub trait StateView<E> {
    fn get(&self, event_type: &str, state_key: &str) -> Option<&E>;
}

impl<E> StateView<E> for std::collections::HashMap<(String, String), E> {
    fn get(&self, event_type: &str, state_key: &str) -> Option<&E> {
        // Only a test and prototyping convenience: the resolver has its own
        // allocation-free view.
        self.get(&(event_type.to_owned(), state_key.to_owned()))
    }
}

/// The room's creators: the create event's `sender` (from v11) or
/// `content.creator` (before), plus `additional_creators` in v12.
pub struct Creators<'a> {
    primary: Option<&'a str>,
    additional: &'a [Value],
}

impl<'a> Creators<'a> {
    pub fn of<E: Event>(create: &'a E, rules: &RoomRules) -> Self {
        let content = create.content();
        let primary =
            if rules.creator_field { content.get("creator").and_then(Value::as_str) } else { Some(create.sender()) };
        let additional = match content.get("additional_creators") {
            Some(Value::Array(list)) if rules.privileged_creators => list.as_slice(),
            _ => &[],
        };
        Creators { primary, additional }
    }

    #[cfg(test)]
    pub(crate) fn single(user: &'a str) -> Self {
        Creators { primary: Some(user), additional: &[] }
    }

    /// The create event's sender (or `content.creator` before v11).
    pub fn is_primary(&self, user_id: &str) -> bool {
        self.primary == Some(user_id)
    }

    pub fn contains(&self, user_id: &str) -> bool {
        self.primary == Some(user_id) || self.additional.iter().any(|v| v.as_str() == Some(user_id))
    }
}

/// Everything the state-dependent rules read about the current state.
pub(crate) struct AuthContext<'a, E, S> {
    pub rules: &'a RoomRules,
    pub state: &'a S,
    pub create: &'a E,
    pub creators: &'a Creators<'a>,
    pub levels: PowerLevels<'a>,
}

impl<E: Event, S: StateView<E>> AuthContext<'_, E, S> {
    pub fn membership(&self, user_id: &str) -> Membership {
        self.state.get(types::MEMBER, user_id).map_or(Membership::Unknown, |ev| Membership::of_content(ev.content()))
    }

    /// The current `join_rule`; no `m.room.join_rules` event acts as `invite`.
    pub fn join_rule(&self) -> &str {
        self.state
            .get(types::JOIN_RULES, "")
            .and_then(|ev| ev.content().get("join_rule"))
            .and_then(Value::as_str)
            .unwrap_or("invite")
    }
}

/// Authorises `event` against `state` (rules 1, 2 and 4–11 of room v12 and
/// their earlier equivalents). Rule 3, about the `auth_events` list itself,
/// is [`check_auth_events`].
pub fn check_auth<E: Event, S: StateView<E>>(rules: &RoomRules, event: &E, state: &S) -> Result<(), Rejection> {
    // Rule 1: m.room.create.
    if event.event_type() == types::CREATE {
        return create::check(rules, event);
    }
    let create = state.get(types::CREATE, "").ok_or(Rejection("no m.room.create event in the room state"))?;
    // Rule 2 (v12): the room ID is the create event's ID.
    if !rules.create_in_auth_events {
        let room = event.room_id().and_then(|id| id.strip_prefix('!'));
        if create.rejected() || room.is_none() || room != create.event_id().strip_prefix('$') {
            return Err(Rejection("room ID is not the ID of an accepted m.room.create event"));
        }
    }
    // Rule 4: m.federate.
    if create.content().get("m.federate") == Some(&Value::Bool(false))
        && server_of(event.sender()) != server_of(create.sender())
    {
        return Err(Rejection("room is not federated and sender is from another server"));
    }
    // v1–v5 rule 4: m.room.aliases.
    if rules.aliases_rule && event.event_type() == types::ALIASES {
        return match event.state_key() {
            None => Err(Rejection("m.room.aliases without a state key")),
            Some(key) if Some(key) != server_of(event.sender()) => {
                Err(Rejection("m.room.aliases state key is not the sender's server"))
            }
            Some(_) => Ok(()),
        };
    }
    let creators = Creators::of(create, rules);
    let power_levels = state.get(types::POWER_LEVELS, "");
    let ctx = AuthContext {
        rules,
        state,
        create,
        creators: &creators,
        levels: PowerLevels::new(power_levels.map(|ev| ev.content()), &creators, rules),
    };
    // Rule 5: m.room.member.
    if event.event_type() == types::MEMBER {
        return membership::check(&ctx, event);
    }
    // Rule 6.
    let sender = event.sender();
    if ctx.membership(sender) != Membership::Join {
        return Err(Rejection("sender is not joined to the room"));
    }
    let sender_level = ctx.levels.user(sender);
    // Rule 7: m.room.third_party_invite.
    if event.event_type() == types::THIRD_PARTY_INVITE {
        return if sender_level >= ctx.levels.invite() {
            Ok(())
        } else {
            Err(Rejection("sender's power level is below the invite level"))
        };
    }
    // Rule 8.
    if ctx.levels.event(event.event_type(), event.state_key().is_some()) > sender_level {
        return Err(Rejection("sender's power level is below the event's required level"));
    }
    // Rule 9.
    if event.state_key().is_some_and(|key| key.starts_with('@') && key != sender) {
        return Err(Rejection("state key is a user ID other than the sender"));
    }
    // Rule 10: m.room.power_levels.
    if event.event_type() == types::POWER_LEVELS {
        return power_levels::check_change(
            event.content(),
            power_levels.map(|ev| ev.content()),
            sender,
            &ctx.levels,
            rules,
        );
    }
    // v1–v2 rule 11: m.room.redaction.
    if rules.redaction_rule && event.event_type() == types::REDACTION {
        if sender_level >= ctx.levels.redact() {
            return Ok(());
        }
        let redacted_domain = event.redacts().and_then(server_of);
        if redacted_domain.is_some() && redacted_domain == server_of(event.event_id()) {
            return Ok(());
        }
        return Err(Rejection("sender may not redact this event"));
    }
    Ok(())
}
