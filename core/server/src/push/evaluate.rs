//! Evaluating a user's push rules against an event (spec: client-server
//! API, "Push Rules"): the first enabled rule whose conditions all hold,
//! in kind order (override, content, room, sender, underride), gives the
//! actions. What the server needs of them here is whether the event
//! notifies the user and whether it highlights.

use serde_json::Value;

use super::rules::{Kind, Ruleset};
use crate::rooms::event::RoomEvent;

/// What a rule set says of one event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub notify: bool,
    /// Only with `notify`: a highlight that does not notify is not counted.
    pub highlight: bool,
}

/// What the conditions need to know of the room and the user.
pub trait RoomFacts {
    /// Joined members now (`room_member_count`).
    fn member_count(&self) -> u64;
    /// The user's display name in the room (`contains_display_name`).
    fn display_name(&self) -> Option<&str>;
    /// Whether the sender may trigger the notification `key`
    /// (`sender_notification_permission`).
    fn sender_may_notify(&self, sender: &str, key: &str) -> bool;
}

/// Evaluates `rules` against `event`.
pub fn evaluate(rules: &Ruleset, event: &RoomEvent, facts: &dyn RoomFacts) -> Outcome {
    for kind in Kind::ALL {
        let Some(Value::Array(list)) = rules.get(kind.as_str()) else { continue };
        for rule in list {
            if rule.get("enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            if rule_matches(kind, rule, event, facts) {
                return outcome(rule.get("actions"));
            }
        }
    }
    Outcome::default()
}

fn rule_matches(kind: Kind, rule: &Value, event: &RoomEvent, facts: &dyn RoomFacts) -> bool {
    let rule_id = rule.get("rule_id").and_then(Value::as_str);
    match kind {
        Kind::Override | Kind::Underride => match rule.get("conditions") {
            None => true,
            Some(Value::Array(conditions)) => conditions.iter().all(|c| condition_holds(c, event, facts)),
            Some(_) => false,
        },
        Kind::Content => rule
            .get("pattern")
            .and_then(Value::as_str)
            .is_some_and(|pattern| event_match("content.body", pattern, event)),
        Kind::Room => rule_id == Some(event.room_id.as_str()),
        Kind::Sender => rule_id == Some(event.sender.as_str()),
    }
}

/// Spec "Conditions"; an unknown kind never holds, so a rule from a newer
/// spec does not fire on a guess.
fn condition_holds(condition: &Value, event: &RoomEvent, facts: &dyn RoomFacts) -> bool {
    let field = |name: &str| condition.get(name).and_then(Value::as_str);
    match field("kind") {
        Some("event_match") => match (field("key"), field("pattern")) {
            (Some(key), Some(pattern)) => event_match(key, pattern, event),
            _ => false,
        },
        Some("event_property_is") => match (field("key"), condition.get("value")) {
            (Some(key), Some(value)) => property(event, key).is_some_and(|found| found.is(value)),
            _ => false,
        },
        Some("event_property_contains") => match (field("key"), condition.get("value")) {
            (Some(key), Some(value)) => property(event, key).is_some_and(|found| found.contains(value)),
            _ => false,
        },
        Some("contains_display_name") => match (facts.display_name(), body(event)) {
            (Some(name), Some(body)) if !name.is_empty() => {
                let literal: Vec<Token> = name.chars().map(Token::Char).collect();
                glob_matches(&literal, body, true)
            }
            _ => false,
        },
        Some("room_member_count") => field("is").is_some_and(|is| member_count_is(is, facts.member_count())),
        Some("sender_notification_permission") => {
            field("key").is_some_and(|key| facts.sender_may_notify(&event.sender, key))
        }
        _ => false,
    }
}

/// The spec allows only strings, integers, booleans and null as values to
/// compare with.
fn scalar_eq(found: &Value, wanted: &Value) -> bool {
    match (found, wanted) {
        (Value::String(_) | Value::Bool(_) | Value::Null, _) => found == wanted,
        (Value::Number(a), Value::Number(b)) => a.as_i64().is_some() && a.as_i64() == b.as_i64(),
        _ => false,
    }
}

fn body(event: &RoomEvent) -> Option<&str> {
    event.content.get("body").and_then(Value::as_str)
}

/// `event_match`: the glob `pattern` against the string at `key`,
/// case-insensitively. The whole value must match, except for
/// `content.body`, where matching words anywhere is enough (as Synapse and
/// every client's keyword rules expect).
fn event_match(key: &str, pattern: &str, event: &RoomEvent) -> bool {
    let Some(value) = property(event, key) else { return false };
    value.as_str().is_some_and(|value| glob_matches(&tokens(pattern), value, key == "content.body"))
}

/// A field an event has: a top-level string, or JSON inside `content`.
enum Field<'a> {
    Str(&'a str),
    Json(&'a Value),
}

impl Field<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Field::Str(s) => Some(s),
            Field::Json(v) => v.as_str(),
        }
    }

    fn is(&self, wanted: &Value) -> bool {
        match self {
            Field::Str(s) => wanted.as_str() == Some(*s),
            Field::Json(v) => scalar_eq(v, wanted),
        }
    }

    fn contains(&self, wanted: &Value) -> bool {
        match self {
            Field::Str(_) => false,
            Field::Json(v) => v.as_array().is_some_and(|items| items.iter().any(|item| scalar_eq(item, wanted))),
        }
    }
}

/// The field at a dotted `key` (`\.` is a literal dot, `\\` a backslash:
/// spec "Conditions", v1.7), or `None`.
fn property<'a>(event: &'a RoomEvent, key: &str) -> Option<Field<'a>> {
    let parts = split_key(key);
    let (first, rest) = parts.split_first()?;
    let top = match first.as_str() {
        "content" => &event.content,
        _ if !rest.is_empty() => return None,
        "type" => return Some(Field::Str(&event.event_type)),
        "sender" => return Some(Field::Str(&event.sender)),
        "room_id" => return Some(Field::Str(&event.room_id)),
        "event_id" => return Some(Field::Str(&event.event_id)),
        "state_key" => return event.state_key.as_deref().map(Field::Str),
        _ => return None,
    };
    rest.iter().try_fold(top, |value, part| value.get(part.as_str())).map(Field::Json)
}

fn split_key(key: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next @ ('.' | '\\')) => parts.last_mut().unwrap().push(next),
                Some(other) => {
                    parts.last_mut().unwrap().push('\\');
                    parts.last_mut().unwrap().push(other);
                }
                None => parts.last_mut().unwrap().push('\\'),
            },
            '.' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

/// `room_member_count`'s `is`: a number with an optional `==`, `<`, `>`,
/// `<=` or `>=` before it.
fn member_count_is(is: &str, count: u64) -> bool {
    let (op, number) = match is.find(|c: char| c.is_ascii_digit()) {
        Some(at) => is.split_at(at),
        None => return false,
    };
    let Ok(n) = number.parse::<u64>() else { return false };
    match op {
        "" | "==" => count == n,
        "<" => count < n,
        ">" => count > n,
        "<=" => count <= n,
        ">=" => count >= n,
        _ => false,
    }
}

/// A rule's actions: `notify`, and the `highlight` tweak (true when its
/// value is left out). Anything else (sounds, the legacy `dont_notify`
/// and `coalesce`) does not change the counts.
fn outcome(actions: Option<&Value>) -> Outcome {
    let Some(Value::Array(actions)) = actions else { return Outcome::default() };
    let notify = actions.iter().any(|a| a.as_str() == Some("notify"));
    let highlight = actions.iter().any(|a| {
        a.get("set_tweak").and_then(Value::as_str) == Some("highlight")
            && a.get("value").is_none_or(|v| v.as_bool() == Some(true))
    });
    Outcome { notify, highlight: notify && highlight }
}

/// One element of a glob.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    /// `*`: any run of characters.
    Any,
    /// `?`: one character.
    One,
    Char(char),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        let token = match c {
            '*' => Token::Any,
            '?' => Token::One,
            c => Token::Char(c),
        };
        // `**` is `*`: fewer states, same language.
        if !(token == Token::Any && out.last() == Some(&Token::Any)) {
            out.push(token);
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the glob `pattern` matches all of `value` or, with `words`, some
/// run of it that starts and ends at word boundaries. Case-insensitive.
/// One pass over `value` tracking every pattern position at once (a
/// non-deterministic automaton), so time is bounded by the lengths'
/// product whatever the pattern: no backtracking blow-up on hostile
/// patterns.
fn glob_matches(pattern: &[Token], value: &str, words: bool) -> bool {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let m = pattern.len();
    let mut active = vec![false; m + 1];
    let mut next = vec![false; m + 1];
    for i in 0..=n {
        let at_start = i == 0 || (words && !is_word(chars[i - 1]));
        if at_start {
            active[0] = true;
        }
        // A `*` may match nothing.
        for p in 0..m {
            if active[p] && pattern[p] == Token::Any {
                active[p + 1] = true;
            }
        }
        let at_end = i == n || (words && !is_word(chars[i]));
        if active[m] && at_end {
            return true;
        }
        if i == n {
            break;
        }
        let c = chars[i];
        next.iter_mut().for_each(|s| *s = false);
        for p in 0..m {
            if !active[p] {
                continue;
            }
            match pattern[p] {
                Token::Any => next[p] = true,
                Token::One => next[p + 1] = true,
                Token::Char(want) => {
                    if want == c || want.to_lowercase().eq(c.to_lowercase()) {
                        next[p + 1] = true;
                    }
                }
            }
        }
        std::mem::swap(&mut active, &mut next);
    }
    false
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::push::rules::ruleset;

    struct Facts {
        members: u64,
        name: Option<&'static str>,
        powerful: bool,
    }

    impl RoomFacts for Facts {
        fn member_count(&self) -> u64 {
            self.members
        }
        fn display_name(&self) -> Option<&str> {
            self.name
        }
        fn sender_may_notify(&self, _: &str, _: &str) -> bool {
            self.powerful
        }
    }

    const GROUP: Facts = Facts { members: 5, name: Some("Ali"), powerful: false };

    fn event(event_type: &str, content: Value) -> RoomEvent {
        let pdu = json!({
            "event_id": "$e", "type": event_type, "sender": "@bob:x", "room_id": "!r:x", "content": content,
            "origin_server_ts": 1, "depth": 1, "prev_events": [], "auth_events": [],
        });
        RoomEvent::from_pdu(pdu.to_string().as_bytes()).expect("a test event")
    }

    fn of(rules: &Ruleset, event: &RoomEvent, facts: &Facts) -> (bool, bool) {
        let out = evaluate(rules, event, facts);
        (out.notify, out.highlight)
    }

    #[test]
    fn default_rules_notify_messages_and_highlight_mentions_only() {
        let rules = ruleset("@ali:x", None);
        let text = event("m.room.message", json!({ "msgtype": "m.text", "body": "hi" }));
        assert_eq!(of(&rules, &text, &GROUP), (true, false));
        let notice = event("m.room.message", json!({ "msgtype": "m.notice", "body": "bot" }));
        assert_eq!(of(&rules, &notice, &GROUP), (false, false));
        let mention = event("m.room.message", json!({ "body": "hey", "m.mentions": { "user_ids": ["@ali:x"] } }));
        assert_eq!(of(&rules, &mention, &GROUP), (true, true));
        let room_mention = event("m.room.message", json!({ "body": "all", "m.mentions": { "room": true } }));
        assert_eq!(of(&rules, &room_mention, &GROUP), (true, false), "needs the sender's permission");
        assert_eq!(of(&rules, &room_mention, &Facts { powerful: true, ..GROUP }), (true, true));
        let edit = event("m.room.message", json!({ "body": "x", "m.relates_to": { "rel_type": "m.replace" } }));
        assert_eq!(of(&rules, &edit, &GROUP), (false, false));
        assert_eq!(of(&rules, &event("m.reaction", json!({})), &GROUP), (false, false));
    }

    #[test]
    fn a_disabled_master_rule_lets_the_rest_decide_and_an_enabled_one_silences_all() {
        let mut rules = ruleset("@ali:x", None);
        let text = event("m.room.message", json!({ "body": "hi" }));
        rules["override"][0]["enabled"] = true.into();
        assert_eq!(of(&rules, &text, &GROUP), (false, false));
    }

    #[test]
    fn content_rules_match_whole_words_in_the_body_case_insensitively() {
        let stored = json!({ "global": { "content": [
            { "rule_id": "kw", "pattern": "cake*", "enabled": true, "actions": ["notify", { "set_tweak": "highlight" }] },
        ] } });
        let rules = ruleset("@ali:x", Some(&stored));
        let body = |b: &str| event("m.room.message", json!({ "msgtype": "m.text", "body": b }));
        assert_eq!(of(&rules, &body("Who wants CAKES?"), &GROUP), (true, true));
        assert_eq!(of(&rules, &body("cupcakes"), &GROUP), (true, false), "not at a word start: only .m.rule.message");
    }

    #[test]
    fn display_name_member_count_and_property_conditions() {
        let stored = json!({ "global": { "override": [
            { "rule_id": "name", "enabled": true, "conditions": [{ "kind": "contains_display_name" }], "actions": ["notify"] },
        ], "underride": [
            { "rule_id": "big", "enabled": true, "conditions": [{ "kind": "room_member_count", "is": ">=5" },
              { "kind": "event_property_is", "key": "content.level", "value": 3 }], "actions": ["notify"] },
        ] } });
        let rules = ruleset("@ali:x", Some(&stored));
        let msg = |body: &str| event("m.custom", json!({ "body": body }));
        assert_eq!(of(&rules, &msg("hello ali!"), &GROUP), (true, false));
        assert_eq!(of(&rules, &msg("alice"), &GROUP), (false, false), "a name inside a word");
        let level = event("m.custom", json!({ "level": 3 }));
        assert_eq!(of(&rules, &level, &GROUP), (true, false));
        assert_eq!(of(&rules, &level, &Facts { members: 4, ..GROUP }), (false, false));
        assert_eq!(of(&rules, &event("m.custom", json!({ "level": "3" })), &GROUP), (false, false), "types differ");
    }

    #[test]
    fn globs_need_no_backtracking_and_keys_unescape_dots() {
        let hostile: Vec<Token> = tokens(&"*a".repeat(50));
        assert!(!glob_matches(&hostile, &"a".repeat(49), false));
        assert!(glob_matches(&tokens("h?llo"), "HELLO", false));
        assert!(!glob_matches(&tokens("hello"), "hello world", false));
        assert_eq!(split_key(r"content.m\.relates_to.rel\\type"), ["content", "m.relates_to", r"rel\type"]);
        assert!(member_count_is("2", 2) && member_count_is("<3", 2) && !member_count_is(">2", 2));
        assert!(!member_count_is("=>2", 2) && !member_count_is("", 2));
    }
}
