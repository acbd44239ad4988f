//! Power levels: reading them from `m.room.power_levels` content per room
//! version, and the rules for changing them (authorisation rule 10, "If type
//! is `m.room.power_levels`"). Integer, string ("stringy") and float
//! ("floaty") forms before room v10 follow `fragments/v1-stringy-power-levels.md`
//! and `fragments/v1-floaty-power-levels.md`; v10+ accept JSON integers only.

use serde_json::{Map, Value};

use super::{Creators, Rejection};
use crate::rules::RoomRules;

/// The power level of a room creator in room v12 ("infinitely high").
pub const INFINITE: i64 = i64::MAX;

/// The top-level integer properties rule 10 compares.
const LEVEL_KEYS: [&str; 7] = ["users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"];

/// Parses one power level value under `rules`; `None` if it is not a valid level.
pub fn parse_level(value: &Value, rules: &RoomRules) -> Option<i64> {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(int) => Some(int),
            None if rules.integer_power_levels => None,
            // Floats: exponent applied by the parser, then truncated.
            None => n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64),
        },
        Value::String(s) if !rules.integer_power_levels => parse_stringy(s),
        _ => None,
    }
}

/// `"  +0100 "` style integers: optional whitespace, one sign, base-10 digits.
fn parse_stringy(s: &str) -> Option<i64> {
    let trimmed = s.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.trim_start_matches('0');
    let value: i64 = if magnitude.is_empty() { 0 } else { magnitude.parse().ok()? };
    Some(if trimmed.starts_with('-') { -value } else { value })
}

/// The power levels in force: the current `m.room.power_levels` content (if
/// any) plus the room's creators, read lazily without building a map.
pub struct PowerLevels<'a> {
    content: Option<&'a Map<String, Value>>,
    creators: &'a Creators<'a>,
    rules: &'a RoomRules,
}

impl<'a> PowerLevels<'a> {
    pub fn new(content: Option<&'a Value>, creators: &'a Creators<'a>, rules: &'a RoomRules) -> Self {
        PowerLevels { content: content.and_then(Value::as_object), creators, rules }
    }

    fn field(&self, key: &str, default_with_event: i64, default_without: i64) -> i64 {
        match self.content {
            None => default_without,
            Some(map) => map.get(key).and_then(|v| parse_level(v, self.rules)).unwrap_or(default_with_event),
        }
    }

    /// A user's power level. Creators are infinite in v12; without a power
    /// levels event the creator has 100 and everyone else 0.
    pub fn user(&self, user_id: &str) -> i64 {
        if self.rules.privileged_creators && self.creators.contains(user_id) {
            return INFINITE;
        }
        match self.content {
            Some(map) => map
                .get("users")
                .and_then(|users| users.get(user_id))
                .and_then(|v| parse_level(v, self.rules))
                .unwrap_or_else(|| self.field("users_default", 0, 0)),
            None if self.creators.contains(user_id) => 100,
            None => 0,
        }
    }

    /// The *required power level* to send an event of `event_type`.
    pub fn event(&self, event_type: &str, is_state: bool) -> i64 {
        let specific = self.content.and_then(|map| map.get("events")).and_then(|events| events.get(event_type));
        match specific.and_then(|v| parse_level(v, self.rules)) {
            Some(level) => level,
            None if is_state => self.field("state_default", 50, 0),
            None => self.field("events_default", 0, 0),
        }
    }

    pub fn invite(&self) -> i64 {
        self.field("invite", 0, 0)
    }
    pub fn kick(&self) -> i64 {
        self.field("kick", 50, 50)
    }
    pub fn ban(&self) -> i64 {
        self.field("ban", 50, 50)
    }
    pub fn redact(&self) -> i64 {
        self.field("redact", 50, 50)
    }

    /// The level a sender needs for the notification `key` (`room`: an
    /// `@room` mention); spec "m.room.power_levels": 50 unless set.
    pub fn notification(&self, key: &str) -> i64 {
        let set = self.content.and_then(|map| map.get("notifications")).and_then(|n| n.get(key));
        set.and_then(|v| parse_level(v, self.rules)).unwrap_or(50)
    }
}

/// Rule 10: may `sender` replace `previous` (the current power levels content,
/// if any) with `new`?
pub fn check_change(
    new: &Value,
    previous: Option<&Value>,
    sender: &str,
    levels: &PowerLevels<'_>,
    rules: &RoomRules,
) -> Result<(), Rejection> {
    let new = new.as_object().ok_or(Rejection("power levels content is not an object"))?;
    check_shape(new, rules)?;
    if rules.privileged_creators {
        if let Some(users) = new.get("users").and_then(Value::as_object) {
            if users.keys().any(|user| levels.creators.contains(user)) {
                return Err(Rejection("power levels list a room creator in users"));
            }
        }
    }
    let Some(previous) = previous.and_then(Value::as_object) else { return Ok(()) };
    let sender_level = levels.user(sender);
    let level = |map: &Map<String, Value>, key: &str| map.get(key).and_then(|v| parse_level(v, rules));

    for key in LEVEL_KEYS {
        let (old, new) = (level(previous, key), level(new, key));
        if old != new && (old.is_some_and(|old| old > sender_level) || new.is_some_and(|new| new > sender_level)) {
            return Err(Rejection("power levels change a level above the sender's"));
        }
    }
    let maps: &[&str] = if rules.notifications_levels { &["events", "notifications"] } else { &["events"] };
    for &key in maps {
        check_map_change(previous.get(key), new.get(key), rules, |_, old, new| {
            old.is_some_and(|old| old > sender_level) || new.is_some_and(|new| new > sender_level)
        })
        .map_err(|()| Rejection("power levels change an event level above the sender's"))?;
    }
    check_map_change(previous.get("users"), new.get("users"), rules, |user, old, new| {
        (user != sender && old.is_some_and(|old| old >= sender_level)) || new.is_some_and(|new| new > sender_level)
    })
    .map_err(|()| Rejection("power levels change a user at or above the sender's level"))
}

/// Calls `forbidden(key, old, new)` for every entry added, changed or removed
/// between two level maps; `Err` if any call says the change is forbidden.
fn check_map_change(
    old: Option<&Value>,
    new: Option<&Value>,
    rules: &RoomRules,
    forbidden: impl Fn(&str, Option<i64>, Option<i64>) -> bool,
) -> Result<(), ()> {
    let empty = Map::new();
    let old = old.and_then(Value::as_object).unwrap_or(&empty);
    let new = new.and_then(Value::as_object).unwrap_or(&empty);
    let parse = |v: &Value| parse_level(v, rules);
    for (key, old_value) in old {
        let (old_level, new_level) = (parse(old_value), new.get(key).and_then(parse));
        if old_level != new_level && forbidden(key, old_level, new_level) {
            return Err(());
        }
    }
    for (key, new_value) in new.iter().filter(|(key, _)| !old.contains_key(*key)) {
        if forbidden(key, None, parse(new_value)) {
            return Err(());
        }
    }
    Ok(())
}

/// Rules 10.1–10.3: value types. Before v10 only `users` is checked (integers
/// or integer strings); from v10 every level must be a JSON integer.
fn check_shape(content: &Map<String, Value>, rules: &RoomRules) -> Result<(), Rejection> {
    let is_level = |v: &Value| parse_level(v, rules).is_some();
    if rules.integer_power_levels {
        if LEVEL_KEYS.iter().filter_map(|key| content.get(*key)).any(|v| !is_level(v)) {
            return Err(Rejection("power level is not an integer"));
        }
        for key in ["events", "notifications"] {
            if let Some(map) = content.get(key) {
                if !map.as_object().is_some_and(|map| map.values().all(is_level)) {
                    return Err(Rejection("power levels map is not an object of integers"));
                }
            }
        }
    }
    if let Some(users) = content.get("users") {
        let valid = users.as_object().is_some_and(|users| {
            users.iter().all(|(user, v)| is_valid_user_id(user) && parse_level(v, rules).is_some())
        });
        if !valid {
            return Err(Rejection("power levels users is not an object of user IDs to integers"));
        }
    }
    Ok(())
}

/// The grammar check the auth rules apply to user IDs: `@localpart:server`,
/// both parts non-empty, at most 255 bytes.
pub fn is_valid_user_id(user_id: &str) -> bool {
    user_id.len() <= 255
        && user_id
            .strip_prefix('@')
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(local, server)| !local.is_empty() && !server.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(id: &str) -> &'static RoomRules {
        RoomRules::for_version(id).unwrap()
    }

    #[test]
    fn stringy_levels_parse_before_v10_only() {
        for (s, expect) in [("100", 100), ("000100", 100), ("+100", 100), ("-100", -100), (" 00100 ", 100)] {
            assert_eq!(parse_level(&json!(s), v("9")), Some(expect), "{s:?}");
            assert_eq!(parse_level(&json!(s), v("10")), None, "{s:?}");
        }
        for bad in ["1.5", "", "+-1", "1e3", "abc", "--1"] {
            assert_eq!(parse_level(&json!(bad), v("1")), None, "{bad:?}");
        }
    }

    #[test]
    fn floaty_levels_truncate_before_v10_and_are_rejected_after() {
        assert_eq!(parse_level(&json!(51146.98), v("1")), Some(51146));
        assert_eq!(parse_level(&json!(5.114698e4), v("9")), Some(51146));
        assert_eq!(parse_level(&json!(-1.9), v("9")), Some(-1));
        assert_eq!(parse_level(&json!(50.0), v("10")), None);
        assert_eq!(parse_level(&json!(true), v("1")), None);
    }

    #[test]
    fn defaults_differ_with_and_without_a_power_levels_event() {
        let creators = Creators::single("@c:x");
        let none = PowerLevels::new(None, &creators, v("11"));
        assert_eq!((none.user("@c:x"), none.user("@o:x")), (100, 0));
        assert_eq!((none.event("m.room.topic", true), none.event("m.room.message", false)), (0, 0));
        let content = json!({});
        let empty = PowerLevels::new(Some(&content), &creators, v("11"));
        assert_eq!((empty.user("@c:x"), empty.event("m.room.topic", true), empty.ban()), (0, 50, 50));
    }

    #[test]
    fn v12_creator_is_infinite_whatever_the_content_says() {
        let creators = Creators::single("@c:x");
        let content = json!({"users_default": 100});
        let levels = PowerLevels::new(Some(&content), &creators, v("12"));
        assert_eq!(levels.user("@c:x"), INFINITE);
        assert_eq!(levels.user("@o:x"), 100);
    }
}
