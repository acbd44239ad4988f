//! The Client-Server API on the real binary: accounts, rooms, messaging and
//! /sync, including what crosses shards (rooms owned by both shards, users
//! whose sync state lives on the other shard).

mod common;

use std::collections::HashSet;

use common::{call, create_room, open_server, register, Server, V3};
use serde_json::{json, Value};

fn send_text(server: &Server, token: &str, room: &str, txn: &str, text: &str) -> Value {
    let path = format!("{V3}/rooms/{room}/send/m.room.message/{txn}");
    call(server.client, "PUT", &path, Some(token), Some(&json!({ "msgtype": "m.text", "body": text }))).json()
}

fn sync(server: &Server, token: &str, since: Option<&str>, timeout_ms: u64) -> Value {
    let mut path = format!("{V3}/sync?timeout={timeout_ms}");
    if let Some(since) = since {
        path.push_str(&format!("&since={since}"));
    }
    let reply = call(server.client, "GET", &path, Some(token), None);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

/// Message bodies of a room's timeline in a sync response.
fn bodies(sync: &Value, room: &str) -> Vec<String> {
    sync["rooms"]["join"][room]["timeline"]["events"]
        .as_array()
        .map(|events| events.iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn registration_is_closed_by_default_and_refuses_taken_and_invalid_names() {
    let closed = Server::start(&[]);
    let body = json!({ "username": "a", "password": "p", "auth": { "type": "m.login.dummy" } });
    let reply = call(closed.client, "POST", &format!("{V3}/register"), None, Some(&body));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));

    let server = open_server();
    let reply = call(
        server.client,
        "POST",
        &format!("{V3}/register"),
        None,
        Some(&json!({ "username": "x", "password": "p" })),
    );
    assert_eq!(reply.status, 401, "UIA starts with a 401");
    assert_eq!(reply.json()["flows"][0]["stages"], json!(["m.login.dummy"]));
    assert!(reply.json()["session"].is_string());

    register(server.client, "alice");
    let again = json!({ "username": "alice", "password": "p", "auth": { "type": "m.login.dummy" } });
    let reply = call(server.client, "POST", &format!("{V3}/register"), None, Some(&again));
    assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_USER_IN_USE"));
    let bad = json!({ "username": "Not Valid", "password": "p", "auth": { "type": "m.login.dummy" } });
    let reply = call(server.client, "POST", &format!("{V3}/register"), None, Some(&bad));
    assert_eq!(reply.errcode(), "M_INVALID_USERNAME");
    let reply = call(server.client, "GET", &format!("{V3}/register/available?username=alice"), None, None);
    assert_eq!(reply.errcode(), "M_USER_IN_USE");
    let reply = call(server.client, "GET", &format!("{V3}/register/available?username=bob"), None, None);
    assert_eq!(reply.json(), json!({ "available": true }));
}

#[test]
fn login_whoami_and_logout_follow_the_token() {
    let server = open_server();
    let (user_id, _) = register(server.client, "carol");
    let login = |password: &str| {
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": "carol" },
            "password": password,
        });
        call(server.client, "POST", &format!("{V3}/login"), None, Some(&body))
    };
    assert_eq!((login("wrong").status, login("wrong").errcode().as_str()), (403, "M_FORBIDDEN"));
    let reply = login("correct horse battery");
    assert_eq!(reply.status, 200);
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let device = reply.json()["device_id"].as_str().unwrap().to_owned();

    let whoami = call(server.client, "GET", &format!("{V3}/account/whoami"), Some(&token), None).json();
    assert_eq!((whoami["user_id"].as_str().unwrap(), whoami["device_id"].as_str().unwrap()), (&*user_id, &*device));
    let missing = call(server.client, "GET", &format!("{V3}/account/whoami"), None, None);
    assert_eq!((missing.status, missing.errcode().as_str()), (401, "M_MISSING_TOKEN"));

    // Make both shards cache the token before logging out: logout must
    // reach every shard's cache, whichever shard the next request lands on.
    for _ in 0..8 {
        assert_eq!(call(server.client, "GET", &format!("{V3}/account/whoami"), Some(&token), None).status, 200);
    }
    assert_eq!(call(server.client, "POST", &format!("{V3}/logout"), Some(&token), None).json(), json!({}));
    for _ in 0..8 {
        let reply = call(server.client, "GET", &format!("{V3}/account/whoami"), Some(&token), None);
        assert_eq!((reply.status, reply.errcode().as_str()), (401, "M_UNKNOWN_TOKEN"));
    }
}

#[test]
fn shared_secret_admin_registration_needs_the_right_mac() {
    let server = Server::start(&[]);
    let secret = common::shared_secret(&server);
    let nonce = || {
        call(server.client, "GET", "/_synapse/admin/v1/register", None, None).json()["nonce"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mac_of = |key: &str, nonce: &str| common::shared_secret_mac(key, nonce, "dave", "secret pw", false);
    let n = nonce();
    let body =
        json!({ "nonce": n, "username": "dave", "password": "secret pw", "admin": false, "mac": mac_of("wrong", &n) });
    let reply = call(server.client, "POST", "/_synapse/admin/v1/register", None, Some(&body));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));
    let n = nonce();
    let body =
        json!({ "nonce": n, "username": "dave", "password": "secret pw", "admin": false, "mac": mac_of(&secret, &n) });
    let reply = call(server.client, "POST", "/_synapse/admin/v1/register", None, Some(&body));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["user_id"], "@dave:localhost");
}

#[test]
fn sync_combines_rooms_of_both_shards_and_delivers_each_message_once() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    // Eight rooms: with two shards, both own some (by room-ID hash).
    let rooms: Vec<String> =
        (0..8).map(|i| create_room(&server, &alice, json!({ "name": format!("r{i}"), "invite": [bob_id] }))).collect();
    let first = sync(&server, &bob, None, 0);
    let invited: HashSet<&str> = first["rooms"]["invite"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(invited, rooms.iter().map(String::as_str).collect());
    for room in &rooms {
        assert_eq!(call(server.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&bob), None).status, 200);
    }
    let mut since = first["next_batch"].as_str().unwrap().to_owned();
    for (i, room) in rooms.iter().enumerate() {
        send_text(&server, &alice, room, &format!("t{i}"), &format!("m{i}"));
    }
    // Every message exactly once, across however many syncs it takes.
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..20 {
        let next = sync(&server, &bob, Some(&since), 2000);
        for room in &rooms {
            seen.extend(bodies(&next, room));
        }
        since = next["next_batch"].as_str().unwrap().to_owned();
        if seen.len() >= rooms.len() {
            break;
        }
    }
    seen.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
    let quiet = sync(&server, &bob, Some(&since), 200);
    assert!(rooms.iter().all(|r| bodies(&quiet, r).is_empty()), "redelivered: {quiet}");
}

#[test]
fn waiting_sync_wakes_when_a_message_arrives() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({}));
    let since = sync(&server, &alice, None, 0)["next_batch"].as_str().unwrap().to_owned();
    let addr = server.client;
    let (alice2, room2) = (alice.clone(), room.clone());
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let path = format!("{V3}/rooms/{room2}/send/m.room.message/late");
        call(addr, "PUT", &path, Some(&alice2), Some(&json!({ "msgtype": "m.text", "body": "late" })));
    });
    let started = std::time::Instant::now();
    let next = sync(&server, &alice, Some(&since), 20_000);
    sender.join().unwrap();
    assert_eq!(bodies(&next, &room), ["late"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "sync waited for its timeout instead of waking");
}

#[test]
fn retried_send_with_the_same_transaction_id_is_one_event() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({}));
    let first = send_text(&server, &alice, &room, "txn1", "hello");
    let retry = send_text(&server, &alice, &room, "txn1", "hello");
    assert_eq!(first["event_id"], retry["event_id"]);
    let other = send_text(&server, &alice, &room, "txn2", "hello");
    assert_ne!(first["event_id"], other["event_id"]);
    let page = call(server.client, "GET", &format!("{V3}/rooms/{room}/messages?dir=b&limit=5"), Some(&alice), None);
    let hellos = page.json()["chunk"].as_array().unwrap().iter().filter(|e| e["content"]["body"] == "hello").count();
    assert_eq!(hellos, 2);
}

#[test]
fn concurrent_senders_into_one_room_lose_nothing_and_paginate_in_order() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    let senders: Vec<_> = (0..8)
        .map(|s| {
            let (addr, token, room) = (server.client, alice.clone(), room.clone());
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for i in 0..25 {
                    let path = format!("{V3}/rooms/{room}/send/m.room.message/s{s}-{i}");
                    let reply = call(
                        addr,
                        "PUT",
                        &path,
                        Some(&token),
                        Some(&json!({ "msgtype": "m.text", "body": format!("{s}/{i}") })),
                    );
                    assert_eq!(reply.status, 200);
                    ids.push(reply.json()["event_id"].as_str().unwrap().to_owned());
                }
                ids
            })
        })
        .collect();
    let sent: HashSet<String> = senders.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(sent.len(), 200);
    // Page backwards through everything; each sender's messages in order.
    let mut from: Option<String> = None;
    let mut bodies_newest_first = Vec::new();
    let mut ids = HashSet::new();
    loop {
        let mut path = format!("{V3}/rooms/{room}/messages?dir=b&limit=30");
        if let Some(from) = &from {
            path.push_str(&format!("&from={from}"));
        }
        let page = call(server.client, "GET", &path, Some(&alice), None).json();
        for event in page["chunk"].as_array().unwrap() {
            assert!(ids.insert(event["event_id"].as_str().unwrap().to_owned()), "duplicate in pagination");
            if let Some(body) = event["content"]["body"].as_str() {
                bodies_newest_first.push(body.to_owned());
            }
        }
        match page["end"].as_str() {
            Some(end) => from = Some(end.to_owned()),
            None => break,
        }
    }
    assert!(sent.is_subset(&ids));
    for s in 0..8 {
        let mine: Vec<usize> = bodies_newest_first
            .iter()
            .rev()
            .filter_map(|b| b.split_once('/').filter(|(who, _)| *who == s.to_string()).map(|(_, i)| i.parse().unwrap()))
            .collect();
        assert_eq!(mine, (0..25).collect::<Vec<_>>());
    }
}

#[test]
fn non_member_cannot_send_or_read_and_bad_bodies_get_spec_errors() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, eve) = register(server.client, "eve");
    let room = create_room(&server, &alice, json!({}));
    let reply = call(
        server.client,
        "PUT",
        &format!("{V3}/rooms/{room}/send/m.room.message/x"),
        Some(&eve),
        Some(&json!({ "body": "hi" })),
    );
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));
    let reply = call(server.client, "GET", &format!("{V3}/rooms/{room}/messages?dir=b"), Some(&eve), None);
    assert_eq!(reply.status, 403);
    // Private room: joining without an invite is refused by the auth rules.
    let reply = call(server.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&eve), None);
    assert_eq!(reply.status, 403);
    let reply = call(server.client, "POST", &format!("{V3}/rooms/!nope:localhost/join"), Some(&eve), None);
    assert_eq!((reply.status, reply.errcode().as_str()), (404, "M_NOT_FOUND"));
    let raw = format!(
        "PUT {V3}/rooms/{room}/send/m.room.message/y HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\nContent-Length: 4\r\n\r\n{{nop"
    );
    assert_eq!(common::request(server.client, &raw).errcode(), "M_NOT_JSON");
    let reply =
        call(server.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&json!({ "room_version": "99" })));
    assert_eq!(reply.errcode(), "M_UNSUPPORTED_ROOM_VERSION");
    let reply = call(server.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&json!({ "name": 5 })));
    assert_eq!(reply.errcode(), "M_BAD_JSON");
}

#[test]
fn rooms_and_memberships_survive_a_restart() {
    let mut server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "name": "kept", "invite": [bob_id] }));
    call(server.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&bob), None);
    send_text(&server, &alice, &room, "a", "before");
    assert!(server.signal_and_wait("TERM").success());
    server.spawn(&[("TESSERA_REGISTRATION__ENABLE", "true"), ("TESSERA_SERVER__CORES", "2")]);

    // The room continues where it stopped: state, members, timeline.
    send_text(&server, &alice, &room, "b", "after");
    let name = call(server.client, "GET", &format!("{V3}/rooms/{room}/state/m.room.name/"), Some(&bob), None);
    assert_eq!(name.json()["name"], "kept");
    let joined = call(server.client, "GET", &format!("{V3}/joined_rooms"), Some(&bob), None).json();
    assert_eq!(joined["joined_rooms"], json!([room]));
    let first = sync(&server, &bob, None, 0);
    assert_eq!(bodies(&first, &room), ["before", "after"]);
    let timeline = first["rooms"]["join"][&room]["timeline"]["events"].as_array().unwrap();
    let depths_ok = timeline.windows(2).all(|w| w[0]["origin_server_ts"].as_u64() <= w[1]["origin_server_ts"].as_u64());
    assert!(depths_ok);
}

#[test]
fn receipts_and_typing_reach_other_members_through_sync_ephemeral() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "invite": [bob_id] }));
    call(server.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&bob), None);
    let since = sync(&server, &bob, None, 0)["next_batch"].as_str().unwrap().to_owned();
    let event_id = send_text(&server, &alice, &room, "r1", "read me")["event_id"].as_str().unwrap().to_owned();

    let path = format!("{V3}/rooms/{room}/typing/{alice_id}");
    let reply = call(server.client, "PUT", &path, Some(&alice), Some(&json!({ "typing": true, "timeout": 30000 })));
    assert_eq!(reply.status, 200);
    let path = format!("{V3}/rooms/{room}/receipt/m.read/{event_id}");
    assert_eq!(call(server.client, "POST", &path, Some(&alice), Some(&json!({}))).status, 200);
    let path = format!("{V3}/rooms/{room}/receipt/m.read.private/{event_id}");
    assert_eq!(call(server.client, "POST", &path, Some(&alice), Some(&json!({}))).status, 200);

    // Collect bob's ephemeral events until both kinds have arrived.
    let (mut typing, mut receipt) = (None, None);
    let mut since = since;
    for _ in 0..10 {
        let next = sync(&server, &bob, Some(&since), 2000);
        for event in next["rooms"]["join"][&room]["ephemeral"]["events"].as_array().into_iter().flatten() {
            match event["type"].as_str() {
                Some("m.typing") => typing = Some(event["content"].clone()),
                Some("m.receipt") => receipt = Some(event["content"].clone()),
                _ => {}
            }
        }
        since = next["next_batch"].as_str().unwrap().to_owned();
        if typing.is_some() && receipt.is_some() {
            break;
        }
    }
    assert_eq!(typing.unwrap()["user_ids"], json!([alice_id]));
    let receipt = receipt.unwrap();
    assert!(receipt[&event_id]["m.read"][&alice_id]["ts"].is_u64(), "{receipt}");
    assert!(receipt[&event_id].get("m.read.private").is_none(), "private receipt leaked: {receipt}");

    // A client that starts afresh after typing stopped learns it stopped:
    // an initial sync shows the room's (empty) typing list.
    let path = format!("{V3}/rooms/{room}/typing/{alice_id}");
    assert_eq!(call(server.client, "PUT", &path, Some(&alice), Some(&json!({ "typing": false }))).status, 200);
    let fresh = sync(&server, &bob, None, 0);
    let events = fresh["rooms"]["join"][&room]["ephemeral"]["events"].as_array().unwrap().clone();
    assert!(events.iter().any(|e| e["type"] == "m.typing" && e["content"]["user_ids"] == json!([])), "{events:?}");

    // Someone else's typing state cannot be set.
    let reply = call(server.client, "PUT", &path, Some(&bob), Some(&json!({ "typing": true })));
    assert_eq!(reply.status, 403);
}

#[test]
fn redacted_message_loses_its_content_and_others_need_the_redact_level() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "invite": [bob_id] }));
    call(server.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&bob), None);
    let target = send_text(&server, &alice, &room, "m", "secret")["event_id"].as_str().unwrap().to_owned();

    // Bob (power 0) may not redact Alice's message; Alice may.
    let path = |who: &str| format!("{V3}/rooms/{room}/redact/{target}/{who}");
    let reply = call(server.client, "PUT", &path("bob"), Some(&bob), Some(&json!({})));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));
    let reply = call(server.client, "PUT", &path("alice"), Some(&alice), Some(&json!({ "reason": "oops" })));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let redaction = reply.json()["event_id"].as_str().unwrap().to_owned();
    let retry = call(server.client, "PUT", &path("alice"), Some(&alice), Some(&json!({ "reason": "oops" })));
    assert_eq!(retry.json()["event_id"], redaction.as_str());

    let event = call(server.client, "GET", &format!("{V3}/rooms/{room}/event/{target}"), Some(&bob), None).json();
    assert_eq!(event["content"], json!({}), "{event}");
    let page =
        call(server.client, "GET", &format!("{V3}/rooms/{room}/messages?dir=b&limit=3"), Some(&bob), None).json();
    let chunk = page["chunk"].as_array().unwrap();
    assert_eq!(chunk[0]["type"], "m.room.redaction");
    assert_eq!(chunk[0]["redacts"], target.as_str());
    assert_eq!(chunk[1]["content"], json!({}));
}

#[test]
fn account_data_changes_wake_sync_and_arrive_once() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({}));
    let first = sync(&server, &alice, None, 0);
    let since = first["next_batch"].as_str().unwrap().to_owned();
    let put = |path: String, body: Value| {
        let reply = call(server.client, "PUT", &path, Some(&alice), Some(&body));
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    };
    put(format!("{V3}/user/{alice_id}/account_data/org.example.settings"), json!({ "theme": "dark" }));
    put(format!("{V3}/user/{alice_id}/rooms/{room}/account_data/org.example.pinned"), json!({ "pin": 1 }));
    let next = sync(&server, &alice, Some(&since), 5000);
    let global = next["account_data"]["events"].as_array().unwrap();
    assert_eq!(global, &vec![json!({ "type": "org.example.settings", "content": { "theme": "dark" } })]);
    let in_room = &next["rooms"]["join"][&room]["account_data"]["events"];
    assert_eq!(in_room, &json!([{ "type": "org.example.pinned", "content": { "pin": 1 } }]), "{next}");
    // Not again.
    let again = sync(&server, &alice, next["next_batch"].as_str(), 200);
    assert!(again["account_data"]["events"].as_array().unwrap().is_empty(), "{again}");
    // A fresh initial sync has it all.
    let initial = sync(&server, &alice, None, 0);
    assert_eq!(initial["account_data"]["events"].as_array().unwrap().len(), 1);
}

#[test]
fn aliases_resolve_join_and_refuse_duplicates_and_public_rooms_are_listed() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room =
        create_room(&server, &alice, json!({ "room_alias_name": "lobby", "visibility": "public", "name": "Lobby" }));
    let alias = "%23lobby:localhost";
    let got = call(server.client, "GET", &format!("{V3}/directory/room/{alias}"), None, None).json();
    assert_eq!(got["room_id"], room.as_str());
    let again = call(
        server.client,
        "POST",
        &format!("{V3}/createRoom"),
        Some(&bob),
        Some(&json!({ "room_alias_name": "lobby" })),
    );
    assert_eq!(again.errcode(), "M_ROOM_IN_USE");
    let taken = call(
        server.client,
        "PUT",
        &format!("{V3}/directory/room/{alias}"),
        Some(&bob),
        Some(&json!({ "room_id": room })),
    );
    assert_eq!(taken.status, 409);
    // Public room: Bob joins by alias.
    let joined = call(server.client, "POST", &format!("{V3}/join/{alias}"), Some(&bob), None);
    assert_eq!(joined.json()["room_id"], room.as_str());
    let aliases = call(server.client, "GET", &format!("{V3}/rooms/{room}/aliases"), Some(&bob), None).json();
    assert_eq!(aliases["aliases"], json!(["#lobby:localhost"]));
    let listed = call(server.client, "GET", &format!("{V3}/publicRooms"), None, None).json();
    let entry = &listed["chunk"][0];
    assert_eq!((entry["room_id"].as_str(), entry["name"].as_str()), (Some(room.as_str()), Some("Lobby")));
    assert_eq!(entry["num_joined_members"], 2);
    assert_eq!(entry["canonical_alias"], "#lobby:localhost");
    // Only the creator may delete the alias.
    let reply = call(server.client, "DELETE", &format!("{V3}/directory/room/{alias}"), Some(&bob), None);
    assert_eq!(reply.status, 403);
    assert_eq!(call(server.client, "DELETE", &format!("{V3}/directory/room/{alias}"), Some(&alice), None).status, 200);
    let gone = call(server.client, "GET", &format!("{V3}/directory/room/{alias}"), None, None);
    assert_eq!((gone.status, gone.errcode().as_str()), (404, "M_NOT_FOUND"));
}

#[test]
fn setting_the_same_state_twice_sends_one_event() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({}));
    let put = || {
        let path = format!("{V3}/rooms/{room}/state/m.room.topic/");
        call(server.client, "PUT", &path, Some(&alice), Some(&json!({ "topic": "same" }))).json()["event_id"].clone()
    };
    assert_eq!(put(), put());
    let join = |token: &str| call(server.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(token), None);
    assert_eq!(join(&alice).status, 200);
    let page =
        call(server.client, "GET", &format!("{V3}/rooms/{room}/messages?dir=b&limit=2"), Some(&alice), None).json();
    assert_eq!(page["chunk"][0]["type"], "m.room.topic", "a second join or topic added an event: {page}");
    assert_ne!(page["chunk"][1]["type"], "m.room.topic");
}

#[test]
fn guests_register_only_when_allowed_and_cannot_create_rooms() {
    let closed = open_server();
    let reply = call(closed.client, "POST", &format!("{V3}/register?kind=guest"), None, Some(&json!({})));
    assert_eq!(reply.status, 403);
    let server = Server::start(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_REGISTRATION__ALLOW_GUESTS", "true"),
        ("TESSERA_SERVER__CORES", "2"),
    ]);
    let reply = call(server.client, "POST", &format!("{V3}/register?kind=guest"), None, Some(&json!({})));
    assert_eq!(reply.status, 200);
    let guest = reply.json()["access_token"].as_str().unwrap().to_owned();
    let whoami = call(server.client, "GET", &format!("{V3}/account/whoami"), Some(&guest), None).json();
    assert_eq!(whoami["is_guest"], true);
    let reply = call(server.client, "POST", &format!("{V3}/createRoom"), Some(&guest), Some(&json!({})));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_GUEST_ACCESS_FORBIDDEN"));
}

#[test]
fn read_markers_set_fully_read_and_a_receipt() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice, json!({}));
    let event_id = send_text(&server, &alice, &room, "x", "hello")["event_id"].as_str().unwrap().to_owned();
    let body = json!({ "m.fully_read": event_id, "m.read": event_id });
    let reply = call(server.client, "POST", &format!("{V3}/rooms/{room}/read_markers"), Some(&alice), Some(&body));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let path = format!("{V3}/user/{alice_id}/rooms/{room}/account_data/m.fully_read");
    assert_eq!(call(server.client, "GET", &path, Some(&alice), None).json(), json!({ "event_id": event_id }));
    let initial = sync(&server, &alice, None, 0);
    let ephemeral = &initial["rooms"]["join"][&room]["ephemeral"]["events"];
    assert!(ephemeral.to_string().contains("m.receipt"), "{ephemeral}");
}

#[test]
fn concurrent_identical_room_creations_make_distinct_rooms() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let creators: Vec<_> = (0..16)
        .map(|_| {
            let (addr, token) = (server.client, alice.clone());
            std::thread::spawn(move || {
                let reply = call(addr, "POST", &format!("{V3}/createRoom"), Some(&token), Some(&json!({})));
                assert_eq!(reply.status, 200);
                reply.json()["room_id"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let rooms: HashSet<String> = creators.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(rooms.len(), 16, "two creations named the same v12 room");
    let joined = call(server.client, "GET", &format!("{V3}/joined_rooms"), Some(&alice), None).json();
    assert_eq!(joined["joined_rooms"].as_array().unwrap().len(), 16);
}
