//! The redaction algorithm of every room version (spec: client-server API §
//! Redactions; room versions 1, 6, 8, 9 and 11 § Redactions).
//!
//! Redaction keeps a fixed set of top-level keys and, for a few event types,
//! some `content` keys. The sets are written below as data, one table per
//! algorithm, and a single walker applies them: [`redact`] builds the
//! redacted copy, and `write_redacted` encodes it straight to canonical JSON
//! for hashing and signing without building it.

use crate::canonical_json::{write_members, write_value, Object, Value};
use crate::room_version::{RedactionRules, RoomVersionRules};

/// Which members of an object survive. Every list below is sorted by key,
/// so lookups are binary searches.
#[derive(Debug, Clone, Copy)]
enum Keep {
    /// The whole value.
    All,
    /// Only these members of an object (each with its own rule); a value
    /// that is not an object is dropped.
    Only(&'static [(&'static str, Keep)]),
}

use Keep::{All, Only};

/// Rooms v1–10: "strip off any keys not in the following list".
const TOP_LEVEL_V1: &[&str] = &[
    "auth_events",
    "content",
    "depth",
    "event_id",
    "hashes",
    "membership",
    "origin",
    "origin_server_ts",
    "prev_events",
    "prev_state",
    "room_id",
    "sender",
    "signatures",
    "state_key",
    "type",
];
/// Room v11: "The top-level `origin`, `membership`, and `prev_state`
/// properties are no longer protected from redaction."
const TOP_LEVEL_V11: &[&str] = &[
    "auth_events",
    "content",
    "depth",
    "event_id",
    "hashes",
    "origin_server_ts",
    "prev_events",
    "room_id",
    "sender",
    "signatures",
    "state_key",
    "type",
];

const POWER_LEVELS_V1: Keep = Only(&[
    ("ban", All),
    ("events", All),
    ("events_default", All),
    ("kick", All),
    ("redact", All),
    ("state_default", All),
    ("users", All),
    ("users_default", All),
]);
const POWER_LEVELS_V11: Keep = Only(&[
    ("ban", All),
    ("events", All),
    ("events_default", All),
    ("invite", All),
    ("kick", All),
    ("redact", All),
    ("state_default", All),
    ("users", All),
    ("users_default", All),
]);

/// The `content` keys an event of `event_type` keeps under `rules`.
fn content_rule(rules: RedactionRules, event_type: &str) -> Keep {
    use RedactionRules::*;
    const NOTHING: Keep = Only(&[]);
    match (event_type, rules) {
        ("m.room.member", V1 | V6 | V8) => Only(&[("membership", All)]),
        ("m.room.member", V9) => Only(&[("join_authorised_via_users_server", All), ("membership", All)]),
        ("m.room.member", V11) => Only(&[
            ("join_authorised_via_users_server", All),
            ("membership", All),
            ("third_party_invite", Only(&[("signed", All)])),
        ]),
        ("m.room.create", V11) => All,
        ("m.room.create", _) => Only(&[("creator", All)]),
        ("m.room.join_rules", V1 | V6) => Only(&[("join_rule", All)]),
        ("m.room.join_rules", _) => Only(&[("allow", All), ("join_rule", All)]),
        ("m.room.power_levels", V11) => POWER_LEVELS_V11,
        ("m.room.power_levels", _) => POWER_LEVELS_V1,
        ("m.room.aliases", V1) => Only(&[("aliases", All)]),
        ("m.room.history_visibility", _) => Only(&[("history_visibility", All)]),
        ("m.room.redaction", V11) => Only(&[("redacts", All)]),
        _ => NOTHING,
    }
}

/// Decides, for each top-level key of one event, whether and how it is kept.
struct EventRule {
    top_level: &'static [&'static str],
    content: Keep,
}

impl EventRule {
    fn new(event: &Object, rules: &RoomVersionRules) -> Self {
        let event_type = event.get("type").and_then(Value::as_str).unwrap_or("");
        let top_level = match rules.redaction {
            RedactionRules::V11 => TOP_LEVEL_V11,
            _ => TOP_LEVEL_V1,
        };
        Self { top_level, content: content_rule(rules.redaction, event_type) }
    }

    fn member(&self, key: &str) -> Option<Keep> {
        if self.top_level.binary_search(&key).is_err() {
            None
        } else if key == "content" {
            Some(self.content)
        } else {
            Some(All)
        }
    }
}

/// The members of `object` that survive, each with the rule for its value.
fn surviving<'a>(
    object: &'a Object,
    rule: impl Fn(&str) -> Option<Keep> + 'a,
) -> impl Iterator<Item = (&'a str, &'a Value, Keep)> + 'a {
    object.iter().filter_map(move |(key, value)| match rule(key)? {
        Only(_) if value.as_object().is_none() => None,
        keep => Some((key, value, keep)),
    })
}

fn nested_rule(members: &'static [(&'static str, Keep)]) -> impl Fn(&str) -> Option<Keep> {
    move |key| members.binary_search_by(|(k, _)| (*k).cmp(key)).ok().map(|i| members[i].1)
}

fn redact_value(value: &Value, keep: Keep) -> Value {
    match (keep, value) {
        (Only(members), Value::Object(object)) => Value::Object(redact_object(object, nested_rule(members))),
        _ => value.clone(),
    }
}

fn redact_object(object: &Object, rule: impl Fn(&str) -> Option<Keep>) -> Object {
    let mut redacted = Object::new();
    for (key, value, keep) in surviving(object, rule) {
        redacted.insert(key, redact_value(value, keep));
    }
    redacted
}

/// Returns the redacted copy of `event` under the room version's algorithm.
///
/// `unsigned` is in no version's list of kept keys, so it is removed; when
/// serving the result to clients, add the redaction event back with
/// [`set_redacted_because`].
pub fn redact(event: &Object, rules: &RoomVersionRules) -> Object {
    let rule = EventRule::new(event, rules);
    redact_object(event, |key| rule.member(key))
}

/// Stores `redaction_event` as `unsigned.redacted_because` on a redacted
/// event. Spec: "Servers should include a copy of the `m.room.redaction`
/// event under `unsigned` as `redacted_because` when serving the redacted
/// event to clients."
pub fn set_redacted_because(redacted_event: &mut Object, redaction_event: Object) {
    let mut unsigned = Object::new();
    unsigned.insert("redacted_because", redaction_event);
    redacted_event.insert("unsigned", unsigned);
}

fn write_kept(value: &Value, keep: Keep, out: &mut Vec<u8>) {
    match (keep, value) {
        (Only(members), Value::Object(object)) => write_surviving(surviving(object, nested_rule(members)), out),
        _ => write_value(value, out),
    }
}

/// Appends the canonical JSON of `redact(event, rules)` minus the top-level
/// keys in `skip`, without building the redacted copy.
pub(crate) fn write_redacted(event: &Object, rules: &RoomVersionRules, skip: &[&str], out: &mut Vec<u8>) {
    let rule = EventRule::new(event, rules);
    write_surviving(surviving(event, |key| rule.member(key)).filter(|(key, _, _)| !skip.contains(key)), out);
}

fn write_surviving<'a>(members: impl Iterator<Item = (&'a str, &'a Value, Keep)>, out: &mut Vec<u8>) {
    write_members(members.map(|(key, value, keep)| (key, (value, keep))), out, |(value, keep), out| {
        write_kept(value, keep, out)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical_json::{parse_object, to_bytes};

    fn redacted(version: &str, event: &str) -> String {
        let rules = RoomVersionRules::get(version).unwrap();
        let event = parse_object(event.as_bytes()).unwrap();
        let copy = redact(&event, rules);
        let mut streamed = Vec::new();
        write_redacted(&event, rules, &[], &mut streamed);
        assert_eq!(streamed, to_bytes(&Value::Object(copy.clone())), "streamed and copied redaction differ");
        String::from_utf8(streamed).unwrap()
    }

    const MEMBER: &str = r#"{"type":"m.room.member","state_key":"@a:x","sender":"@a:x","origin":"x","membership":"join",
        "prev_state":[],"unsigned":{"age":1},"extra":1,"content":{"membership":"join","displayname":"A",
        "join_authorised_via_users_server":"@b:y","third_party_invite":{"signed":{"token":"t"},"display_name":"d"}}}"#;

    #[test]
    fn v1_keeps_origin_membership_prev_state_but_drops_unsigned() {
        assert_eq!(
            redacted("1", MEMBER),
            r#"{"content":{"membership":"join"},"membership":"join","origin":"x","prev_state":[],"sender":"@a:x","state_key":"@a:x","type":"m.room.member"}"#
        );
    }

    #[test]
    fn v9_keeps_join_authorised_via_users_server_but_v8_does_not() {
        assert_eq!(redacted("8", MEMBER).split("\"membership\"").next().unwrap(), r#"{"content":{"#);
        assert!(redacted("9", MEMBER)
            .starts_with(r#"{"content":{"join_authorised_via_users_server":"@b:y","membership":"join"}"#));
    }

    #[test]
    fn v11_drops_origin_membership_prev_state_and_keeps_signed_third_party_invite() {
        assert_eq!(
            redacted("11", MEMBER),
            r#"{"content":{"join_authorised_via_users_server":"@b:y","membership":"join","third_party_invite":{"signed":{"token":"t"}}},"sender":"@a:x","state_key":"@a:x","type":"m.room.member"}"#
        );
    }

    #[test]
    fn aliases_content_survives_only_before_v6() {
        let aliases = r##"{"type":"m.room.aliases","content":{"aliases":["#a:x"]}}"##;
        assert_eq!(redacted("5", aliases), r##"{"content":{"aliases":["#a:x"]},"type":"m.room.aliases"}"##);
        assert_eq!(redacted("6", aliases), r#"{"content":{},"type":"m.room.aliases"}"#);
    }

    #[test]
    fn join_rules_keep_allow_from_v8() {
        let rules = r#"{"type":"m.room.join_rules","content":{"join_rule":"restricted","allow":[],"x":1}}"#;
        assert_eq!(redacted("7", rules), r#"{"content":{"join_rule":"restricted"},"type":"m.room.join_rules"}"#);
        assert_eq!(
            redacted("8", rules),
            r#"{"content":{"allow":[],"join_rule":"restricted"},"type":"m.room.join_rules"}"#
        );
    }

    #[test]
    fn create_keeps_all_content_from_v11() {
        let create = r#"{"type":"m.room.create","content":{"creator":"@a:x","room_version":"11","m.federate":false}}"#;
        assert_eq!(redacted("10", create), r#"{"content":{"creator":"@a:x"},"type":"m.room.create"}"#);
        assert_eq!(
            redacted("11", create),
            r#"{"content":{"creator":"@a:x","m.federate":false,"room_version":"11"},"type":"m.room.create"}"#
        );
    }

    #[test]
    fn power_levels_keep_invite_from_v11() {
        let pl =
            r#"{"type":"m.room.power_levels","content":{"ban":50,"invite":0,"notifications":{"room":50},"users":{}}}"#;
        assert_eq!(redacted("10", pl), r#"{"content":{"ban":50,"users":{}},"type":"m.room.power_levels"}"#);
        assert_eq!(redacted("11", pl), r#"{"content":{"ban":50,"invite":0,"users":{}},"type":"m.room.power_levels"}"#);
    }

    #[test]
    fn redaction_keeps_redacts_in_content_from_v11() {
        let redaction = r#"{"type":"m.room.redaction","redacts":"$a","content":{"redacts":"$a","reason":"spam"}}"#;
        assert_eq!(redacted("10", redaction), r#"{"content":{},"type":"m.room.redaction"}"#);
        assert_eq!(redacted("11", redaction), r#"{"content":{"redacts":"$a"},"type":"m.room.redaction"}"#);
    }

    #[test]
    fn history_visibility_keeps_its_key_and_messages_lose_everything() {
        let hv = r#"{"type":"m.room.history_visibility","content":{"history_visibility":"shared","x":1}}"#;
        assert_eq!(
            redacted("12", hv),
            r#"{"content":{"history_visibility":"shared"},"type":"m.room.history_visibility"}"#
        );
        assert_eq!(
            redacted("12", r#"{"type":"m.room.message","content":{"body":"hi"}}"#),
            r#"{"content":{},"type":"m.room.message"}"#
        );
    }

    #[test]
    fn drops_non_object_values_where_only_some_keys_survive() {
        let odd = r#"{"type":"m.room.member","content":{"membership":"join","third_party_invite":"not an object"}}"#;
        assert_eq!(redacted("11", odd), r#"{"content":{"membership":"join"},"type":"m.room.member"}"#);
        assert_eq!(redacted("11", r#"{"type":"m.room.message","content":"text"}"#), r#"{"type":"m.room.message"}"#);
    }

    #[test]
    fn keep_lists_are_sorted_for_binary_search() {
        fn check(keep: Keep) {
            if let Only(members) = keep {
                assert!(members.is_sorted_by(|a, b| a.0 < b.0), "{members:?}");
                members.iter().for_each(|(_, nested)| check(*nested));
            }
        }
        assert!(TOP_LEVEL_V1.is_sorted() && TOP_LEVEL_V11.is_sorted());
        let types = [
            "m.room.member",
            "m.room.create",
            "m.room.join_rules",
            "m.room.power_levels",
            "m.room.aliases",
            "m.room.history_visibility",
            "m.room.redaction",
            "m.room.message",
        ];
        for rules in
            [RedactionRules::V1, RedactionRules::V6, RedactionRules::V8, RedactionRules::V9, RedactionRules::V11]
        {
            for event_type in types {
                check(content_rule(rules, event_type));
            }
        }
    }

    #[test]
    fn set_redacted_because_adds_the_redaction_under_unsigned() {
        let mut event = parse_object(br#"{"type":"m.room.message","content":{}}"#).unwrap();
        set_redacted_because(&mut event, parse_object(br#"{"type":"m.room.redaction"}"#).unwrap());
        assert_eq!(
            to_bytes(&Value::Object(event)),
            br#"{"content":{},"type":"m.room.message","unsigned":{"redacted_because":{"type":"m.room.redaction"}}}"#
        );
    }
}
