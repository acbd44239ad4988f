//! Evaluating a user's push rules against an event (spec: client-server
//! API, "Push Rules"): the first enabled rule whose conditions all hold,
//! in kind order (override, content, room, sender, underride), gives the
//! actions. What the server needs of them here is whether the event
//! notifies the user and whether it highlights.
//!
//! Every member's rules are evaluated against every event that reaches
//! their sync, so a rule set is compiled once per change ([`Compiled`]):
//! keys split, globs tokenised and lowered, literals told apart from
//! patterns, disabled rules dropped. Evaluating then allocates nothing
//! for the default rules.

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

/// A rule set ready to evaluate: its enabled rules in evaluation order.
#[derive(Debug)]
pub struct Compiled(Vec<Rule>);

#[derive(Debug)]
struct Rule {
    matcher: Matcher,
    outcome: Outcome,
}

#[derive(Debug)]
enum Matcher {
    /// Override and underride rules: all must hold.
    Conditions(Vec<Condition>),
    /// A content rule: its pattern against `content.body`, by words.
    Body(Glob),
    /// A room rule (its ID is the room's).
    Room(String),
    /// A sender rule (its ID is the sender's).
    Sender(String),
}

/// Spec "Conditions". An unknown or malformed condition never holds, so a
/// rule from a newer spec does not fire on a guess.
#[derive(Debug)]
enum Condition {
    EventMatch { key: Lookup, glob: Glob, words: bool },
    PropertyIs { key: Lookup, value: Value },
    PropertyContains { key: Lookup, value: Value },
    ContainsDisplayName,
    MemberCount { op: Comparison, count: u64 },
    SenderPermission { key: String },
    Never,
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Where a key points.
#[derive(Debug)]
enum Lookup {
    Type,
    Sender,
    RoomId,
    EventId,
    StateKey,
    /// A path inside `content`.
    Content(Vec<String>),
    /// Anything else: never there.
    Missing,
}

impl Compiled {
    /// Compiles `rules` (as [`super::rules::ruleset`] gives them).
    pub fn new(rules: &Ruleset) -> Self {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let Some(Value::Array(list)) = rules.get(kind.as_str()) else { continue };
            for rule in list {
                if rule.get("enabled").and_then(Value::as_bool) == Some(false) {
                    continue;
                }
                let id = rule.get("rule_id").and_then(Value::as_str).unwrap_or_default().to_owned();
                let matcher = match kind {
                    Kind::Override | Kind::Underride => match rule.get("conditions") {
                        None => Matcher::Conditions(Vec::new()),
                        Some(Value::Array(conditions)) => {
                            Matcher::Conditions(conditions.iter().map(condition).collect())
                        }
                        Some(_) => Matcher::Conditions(vec![Condition::Never]),
                    },
                    Kind::Content => match rule.get("pattern").and_then(Value::as_str) {
                        Some(pattern) => Matcher::Body(Glob::new(pattern)),
                        None => Matcher::Conditions(vec![Condition::Never]),
                    },
                    Kind::Room => Matcher::Room(id),
                    Kind::Sender => Matcher::Sender(id),
                };
                out.push(Rule { matcher, outcome: outcome(rule.get("actions")) });
            }
        }
        Self(out)
    }

    /// What the rules say of `event`.
    pub fn evaluate(&self, event: &RoomEvent, facts: &dyn RoomFacts) -> Outcome {
        let first = self.0.iter().find(|rule| match &rule.matcher {
            Matcher::Conditions(conditions) => conditions.iter().all(|c| c.holds(event, facts)),
            Matcher::Body(glob) => body(event).is_some_and(|body| glob.matches(body, true)),
            Matcher::Room(id) => *id == event.room_id,
            Matcher::Sender(id) => *id == event.sender,
        });
        first.map(|rule| rule.outcome).unwrap_or_default()
    }
}

fn condition(condition: &Value) -> Condition {
    let field = |name: &str| condition.get(name).and_then(Value::as_str);
    match field("kind") {
        Some("event_match") => match (field("key"), field("pattern")) {
            (Some(key), Some(pattern)) => Condition::EventMatch {
                key: Lookup::parse(key),
                glob: Glob::new(pattern),
                words: key == "content.body",
            },
            _ => Condition::Never,
        },
        Some(kind @ ("event_property_is" | "event_property_contains")) => {
            match (field("key"), condition.get("value")) {
                (Some(key), Some(value)) if is_scalar(value) => {
                    let (key, value) = (Lookup::parse(key), value.clone());
                    match kind {
                        "event_property_is" => Condition::PropertyIs { key, value },
                        _ => Condition::PropertyContains { key, value },
                    }
                }
                _ => Condition::Never,
            }
        }
        Some("contains_display_name") => Condition::ContainsDisplayName,
        Some("room_member_count") => field("is").and_then(member_count).unwrap_or(Condition::Never),
        Some("sender_notification_permission") => match field("key") {
            Some(key) => Condition::SenderPermission { key: key.to_owned() },
            None => Condition::Never,
        },
        _ => Condition::Never,
    }
}

impl Condition {
    fn holds(&self, event: &RoomEvent, facts: &dyn RoomFacts) -> bool {
        match self {
            Condition::EventMatch { key, glob, words } => {
                key.find(event).is_some_and(|found| found.as_str().is_some_and(|value| glob.matches(value, *words)))
            }
            Condition::PropertyIs { key, value } => key.find(event).is_some_and(|found| found.is(value)),
            Condition::PropertyContains { key, value } => key.find(event).is_some_and(|found| found.contains(value)),
            Condition::ContainsDisplayName => match (facts.display_name(), body(event)) {
                (Some(name), Some(body)) if !name.is_empty() => Glob::literal(name).matches(body, true),
                _ => false,
            },
            Condition::MemberCount { op, count } => {
                let members = facts.member_count();
                match op {
                    Comparison::Eq => members == *count,
                    Comparison::Lt => members < *count,
                    Comparison::Gt => members > *count,
                    Comparison::Le => members <= *count,
                    Comparison::Ge => members >= *count,
                }
            }
            Condition::SenderPermission { key } => facts.sender_may_notify(&event.sender, key),
            Condition::Never => false,
        }
    }
}

/// The spec allows only strings, integers, booleans and null as values to
/// compare with.
fn is_scalar(value: &Value) -> bool {
    match value {
        Value::String(_) | Value::Bool(_) | Value::Null => true,
        Value::Number(n) => n.as_i64().is_some(),
        _ => false,
    }
}

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

impl Lookup {
    /// A dotted key (`\.` is a literal dot, `\\` a backslash: spec
    /// "Conditions", v1.7).
    fn parse(key: &str) -> Self {
        let parts = split_key(key);
        let Some((first, rest)) = parts.split_first() else { return Lookup::Missing };
        match (first.as_str(), rest.is_empty()) {
            ("content", _) => Lookup::Content(rest.to_vec()),
            ("type", true) => Lookup::Type,
            ("sender", true) => Lookup::Sender,
            ("room_id", true) => Lookup::RoomId,
            ("event_id", true) => Lookup::EventId,
            ("state_key", true) => Lookup::StateKey,
            _ => Lookup::Missing,
        }
    }

    fn find<'a>(&self, event: &'a RoomEvent) -> Option<Field<'a>> {
        match self {
            Lookup::Type => Some(Field::Str(&event.event_type)),
            Lookup::Sender => Some(Field::Str(&event.sender)),
            Lookup::RoomId => Some(Field::Str(&event.room_id)),
            Lookup::EventId => Some(Field::Str(&event.event_id)),
            Lookup::StateKey => event.state_key.as_deref().map(Field::Str),
            Lookup::Content(path) => {
                path.iter().try_fold(&event.content, |value, part| value.get(part.as_str())).map(Field::Json)
            }
            Lookup::Missing => None,
        }
    }
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
fn member_count(is: &str) -> Option<Condition> {
    let at = is.find(|c: char| c.is_ascii_digit())?;
    let (op, number) = is.split_at(at);
    let count = number.parse::<u64>().ok()?;
    let op = match op {
        "" | "==" => Comparison::Eq,
        "<" => Comparison::Lt,
        ">" => Comparison::Gt,
        "<=" => Comparison::Le,
        ">=" => Comparison::Ge,
        _ => return None,
    };
    Some(Condition::MemberCount { op, count })
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

/// A compiled glob (`*`, `?`), matched case-insensitively.
#[derive(Debug)]
struct Glob {
    tokens: Vec<Token>,
    /// The pattern lowered, when it has no wildcards: compared directly.
    literal: Option<String>,
}

impl Glob {
    fn new(pattern: &str) -> Self {
        let tokens = tokens(pattern);
        let literal = tokens
            .iter()
            .all(|t| matches!(t, Token::Char(_)))
            .then(|| pattern.chars().flat_map(char::to_lowercase).collect());
        Self { tokens, literal }
    }

    /// `text` taken literally (a display name: `*` in it is a star).
    fn literal(text: &str) -> Self {
        Self { tokens: text.chars().map(Token::Char).collect(), literal: None }
    }

    /// Whether the glob matches all of `value` or, with `words`, some run
    /// of it that starts and ends at word boundaries.
    fn matches(&self, value: &str, words: bool) -> bool {
        match &self.literal {
            // Event types, msgtypes and IDs are ASCII: compare bytes.
            Some(literal) if !words && literal.is_ascii() && value.is_ascii() => value.eq_ignore_ascii_case(literal),
            Some(literal) if !words => value.chars().flat_map(char::to_lowercase).eq(literal.chars()),
            _ => glob_matches(&self.tokens, value, words),
        }
    }
}

/// The glob matching: one pass over `value` tracking every pattern
/// position at once (a non-deterministic automaton), so time is bounded by
/// the lengths' product whatever the pattern: no backtracking blow-up on
/// hostile patterns.
fn glob_matches(pattern: &[Token], value: &str, words: bool) -> bool {
    let m = pattern.len();
    let mut active = vec![false; m + 1];
    let mut next = vec![false; m + 1];
    let mut chars = value.chars();
    let mut prev: Option<char> = None;
    let mut current = chars.next();
    loop {
        let at_start = prev.is_none_or(|p| words && !is_word(p));
        if at_start {
            active[0] = true;
        }
        // A `*` may match nothing.
        for p in 0..m {
            if active[p] && pattern[p] == Token::Any {
                active[p + 1] = true;
            }
        }
        let at_end = current.is_none_or(|c| words && !is_word(c));
        if active[m] && at_end {
            return true;
        }
        let Some(c) = current else { return false };
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
        prev = Some(c);
        current = chars.next();
    }
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
        let out = Compiled::new(rules).evaluate(event, facts);
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
        let holds = |is: &str, members| {
            let facts = Facts { members, ..GROUP };
            member_count(is).is_some_and(|c| c.holds(&event("m.x", json!({})), &facts))
        };
        assert!(holds("2", 2) && holds("<3", 2) && holds(">=2", 2) && !holds(">2", 2));
        assert!(member_count("=>2").is_none() && member_count("").is_none());
        assert!(Glob::new("HeLLo").matches("hello", false) && !Glob::new("hello").matches("hello!", false));
        assert!(Glob::new("ÉTÉ").matches("été", false), "non-ASCII literals compare by Unicode case");
    }
}
