//! Federation between two real servers: requests signed with `X-Matrix`
//! over TLS, keys fetched from the origin, and what a server refuses.

mod common;

use common::{call, ok, register, Server, V3};
use serde_json::{json, Value};
use tessera_proto::canonical_json::{to_bytes, Object, Value as CanonicalValue};
use tessera_proto::hashes::event_id;
use tessera_proto::keys::{parse_key_file, SigningKey};
use tessera_proto::request_auth::sign_request;
use tessera_proto::room_version::RoomVersionRules;
use tessera_proto::signatures::hash_and_sign_event;

/// Two servers named after their federation addresses, each trusting the
/// other's self-signed certificate; each also serves the federation API on
/// its (plain HTTP) client port, where the tests reach it directly.
fn pair() -> (Server, Server) {
    let mut a = Server::federating();
    let mut b = Server::federating();
    let (a_cert, b_cert) = (a.tls_certificate(), b.tls_certificate());
    start(&mut a, &b_cert);
    start(&mut b, &a_cert);
    (a, b)
}

/// Starts (or restarts) `server` trusting the other's certificate.
fn start(server: &mut Server, other_cert: &std::path::Path) {
    let trusted = format!("[\"{}\"]", other_cert.display());
    server.spawn(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_LISTENERS__CLIENT__SERVE_FEDERATION", "true"),
        ("TESSERA_FEDERATION__TRUSTED_CA_FILES", &trusted),
    ]);
}

fn encode(s: &str) -> String {
    s.replace('@', "%40").replace(':', "%3A").replace('#', "%23")
}

#[test]
fn a_client_reads_a_remote_users_profile_and_a_remote_alias_through_its_server() {
    let (a, b) = pair();
    let (bob_id, bob) = register(b.client, "bob");
    ok(call(
        b.client,
        "PUT",
        &format!("{V3}/profile/{bob_id}/displayname"),
        Some(&bob),
        Some(&json!({ "displayname": "Bob" })),
    ));
    let alias = format!("#lobby:{}", b.name());
    let room = ok(call(
        b.client,
        "POST",
        &format!("{V3}/createRoom"),
        Some(&bob),
        Some(&json!({ "room_alias_name": "lobby" })),
    ));
    let (_, alice) = register(a.client, "alice");

    let name = ok(call(a.client, "GET", &format!("{V3}/profile/{}/displayname", encode(&bob_id)), Some(&alice), None));
    assert_eq!(name["displayname"], "Bob");
    let profile = ok(call(a.client, "GET", &format!("{V3}/profile/{}", encode(&bob_id)), Some(&alice), None));
    assert_eq!(profile, json!({ "displayname": "Bob" }));
    let found = ok(call(a.client, "GET", &format!("{V3}/directory/room/{}", encode(&alias)), Some(&alice), None));
    assert_eq!(found["room_id"], room["room_id"]);
    assert_eq!(found["servers"], json!([b.name()]));

    let nobody = format!("@nobody:{}", b.name());
    let reply = call(a.client, "GET", &format!("{V3}/profile/{}", encode(&nobody)), Some(&alice), None);
    assert_eq!((reply.status, reply.errcode().as_str()), (404, "M_NOT_FOUND"), "the remote's 404 is passed on");
}

#[test]
fn federation_requests_without_a_valid_signature_are_refused() {
    let (a, b) = pair();
    let (bob_id, _) = register(b.client, "bob");
    let path = format!("/_matrix/federation/v1/query/profile?user_id={}", encode(&bob_id));
    let unsigned = call(b.client, "GET", &path, None, None);
    assert_eq!((unsigned.status, unsigned.errcode().as_str()), (401, "M_UNAUTHORIZED"));

    // A's real key ID, with a signature that is not A's.
    let keys = ok(call(a.client, "GET", "/_matrix/key/v2/server", None, None));
    let key_id = keys["verify_keys"].as_object().unwrap().keys().next().unwrap().clone();
    let forged = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: X-Matrix origin=\"{}\",destination=\"{}\",key=\"{key_id}\",sig=\"{}\"\r\n\r\n",
        a.name(),
        b.name(),
        "A".repeat(86)
    );
    let reply = common::request(b.client, &forged);
    assert_eq!(
        (reply.status, reply.errcode().as_str()),
        (401, "M_UNAUTHORIZED"),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );

    let elsewhere = forged.replace(&format!("destination=\"{}\"", b.name()), "destination=\"other.example\"");
    assert_eq!(common::request(b.client, &elsewhere).status, 401, "meant for another server");
}

#[test]
fn a_notary_relays_another_servers_own_keys_countersigned() {
    let (a, b) = pair();
    let path = format!("/_matrix/key/v2/query/{}", b.name());
    let answer = ok(call(a.client, "GET", &path, None, None));
    let response = &answer["server_keys"][0];
    assert_eq!(response["server_name"], b.name().as_str());
    assert!(response["signatures"][b.name()].is_object(), "the origin's own signature is kept");
    assert!(response["signatures"][a.name()].is_object(), "the notary countersigns");

    let body = json!({ "server_keys": { b.name(): {} } });
    let posted = ok(call(a.client, "POST", "/_matrix/key/v2/query", None, Some(&body)));
    assert_eq!(posted["server_keys"][0]["verify_keys"], response["verify_keys"]);
}

/// Signs requests and events as `server` (the test plays that server,
/// with its own key: the server under test fetches the key from it).
struct Impersonating {
    name: String,
    key: SigningKey,
}

impl Impersonating {
    fn new(server: &Server) -> Self {
        let text = std::fs::read_to_string(server.data_dir().join("data/signing.key")).unwrap();
        Self { name: server.name(), key: parse_key_file(&text).unwrap().remove(0) }
    }

    /// A signed federation request to `to` (on its client port, which
    /// also serves federation in these tests).
    fn call(&self, to: &Server, method: &str, path: &str, body: Option<&Value>) -> common::Reply {
        let content = body.map(|b| CanonicalValue::try_from(b.clone()).unwrap());
        let auth = sign_request(method, path, &self.name, &to.name(), content.as_ref(), &self.key).to_header();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        common::request(
            to.client,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    }

    /// Completes a make_* template: timestamp, hashes, signature; returns
    /// the event and its ID.
    fn complete(&self, template: &Value, version: &str) -> (Value, String) {
        let rules = RoomVersionRules::get(version).unwrap();
        let mut event = template.clone();
        event["origin_server_ts"] = json!(1_700_000_000_000u64);
        let mut object = Object::try_from(event).unwrap();
        hash_and_sign_event(&mut object, &self.name, &self.key, rules);
        let id = event_id(&object, rules).unwrap().to_string();
        (serde_json::from_slice(&to_bytes(&CanonicalValue::Object(object))).unwrap(), id)
    }
}

#[test]
fn a_remote_user_joins_and_leaves_a_local_room_through_make_and_send() {
    let (a, b) = pair();
    let (_, alice) = register(a.client, "alice");
    let room = ok(call(
        a.client,
        "POST",
        &format!("{V3}/createRoom"),
        Some(&alice),
        Some(&json!({ "preset": "public_chat", "room_version": "11" })),
    ))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_server = Impersonating::new(&b);
    let bob = format!("@bob:{}", b.name());

    let made = b_server.call(&a, "GET", &format!("/_matrix/federation/v1/make_join/{room}/{bob}?ver=10&ver=11"), None);
    let made = ok(made);
    assert_eq!(made["room_version"], "11");
    let (join, join_id) = b_server.complete(&made["event"], "11");

    let mut tampered = join.clone();
    tampered["content"]["displayname"] = json!("not what was signed");
    let refused =
        b_server.call(&a, "PUT", &format!("/_matrix/federation/v2/send_join/{room}/{join_id}"), Some(&tampered));
    assert_eq!(refused.status, 403, "content that does not match its hash: {}", String::from_utf8_lossy(&refused.body));

    let joined =
        ok(b_server.call(&a, "PUT", &format!("/_matrix/federation/v2/send_join/{room}/{join_id}"), Some(&join)));
    let state = joined["state"].as_array().unwrap();
    assert!(state.iter().any(|e| e["type"] == "m.room.create"), "the room's state, create event included");
    assert!(!joined["auth_chain"].as_array().unwrap().is_empty());
    let members = ok(call(a.client, "GET", &format!("{V3}/rooms/{room}/joined_members"), Some(&alice), None));
    assert!(members["joined"][&bob].is_object(), "{members}");

    let made = ok(b_server.call(&a, "GET", &format!("/_matrix/federation/v1/make_leave/{room}/{bob}"), None));
    let (leave, leave_id) = b_server.complete(&made["event"], "11");
    let left =
        ok(b_server.call(&a, "PUT", &format!("/_matrix/federation/v1/send_leave/{room}/{leave_id}"), Some(&leave)));
    assert_eq!(left, json!([200, {}]), "v1 keeps its [200, body] wrapper");
    let members = ok(call(a.client, "GET", &format!("{V3}/rooms/{room}/joined_members"), Some(&alice), None));
    assert!(members["joined"].get(&bob).is_none());
}

#[test]
fn a_server_cannot_make_memberships_for_another_servers_users_or_unsupported_versions() {
    let (a, b) = pair();
    let (alice_id, alice) = register(a.client, "alice");
    let room =
        ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&json!({ "room_version": "11" }))))
            ["room_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let b_server = Impersonating::new(&b);
    let reply = b_server.call(&a, "GET", &format!("/_matrix/federation/v1/make_leave/{room}/{alice_id}"), None);
    assert_eq!((reply.status, reply.errcode().as_str()), (403, "M_FORBIDDEN"), "kicking a local user");
    let bob = format!("@bob:{}", b.name());
    let reply = b_server.call(&a, "GET", &format!("/_matrix/federation/v1/make_join/{room}/{bob}"), None);
    assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_INCOMPATIBLE_ROOM_VERSION"), "no ver means v1 only");
    assert_eq!(reply.json()["room_version"], "11");
}

/// A room on `a` with bob of `b` joined over federation; the room's ID and
/// the ID of bob's join (the room's newest event).
fn room_with_remote_member(a: &Server, alice: &str, b_server: &Impersonating, bob: &str) -> (String, String) {
    let body = json!({ "preset": "public_chat", "room_version": "11" });
    let room = ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(alice), Some(&body)))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let made = ok(b_server.call(a, "GET", &format!("/_matrix/federation/v1/make_join/{room}/{bob}?ver=11"), None));
    let (join, join_id) = b_server.complete(&made["event"], "11");
    ok(b_server.call(a, "PUT", &format!("/_matrix/federation/v2/send_join/{room}/{join_id}"), Some(&join)));
    (room, join_id)
}

/// Bodies of the room's messages as `token` reads them, oldest first.
fn bodies(server: &Server, token: &str, room: &str) -> Vec<Value> {
    let page = ok(call(server.client, "GET", &format!("{V3}/rooms/{room}/messages?dir=b&limit=50"), Some(token), None));
    let mut bodies: Vec<Value> = page["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"].clone())
        .collect();
    bodies.reverse();
    bodies
}

#[test]
fn a_remote_members_messages_arrive_in_transactions_once_and_tampered_ones_redacted() {
    let (a, b) = pair();
    let (_, alice) = register(a.client, "alice");
    let b_server = Impersonating::new(&b);
    let bob = format!("@bob:{}", b.name());
    let (room, join_id) = room_with_remote_member(&a, &alice, &b_server, &bob);

    // Auth events: what the rules need for a message (create, power
    // levels, bob's membership), taken from the room's state.
    let state = ok(call(a.client, "GET", &format!("{V3}/rooms/{room}/state"), Some(&alice), None));
    let auth: Vec<Value> = state
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["type"] == "m.room.create" || e["type"] == "m.room.power_levels" || e["state_key"] == bob.as_str()
        })
        .map(|e| e["event_id"].clone())
        .collect();
    let message = |prev: &str, depth: u64, text: &str| {
        let template = json!({
            "type": "m.room.message", "room_id": room, "sender": bob, "content": { "msgtype": "m.text", "body": text },
            "prev_events": [prev], "auth_events": auth, "depth": depth,
        });
        b_server.complete(&template, "11")
    };
    let (hello, hello_id) = message(&join_id, 100, "hello");
    let (mut tampered, tampered_id) = message(&hello_id, 101, "signed words");
    tampered["content"]["body"] = json!("other words");

    let txn = json!({ "origin": b.name(), "origin_server_ts": 1, "pdus": [hello, tampered] });
    let first = ok(b_server.call(&a, "PUT", "/_matrix/federation/v1/send/t1", Some(&txn)));
    assert_eq!(first["pdus"][&hello_id], json!({}), "{first}");
    assert_eq!(first["pdus"][&tampered_id], json!({}), "kept in its redacted form: {first}");
    let again = ok(b_server.call(&a, "PUT", "/_matrix/federation/v1/send/t1", Some(&txn)));
    assert_eq!(again, first, "a retried transaction gets the same answer");
    let contents = bodies(&a, &alice, &room);
    assert_eq!(contents.len(), 2, "each message once: {contents:?}");
    assert_eq!(contents[0]["body"], "hello");
    assert_eq!(contents[1], json!({}), "the tampered message has its content redacted");

    let too_many = json!({ "origin": b.name(), "origin_server_ts": 1, "pdus": vec![json!({}); 51] });
    let reply = b_server.call(&a, "PUT", "/_matrix/federation/v1/send/t2", Some(&too_many));
    assert_eq!(reply.status, 400, "more than 50 PDUs");
}

/// Waits up to ten seconds for `test` to hold on the room's messages as
/// `token` reads them on `server` (transactions arrive asynchronously).
fn eventually_bodies(server: &Server, token: &str, room: &str, test: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seen = bodies(server, token, room);
        if test(&seen) || std::time::Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_user_joins_a_remote_room_by_alias_and_messages_flow_both_ways_in_transactions() {
    let (a, b) = pair();
    let (alice_id, alice) = register(a.client, "alice");
    let (bob_id, bob) = register(b.client, "bob");
    let body = json!({ "preset": "public_chat", "room_alias_name": "lobby" });
    let room = ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&body)))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(call(
        a.client,
        "PUT",
        &format!("{V3}/rooms/{room}/send/m.room.message/t1"),
        Some(&alice),
        Some(&json!({ "msgtype": "m.text", "body": "before bob" })),
    ));

    let alias = encode(&format!("#lobby:{}", a.name()));
    let joined = ok(call(b.client, "POST", &format!("{V3}/join/{alias}"), Some(&bob), Some(&json!({}))));
    assert_eq!(joined["room_id"], room.as_str());
    let members = ok(call(b.client, "GET", &format!("{V3}/rooms/{room}/joined_members"), Some(&bob), None));
    assert!(
        members["joined"][&alice_id].is_object() && members["joined"][&bob_id].is_object(),
        "B adopted the room's state: {members}"
    );
    let members = ok(call(a.client, "GET", &format!("{V3}/rooms/{room}/joined_members"), Some(&alice), None));
    assert!(members["joined"][&bob_id].is_object(), "A accepted bob's join: {members}");

    let text = |body: &str| json!({ "msgtype": "m.text", "body": body });
    ok(call(
        a.client,
        "PUT",
        &format!("{V3}/rooms/{room}/send/m.room.message/t2"),
        Some(&alice),
        Some(&text("from A")),
    ));
    let seen = eventually_bodies(&b, &bob, &room, |seen| seen.iter().any(|c| c["body"] == "from A"));
    assert!(seen.iter().any(|c| c["body"] == "from A"), "A's message reached B: {seen:?}");
    ok(call(b.client, "PUT", &format!("{V3}/rooms/{room}/send/m.room.message/t1"), Some(&bob), Some(&text("from B"))));
    let seen = eventually_bodies(&a, &alice, &room, |seen| seen.iter().any(|c| c["body"] == "from B"));
    assert!(seen.iter().any(|c| c["body"] == "from B"), "B's message reached A: {seen:?}");

    // Presence crosses over as an EDU to the servers sharing a room.
    let status = json!({ "presence": "unavailable", "status_msg": "lunch" });
    ok(call(a.client, "PUT", &format!("{V3}/presence/{}/status", encode(&alice_id)), Some(&alice), Some(&status)));
    let sync = eventually_sync(&b, &bob, |s| {
        s["presence"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|e| e["sender"] == alice_id.as_str() && e["content"]["presence"] == "unavailable")
        })
    });
    assert!(
        sync["presence"]["events"].as_array().unwrap().iter().any(|e| e["content"]["status_msg"] == "lunch"),
        "{sync}"
    );

    // To-device messages cross over as an EDU.
    let messages = json!({ "messages": { &alice_id: { "*": { "secret": "psst" } } } });
    ok(call(b.client, "PUT", &format!("{V3}/sendToDevice/m.test/d1"), Some(&bob), Some(&messages)));
    let sync = eventually_sync(&a, &alice, |s| !s["to_device"]["events"].as_array().unwrap().is_empty());
    assert_eq!(sync["to_device"]["events"][0]["content"]["secret"], "psst", "{sync}");
    assert_eq!(sync["to_device"]["events"][0]["sender"], bob_id.as_str());

    // Keys: uploaded on A, the change told to B, queried and claimed
    // through B.
    let since = ok(call(b.client, "GET", &format!("{V3}/sync?timeout=0"), Some(&bob), None))["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    let device = ok(call(a.client, "GET", &format!("{V3}/account/whoami"), Some(&alice), None))["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = json!({
        "device_keys": { "user_id": alice_id, "device_id": device, "algorithms": [], "keys": {}, "signatures": {} },
        "one_time_keys": { "signed_curve25519:A": { "key": "one" } },
    });
    ok(call(a.client, "POST", &format!("{V3}/keys/upload"), Some(&alice), Some(&keys)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let told = loop {
        let path = format!("{V3}/sync?timeout=1000&since={since}");
        let sync = ok(call(b.client, "GET", &path, Some(&bob), None));
        let told = sync["device_lists"]["changed"].as_array().is_some_and(|c| c.contains(&json!(alice_id)));
        if told || std::time::Instant::now() > deadline {
            break told;
        }
    };
    assert!(told, "B heard of alice's new keys");
    let query = json!({ "device_keys": { &alice_id: [] } });
    let found = ok(call(b.client, "POST", &format!("{V3}/keys/query"), Some(&bob), Some(&query)));
    assert_eq!(found["device_keys"][&alice_id][&device]["device_id"], device.as_str(), "{found}");
    let claim = json!({ "one_time_keys": { &alice_id: { &device: "signed_curve25519" } } });
    let claimed = ok(call(b.client, "POST", &format!("{V3}/keys/claim"), Some(&bob), Some(&claim)));
    assert_eq!(claimed["one_time_keys"][&alice_id][&device]["signed_curve25519:A"]["key"], "one", "{claimed}");

    // A's public room directory, asked through B.
    ok(call(
        a.client,
        "PUT",
        &format!("{V3}/directory/list/room/{room}"),
        Some(&alice),
        Some(&json!({ "visibility": "public" })),
    ));
    let listed = ok(call(b.client, "GET", &format!("{V3}/publicRooms?server={}", encode(&a.name())), Some(&bob), None));
    assert_eq!(listed["chunk"][0]["room_id"], room.as_str(), "{listed}");

    // By room ID, naming the server to join through; a room of version 11
    // (create event among the auth events, unlike 12).
    let body = json!({ "preset": "public_chat", "room_version": "11" });
    let old = ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&body)))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{V3}/join/{old}?server_name={}", encode(&a.name()));
    assert_eq!(ok(call(b.client, "POST", &path, Some(&bob), Some(&json!({}))))["room_id"], old.as_str());
    ok(call(b.client, "POST", &format!("{V3}/rooms/{old}/leave"), Some(&bob), Some(&json!({}))));

    // A kick of a remote member reaches the member's server.
    let kick = json!({ "user_id": bob_id });
    ok(call(a.client, "POST", &format!("{V3}/rooms/{room}/kick"), Some(&alice), Some(&kick)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let left = loop {
        let rooms = ok(call(b.client, "GET", &format!("{V3}/joined_rooms"), Some(&bob), None));
        let left = rooms["joined_rooms"].as_array().unwrap().is_empty();
        if left || std::time::Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(left, "B saw bob kicked");
}

/// Waits up to ten seconds for `test` to hold on `token`'s sync.
fn eventually_sync(server: &Server, token: &str, test: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let sync = ok(call(server.client, "GET", &format!("{V3}/sync?timeout=0"), Some(token), None));
        if test(&sync) || std::time::Instant::now() > deadline {
            return sync;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_remote_invite_shows_the_room_and_can_be_rejected_or_accepted_through_the_inviting_server() {
    let (a, b) = pair();
    let (_, alice) = register(a.client, "alice");
    let (bob_id, bob) = register(b.client, "bob");
    let body = json!({ "preset": "private_chat", "name": "Secret plans" });
    let room = ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&body)))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invite = || {
        ok(call(
            a.client,
            "POST",
            &format!("{V3}/rooms/{room}/invite"),
            Some(&alice),
            Some(&json!({ "user_id": bob_id })),
        ))
    };
    let membership_on_a = || {
        let path = format!("{V3}/rooms/{room}/state/m.room.member/{}", encode(&bob_id));
        ok(call(a.client, "GET", &path, Some(&alice), None))["membership"].clone()
    };

    invite();
    let sync = eventually_sync(&b, &bob, |s| s["rooms"]["invite"].get(&room).is_some());
    let shown = &sync["rooms"]["invite"][&room]["invite_state"]["events"];
    assert!(
        shown.as_array().unwrap().iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Secret plans"),
        "the invitee sees the room's name: {sync}"
    );
    assert_eq!(membership_on_a(), "invite");

    // Rejected through A: A's room records the leave.
    ok(call(b.client, "POST", &format!("{V3}/rooms/{room}/leave"), Some(&bob), Some(&json!({}))));
    assert_eq!(membership_on_a(), "leave");

    // Invited again and accepted: B joins through A, the inviting server.
    invite();
    eventually_sync(&b, &bob, |s| s["rooms"]["invite"].get(&room).is_some());
    ok(call(b.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&bob), Some(&json!({}))));
    assert_eq!(membership_on_a(), "join");

    // Typing crosses over as an EDU.
    let typing = json!({ "typing": true, "timeout": 10000 });
    ok(call(b.client, "PUT", &format!("{V3}/rooms/{room}/typing/{}", encode(&bob_id)), Some(&bob), Some(&typing)));
    let sync = eventually_sync(&a, &alice, |s| {
        s["rooms"]["join"][&room]["ephemeral"]["events"].as_array().is_some_and(|events| {
            events.iter().any(|e| e["type"] == "m.typing" && e["content"]["user_ids"][0] == bob_id.as_str())
        })
    });
    let events = &sync["rooms"]["join"][&room]["ephemeral"]["events"];
    assert!(events.as_array().is_some_and(|e| e.iter().any(|e| e["type"] == "m.typing")), "{sync}");
}

#[test]
fn an_invite_to_a_room_its_server_has_left_is_still_rejected_here() {
    let (a, b) = pair();
    let (_, alice) = register(a.client, "alice");
    let (bob_id, bob) = register(b.client, "bob");
    let room = ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&json!({}))))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(call(a.client, "POST", &format!("{V3}/rooms/{room}/invite"), Some(&alice), Some(&json!({ "user_id": bob_id }))));
    eventually_sync(&b, &bob, |s| s["rooms"]["invite"].get(&room).is_some());
    ok(call(a.client, "POST", &format!("{V3}/rooms/{room}/leave"), Some(&alice), Some(&json!({}))));

    ok(call(b.client, "POST", &format!("{V3}/rooms/{room}/leave"), Some(&bob), Some(&json!({}))));
    let sync = ok(call(b.client, "GET", &format!("{V3}/sync"), Some(&bob), None));
    assert!(sync["rooms"]["invite"].get(&room).is_none(), "no longer invited: {sync}");
}

/// A public room (version 11: its create event among the auth events) of
/// alice on `a` that bob of `b` joined through `a`: the room and both
/// access tokens.
fn shared_room(a: &Server, b: &Server) -> (String, String, String) {
    let (_, alice) = register(a.client, "alice");
    let (_, bob) = register(b.client, "bob");
    let body = json!({ "preset": "public_chat", "room_version": "11" });
    let room = ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&body)))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("{V3}/join/{room}?server_name={}", encode(&a.name()));
    ok(call(b.client, "POST", &path, Some(&bob), Some(&json!({}))));
    (room, alice, bob)
}

fn send(server: &Server, token: &str, room: &str, txn: &str, body: &str) -> String {
    let content = json!({ "msgtype": "m.text", "body": body });
    let path = format!("{V3}/rooms/{room}/send/m.room.message/{txn}");
    ok(call(server.client, "PUT", &path, Some(token), Some(&content)))["event_id"].as_str().unwrap().to_owned()
}

#[test]
fn other_servers_read_events_state_and_history_of_rooms_they_are_in_and_nothing_else() {
    let (a, b) = pair();
    let (room, alice, bob) = shared_room(&a, &b);
    let ids: Vec<String> = (0..3).map(|i| send(&a, &alice, &room, &format!("m{i}"), &format!("message {i}"))).collect();
    let b_server = Impersonating::new(&b);
    // The state before bob's join (an event A accepted from B) names the
    // room's create event.
    let members = ok(call(a.client, "GET", &format!("{V3}/rooms/{room}/state"), Some(&alice), None));
    let create = members.as_array().unwrap().iter().find(|e| e["type"] == "m.room.create").unwrap()["event_id"].clone();
    let bob_join = members
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"].as_str().unwrap().ends_with(&b.name()))
        .unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before_join =
        ok(b_server.call(&a, "GET", &format!("/_matrix/federation/v1/state_ids/{room}?event_id={bob_join}"), None));
    assert!(before_join["pdu_ids"].as_array().unwrap().contains(&create), "{before_join}");

    let got = ok(b_server.call(&a, "GET", &format!("/_matrix/federation/v1/event/{}", ids[1]), None));
    assert_eq!(got["pdus"][0]["content"]["body"], "message 1");
    let state =
        ok(b_server.call(&a, "GET", &format!("/_matrix/federation/v1/state_ids/{room}?event_id={}", ids[0]), None));
    assert!(state["pdu_ids"].as_array().unwrap().len() >= 5, "create, members, power levels, rules: {state}");
    assert!(!state["auth_chain_ids"].as_array().unwrap().is_empty());
    let full = ok(b_server.call(&a, "GET", &format!("/_matrix/federation/v1/state/{room}?event_id={}", ids[0]), None));
    assert!(full["pdus"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.create"));
    // Each PDU's ID, computed from it as another server would, is the one
    // /state_ids names.
    let rules = RoomVersionRules::get("11").unwrap();
    for pdu in full["pdus"].as_array().unwrap() {
        let CanonicalValue::Object(object) = CanonicalValue::try_from(pdu.clone()).unwrap() else { panic!() };
        let id = event_id(&object, rules).unwrap().to_string();
        assert!(state["pdu_ids"].as_array().unwrap().contains(&json!(id)), "{id} of {pdu}");
    }
    let auth = ok(b_server.call(&a, "GET", &format!("/_matrix/federation/v1/event_auth/{room}/{}", ids[0]), None));
    let types: Vec<&Value> = auth["auth_chain"].as_array().unwrap().iter().map(|e| &e["type"]).collect();
    assert!(types.contains(&&json!("m.room.power_levels")) && types.contains(&&json!("m.room.member")), "{auth}");
    let back =
        ok(b_server.call(&a, "GET", &format!("/_matrix/federation/v1/backfill/{room}?v={}&limit=2", ids[2]), None));
    let bodies: Vec<&Value> = back["pdus"].as_array().unwrap().iter().map(|e| &e["content"]["body"]).collect();
    assert_eq!(bodies, [&json!("message 2"), &json!("message 1")], "newest first, from v inclusive");
    let body = json!({ "earliest_events": [ids[0]], "latest_events": [ids[2]], "limit": 10 });
    let missing =
        ok(b_server.call(&a, "POST", &format!("/_matrix/federation/v1/get_missing_events/{room}"), Some(&body)));
    let bodies: Vec<&Value> = missing["events"].as_array().unwrap().iter().map(|e| &e["content"]["body"]).collect();
    assert_eq!(bodies, [&json!("message 1")], "between earliest and latest, both excluded");

    // Once B has no user in the room (A heard of bob's leave), it reads
    // nothing.
    ok(call(b.client, "POST", &format!("{V3}/rooms/{room}/leave"), Some(&bob), Some(&json!({}))));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let reply = b_server.call(&a, "GET", &format!("/_matrix/federation/v1/event/{}", ids[1]), None);
        if reply.status != 200 || std::time::Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(refused.status, 403);
}

#[test]
fn a_message_whose_predecessor_never_arrived_brings_it_along_through_get_missing_events() {
    let (mut a, mut b) = pair();
    let (room, alice, bob) = shared_room(&a, &b);

    // A is down while bob speaks; B restarts, so the queued transaction is
    // gone (queues are memory only) and A never hears of "lost".
    let (a_cert, b_cert) = (a.tls_certificate(), b.tls_certificate());
    a.signal_and_wait("TERM");
    send(&b, &bob, &room, "t1", "lost");
    b.signal_and_wait("TERM");
    start(&mut a, &b_cert);
    start(&mut b, &a_cert);
    send(&b, &bob, &room, "t2", "after");
    let seen = eventually_bodies(&a, &alice, &room, |seen| seen.iter().any(|c| c["body"] == "after"));
    let texts: Vec<&Value> = seen.iter().map(|c| &c["body"]).collect();
    assert_eq!(texts, [&json!("lost"), &json!("after")], "the gap was filled in order");
}

#[test]
fn a_knock_on_a_remote_room_is_seen_there_and_answered_with_an_invite() {
    let (a, b) = pair();
    let (_, alice) = register(a.client, "alice");
    let (bob_id, bob) = register(b.client, "bob");
    let body = json!({
        "preset": "private_chat",
        "name": "Knock first",
        "initial_state": [{ "type": "m.room.join_rules", "state_key": "", "content": { "join_rule": "knock" } }],
    });
    let room = ok(call(a.client, "POST", &format!("{V3}/createRoom"), Some(&alice), Some(&body)))["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let knock = json!({ "reason": "let me in" });
    let path = format!("{V3}/knock/{}?server_name={}", encode(&room), a.name());
    assert_eq!(ok(call(b.client, "POST", &path, Some(&bob), Some(&knock)))["room_id"], room.as_str());

    // B lists the room under `knock`, with what A let it see.
    let sync = eventually_sync(&b, &bob, |s| s["rooms"]["knock"].get(&room).is_some());
    let shown = sync["rooms"]["knock"][&room]["knock_state"]["events"].as_array().cloned().unwrap_or_default();
    assert!(shown.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Knock first"), "{sync}");
    assert!(shown.iter().any(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "knock"), "{sync}");

    // A holds the knock, reason and all, and answers with an invite.
    let member = format!("{V3}/rooms/{room}/state/m.room.member/{}", encode(&bob_id));
    let held = ok(call(a.client, "GET", &member, Some(&alice), None));
    assert_eq!((held["membership"].as_str(), held["reason"].as_str()), (Some("knock"), Some("let me in")));
    ok(call(a.client, "POST", &format!("{V3}/rooms/{room}/invite"), Some(&alice), Some(&json!({ "user_id": bob_id }))));
    eventually_sync(&b, &bob, |s| s["rooms"]["invite"].get(&room).is_some());
    ok(call(b.client, "POST", &format!("{V3}/rooms/{room}/join"), Some(&bob), Some(&json!({}))));
    assert_eq!(ok(call(a.client, "GET", &member, Some(&alice), None))["membership"], "join");
}
