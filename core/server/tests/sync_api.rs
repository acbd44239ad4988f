//! `/sync` on the real binary: filters, the state of gapped and full syncs,
//! left rooms, lazy-loaded members, to-device messages and ignored users.

mod common;

use common::{call, open_server, register, Server, V3};
use serde_json::{json, Value};

fn ok(server: &Server, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
    let reply = call(server.client, method, &format!("{V3}{path}"), Some(token), body);
    assert_eq!(reply.status, 200, "{method} {path}: {}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

fn create_room(server: &Server, token: &str) -> String {
    ok(server, "POST", "/createRoom", token, Some(&json!({ "preset": "public_chat" })))["room_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn send_text(server: &Server, token: &str, room: &str, text: &str) {
    let txn = format!("t{}", rand_suffix());
    ok(server, "PUT", &format!("/rooms/{room}/send/m.room.message/{txn}"), token, Some(&json!({ "body": text })));
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn put_state(server: &Server, token: &str, room: &str, event_type: &str, key: &str, content: Value) {
    ok(server, "PUT", &format!("/rooms/{room}/state/{event_type}/{key}"), token, Some(&content));
}

/// A sync with a filter (inline JSON or an ID) and an optional token.
fn sync(server: &Server, token: &str, filter: &str, since: Option<&str>) -> Value {
    sync_waiting(server, token, filter, since, 0)
}

/// As [`sync`], long-polling up to `timeout_ms` for news: for what other
/// shards deliver after the request that caused it has been answered.
fn sync_waiting(server: &Server, token: &str, filter: &str, since: Option<&str>, timeout_ms: u64) -> Value {
    let filter: String = percent_encode(filter);
    let mut path = format!("/sync?timeout={timeout_ms}&filter={filter}");
    if let Some(since) = since {
        path.push_str(&format!("&since={since}"));
    }
    ok(server, "GET", &path, token, None)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn next_batch(body: &Value) -> String {
    body["next_batch"].as_str().unwrap().to_owned()
}

fn events<'a>(body: &'a Value, pointer: &str) -> &'a Vec<Value> {
    static EMPTY: Vec<Value> = Vec::new();
    body.pointer(pointer).and_then(Value::as_array).unwrap_or(&EMPTY)
}

#[test]
fn invalid_filters_are_refused_and_a_json_filter_shapes_the_sync() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    for bad in [
        json!({ "room": { "timeline": { "rooms": ["not_a_room_id"] } } }),
        json!({ "room": { "timeline": { "senders": ["not_a_user"] } } }),
        json!({ "room": { "state": "not_an_object" } }),
        json!({ "room": { "timeline": { "types": [0] } } }),
    ] {
        let reply = call(server.client, "POST", &format!("{V3}/user/{alice_id}/filter"), Some(&alice), Some(&bad));
        assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_BAD_JSON"), "{bad}");
    }
    let not_json = call(server.client, "GET", &format!("{V3}/sync?filter=%7Bnope"), Some(&alice), None);
    assert_eq!((not_json.status, not_json.errcode().as_str()), (400, "M_NOT_JSON"));
    let room = create_room(&server, &alice);
    let body = sync(&server, &alice, r#"{"room":{"state":{"types":["m.room.member"]},"timeline":{"limit":0}}}"#, None);
    let joined = &body["rooms"]["join"][&room];
    assert!(events(joined, "/timeline/events").is_empty(), "{joined}");
    let state = events(joined, "/state/events");
    assert_eq!(state.len(), 1, "{joined}");
    assert_eq!(state[0]["type"], "m.room.member");
}

#[test]
fn gapped_incremental_sync_sends_only_the_state_that_changed_in_the_gap() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice);
    put_state(&server, &alice, &room, "a.test", "changes", json!({ "v": 1 }));
    put_state(&server, &alice, &room, "a.test", "stays", json!({ "v": 1 }));
    let filter = r#"{"room":{"timeline":{"limit":1,"types":["m.room.message"]},"state":{"types":["a.test"]}}}"#;
    let first = sync(&server, &alice, filter, None);
    assert_eq!(events(&first["rooms"]["join"][&room], "/state/events").len(), 2, "{first}");
    put_state(&server, &alice, &room, "a.test", "changes", json!({ "v": 2 }));
    for i in 0..5 {
        send_text(&server, &alice, &room, &format!("filler {i}"));
    }
    let gapped = sync(&server, &alice, filter, Some(&next_batch(&first)));
    let joined = &gapped["rooms"]["join"][&room];
    assert_eq!(joined["timeline"]["limited"], true, "{joined}");
    let state = events(joined, "/state/events");
    assert_eq!(state.len(), 1, "{joined}");
    assert_eq!((&state[0]["state_key"], &state[0]["content"]["v"]), (&json!("changes"), &json!(2)));
    // A profile change is state too, but filtered out here: nothing to say.
    let quiet = sync(&server, &alice, filter, Some(&next_batch(&gapped)));
    assert!(quiet["rooms"]["join"].as_object().unwrap().is_empty(), "{quiet}");
}

#[test]
fn a_left_room_shows_its_history_up_to_the_leave_and_nothing_after() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice);
    ok(&server, "POST", &format!("/rooms/{room}/join"), &bob, None);
    let filter = r#"{"room":{"include_leave":true}}"#;
    let before = sync(&server, &bob, filter, None);
    send_text(&server, &alice, &room, "before");
    ok(&server, "POST", &format!("/rooms/{room}/leave"), &bob, Some(&json!({})));
    send_text(&server, &alice, &room, "after");
    let check = |body: &Value| {
        let left = &body["rooms"]["leave"][&room];
        let timeline: Vec<&Value> = events(left, "/timeline/events").iter().collect();
        let texts: Vec<&str> = timeline.iter().filter_map(|e| e["content"]["body"].as_str()).collect();
        assert_eq!(texts, ["before"], "{left}");
        assert_eq!(timeline.last().unwrap()["content"]["membership"], "leave");
    };
    check(&sync(&server, &bob, filter, Some(&next_batch(&before))));
    // An initial sync shows it only when asked to.
    check(&sync(&server, &bob, filter, None));
    let without = sync(&server, &bob, "{}", None);
    assert!(without["rooms"]["leave"].get(&room).is_none(), "{without}");
}

#[test]
fn lazy_loading_sends_a_speakers_membership_once_per_device() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let (carol_id, carol) = register(server.client, "carol");
    let room = create_room(&server, &alice);
    ok(&server, "POST", &format!("/rooms/{room}/join"), &bob, None);
    ok(&server, "POST", &format!("/rooms/{room}/join"), &carol, None);
    for i in 0..10 {
        send_text(&server, &bob, &room, &format!("bob {i}"));
    }
    let filter = r#"{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":10}}}"#;
    let members = |body: &Value| -> Vec<String> {
        let mut users: Vec<String> = events(&body["rooms"]["join"][&room], "/state/events")
            .iter()
            .filter(|e| e["type"] == "m.room.member")
            .map(|e| e["state_key"].as_str().unwrap().to_owned())
            .collect();
        users.sort();
        users
    };
    let first = sync(&server, &alice, filter, None);
    let mut expected = vec![alice_id.clone(), bob_id.clone()];
    expected.sort();
    assert_eq!(members(&first), expected);
    assert_eq!(first["rooms"]["join"][&room]["summary"]["m.joined_member_count"], 3, "{first}");
    send_text(&server, &carol, &room, "carol speaks");
    send_text(&server, &bob, &room, "bob again");
    let second = sync(&server, &alice, filter, Some(&next_batch(&first)));
    assert_eq!(members(&second), [carol_id], "bob's membership was sent already");
    let redundant = r#"{"room":{"state":{"lazy_load_members":true,"include_redundant_members":true}}}"#;
    send_text(&server, &bob, &room, "bob once more");
    let third = sync(&server, &alice, redundant, Some(&next_batch(&second)));
    assert_eq!(members(&third), [bob_id]);
}

#[test]
fn to_device_messages_stay_until_acknowledged_and_a_retried_transaction_sends_nothing() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let device = ok(&server, "GET", "/account/whoami", &alice, None)["device_id"].as_str().unwrap().to_owned();
    let only_direct = r#"{"room":{"rooms":[]}}"#;
    let start = next_batch(&sync(&server, &alice, only_direct, None));
    let message = json!({ "messages": { &alice_id: { &device: { "n": 1 } } } });
    ok(&server, "PUT", "/sendToDevice/my.type/txn1", &alice, Some(&message));
    let first = sync(&server, &alice, only_direct, Some(&start));
    let expected = json!([{ "sender": alice_id, "type": "my.type", "content": { "n": 1 } }]);
    assert_eq!(first["to_device"]["events"], expected);
    // Not acknowledged yet: the same token gets it again.
    assert_eq!(sync(&server, &alice, only_direct, Some(&start))["to_device"]["events"], expected);
    ok(&server, "PUT", "/sendToDevice/my.type/txn1", &alice, Some(&message));
    let acknowledged = sync(&server, &alice, only_direct, Some(&next_batch(&first)));
    assert_eq!(acknowledged["to_device"]["events"], json!([]), "{acknowledged}");
    // The wildcard reaches every device, and the message wakes a waiting sync.
    let (addr, alice2, id2) = (server.client, alice.clone(), alice_id.clone());
    let sender = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let body = json!({ "messages": { id2: { "*": { "n": 2 } } } });
        call(addr, "PUT", &format!("{V3}/sendToDevice/my.type/txn2"), Some(&alice2), Some(&body));
    });
    let since = next_batch(&acknowledged);
    let path = format!("/sync?timeout=20000&filter={}&since={since}", percent_encode(only_direct));
    let started = std::time::Instant::now();
    let woken = ok(&server, "GET", &path, &alice, None);
    sender.join().unwrap();
    assert_eq!(woken["to_device"]["events"][0]["content"]["n"], 2, "{woken}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the message did not wake the sync");
}

#[test]
fn ignored_users_messages_and_invites_are_hidden() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice);
    ok(&server, "POST", &format!("/rooms/{room}/join"), &bob, None);
    let ignore = json!({ "ignored_users": { &bob_id: {} } });
    ok(&server, "PUT", &format!("/user/{alice_id}/account_data/m.ignored_user_list"), &alice, Some(&ignore));
    send_text(&server, &bob, &room, "from bob");
    send_text(&server, &alice, &room, "from alice");
    let body = sync(&server, &alice, "{}", None);
    let texts: Vec<&str> = events(&body["rooms"]["join"][&room], "/timeline/events")
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert_eq!(texts, ["from alice"]);
    let invite_room = create_room(&server, &bob);
    ok(&server, "POST", &format!("/rooms/{invite_room}/invite"), &bob, Some(&json!({ "user_id": alice_id })));
    let body = sync(&server, &alice, "{}", None);
    assert!(body["rooms"]["invite"].get(&invite_room).is_none(), "{body}");
}

#[test]
fn presence_reaches_room_members_through_sync_and_the_status_endpoint() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let status = |user: &str, token: &str| ok(&server, "GET", &format!("/presence/{user}/status"), token, None);
    assert_eq!(status(&bob_id, &alice)["presence"], "offline");
    let room = create_room(&server, &alice);
    ok(&server, "POST", &format!("/rooms/{room}/join"), &bob, None);
    let presence_of = |body: &Value, user: &str| -> Option<Value> {
        events(body, "/presence/events").iter().find(|e| e["sender"] == user).map(|e| e["content"].clone())
    };
    // Alice's first sync marks her online and shows her own presence.
    let first = sync(&server, &alice, "{}", None);
    assert_eq!(presence_of(&first, &alice_id).unwrap()["presence"], "online", "{first}");
    let since = next_batch(&first);
    let body = json!({ "presence": "unavailable", "status_msg": "lunch" });
    ok(&server, "PUT", &format!("/presence/{bob_id}/status"), &bob, Some(&body));
    // Presence travels to alice's shard after bob's PUT is answered: alice
    // long-polls, as a client does, until it arrives.
    let (mut since, mut content) = (since, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while content.is_none() && std::time::Instant::now() < deadline {
        let update = sync_waiting(&server, &alice, "{}", Some(&since), 5_000);
        content = presence_of(&update, &bob_id);
        since = next_batch(&update);
    }
    let content = content.expect("bob's change reaches alice");
    assert_eq!((&content["presence"], &content["status_msg"]), (&json!("unavailable"), &json!("lunch")));
    assert_eq!(status(&bob_id, &alice)["status_msg"], "lunch");
    let forbidden = call(server.client, "PUT", &format!("{V3}/presence/{alice_id}/status"), Some(&bob), Some(&body));
    assert_eq!(forbidden.status, 403);
    // A filter that blocks presence leaves it out.
    let blocked = sync(&server, &alice, r#"{"presence":{"types":[]}}"#, None);
    assert!(events(&blocked, "/presence/events").is_empty(), "{blocked}");
}

#[test]
fn paging_back_from_a_sync_finds_the_history_before_and_never_an_empty_start() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let room = create_room(&server, &alice);
    send_text(&server, &alice, &room, "one");
    let messages = |from: &str, limit: u32| {
        let from = from.replace(' ', "%20");
        ok(&server, "GET", &format!("/rooms/{room}/messages?dir=b&limit={limit}&from={from}"), &alice, None)
    };
    let bodies = |page: &Value| -> Vec<String> {
        page["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect()
    };
    // An initial sync that holds the whole room: paging back from its
    // prev_batch returns the room again, not an empty chunk.
    let first = ok(&server, "GET", "/sync", &alice, None);
    let timeline = &first["rooms"]["join"][&room]["timeline"];
    assert_eq!(timeline["limited"], false);
    let page = messages(timeline["prev_batch"].as_str().unwrap(), 50);
    assert_eq!(bodies(&page), ["one"]);
    assert!(page["chunk"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.create"));
    // An incremental sync's prev_batch leads to what came before it.
    send_text(&server, &alice, &room, "two");
    let since = first["next_batch"].as_str().unwrap();
    let next = ok(&server, "GET", &format!("/sync?since={since}"), &alice, None);
    let timeline = &next["rooms"]["join"][&room]["timeline"];
    assert_eq!(timeline["events"].as_array().unwrap().len(), 1);
    assert_eq!(bodies(&messages(timeline["prev_batch"].as_str().unwrap(), 1)), ["one"]);
}

#[test]
fn unread_counts_ignore_push_rules_receipts_or_own_messages() {
    let server = open_server();
    let (alice, alice_token) = register(server.client, "alice");
    let (_, bob_token) = register(server.client, "bob");
    let room = create_room(&server, &alice_token);
    ok(&server, "POST", &format!("/join/{room}"), &bob_token, Some(&json!({})));
    let send = |token: &str, content: Value| -> String {
        let txn = format!("t{}", rand_suffix());
        let path = format!("/rooms/{room}/send/m.room.message/{txn}");
        ok(&server, "PUT", &path, token, Some(&content))["event_id"].as_str().unwrap().to_owned()
    };
    let unread = || -> (u64, u64) {
        let body = sync(&server, &alice_token, "{}", None);
        let counts = &body["rooms"]["join"][&room]["unread_notifications"];
        (counts["notification_count"].as_u64().unwrap(), counts["highlight_count"].as_u64().unwrap())
    };

    let first = send(&bob_token, json!({ "msgtype": "m.text", "body": "one" }));
    send(&bob_token, json!({ "msgtype": "m.text", "body": "two" }));
    send(&bob_token, json!({ "msgtype": "m.notice", "body": "a bot's notice" }));
    send(&alice_token, json!({ "msgtype": "m.text", "body": "my own" }));
    assert_eq!(unread(), (2, 0), "bob's two messages; not the notice, not alice's own");

    ok(&server, "POST", &format!("/rooms/{room}/receipt/m.read/{first}"), &alice_token, Some(&json!({})));
    assert_eq!(unread(), (1, 0), "read up to the first");

    send(&bob_token, json!({ "msgtype": "m.text", "body": "hey", "m.mentions": { "user_ids": [alice] } }));
    assert_eq!(unread(), (2, 1), "a mention highlights");

    // A room rule that silences the room: the count starts over under it.
    let rule = format!("/pushrules/global/room/{room}");
    ok(&server, "PUT", &rule, &alice_token, Some(&json!({ "actions": [] })));
    assert_eq!(unread(), (1, 1), "only the mention (an override rule) still notifies");
}

/// A member is counted from their join with the default rules, so their
/// first sync needs no walk; one whose own rules existed before the join
/// must still be counted by those.
#[test]
fn unread_counts_from_the_join_use_rules_made_before_it() {
    let server = open_server();
    let (_, alice_token) = register(server.client, "alice");
    let (_, bob_token) = register(server.client, "bob");
    let keyword = json!({ "pattern": "pineapple", "actions": ["notify", { "set_tweak": "highlight" }] });
    ok(&server, "PUT", "/pushrules/global/content/fruit", &bob_token, Some(&keyword));
    let room = create_room(&server, &alice_token);
    ok(&server, "POST", &format!("/join/{room}"), &bob_token, Some(&json!({})));
    for (txn, body) in [("a", "hello"), ("b", "a pineapple")] {
        let path = format!("/rooms/{room}/send/m.room.message/{txn}");
        ok(&server, "PUT", &path, &alice_token, Some(&json!({ "msgtype": "m.text", "body": body })));
    }
    let body = sync(&server, &bob_token, "{}", None);
    let counts = &body["rooms"]["join"][&room]["unread_notifications"];
    assert_eq!(counts["notification_count"], 2, "{counts}");
    assert_eq!(counts["highlight_count"], 1, "bob's keyword highlights: {counts}");
}
