//! Room operations on the real binary: membership changes the auth rules
//! alone would allow but must not happen, aliases, redactions, upgrades.

mod common;

use common::{call, create_room, ok, open_server, register, Reply, Server, V3};
use serde_json::{json, Value};

fn post(server: &Server, token: &str, path: &str, body: Value) -> Reply {
    call(server.client, "POST", &format!("{V3}{path}"), Some(token), Some(&body))
}

fn put(server: &Server, token: &str, path: &str, body: Value) -> Reply {
    call(server.client, "PUT", &format!("{V3}{path}"), Some(token), Some(&body))
}

fn get(server: &Server, token: &str, path: &str) -> Reply {
    call(server.client, "GET", &format!("{V3}{path}"), Some(token), None)
}

#[test]
fn kicks_of_users_not_in_the_room_are_refused_and_bans_hold_until_lifted() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    let reply = post(&server, &alice, &format!("/rooms/{room}/kick"), json!({ "user_id": "@nobody:example.com" }));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));
    ok(post(&server, &bob, &format!("/rooms/{room}/join"), json!({})));
    ok(post(&server, &alice, &format!("/rooms/{room}/kick"), json!({ "user_id": bob_id })));
    let reply = post(&server, &alice, &format!("/rooms/{room}/kick"), json!({ "user_id": bob_id }));
    assert_eq!(reply.status, 403, "kicking a user who already left");

    ok(post(&server, &alice, &format!("/rooms/{room}/ban"), json!({ "user_id": bob_id })));
    assert_eq!(post(&server, &bob, &format!("/rooms/{room}/join"), json!({})).status, 403);
    assert_eq!(post(&server, &alice, &format!("/rooms/{room}/kick"), json!({ "user_id": bob_id })).status, 403);
    ok(post(&server, &alice, &format!("/rooms/{room}/unban"), json!({ "user_id": bob_id })));
    ok(post(&server, &bob, &format!("/rooms/{room}/join"), json!({})));
}

#[test]
fn joins_keep_custom_content_from_the_body() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    ok(post(&server, &bob, &format!("/join/{room}"), json!({ "foo": "bar", "membership": "leave" })));
    let content = ok(get(&server, &bob, &format!("/rooms/{room}/state/m.room.member/{bob_id}")));
    assert_eq!((content["foo"].as_str(), content["membership"].as_str()), (Some("bar"), Some("join")));
}

#[test]
fn aliases_are_deleted_by_moderators_and_leave_the_canonical_alias() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    ok(post(&server, &bob, &format!("/rooms/{room}/join"), json!({})));
    let alias = "#place:localhost".to_owned();
    let escaped = alias.replace('#', "%23");
    ok(put(&server, &alice, &format!("/directory/room/{escaped}"), json!({ "room_id": room })));
    let missing = "#missing:localhost";
    let reply =
        put(&server, &alice, &format!("/rooms/{room}/state/m.room.canonical_alias/"), json!({ "alias": missing }));
    assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_BAD_ALIAS"));
    let reply = put(&server, &alice, &format!("/rooms/{room}/state/m.room.canonical_alias/"), json!({ "alias": "%x" }));
    assert_eq!(reply.status, 400);
    ok(put(&server, &alice, &format!("/rooms/{room}/state/m.room.canonical_alias/"), json!({ "alias": alias })));

    let reply = call(server.client, "DELETE", &format!("{V3}/directory/room/{escaped}"), Some(&bob), None);
    assert_eq!(reply.status, 403, "bob neither created it nor moderates the room");
    let levels = ok(get(&server, &alice, &format!("/rooms/{room}/state/m.room.power_levels/")));
    let mut levels = levels.as_object().unwrap().clone();
    levels["users"][&bob_id] = json!(100);
    ok(put(&server, &alice, &format!("/rooms/{room}/state/m.room.power_levels/"), Value::Object(levels)));
    ok(call(server.client, "DELETE", &format!("{V3}/directory/room/{escaped}"), Some(&bob), None));
    assert_eq!(get(&server, &alice, &format!("/directory/room/{escaped}")).status, 404);
    let canonical = ok(get(&server, &alice, &format!("/rooms/{room}/state/m.room.canonical_alias/")));
    assert!(canonical.get("alias").is_none(), "{canonical}");
}

#[test]
fn redacting_an_event_of_another_room_is_a_bad_request() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let one = create_room(&server, &alice, json!({}));
    let two = create_room(&server, &alice, json!({}));
    let sent = ok(put(&server, &alice, &format!("/rooms/{one}/send/m.room.message/t1"), json!({ "body": "x" })));
    let event_id = sent["event_id"].as_str().unwrap();
    let reply = put(&server, &alice, &format!("/rooms/{two}/redact/{event_id}/t2"), json!({}));
    assert_eq!(reply.status, 400);
}

#[test]
fn upgrades_tombstone_the_old_room_and_carry_state_bans_aliases_and_listing_over() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let body = json!({ "preset": "public_chat", "name": "old name", "room_alias_name": "up", "visibility": "public" });
    let old = create_room(&server, &alice, body);
    ok(post(&server, &bob, &format!("/rooms/{old}/join"), json!({})));
    let reply = post(&server, &bob, &format!("/rooms/{old}/upgrade"), json!({ "new_version": "2" }));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"), "bob may not send a tombstone");
    ok(post(&server, &alice, &format!("/rooms/{old}/ban"), json!({ "user_id": bob_id })));
    let reply = post(&server, &alice, &format!("/rooms/{old}/upgrade"), json!({ "new_version": "nope" }));
    assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_UNSUPPORTED_ROOM_VERSION"));
    let reply = post(&server, &alice, "/rooms/!bogus:localhost/upgrade", json!({ "new_version": "2" }));
    assert_eq!((reply.status, reply.errcode().as_str()), (404, "M_NOT_FOUND"));

    let new = ok(post(&server, &alice, &format!("/rooms/{old}/upgrade"), json!({ "new_version": "2" })));
    let new = new["replacement_room"].as_str().unwrap();
    let tombstone = ok(get(&server, &alice, &format!("/rooms/{old}/state/m.room.tombstone/?format=event")));
    assert_eq!(tombstone["content"]["replacement_room"], new);
    let create = ok(get(&server, &alice, &format!("/rooms/{new}/state/m.room.create/")));
    assert_eq!(create["room_version"], "2");
    assert_eq!(create["predecessor"], json!({ "room_id": old, "event_id": tombstone["event_id"] }));
    assert_eq!(ok(get(&server, &alice, &format!("/rooms/{new}/state/m.room.name/")))["name"], "old name");
    let ban = ok(get(&server, &alice, &format!("/rooms/{new}/state/m.room.member/{bob_id}")));
    assert_eq!(ban["membership"], "ban");
    let alias = ok(get(&server, &alice, "/directory/room/%23up:localhost"));
    assert_eq!(alias["room_id"], new);
    assert_eq!(
        ok(get(&server, &alice, &format!("/rooms/{new}/state/m.room.canonical_alias/")))["alias"],
        "#up:localhost"
    );
    assert_eq!(ok(get(&server, &alice, &format!("/rooms/{old}/state/m.room.canonical_alias/"))), json!({}));
    assert_eq!(ok(get(&server, &alice, &format!("/directory/list/room/{new}")))["visibility"], "public");
    assert_eq!(ok(get(&server, &alice, &format!("/directory/list/room/{old}")))["visibility"], "private");
    let levels = ok(get(&server, &alice, &format!("/rooms/{old}/state/m.room.power_levels/")));
    assert_eq!((levels["events_default"].as_i64(), levels["invite"].as_i64()), (Some(50), Some(50)));

    let same = json!({ "replacement_room": new });
    let reply = put(&server, &alice, &format!("/rooms/{new}/send/m.room.tombstone/t1"), same);
    assert_eq!(reply.status, 400, "a tombstone pointing to its own room");
}

#[test]
fn forgotten_rooms_are_no_longer_readable_nor_in_sync_and_come_back_on_rejoin() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    ok(post(&server, &bob, &format!("/rooms/{room}/join"), json!({})));
    let reply = post(&server, &bob, &format!("/rooms/{room}/forget"), json!({}));
    assert_eq!(reply.status, 400, "still joined");
    let since = ok(get(&server, &bob, "/sync"))["next_batch"].as_str().unwrap().to_owned();
    ok(post(&server, &bob, &format!("/rooms/{room}/leave"), json!({})));
    assert!(ok(get(&server, &bob, &format!("/sync?since={since}")))["rooms"]["leave"].get(&room).is_some());
    ok(get(&server, &bob, &format!("/rooms/{room}/messages?dir=b")));

    ok(post(&server, &bob, &format!("/rooms/{room}/forget"), json!({})));
    assert_eq!(get(&server, &bob, &format!("/rooms/{room}/messages?dir=b")).status, 403);
    assert!(ok(get(&server, &bob, &format!("/sync?since={since}")))["rooms"]["leave"].get(&room).is_none());
    ok(post(&server, &bob, &format!("/rooms/{room}/join"), json!({})));
    assert_eq!(ok(get(&server, &bob, "/joined_rooms"))["joined_rooms"], json!([room]));
}

#[test]
fn whois_answers_for_oneself_and_admins_only() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let body = ok(get(&server, &alice, &format!("/admin/whois/{alice_id}")));
    assert_eq!(body["user_id"], alice_id.as_str());
    let device = body["devices"].as_object().unwrap().values().next().unwrap().clone();
    assert!(device["sessions"][0]["connections"][0]["last_seen"].is_u64(), "{device}");
    let reply = get(&server, &bob, &format!("/admin/whois/{alice_id}"));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));
    let reply = call(server.client, "GET", &format!("/_synapse/admin/v1/whois/{alice_id}"), Some(&bob), None);
    assert_eq!(reply.status, 403);
}

#[test]
fn guests_leave_when_guest_access_is_revoked() {
    let server = Server::start(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_REGISTRATION__ALLOW_GUESTS", "true"),
        ("TESSERA_SERVER__CORES", "2"),
    ]);
    let (_, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    ok(put(
        &server,
        &alice,
        &format!("/rooms/{room}/state/m.room.guest_access/"),
        json!({ "guest_access": "can_join" }),
    ));
    let guest = ok(call(server.client, "POST", &format!("{V3}/register?kind=guest"), None, Some(&json!({}))));
    let (guest_id, guest_token) = (guest["user_id"].as_str().unwrap(), guest["access_token"].as_str().unwrap());
    ok(post(&server, guest_token, &format!("/rooms/{room}/join"), json!({})));
    ok(put(
        &server,
        &alice,
        &format!("/rooms/{room}/state/m.room.guest_access/"),
        json!({ "guest_access": "forbidden" }),
    ));
    let member = ok(get(&server, &alice, &format!("/rooms/{room}/state/m.room.member/{guest_id}")));
    assert_eq!(member["membership"], "leave");
}

#[test]
fn read_receipts_do_not_move_backward() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({}));
    let first = ok(put(&server, &alice, &format!("/rooms/{room}/send/m.room.message/r1"), json!({ "body": "1" })));
    let second = ok(put(&server, &alice, &format!("/rooms/{room}/send/m.room.message/r2"), json!({ "body": "2" })));
    let (first, second) = (first["event_id"].as_str().unwrap(), second["event_id"].as_str().unwrap());
    ok(post(&server, &alice, &format!("/rooms/{room}/receipt/m.read/{second}"), json!({})));
    ok(post(&server, &alice, &format!("/rooms/{room}/receipt/m.read/{first}"), json!({})));
    let sync = ok(get(&server, &alice, "/sync"));
    let receipts = sync["rooms"]["join"][&room]["ephemeral"]["events"].as_array().unwrap().clone();
    let receipt = receipts.iter().find(|e| e["type"] == "m.receipt").unwrap();
    assert!(receipt["content"][second]["m.read"].get(&alice_id).is_some(), "{receipt}");
    assert!(receipt["content"].get(first).is_none(), "{receipt}");
}

#[test]
fn knocks_land_in_public_rooms_or_stay_hidden_from_the_knocker() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let knock_rule = json!([{ "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "knock" } }]);
    let room = create_room(&server, &alice, json!({ "preset": "private_chat", "initial_state": knock_rule }));
    let public = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    let knock = |room: &str| call(server.client, "POST", &format!("{V3}/knock/{room}"), Some(&bob), Some(&json!({})));

    let refused = knock(&public);
    assert_eq!(refused.status, 403, "a public room is joined, not knocked on");
    assert_eq!(ok(knock(&room))["room_id"], room.as_str());
    let sync = ok(call(server.client, "GET", &format!("{V3}/sync"), Some(&bob), None));
    let shown = &sync["rooms"]["knock"][&room]["knock_state"]["events"];
    assert!(shown.as_array().unwrap().iter().any(|e| e["type"] == "m.room.join_rules"), "{sync}");
    assert!(sync["rooms"]["join"].get(&room).is_none());

    // Alice sees the knock and lets Bob in.
    let timeline =
        ok(call(server.client, "GET", &format!("{V3}/rooms/{room}/messages?dir=b&limit=5"), Some(&alice), None));
    assert_eq!(timeline["chunk"][0]["content"]["membership"], "knock");
    ok(call(
        server.client,
        "POST",
        &format!("{V3}/rooms/{room}/invite"),
        Some(&alice),
        Some(&json!({ "user_id": bob_id })),
    ));
    ok(call(server.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&bob), Some(&json!({}))));
    let sync = ok(call(server.client, "GET", &format!("{V3}/sync"), Some(&bob), None));
    assert!(sync["rooms"]["join"].get(&room).is_some() && sync["rooms"]["knock"].get(&room).is_none(), "{sync}");
}
