//! Well-known state resolution scenarios, written from their descriptions:
//! ban vs power levels, topic reset, join rule evasion, offtopic power
//! levels, and MSC4297's problems A and B (which v2 gets wrong and v2.1 fixes).

use std::collections::HashMap;

use serde_json::json;
use tessera_statres::testing::{named_state, Room};
use tessera_statres::{resolve, EventIdx, RoomGraph, RoomRules};

const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const CHARLIE: &str = "@charlie:example.org";
const EVELYN: &str = "@evelyn:example.org";

type Named = HashMap<(String, String), String>;

fn resolve_forks(forks: &[&Room]) -> Named {
    let graph = forks[0].graph();
    let sets: Vec<Vec<EventIdx>> = forks.iter().map(|fork| fork.state_indices(&graph)).collect();
    named_state(&graph, &resolve(&graph, &sets))
}

fn resolve_sets(graph: &RoomGraph<tessera_statres::testing::Pdu>, sets: &[Vec<EventIdx>]) -> Named {
    named_state(graph, &resolve(graph, sets))
}

fn key(kind: &str, state_key: &str) -> (String, String) {
    (kind.to_owned(), state_key.to_owned())
}

fn v2_versions() -> impl Iterator<Item = &'static str> {
    RoomRules::all().iter().map(|r| r.id).filter(|&v| v != "1")
}

/// Alice (creator) and Bob joined, Bob at `bob_level`, public join rule.
fn base(version: &str, bob_level: i64) -> Room {
    let mut room = Room::create(version, ALICE, json!({}));
    room.member(ALICE, ALICE, "join").unwrap();
    room.send(ALICE, "m.room.join_rules", "", json!({ "join_rule": "public" })).unwrap();
    room.member(BOB, BOB, "join").unwrap();
    room.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: bob_level }))).unwrap();
    room
}

/// Power levels content with Alice at 100 where the room version lists her.
fn levels(room: &Room, mut users: serde_json::Value) -> serde_json::Value {
    if !room.rules.privileged_creators {
        users[ALICE] = json!(100);
    }
    json!({ "users": users })
}

#[test]
fn ban_beats_a_concurrent_power_levels_change_by_the_banned_user() {
    for v in v2_versions() {
        let mut room = base(v, 50);
        room.member(CHARLIE, CHARLIE, "join").unwrap();
        let mut banned = room.clone();
        let mut promoting = room.clone();
        let ban = banned.member(ALICE, BOB, "ban").unwrap();
        promoting.send(BOB, "m.room.power_levels", "", levels(&room, json!({ BOB: 50, CHARLIE: 50 }))).unwrap();
        let resolved = resolve_forks(&[&banned, &promoting]);
        assert_eq!(resolved[&key("m.room.member", BOB)], ban, "v{v}");
        assert_eq!(
            resolved[&key("m.room.power_levels", "")],
            room.state_id("m.room.power_levels", "").unwrap(),
            "v{v}: Bob's change must not survive his ban"
        );
    }
}

#[test]
fn topic_is_not_reset_by_a_fork_from_a_banned_moderator() {
    for v in v2_versions() {
        let mut room = base(v, 50);
        let first_topic = room.send(ALICE, "m.room.topic", "", json!({ "topic": "T1" })).unwrap();
        let mut banned = room.clone();
        let mut rogue = room.clone();
        banned.member(ALICE, BOB, "ban").unwrap();
        rogue.send(BOB, "m.room.topic", "", json!({ "topic": "T2" })).unwrap();
        let resolved = resolve_forks(&[&banned, &rogue]);
        assert_eq!(resolved[&key("m.room.topic", "")], first_topic, "v{v}");
    }
}

#[test]
fn join_during_a_concurrent_switch_to_invite_only_is_not_let_in() {
    for v in v2_versions() {
        let room = base(v, 0);
        let mut closed = room.clone();
        let mut evading = room.clone();
        let invite_only = closed.send(ALICE, "m.room.join_rules", "", json!({ "join_rule": "invite" })).unwrap();
        evading.member(EVELYN, EVELYN, "join").unwrap();
        let resolved = resolve_forks(&[&closed, &evading]);
        assert_eq!(resolved[&key("m.room.join_rules", "")], invite_only, "v{v}");
        assert!(!resolved.contains_key(&key("m.room.member", EVELYN)), "v{v}: Evelyn evaded the join rule");
    }
}

#[test]
fn demoted_moderator_cannot_promote_others_concurrently() {
    for v in v2_versions() {
        let mut room = base(v, 50);
        room.member(CHARLIE, CHARLIE, "join").unwrap();
        let mut demoting = room.clone();
        let mut offtopic = room.clone();
        let demotion = demoting.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: 0 }))).unwrap();
        offtopic.send(BOB, "m.room.power_levels", "", levels(&room, json!({ BOB: 50, CHARLIE: 50 }))).unwrap();
        let resolved = resolve_forks(&[&demoting, &offtopic]);
        assert_eq!(resolved[&key("m.room.power_levels", "")], demotion, "v{v}");
    }
}

#[test]
fn identical_forks_resolve_to_their_own_state() {
    for v in v2_versions() {
        let room = base(v, 50);
        let resolved = resolve_forks(&[&room, &room]);
        let expected: Named = room.state.iter().map(|(key, pdu)| (key.clone(), pdu.event_id.clone())).collect();
        assert_eq!(resolved, expected, "v{v}");
    }
}

/// MSC4297 problem A: a partial-sync state set holds an outdated join rules
/// event; both sets agree Alice (who set both join rules) has left since.
/// v2 replays the join rules on top of "Alice left" and drops both; v2.1
/// replays them on their auth chains and keeps the latest.
#[test]
fn outdated_join_rules_in_one_state_set_are_not_lost_in_v12_but_are_in_v11() {
    for (v, expect_kept) in [("11", false), ("12", true)] {
        let mut room = base(v, 0);
        let old_rules = room.state_id("m.room.join_rules", "").unwrap().to_owned();
        let new_rules = room.send(ALICE, "m.room.join_rules", "", json!({ "join_rule": "invite" })).unwrap();
        room.member(ALICE, ALICE, "leave").unwrap();
        let graph = room.graph();
        let correct = room.state_indices(&graph);
        let outdated: Vec<EventIdx> = correct
            .iter()
            .map(|&idx| if graph.event(idx).event_id == new_rules { graph.index_of(&old_rules).unwrap() } else { idx })
            .collect();
        let resolved = resolve_sets(&graph, &[correct, outdated]);
        let join_rules = resolved.get(&key("m.room.join_rules", ""));
        if expect_kept {
            assert_eq!(join_rules, Some(&new_rules), "v{v}");
        } else {
            assert_eq!(join_rules, None, "v{v}: v2 is expected to reset the join rules here");
        }
    }
}

/// MSC4297 problem B: Alice promotes Bob (PL1), Bob promotes Charlie (PL2);
/// a partial-sync state set still holds PL0. PL1 is in both auth chains, so
/// v2 leaves it out of the full conflicted set and rejects PL2; v2.1 adds it
/// through the conflicted state subgraph.
#[test]
fn promotion_chain_survives_an_outdated_power_levels_state_in_v12_only() {
    for (v, expect_latest) in [("11", false), ("12", true)] {
        let mut room = base(v, 0);
        let pl0 = room.state_id("m.room.power_levels", "").unwrap().to_owned();
        room.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: 50 }))).unwrap();
        room.member(CHARLIE, CHARLIE, "join").unwrap();
        let pl2 = room.send(BOB, "m.room.power_levels", "", levels(&room, json!({ BOB: 50, CHARLIE: 50 }))).unwrap();
        let graph = room.graph();
        let correct = room.state_indices(&graph);
        let outdated: Vec<EventIdx> = correct
            .iter()
            .map(|&idx| if graph.event(idx).event_id == pl2 { graph.index_of(&pl0).unwrap() } else { idx })
            .collect();
        let resolved = resolve_sets(&graph, &[correct, outdated]);
        let expected = if expect_latest { &pl2 } else { &pl0 };
        assert_eq!(&resolved[&key("m.room.power_levels", "")], expected, "v{v}");
    }
}

// Room v1: passes over power levels, join rules, members, then the rest,
// ordered by depth (then SHA-1 of the event ID).

#[test]
fn v1_keeps_a_key_only_one_state_set_holds_even_if_its_sender_was_demoted() {
    let room = base("1", 50);
    let mut topic = room.clone();
    let mut demoting = room.clone();
    let bob_topic = topic.send(BOB, "m.room.topic", "", json!({ "topic": "Bob's" })).unwrap();
    let demotion = demoting.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: 0 }))).unwrap();
    let resolved = resolve_forks(&[&topic, &demoting]);
    assert_eq!(resolved[&key("m.room.power_levels", "")], demotion);
    assert_eq!(resolved[&key("m.room.topic", "")], bob_topic, "v1 never re-checks unconflicted state");
    // Room v2 treats the missing key as a conflict and re-checks the topic.
    let room = base("2", 50);
    let mut topic = room.clone();
    let mut demoting = room.clone();
    topic.send(BOB, "m.room.topic", "", json!({ "topic": "Bob's" })).unwrap();
    demoting.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: 0 }))).unwrap();
    assert!(!resolve_forks(&[&topic, &demoting]).contains_key(&key("m.room.topic", "")));
}

#[test]
fn v1_deeper_power_levels_from_a_demoted_sender_do_not_replace_the_demotion() {
    let room = base("1", 50);
    let mut demoting = room.clone();
    let mut bobs = room.clone();
    let demotion = demoting.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: 0 }))).unwrap();
    bobs.send(BOB, "m.room.topic", "", json!({ "topic": "deeper" })).unwrap();
    let mut content = levels(&room, json!({ BOB: 50 }));
    content["events"] = json!({ "m.room.name": 50 });
    bobs.send(BOB, "m.room.power_levels", "", content).unwrap();
    let resolved = resolve_forks(&[&demoting, &bobs]);
    assert_eq!(resolved[&key("m.room.power_levels", "")], demotion);
}

#[test]
fn v1_deeper_authorised_power_levels_replace_shallower_ones() {
    let room = base("1", 50);
    let mut bobs = room.clone();
    let mut demoting = room.clone();
    let mut content = levels(&room, json!({ BOB: 50 }));
    content["events"] = json!({ "m.room.name": 50 });
    bobs.send(BOB, "m.room.power_levels", "", content).unwrap();
    demoting.send(ALICE, "m.room.topic", "", json!({ "topic": "deeper" })).unwrap();
    let demotion = demoting.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: 0 }))).unwrap();
    let resolved = resolve_forks(&[&bobs, &demoting]);
    assert_eq!(resolved[&key("m.room.power_levels", "")], demotion);
}

#[test]
fn v1_deepest_topic_wins_unless_its_sender_lost_the_power_to_set_it() {
    let room = base("1", 50);
    let mut shallow = room.clone();
    let mut deep = room.clone();
    let alice_topic = shallow.send(ALICE, "m.room.topic", "", json!({ "topic": "A" })).unwrap();
    deep.send(BOB, "org.example.note", "n", json!({})).unwrap();
    let bob_topic = deep.send(BOB, "m.room.topic", "", json!({ "topic": "B" })).unwrap();
    assert_eq!(resolve_forks(&[&shallow, &deep])[&key("m.room.topic", "")], bob_topic);
    shallow.send(ALICE, "m.room.power_levels", "", levels(&room, json!({ BOB: 0 }))).unwrap();
    assert_eq!(resolve_forks(&[&shallow, &deep])[&key("m.room.topic", "")], alice_topic);
}

#[test]
fn malformed_power_levels_in_a_state_set_are_rejected_not_panicked() {
    for v in RoomRules::all().iter().map(|r| r.id) {
        let room = base(v, 50);
        let mut graph = room.graph();
        let original = room.state_id("m.room.power_levels", "").unwrap().to_owned();
        let malformed = room.draft(ALICE, "m.room.power_levels", Some(""), json!({ "users": [1], "ban": {} }));
        let malformed = graph.insert(malformed).unwrap();
        let good = room.state_indices(&graph);
        let bad: Vec<EventIdx> =
            good.iter().map(|&e| if graph.event(e).event_id == original { malformed } else { e }).collect();
        let resolved = resolve_sets(&graph, &[good, bad]);
        assert_eq!(resolved[&key("m.room.power_levels", "")], original, "v{v}");
    }
}
