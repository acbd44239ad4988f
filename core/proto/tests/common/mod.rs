//! Generators shared by the property and differential tests.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Map, Value as Json};
use tessera_proto::room_version::{RoomVersionRules, STABLE};

/// `cases` cases, without failure files: proptest's default places them by
/// looking for a `lib.rs` or `main.rs` in a directory above the test file,
/// and the crate's `src/lib.rs` is beside `tests/`, not above it, so it
/// would warn and fall back to a path next to the source file. A failure
/// prints its minimal case instead.
pub fn config(cases: u32) -> Config {
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// Arbitrary JSON that canonical JSON can hold, with any Unicode in strings.
pub fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(|i| json!(i)),
        any::<String>().prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A realistic-shaped event of one of the types redaction treats specially,
/// with arbitrary extra content and top-level keys.
pub fn event(version: &'static str) -> impl Strategy<Value = Json> {
    let typed_content = prop_oneof![
        ((any::<String>(), json_value())
            .prop_map(|(body, extra)| json!({"msgtype": "m.text", "body": body, "extra": extra})))
        .prop_map(|content| ("m.room.message", content)),
        ((prop::sample::select(vec!["join", "invite", "leave", "ban", "knock"]), any::<bool>(), any::<String>())
            .prop_map(|(membership, via, name)| {
                let mut c = json!({"membership": membership, "displayname": name});
                if via {
                    c["join_authorised_via_users_server"] = json!("@auth:other.example");
                    c["third_party_invite"] =
                        json!({"signed": {"token": name, "mxid": "@u:example.org"}, "display_name": "x"});
                }
                c
            }))
        .prop_map(|content| ("m.room.member", content)),
        ((0i64..100, json_value()).prop_map(|(level, extra)| json!({
            "ban": level, "invite": level, "kick": 50, "redact": 50, "events_default": 0, "state_default": 50,
            "users_default": 0, "users": {"@u:example.org": 100}, "events": {"m.room.name": level},
            "notifications": {"room": 50}, "extra": extra
        })))
        .prop_map(|content| ("m.room.power_levels", content)),
        (json_value().prop_map(
            |extra| json!({"creator": "@u:example.org", "room_version": "9", "m.federate": true, "x": extra})
        ))
        .prop_map(|content| ("m.room.create", content)),
        (json_value().prop_map(
            |extra| json!({"join_rule": "restricted", "allow": [{"type": "m.room_membership"}], "x": extra})
        ))
        .prop_map(|content| ("m.room.join_rules", content)),
        (json_value().prop_map(|extra| json!({"history_visibility": "shared", "x": extra})))
            .prop_map(|content| ("m.room.history_visibility", content)),
        (json_value().prop_map(|extra| json!({"redacts": "$abc", "reason": extra})))
            .prop_map(|content| ("m.room.redaction", content)),
        (json_value().prop_map(|extra| json!({"aliases": ["#a:example.org"], "x": extra})))
            .prop_map(|content| ("m.room.aliases", content)),
    ];
    (typed_content, 0i64..(1 << 45), 1i64..1000, json_value(), any::<bool>()).prop_map(
        move |((event_type, content), ts, depth, extra, state)| {
            let mut event = json!({
                "type": event_type, "content": content, "sender": "@u:example.org",
                "room_id": "!room:example.org", "origin": "example.org", "origin_server_ts": ts, "depth": depth,
                "prev_events": ["$prev"], "auth_events": ["$auth"], "membership": "join", "prev_state": [],
                "unsigned": {"age": 5, "extra": extra.clone()}, "redacts": "$abc", "extra_top": extra
            });
            if state {
                event["state_key"] = json!("");
            }
            if matches!(version, "1" | "2") {
                event["event_id"] = json!("$local:example.org");
            }
            event
        },
    )
}

pub fn any_version() -> impl Strategy<Value = &'static RoomVersionRules> {
    prop::sample::select(STABLE.iter().collect::<Vec<_>>())
}
