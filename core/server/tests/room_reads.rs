//! Reading rooms on the real binary: history visibility, users who left,
//! peeking into `world_readable` rooms, `/context`.

mod common;

use common::{call, create_room, ok, open_server, register, Reply, Server, V3};
use serde_json::{json, Value};

fn send_text(server: &Server, token: &str, room: &str, text: &str) -> String {
    let path = format!("{V3}/rooms/{room}/send/m.room.message/{}", text.replace(' ', "_"));
    let body = json!({ "msgtype": "m.text", "body": text });
    ok(call(server.client, "PUT", &path, Some(token), Some(&body)))["event_id"].as_str().unwrap().to_owned()
}

fn put_state(server: &Server, token: &str, room: &str, event_type: &str, content: Value) {
    let path = format!("{V3}/rooms/{room}/state/{event_type}/");
    ok(call(server.client, "PUT", &path, Some(token), Some(&content)));
}

fn member(server: &Server, token: &str, room: &str, action: &str, user: Option<&str>) {
    let body = user.map_or(json!({}), |u| json!({ "user_id": u }));
    ok(call(server.client, "POST", &format!("{V3}/rooms/{room}/{action}"), Some(token), Some(&body)));
}

fn get(server: &Server, token: &str, path: &str) -> Reply {
    call(server.client, "GET", &format!("{V3}{path}"), Some(token), None)
}

/// Message bodies of a `/messages` page.
fn bodies(page: &Value) -> Vec<String> {
    page["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect()
}

#[test]
fn joined_history_hides_what_was_sent_before_the_join_from_messages_and_event() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    put_state(&server, &alice, &room, "m.room.history_visibility", json!({ "history_visibility": "joined" }));
    let before = send_text(&server, &alice, &room, "before join");
    member(&server, &alice, &room, "invite", Some(&bob_id));
    let invited = send_text(&server, &alice, &room, "after invite");
    member(&server, &bob, &room, "join", None);
    let after = send_text(&server, &alice, &room, "after join");

    let page = ok(get(&server, &bob, &format!("/rooms/{room}/messages?dir=b&limit=50")));
    assert_eq!(bodies(&page), ["after join"]);
    assert!(page["end"].is_string(), "there were older events, hidden or not");
    for hidden in [&before, &invited] {
        let reply = get(&server, &bob, &format!("/rooms/{room}/event/{hidden}"));
        assert_eq!((reply.status, reply.errcode().as_str()), (404, "M_NOT_FOUND"));
    }
    assert_eq!(ok(get(&server, &bob, &format!("/rooms/{room}/event/{after}")))["content"]["body"], "after join");
    // The creator was joined throughout.
    let page = ok(get(&server, &alice, &format!("/rooms/{room}/messages?dir=b&limit=50")));
    assert_eq!(bodies(&page), ["after join", "after invite", "before join"]);
}

#[test]
fn shared_history_shows_members_everything_but_hides_it_from_non_members() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    let early = send_text(&server, &alice, &room, "early");
    let reply = get(&server, &bob, &format!("/rooms/{room}/event/{early}"));
    assert_eq!(reply.status, 404, "not in the room, and the room is not world_readable");
    let reply = get(&server, &bob, &format!("/rooms/{room}/messages?dir=b"));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));
    assert_eq!(get(&server, &bob, &format!("/rooms/{room}/state")).status, 403);
    member(&server, &bob, &room, "join", None);
    assert_eq!(bodies(&ok(get(&server, &bob, &format!("/rooms/{room}/messages?dir=b")))), ["early"]);
}

#[test]
fn users_who_left_read_state_members_and_messages_as_of_their_leave() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat", "name": "before" }));
    member(&server, &bob, &room, "join", None);
    send_text(&server, &alice, &room, "M1");
    member(&server, &bob, &room, "leave", None);
    send_text(&server, &alice, &room, "M2 after leave");
    put_state(&server, &alice, &room, "m.room.name", json!({ "name": "after" }));
    put_state(&server, &alice, &room, "m.room.topic", json!({ "topic": "after" }));

    let name = ok(get(&server, &bob, &format!("/rooms/{room}/state/m.room.name/")));
    assert_eq!(name, json!({ "name": "before" }));
    let reply = get(&server, &bob, &format!("/rooms/{room}/state/m.room.topic/"));
    assert_eq!(reply.status, 404, "the topic was set after the leave");
    let state = ok(get(&server, &bob, &format!("/rooms/{room}/state")));
    let names: Vec<&Value> =
        state.as_array().unwrap().iter().filter(|e| e["type"] == "m.room.name").map(|e| &e["content"]).collect();
    assert_eq!(names, [&json!({ "name": "before" })]);
    let members = ok(get(&server, &bob, &format!("/rooms/{room}/members")));
    let own = members["chunk"].as_array().unwrap().iter().find(|e| e["state_key"] == bob_id.as_str()).unwrap();
    assert_eq!(own["content"]["membership"], "leave");
    let page = ok(get(&server, &bob, &format!("/rooms/{room}/messages?dir=b&limit=50")));
    assert_eq!(bodies(&page), ["M1"], "nothing after the leave");
    assert_eq!(page["chunk"][0]["content"]["membership"], "leave", "the leave itself comes first");
    // The current members are no longer theirs to list.
    assert_eq!(get(&server, &bob, &format!("/rooms/{room}/joined_members")).status, 403);
}

#[test]
fn world_readable_rooms_can_be_read_by_non_members_from_when_they_became_readable() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat", "name": "open" }));
    send_text(&server, &alice, &room, "shared era");
    put_state(&server, &alice, &room, "m.room.history_visibility", json!({ "history_visibility": "world_readable" }));
    let readable = send_text(&server, &alice, &room, "readable era");

    let page = ok(get(&server, &bob, &format!("/rooms/{room}/messages?dir=b&limit=50")));
    assert_eq!(bodies(&page), ["readable era"]);
    let change = page["chunk"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.history_visibility");
    assert!(change, "the change to world_readable is visible on its boundary");
    assert_eq!(ok(get(&server, &bob, &format!("/rooms/{room}/event/{readable}")))["content"]["body"], "readable era");
    assert_eq!(ok(get(&server, &bob, &format!("/rooms/{room}/state/m.room.name/")))["name"], "open");
    let event = ok(get(&server, &bob, &format!("/rooms/{room}/state/m.room.name/?format=event")));
    assert_eq!((event["type"].as_str(), event["room_id"].as_str()), (Some("m.room.name"), Some(room.as_str())));
}

#[test]
fn context_returns_events_on_both_sides_state_and_lazy_loaded_members() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    member(&server, &bob, &room, "join", None);
    send_text(&server, &alice, &room, "one");
    let two = send_text(&server, &alice, &room, "two");
    send_text(&server, &alice, &room, "three");

    let body = ok(get(&server, &alice, &format!("/rooms/{room}/context/{two}?limit=2")));
    assert_eq!(body["event"]["content"]["body"], "two");
    assert_eq!(body["events_before"][0]["content"]["body"], "one");
    assert_eq!(body["events_after"][0]["content"]["body"], "three");
    assert!(body["start"].is_string() && body["end"].is_string());
    // Paginating on from `start` continues before "one".
    let start = body["start"].as_str().unwrap();
    let older = ok(get(&server, &alice, &format!("/rooms/{room}/messages?dir=b&from={start}&limit=1")));
    assert_eq!(older["chunk"][0]["type"], "m.room.member", "bob's join came before \"one\"");
    let members = |body: &Value| -> Vec<String> {
        let state = body["state"].as_array().unwrap();
        state.iter().filter(|e| e["type"] == "m.room.member").map(|e| e["state_key"].as_str().unwrap().into()).collect()
    };
    assert_eq!(members(&body).len(), 2, "all members without lazy loading");
    let filter = "%7B%22lazy_load_members%22%3Atrue%7D";
    let lazy = ok(get(&server, &alice, &format!("/rooms/{room}/context/{two}?limit=2&filter={filter}")));
    assert_eq!(members(&lazy), std::slice::from_ref(&alice_id));
    let page = ok(get(&server, &alice, &format!("/rooms/{room}/messages?dir=b&limit=2&filter={filter}")));
    assert_eq!(members(&page), [alice_id]);

    let (_, carol) = register(server.client, "carol");
    let private = create_room(&server, &alice, json!({ "preset": "private_chat" }));
    let secret = send_text(&server, &alice, &private, "secret");
    let reply = get(&server, &carol, &format!("/rooms/{private}/context/{secret}"));
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"));
    let reply = get(&server, &alice, &format!("/rooms/{room}/context/$unknown"));
    assert_eq!(reply.status, 404);
}

#[test]
fn initial_sync_and_the_v1_event_stream_serve_members_and_peekers() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat", "name": "lobby" }));
    send_text(&server, &alice, &room, "hello");

    let all = ok(get(&server, &alice, "/initialSync?limit=1"));
    let entry = all["rooms"].as_array().unwrap().iter().find(|r| r["room_id"] == room.as_str()).unwrap();
    assert_eq!(entry["membership"], "join");
    assert_eq!(entry["visibility"], "private");
    assert_eq!(bodies(&entry["messages"]), ["hello"]);
    assert_eq!(
        entry["messages"]["chunk"][0]["user_id"], entry["messages"]["chunk"][0]["sender"],
        "v1 events name the sender user_id"
    );
    assert!(entry["state"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.name"));
    let end = all["end"].as_str().unwrap().to_owned();
    send_text(&server, &alice, &room, "later");
    let stream = ok(get(&server, &alice, &format!("/events?from={end}&timeout=5000")));
    assert_eq!(bodies(&stream), ["later"]);
    assert_eq!(stream["chunk"][0]["room_id"], room.as_str());
    for bad in ["-2", "ten"] {
        let reply = get(&server, &alice, &format!("/events?from={end}&limit={bad}"));
        assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_INVALID_PARAM"), "limit={bad}");
    }

    let reply = get(&server, &bob, &format!("/rooms/{room}/initialSync"));
    assert_eq!(reply.status, 403, "not world_readable");
    put_state(&server, &alice, &room, "m.room.history_visibility", json!({ "history_visibility": "world_readable" }));
    let peek = ok(get(&server, &bob, &format!("/rooms/{room}/initialSync")));
    assert!(peek.get("membership").is_none());
    let from = peek["messages"]["end"].as_str().unwrap().to_owned();
    let empty = ok(get(&server, &bob, &format!("/events?room_id={room}&from={from}&timeout=0")));
    assert_eq!(empty["chunk"], json!([]));
    send_text(&server, &alice, &room, "for peekers");
    let stream = ok(get(&server, &bob, &format!("/events?room_id={room}&from={from}&timeout=5000")));
    assert_eq!(bodies(&stream), ["for peekers"]);
}

#[test]
fn sync_timelines_hide_what_history_visibility_hides_but_show_the_boundaries() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    put_state(&server, &alice, &room, "m.room.history_visibility", json!({ "history_visibility": "joined" }));
    send_text(&server, &alice, &room, "1");
    put_state(&server, &alice, &room, "m.room.history_visibility", json!({ "history_visibility": "shared" }));
    send_text(&server, &alice, &room, "3");
    member(&server, &bob, &room, "join", None);
    let sync = ok(get(&server, &bob, "/sync"));
    let events = sync["rooms"]["join"][&room]["timeline"]["events"].as_array().unwrap().clone();
    let last: Vec<String> = events[events.len() - 4..]
        .iter()
        .map(|e| {
            e["content"]["history_visibility"].as_str().or(e["content"]["body"].as_str()).unwrap_or("member").into()
        })
        .collect();
    assert_eq!(last, ["joined", "shared", "3", "member"], "\"1\" was sent while only members could see it");
}

#[test]
fn a_state_change_hidden_behind_many_invisible_messages_still_reaches_the_sync_timeline() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let (carol_id, carol) = register(server.client, "carol");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    member(&server, &bob, &room, "join", None);
    put_state(&server, &alice, &room, "m.room.history_visibility", json!({ "history_visibility": "joined" }));
    member(&server, &bob, &room, "leave", None);
    member(&server, &carol, &room, "join", None);
    // More than a timeline's worth of messages bob may not see.
    for i in 0..30 {
        send_text(&server, &alice, &room, &format!("hidden {i}"));
    }
    member(&server, &bob, &room, "join", None);
    let filter = "%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A5%7D%7D%7D";
    let sync = ok(get(&server, &bob, &format!("/sync?filter={filter}")));
    let timeline = sync["rooms"]["join"][&room]["timeline"]["events"].as_array().unwrap();
    let carol_joined = timeline.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == carol_id.as_str());
    assert!(carol_joined, "carol's join is current state: {timeline:?}");
    assert!(timeline.iter().all(|e| e["content"]["body"].is_null()), "no hidden message leaks: {timeline:?}");
}

#[test]
fn the_v1_event_stream_hands_out_a_backlog_oldest_first_without_gaps_or_repeats() {
    let server = open_server();
    let (_, alice) = register(server.client, "alice");
    let quiet = create_room(&server, &alice, json!({}));
    let busy = create_room(&server, &alice, json!({}));
    let from = ok(get(&server, &alice, "/initialSync?limit=0"))["end"].as_str().unwrap().to_owned();
    let sent: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
    for (i, text) in sent.iter().enumerate() {
        send_text(&server, &alice, &busy, text);
        if i == 3 {
            send_text(&server, &alice, &quiet, "aside");
        }
    }
    let (mut seen, mut token) = (Vec::new(), from);
    for _ in 0..10 {
        let page = ok(get(&server, &alice, &format!("/events?from={token}&limit=3&timeout=0")));
        seen.extend(bodies(&page));
        token = page["end"].as_str().unwrap().to_owned();
    }
    let busy_seen: Vec<&String> = seen.iter().filter(|b| b.starts_with('m')).collect();
    assert_eq!(busy_seen, sent.iter().collect::<Vec<_>>(), "in order, none skipped or repeated: {seen:?}");
    assert_eq!(seen.iter().filter(|b| *b == "aside").count(), 1, "{seen:?}");
}
