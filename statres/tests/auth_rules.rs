//! The authorisation rules, rule by rule, accepting and rejecting, for every
//! room version the rule exists in. Each test is named after the failure it
//! guards against.

use serde_json::{json, Value};
use tessera_statres::testing::{Pdu, Room};
use tessera_statres::{check_auth, check_auth_events, Event, RoomRules};

const ALICE: &str = "@alice:example.org";
const BOB: &str = "@bob:example.org";
const CAROL: &str = "@carol:example.org";
const EVE: &str = "@eve:evil.example";

fn versions() -> impl Iterator<Item = &'static str> {
    RoomRules::all().iter().map(|rules| rules.id)
}

fn rules(version: &str) -> &'static RoomRules {
    RoomRules::for_version(version).unwrap()
}

/// A room where Alice created and joined, power levels give Alice 100 (she
/// is infinite as creator in v12) and the join rule is `join_rule`.
fn room(version: &str, join_rule: &str) -> Room {
    let mut room = Room::create(version, ALICE, json!({}));
    room.member(ALICE, ALICE, "join").unwrap();
    let users = if rules(version).privileged_creators { json!({}) } else { json!({ ALICE: 100 }) };
    room.send(ALICE, "m.room.power_levels", "", json!({ "users": users })).unwrap();
    room.send(ALICE, "m.room.join_rules", "", json!({ "join_rule": join_rule })).unwrap();
    room
}

fn check(room: &Room, pdu: &Pdu) -> Result<(), &'static str> {
    check_auth(room.rules, pdu, &room.state).map_err(|r| r.0)
}

fn membership(room: &Room, sender: &str, target: &str, membership: &str) -> Result<(), &'static str> {
    check(room, &room.draft(sender, "m.room.member", Some(target), json!({ "membership": membership })))
}

fn set_power(room: &mut Room, users: Value) {
    let mut users = users;
    if !room.rules.privileged_creators {
        users[ALICE] = json!(100);
    }
    room.send(ALICE, "m.room.power_levels", "", json!({ "users": users })).unwrap();
}

// Rule 1: m.room.create.

#[test]
fn create_with_prev_events_is_rejected() {
    for v in versions() {
        let room = Room::create(v, ALICE, json!({}));
        let mut create = room.log()[0].clone();
        assert_eq!(check(&room, &create), Ok(()), "v{v}");
        create.prev_events = vec!["$x:example.org".into()];
        assert_eq!(check(&room, &create), Err("m.room.create has prev_events"), "v{v}");
    }
}

#[test]
fn create_with_room_id_of_another_domain_is_rejected_before_v12_and_any_room_id_in_v12() {
    for v in versions() {
        let room = Room::create(v, ALICE, json!({}));
        let mut create = room.log()[0].clone();
        if rules(v).create_in_auth_events {
            create.room_id = Some("!room:other.example".into());
            assert_eq!(check(&room, &create), Err("m.room.create room ID domain is not the sender's"), "v{v}");
        } else {
            create.room_id = Some("!room:example.org".into());
            assert_eq!(check(&room, &create), Err("m.room.create has a room_id"), "v{v}");
        }
    }
}

#[test]
fn create_with_unknown_room_version_is_rejected() {
    for v in versions() {
        let room = Room::create(v, ALICE, json!({}));
        let mut create = room.log()[0].clone();
        create.content["room_version"] = json!("99");
        assert_eq!(check(&room, &create), Err("m.room.create has an unrecognised room_version"), "v{v}");
        create.content["room_version"] = json!(11);
        assert!(check(&room, &create).is_err(), "v{v}: non-string room version");
    }
}

#[test]
fn create_without_creator_is_rejected_until_v11() {
    for v in versions() {
        let room = Room::create(v, ALICE, json!({}));
        let mut create = room.log()[0].clone();
        create.content.as_object_mut().unwrap().remove("creator");
        let expected = if rules(v).creator_field { Err("m.room.create has no creator") } else { Ok(()) };
        assert_eq!(check(&room, &create), expected, "v{v}");
    }
}

#[test]
fn additional_creators_that_are_not_user_ids_are_rejected_in_v12() {
    let room = Room::create("12", ALICE, json!({}));
    let mut create = room.log()[0].clone();
    for bad in [json!("@bob:example.org"), json!([1]), json!(["bob"]), json!(["@:example.org"])] {
        create.content["additional_creators"] = bad.clone();
        assert_eq!(
            check(&room, &create),
            Err("m.room.create additional_creators is not an array of user IDs"),
            "{bad}"
        );
    }
    create.content["additional_creators"] = json!([BOB]);
    assert_eq!(check(&room, &create), Ok(()));
    // Before v12 the property means nothing.
    let room = Room::create("11", ALICE, json!({}));
    let mut create = room.log()[0].clone();
    create.content["additional_creators"] = json!([1]);
    assert_eq!(check(&room, &create), Ok(()));
}

// Rule 2 (v12): the room ID is the create event's.

#[test]
fn event_whose_room_id_is_not_the_create_event_is_rejected_in_v12() {
    let room = room("12", "public");
    let mut pdu = room.draft(ALICE, "m.room.topic", Some(""), json!({ "topic": "x" }));
    assert_eq!(check(&room, &pdu), Ok(()));
    pdu.room_id = Some("!other".into());
    assert_eq!(check(&room, &pdu), Err("room ID is not the ID of an accepted m.room.create event"));
}

// Rule 3: the auth events themselves.

fn refs(events: &[Pdu]) -> Vec<&Pdu> {
    events.iter().collect()
}

fn auth_events_of(room: &Room, pdu: &Pdu) -> Vec<Pdu> {
    let log = room.log();
    pdu.auth_events.iter().map(|id| log.iter().find(|e| &e.event_id == id).unwrap().clone()).collect()
}

#[test]
fn auth_events_that_break_the_selection_rules_are_rejected() {
    for v in versions() {
        let room = room(v, "public");
        let pdu = room.draft(ALICE, "m.room.topic", Some(""), json!({ "topic": "x" }));
        let auth = auth_events_of(&room, &pdu);
        assert_eq!(check_auth_events(room.rules, &pdu, &refs(&auth)), Ok(()), "v{v}");

        let mut duplicated = auth.clone();
        duplicated.push(auth[0].clone());
        assert_eq!(
            check_auth_events(room.rules, &pdu, &refs(&duplicated)).map_err(|r| r.0),
            Err("duplicate (type, state_key) in auth_events"),
            "v{v}"
        );

        let join_rules = room.state[&("m.room.join_rules".to_owned(), String::new())].clone();
        let mut unselected = auth.clone();
        unselected.push(join_rules);
        assert_eq!(
            check_auth_events(room.rules, &pdu, &refs(&unselected)).map_err(|r| r.0),
            Err("auth event not selected by the auth events selection algorithm"),
            "v{v}"
        );

        let mut rejected = auth.clone();
        rejected[0].rejected = true;
        assert_eq!(
            check_auth_events(room.rules, &pdu, &refs(&rejected)).map_err(|r| r.0),
            Err("auth event was rejected"),
            "v{v}"
        );

        let mut elsewhere = auth.clone();
        let last = elsewhere.len() - 1;
        elsewhere[last].room_id = Some("!elsewhere:example.org".into());
        assert_eq!(
            check_auth_events(room.rules, &pdu, &refs(&elsewhere)).map_err(|r| r.0),
            Err("auth event is in another room"),
            "v{v}"
        );

        let create = room.log()[0].clone();
        let without_create: Vec<Pdu> = auth.iter().filter(|e| e.kind != "m.room.create").cloned().collect();
        let with_create: Vec<Pdu> = without_create.iter().cloned().chain([create]).collect();
        if rules(v).create_in_auth_events {
            assert_eq!(
                check_auth_events(room.rules, &pdu, &refs(&without_create)).map_err(|r| r.0),
                Err("no m.room.create among auth_events"),
                "v{v}"
            );
        } else {
            assert_eq!(
                check_auth_events(room.rules, &pdu, &refs(&with_create)).map_err(|r| r.0),
                Err("auth event not selected by the auth events selection algorithm"),
                "v{v}: create must not be cited in v12"
            );
        }
    }
}

// Rule 4: m.federate.

#[test]
fn unfederated_room_rejects_other_servers() {
    for v in versions() {
        let mut room = Room::create(v, ALICE, json!({ "m.federate": false }));
        room.member(ALICE, ALICE, "join").unwrap();
        room.send(ALICE, "m.room.join_rules", "", json!({ "join_rule": "public" })).unwrap();
        assert_eq!(membership(&room, BOB, BOB, "join"), Ok(()), "v{v}");
        assert_eq!(
            membership(&room, EVE, EVE, "join"),
            Err("room is not federated and sender is from another server"),
            "v{v}"
        );
    }
}

// v1–v5 rule 4: m.room.aliases.

#[test]
fn aliases_from_another_server_are_rejected_until_v6_only() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(EVE, EVE, "join").unwrap();
        let own = room.draft(EVE, "m.room.aliases", Some("evil.example"), json!({ "aliases": [] }));
        let other = room.draft(EVE, "m.room.aliases", Some("example.org"), json!({ "aliases": [] }));
        if rules(v).aliases_rule {
            assert_eq!(check(&room, &own), Ok(()), "v{v}");
            assert_eq!(check(&room, &other), Err("m.room.aliases state key is not the sender's server"), "v{v}");
        } else {
            // From v6 aliases are an ordinary state event: state_default 50 applies.
            assert_eq!(check(&room, &own), Err("sender's power level is below the event's required level"), "v{v}");
        }
    }
}

// Rule 5: m.room.member.

#[test]
fn member_event_without_membership_is_rejected() {
    for v in versions() {
        let room = room(v, "public");
        let pdu = room.draft(BOB, "m.room.member", Some(BOB), json!({}));
        assert_eq!(check(&room, &pdu), Err("m.room.member without a membership"), "v{v}");
        let pdu = room.draft(BOB, "m.room.member", Some(BOB), json!({ "membership": "dance" }));
        assert_eq!(check(&room, &pdu), Err("unknown membership"), "v{v}");
    }
}

#[test]
fn only_the_creator_joins_right_after_create() {
    for v in versions() {
        let room = Room::create(v, ALICE, json!({}));
        assert_eq!(membership(&room, ALICE, ALICE, "join"), Ok(()), "v{v}");
        assert_eq!(membership(&room, BOB, BOB, "join"), Err("join rule is invite and user is not invited"), "v{v}");
    }
}

#[test]
fn join_for_someone_else_or_while_banned_is_rejected() {
    for v in versions() {
        let mut room = room(v, "public");
        assert_eq!(membership(&room, BOB, BOB, "join"), Ok(()), "v{v}");
        assert_eq!(membership(&room, ALICE, BOB, "join"), Err("join sender is not the state key"), "v{v}");
        room.member(ALICE, BOB, "ban").unwrap();
        assert_eq!(membership(&room, BOB, BOB, "join"), Err("banned user may not join"), "v{v}");
    }
}

#[test]
fn invite_only_room_rejects_uninvited_joins() {
    for v in versions() {
        let mut room = room(v, "invite");
        assert_eq!(membership(&room, BOB, BOB, "join"), Err("join rule is invite and user is not invited"), "v{v}");
        room.member(ALICE, BOB, "invite").unwrap();
        assert_eq!(membership(&room, BOB, BOB, "join"), Ok(()), "v{v}");
    }
}

#[test]
fn knock_rules_apply_from_v7_and_knock_restricted_from_v10() {
    for v in versions() {
        let knocking = rules(v).knocking;
        let room = room(v, "knock");
        let expected = if knocking { Ok(()) } else { Err("unknown membership") };
        assert_eq!(membership(&room, BOB, BOB, "knock"), expected, "v{v}");
        if knocking {
            assert_eq!(membership(&room, ALICE, BOB, "knock"), Err("knock sender is not the state key"), "v{v}");
            assert_eq!(
                membership(&room, ALICE, ALICE, "knock"),
                Err("knocking user is banned, invited or joined"),
                "v{v}"
            );
            assert_eq!(membership(&room, BOB, BOB, "join"), Err("join rule is knock and user is not invited"), "v{v}");
            let public = self::room(v, "public");
            assert_eq!(membership(&public, BOB, BOB, "knock"), Err("join rule does not allow knocking"), "v{v}");
            let knock_restricted = self::room(v, "knock_restricted");
            let expected = if rules(v).knock_restricted { Ok(()) } else { Err("join rule does not allow knocking") };
            assert_eq!(membership(&knock_restricted, BOB, BOB, "knock"), expected, "v{v}");
        }
    }
}

#[test]
fn knocking_user_may_withdraw_but_not_before_v7() {
    for v in versions().filter(|v| rules(v).knocking) {
        let mut room = room(v, "knock");
        room.member(BOB, BOB, "knock").unwrap();
        assert_eq!(membership(&room, BOB, BOB, "leave"), Ok(()), "v{v}");
    }
}

fn restricted_join(room: &Room, authoriser: &str, signed_by: &[&str]) -> Result<(), &'static str> {
    let mut pdu = room.draft(
        BOB,
        "m.room.member",
        Some(BOB),
        json!({ "membership": "join", "join_authorised_via_users_server": authoriser }),
    );
    pdu.signed_by = signed_by.iter().map(|s| s.to_string()).collect();
    check(room, &pdu)
}

#[test]
fn restricted_join_needs_a_joined_authoriser_able_to_invite_and_its_signature() {
    for v in versions() {
        let mut room = room(v, "restricted");
        set_power(&mut room, json!({}));
        room.send(ALICE, "m.room.power_levels", "", {
            let mut content = json!({ "invite": 50, "users": {} });
            if !room.rules.privileged_creators {
                content["users"][ALICE] = json!(100);
            }
            content
        })
        .unwrap();
        if !rules(v).restricted_joins {
            assert_eq!(
                restricted_join(&room, ALICE, &["example.org"]),
                Err("join rule does not allow joining"),
                "v{v}"
            );
            continue;
        }
        assert_eq!(restricted_join(&room, ALICE, &["example.org"]), Ok(()), "v{v}");
        assert_eq!(
            restricted_join(&room, ALICE, &[]),
            Err("join_authorised_via_users_server's server did not sign the event"),
            "v{v}"
        );
        assert_eq!(
            restricted_join(&room, CAROL, &["example.org"]),
            Err("join authoriser is not a joined member able to invite"),
            "v{v}: authoriser not joined"
        );
        room.member(CAROL, CAROL, "join").unwrap_err(); // restricted: Carol cannot join alone
        let join = room.draft(
            CAROL,
            "m.room.member",
            Some(CAROL),
            json!({ "membership": "join", "join_authorised_via_users_server": ALICE }),
        );
        room.send_pdu(join).unwrap();
        assert_eq!(
            restricted_join(&room, CAROL, &["example.org"]),
            Err("join authoriser is not a joined member able to invite"),
            "v{v}: authoriser below invite level"
        );
        let no_authoriser = room.draft(BOB, "m.room.member", Some(BOB), json!({ "membership": "join" }));
        assert_eq!(
            check(&room, &no_authoriser),
            Err("restricted join without join_authorised_via_users_server"),
            "v{v}"
        );
    }
}

#[test]
fn invite_needs_a_joined_inviter_with_invite_level_and_an_unbanned_target() {
    for v in versions() {
        let mut room = room(v, "invite");
        assert_eq!(membership(&room, ALICE, BOB, "invite"), Ok(()), "v{v}");
        assert_eq!(membership(&room, CAROL, BOB, "invite"), Err("inviter is not joined"), "v{v}");
        room.member(ALICE, CAROL, "invite").unwrap();
        room.member(CAROL, CAROL, "join").unwrap();
        room.send(ALICE, "m.room.power_levels", "", {
            let mut content = json!({ "invite": 50, "users": {} });
            if !room.rules.privileged_creators {
                content["users"][ALICE] = json!(100);
            }
            content
        })
        .unwrap();
        assert_eq!(
            membership(&room, CAROL, BOB, "invite"),
            Err("inviter's power level is below the invite level"),
            "v{v}"
        );
        room.member(ALICE, BOB, "ban").unwrap();
        assert_eq!(membership(&room, ALICE, BOB, "invite"), Err("invitee is joined or banned"), "v{v}");
    }
}

#[test]
fn leave_kick_and_unban_need_the_right_levels() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        room.member(CAROL, CAROL, "join").unwrap();
        assert_eq!(membership(&room, BOB, BOB, "leave"), Ok(()), "v{v}: own leave");
        assert_eq!(
            membership(&room, EVE, EVE, "leave"),
            Err("user leaving is not invited, joined or knocking"),
            "v{v}"
        );
        assert_eq!(
            membership(&room, BOB, CAROL, "leave"),
            Err("kicker's power level is below the kick level or the target's"),
            "v{v}"
        );
        assert_eq!(membership(&room, ALICE, CAROL, "leave"), Ok(()), "v{v}: kick");
        assert_eq!(membership(&room, EVE, CAROL, "leave"), Err("kicker is not joined"), "v{v}");
        // Equal power may not kick.
        set_power(&mut room, json!({ BOB: 50, CAROL: 50 }));
        assert_eq!(
            membership(&room, BOB, CAROL, "leave"),
            Err("kicker's power level is below the kick level or the target's"),
            "v{v}"
        );
        // Unban needs the ban level too.
        room.member(ALICE, EVE, "ban").unwrap();
        room.send(ALICE, "m.room.power_levels", "", {
            let mut content = json!({ "kick": 50, "ban": 70, "users": { BOB: 60 } });
            if !room.rules.privileged_creators {
                content["users"][ALICE] = json!(100);
            }
            content
        })
        .unwrap();
        assert_eq!(membership(&room, BOB, EVE, "leave"), Err("unbanner's power level is below the ban level"), "v{v}");
        assert_eq!(membership(&room, ALICE, EVE, "leave"), Ok(()), "v{v}: unban");
    }
}

#[test]
fn ban_needs_ban_level_and_more_power_than_the_target() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        assert_eq!(membership(&room, ALICE, BOB, "ban"), Ok(()), "v{v}");
        assert_eq!(
            membership(&room, BOB, ALICE, "ban"),
            Err("banner's power level is below the ban level or the target's"),
            "v{v}"
        );
        assert_eq!(membership(&room, CAROL, BOB, "ban"), Err("banner is not joined"), "v{v}");
    }
}

// Rules 6–9.

#[test]
fn events_from_non_members_are_rejected() {
    for v in versions() {
        let room = room(v, "public");
        let pdu = room.draft(BOB, "m.room.message", None, json!({ "body": "hi" }));
        assert_eq!(check(&room, &pdu), Err("sender is not joined to the room"), "v{v}");
    }
}

#[test]
fn third_party_invite_event_needs_invite_level() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        let pdu = room.draft(BOB, "m.room.third_party_invite", Some("tok"), json!({ "public_key": "AAAA" }));
        assert_eq!(check(&room, &pdu), Ok(()), "v{v}: invite level defaults to 0");
        room.send(ALICE, "m.room.power_levels", "", {
            let mut content = json!({ "invite": 10, "users": {} });
            if !room.rules.privileged_creators {
                content["users"][ALICE] = json!(100);
            }
            content
        })
        .unwrap();
        let pdu = room.draft(BOB, "m.room.third_party_invite", Some("tok"), json!({ "public_key": "AAAA" }));
        assert_eq!(check(&room, &pdu), Err("sender's power level is below the invite level"), "v{v}");
    }
}

#[test]
fn events_below_their_required_level_are_rejected() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        let topic = room.draft(BOB, "m.room.topic", Some(""), json!({ "topic": "x" }));
        assert_eq!(check(&room, &topic), Err("sender's power level is below the event's required level"), "v{v}");
        let message = room.draft(BOB, "m.room.message", None, json!({ "body": "x" }));
        assert_eq!(check(&room, &message), Ok(()), "v{v}");
    }
}

#[test]
fn state_keyed_to_another_user_is_rejected() {
    for v in versions() {
        let room = room(v, "public");
        let own = room.draft(ALICE, "org.example.profile", Some(ALICE), json!({}));
        let other = room.draft(ALICE, "org.example.profile", Some(BOB), json!({}));
        assert_eq!(check(&room, &own), Ok(()), "v{v}");
        assert_eq!(check(&room, &other), Err("state key is a user ID other than the sender"), "v{v}");
    }
}

// Rule 10: m.room.power_levels.

fn power_levels(room: &Room, sender: &str, content: Value) -> Result<(), &'static str> {
    check(room, &room.draft(sender, "m.room.power_levels", Some(""), content))
}

fn with_alice(room: &Room, mut content: Value) -> Value {
    if !room.rules.privileged_creators {
        content["users"][ALICE] = json!(100);
    }
    content
}

#[test]
fn raising_levels_above_own_power_is_rejected() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        set_power(&mut room, json!({ BOB: 50 }));
        let content = with_alice(&room, json!({ "users": { BOB: 50 }, "ban": 60 }));
        assert_eq!(power_levels(&room, BOB, content), Err("power levels change a level above the sender's"), "v{v}");
        let content = with_alice(&room, json!({ "users": { BOB: 50 }, "kick": 40 }));
        assert_eq!(power_levels(&room, BOB, content), Ok(()), "v{v}");
        let content = with_alice(&room, json!({ "users": { BOB: 50 }, "events": { "m.room.name": 51 } }));
        assert_eq!(
            power_levels(&room, BOB, content),
            Err("power levels change an event level above the sender's"),
            "v{v}"
        );
        let content = with_alice(&room, json!({ "users": { BOB: 51 } }));
        assert_eq!(
            power_levels(&room, BOB, content),
            Err("power levels change a user at or above the sender's level"),
            "v{v}"
        );
        let content = with_alice(&room, json!({ "users": { BOB: 10 } }));
        assert_eq!(power_levels(&room, BOB, content), Ok(()), "v{v}: demoting oneself");
    }
}

#[test]
fn demoting_a_peer_or_superior_is_rejected() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        room.member(CAROL, CAROL, "join").unwrap();
        set_power(&mut room, json!({ BOB: 50, CAROL: 50 }));
        let content = with_alice(&room, json!({ "users": { BOB: 50, CAROL: 0 } }));
        assert_eq!(
            power_levels(&room, BOB, content),
            Err("power levels change a user at or above the sender's level"),
            "v{v}"
        );
        let content = with_alice(&room, json!({ "users": { BOB: 0, CAROL: 50 } }));
        assert_eq!(power_levels(&room, ALICE, content), Ok(()), "v{v}");
    }
}

#[test]
fn notification_levels_are_guarded_from_v6() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        set_power(&mut room, json!({ BOB: 50 }));
        let content = with_alice(&room, json!({ "users": { BOB: 50 }, "notifications": { "room": 99 } }));
        let expected = if rules(v).notifications_levels {
            Err("power levels change an event level above the sender's")
        } else {
            Ok(())
        };
        assert_eq!(power_levels(&room, BOB, content), expected, "v{v}");
    }
}

#[test]
fn non_integer_power_levels_are_rejected_from_v10_and_users_always() {
    for v in versions() {
        let room = room(v, "public");
        let stringy = with_alice(&room, json!({ "users": {}, "ban": "50" }));
        let expected = if rules(v).integer_power_levels { Err("power level is not an integer") } else { Ok(()) };
        assert_eq!(power_levels(&room, ALICE, stringy), expected, "v{v}");
        let floaty_event = with_alice(&room, json!({ "users": {}, "events": { "m.room.name": 50.5 } }));
        let expected =
            if rules(v).integer_power_levels { Err("power levels map is not an object of integers") } else { Ok(()) };
        assert_eq!(power_levels(&room, ALICE, floaty_event), expected, "v{v}");
        let bad_user = with_alice(&room, json!({ "users": { "bob": 10 } }));
        assert_eq!(
            power_levels(&room, ALICE, bad_user),
            Err("power levels users is not an object of user IDs to integers"),
            "v{v}"
        );
        let bad_value = with_alice(&room, json!({ "users": { BOB: "ten" } }));
        assert_eq!(
            power_levels(&room, ALICE, bad_value),
            Err("power levels users is not an object of user IDs to integers"),
            "v{v}"
        );
        assert_eq!(power_levels(&room, ALICE, json!([])), Err("power levels content is not an object"), "v{v}");
    }
}

#[test]
fn stringy_levels_count_as_their_value_before_v10() {
    for v in versions().filter(|v| !rules(v).integer_power_levels) {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        room.send(ALICE, "m.room.power_levels", "", json!({ "users": { ALICE: "100", BOB: " +60 " }, "ban": "55" }))
            .unwrap();
        assert_eq!(
            membership(&room, BOB, ALICE, "ban"),
            Err("banner's power level is below the ban level or the target's")
        );
        room.member(CAROL, CAROL, "join").unwrap();
        assert_eq!(membership(&room, BOB, CAROL, "ban"), Ok(()), "v{v}: 60 >= 55");
    }
}

// v12: creators.

#[test]
fn v12_creators_cannot_be_listed_demoted_or_banned() {
    let mut room = Room::create("12", ALICE, json!({ "additional_creators": [CAROL] }));
    room.member(ALICE, ALICE, "join").unwrap();
    room.send(ALICE, "m.room.join_rules", "", json!({ "join_rule": "public" })).unwrap();
    room.member(BOB, BOB, "join").unwrap();
    room.member(CAROL, CAROL, "join").unwrap();
    assert_eq!(
        power_levels(&room, ALICE, json!({ "users": { ALICE: 100 } })),
        Err("power levels list a room creator in users")
    );
    assert_eq!(
        power_levels(&room, ALICE, json!({ "users": { CAROL: 0 } })),
        Err("power levels list a room creator in users")
    );
    room.send(ALICE, "m.room.power_levels", "", json!({ "users": { BOB: 9_007_199_254_740_991_i64 } })).unwrap();
    assert_eq!(
        membership(&room, BOB, CAROL, "ban"),
        Err("banner's power level is below the ban level or the target's")
    );
    assert_eq!(membership(&room, CAROL, BOB, "ban"), Ok(()), "an additional creator outranks any level");
}

#[test]
fn before_v12_additional_creators_have_no_power() {
    let mut room = Room::create("11", ALICE, json!({ "additional_creators": [CAROL] }));
    room.member(ALICE, ALICE, "join").unwrap();
    room.send(ALICE, "m.room.join_rules", "", json!({ "join_rule": "public" })).unwrap();
    room.member(BOB, BOB, "join").unwrap();
    room.member(CAROL, CAROL, "join").unwrap();
    assert_eq!(
        membership(&room, CAROL, BOB, "ban"),
        Err("banner's power level is below the ban level or the target's")
    );
}

// v1–v2 rule 11: redactions.

#[test]
fn redaction_of_another_servers_event_needs_redact_level_in_v1_and_v2_only() {
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        room.member(EVE, EVE, "join").unwrap();
        let alice_msg = room.send(ALICE, "org.example.note", "n", json!({})).unwrap();
        let mut own_server = room.draft(BOB, "m.room.redaction", None, json!({}));
        own_server.redacts = Some(alice_msg.clone());
        let mut other_server = room.draft(EVE, "m.room.redaction", None, json!({}));
        other_server.redacts = Some(alice_msg);
        assert_eq!(check(&room, &own_server), Ok(()), "v{v}");
        let expected = if rules(v).redaction_rule { Err("sender may not redact this event") } else { Ok(()) };
        assert_eq!(check(&room, &other_server), expected, "v{v}");
    }
}

#[test]
fn event_without_create_in_state_is_rejected() {
    let room = room("11", "public");
    let pdu = room.draft(ALICE, "m.room.topic", Some(""), json!({}));
    let empty = std::collections::HashMap::<(String, String), Pdu>::new();
    assert_eq!(check_auth(room.rules, &pdu, &empty).map_err(|r| r.0), Err("no m.room.create event in the room state"));
    assert_eq!(pdu.sender(), ALICE);
}

// Rule 5.4.1: third-party invites.

mod third_party {
    use super::*;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::{Signer, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// A room where Alice published a third-party invite with `token`.
    fn room_with_invite(v: &str, public_keys: Value) -> Room {
        let mut room = room(v, "invite");
        room.send(ALICE, "m.room.third_party_invite", "tok", public_keys).unwrap();
        room
    }

    fn signed(mxid: &str, token: &str, key: &SigningKey) -> Value {
        let message = format!(r#"{{"mxid":"{mxid}","token":"{token}"}}"#);
        let signature = STANDARD_NO_PAD.encode(key.sign(message.as_bytes()).to_bytes());
        json!({ "mxid": mxid, "token": token, "signatures": { "id.example": { "ed25519:0": signature } } })
    }

    fn invite(room: &Room, sender: &str, target: &str, signed: Value) -> Result<(), &'static str> {
        let content = json!({
            "membership": "invite",
            "third_party_invite": { "display_name": "b…", "signed": signed },
        });
        check(room, &room.draft(sender, "m.room.member", Some(target), content))
    }

    fn public_key() -> String {
        STANDARD_NO_PAD.encode(key().verifying_key().to_bytes())
    }

    #[test]
    fn correctly_signed_third_party_invite_is_accepted_by_either_key_field() {
        for v in versions() {
            let room = room_with_invite(v, json!({ "public_key": public_key() }));
            assert_eq!(invite(&room, ALICE, BOB, signed(BOB, "tok", &key())), Ok(()), "v{v}");
            let room =
                room_with_invite(v, json!({ "public_key": "AAAA", "public_keys": [{ "public_key": public_key() }] }));
            assert_eq!(invite(&room, ALICE, BOB, signed(BOB, "tok", &key())), Ok(()), "v{v}");
        }
    }

    #[test]
    fn forged_or_mismatched_third_party_invite_is_rejected() {
        for v in versions() {
            let mut room = room_with_invite(v, json!({ "public_key": public_key() }));
            let other_key = SigningKey::from_bytes(&[9; 32]);
            assert_eq!(
                invite(&room, ALICE, BOB, signed(BOB, "tok", &other_key)),
                Err("no signature in signed matches a public key of the third-party invite"),
                "v{v}"
            );
            assert_eq!(
                invite(&room, ALICE, BOB, signed(CAROL, "tok", &key())),
                Err("third_party_invite mxid is not the state key"),
                "v{v}"
            );
            assert_eq!(
                invite(&room, ALICE, BOB, signed(BOB, "nope", &key())),
                Err("no m.room.third_party_invite for the token"),
                "v{v}"
            );
            assert_eq!(
                invite(&room, ALICE, BOB, json!({ "mxid": BOB })),
                Err("third_party_invite signed lacks mxid or token"),
                "v{v}"
            );
            room.member(ALICE, CAROL, "invite").unwrap();
            room.member(CAROL, CAROL, "join").unwrap();
            assert_eq!(
                invite(&room, CAROL, BOB, signed(BOB, "tok", &key())),
                Err("invite sender is not the third-party invite's sender"),
                "v{v}"
            );
            room.member(ALICE, BOB, "ban").unwrap();
            assert_eq!(
                invite(&room, ALICE, BOB, signed(BOB, "tok", &key())),
                Err("third-party invite of a banned user"),
                "v{v}"
            );
            let content = json!({ "membership": "invite", "third_party_invite": {} });
            let pdu = room.draft(ALICE, "m.room.member", Some(CAROL), content);
            assert_eq!(check(&room, &pdu), Err("third_party_invite has no signed"), "v{v}");
        }
    }
}

// Malformed content: always a rejection or an acceptance, never a panic.

fn malformed_values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!("x"),
        json!([]),
        json!([null, {}]),
        json!({}),
        json!({ "": null }),
        json!({ "users": { "@a:b": [1] } }),
        json!({ "users": [] }),
        json!({ "events": { "m.room.name": "ten" } }),
        json!({ "ban": {}, "kick": [], "users_default": "9999999999999999999999" }),
        json!({ "membership": 5 }),
        json!({ "membership": "join", "join_authorised_via_users_server": 7 }),
        json!({ "membership": "invite", "third_party_invite": { "signed": { "mxid": 1, "token": [] } } }),
        json!({ "membership": "invite", "third_party_invite": { "signed": { "mxid": BOB, "token": "tok", "signatures": [] } } }),
        json!({ "join_rule": ["public"] }),
        json!({ "room_version": {}, "creator": 1, "additional_creators": {} }),
        json!({ "public_key": 1, "public_keys": [1, { "public_key": {} }] }),
    ]
}

#[test]
fn malformed_content_never_panics_the_auth_rules() {
    let kinds = [
        ("m.room.create", ""),
        ("m.room.member", BOB),
        ("m.room.power_levels", ""),
        ("m.room.join_rules", ""),
        ("m.room.third_party_invite", "tok"),
        ("m.room.redaction", ""),
        ("m.room.aliases", "example.org"),
    ];
    for v in versions() {
        let mut room = room(v, "public");
        room.member(BOB, BOB, "join").unwrap();
        room.send(ALICE, "m.room.third_party_invite", "tok", json!({ "public_key": "AAAA" })).unwrap();
        for (kind, state_key) in kinds {
            for content in malformed_values() {
                let pdu = room.draft(BOB, kind, Some(state_key), content.clone());
                let _ = check(&room, &pdu);
                let auth = auth_events_of(&room, &pdu);
                let _ = check_auth_events(room.rules, &pdu, &refs(&auth));
                // Malformed state already in the room must not panic later checks either.
                let mut state = room.state.clone();
                let mut stored = pdu.clone();
                stored.sender = ALICE.into();
                state.insert((kind.to_owned(), state_key.to_owned()), stored);
                let message = room.draft(BOB, "m.room.message", None, json!({}));
                let _ = check_auth(room.rules, &message, &state);
                let join = room.draft(CAROL, "m.room.member", Some(CAROL), json!({ "membership": "join" }));
                let _ = check_auth(room.rules, &join, &state);
            }
        }
    }
}
