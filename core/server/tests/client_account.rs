//! The account endpoints of the Client-Server API on the real binary:
//! profiles (and their propagation into rooms), account data, tags,
//! capabilities, filters, devices, password change and deactivation.

mod common;

use common::{call, ok, open_server, register, Server, V3};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

fn create_room(server: &Server, token: &str) -> String {
    let body = json!({ "preset": "public_chat" });
    let reply = call(server.client, "POST", &format!("{V3}/createRoom"), Some(token), Some(&body));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()["room_id"].as_str().unwrap().to_owned()
}

/// Logs `localpart` in with `password`: the reply.
fn login(server: &Server, localpart: &str, password: &str) -> common::Reply {
    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": localpart },
        "password": password,
    });
    call(server.client, "POST", &format!("{V3}/login"), None, Some(&body))
}

/// A new session of `localpart`: (device ID, token).
fn new_device(server: &Server, localpart: &str) -> (String, String) {
    let reply = login(server, localpart, PASSWORD);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let json = reply.json();
    (json["device_id"].as_str().unwrap().to_owned(), json["access_token"].as_str().unwrap().to_owned())
}

fn password_auth(user: &str, password: &str) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": password,
    })
}

fn status(server: &Server, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, String) {
    let reply = call(server.client, method, path, Some(token), body);
    let errcode = if reply.status == 200 { String::new() } else { reply.errcode() };
    (reply.status, errcode)
}

/// The `m.room.member` content of `user` in `room`, as `reader` sees it.
fn member_content(server: &Server, reader: &str, room: &str, user: &str) -> Value {
    let reply = call(server.client, "GET", &format!("{V3}/rooms/{room}/members"), Some(reader), None);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let chunk = reply.json()["chunk"].as_array().unwrap().clone();
    chunk.into_iter().find(|e| e["state_key"] == user).map(|e| e["content"].clone()).unwrap_or(Value::Null)
}

#[test]
fn new_displayname_is_missing_from_room_member_lists() {
    let server = open_server();
    let (alice, alice_token) = register(server.client, "alice");
    let (_, bob_token) = register(server.client, "bob");
    let (room_a, room_b) = (create_room(&server, &alice_token), create_room(&server, &alice_token));
    for room in [&room_a, &room_b] {
        assert_eq!(status(&server, "POST", &format!("{V3}/rooms/{room}/join"), &bob_token, None).0, 200);
    }
    let path = format!("{V3}/profile/{alice}/displayname");
    let reply = call(server.client, "PUT", &path, Some(&alice_token), Some(&json!({ "displayname": "Alice A." })));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(call(server.client, "GET", &path, None, None).json(), json!({ "displayname": "Alice A." }));
    for room in [&room_a, &room_b] {
        let content = member_content(&server, &bob_token, room, &alice);
        assert_eq!(content["displayname"], "Alice A.", "{room}: {content}");
        assert_eq!(content["membership"], "join");
    }

    let avatar = format!("{V3}/profile/{alice}/avatar_url");
    let body = json!({ "avatar_url": "mxc://localhost/abc" });
    assert_eq!(status(&server, "PUT", &avatar, &alice_token, Some(&body)).0, 200);
    assert_eq!(member_content(&server, &bob_token, &room_a, &alice)["avatar_url"], "mxc://localhost/abc");
    let profile = call(server.client, "GET", &format!("{V3}/profile/{alice}"), None, None).json();
    assert_eq!(profile, json!({ "displayname": "Alice A.", "avatar_url": "mxc://localhost/abc" }));
    // Percent-encoded user IDs are the same user.
    let encoded = call(server.client, "GET", &format!("{V3}/profile/%40alice%3Alocalhost/avatar_url"), None, None);
    assert_eq!(encoded.json(), json!({ "avatar_url": "mxc://localhost/abc" }));

    // An empty string clears the field; a cleared field is not found.
    assert_eq!(status(&server, "PUT", &avatar, &alice_token, Some(&json!({ "avatar_url": "" }))).0, 200);
    assert_eq!(call(server.client, "GET", &avatar, None, None).status, 404);
}

#[test]
fn profile_writes_accept_other_users_and_malformed_values() {
    let server = open_server();
    let (alice, alice_token) = register(server.client, "alice");
    let (_, bob_token) = register(server.client, "bob");
    let path = format!("{V3}/profile/{alice}/displayname");
    let set = |token: &str, body: Value| status(&server, "PUT", &path, token, Some(&body));
    assert_eq!(set(&bob_token, json!({ "displayname": "mallory" })), (403, "M_FORBIDDEN".into()));
    assert_eq!(set(&alice_token, json!({ "displayname": 5 })), (400, "M_INVALID_PARAM".into()));
    assert_eq!(set(&alice_token, json!({ "displayname": null })), (400, "M_INVALID_PARAM".into()));
    assert_eq!(set(&alice_token, json!({})), (400, "M_MISSING_PARAM".into()));
    assert_eq!(set(&alice_token, json!({ "displayname": "a".repeat(257) })).0, 400);
    assert_eq!(set(&alice_token, json!({ "displayname": "é".repeat(256) })).0, 200);
    let avatar = format!("{V3}/profile/{alice}/avatar_url");
    let long = json!({ "avatar_url": format!("mxc://localhost/{}", "a".repeat(1000)) });
    assert_eq!(status(&server, "PUT", &avatar, &alice_token, Some(&long)).0, 400);
    // The default display name is the localpart.
    let (bob_profile, _) = (call(server.client, "GET", &format!("{V3}/profile/@bob:localhost"), None, None), ());
    assert_eq!(bob_profile.json(), json!({ "displayname": "bob" }));
    for missing in [format!("{V3}/profile/@nobody:localhost"), format!("{V3}/profile/@nobody:localhost/displayname")] {
        let reply = call(server.client, "GET", &missing, None, None);
        assert_eq!((reply.status, reply.errcode().as_str()), (404, "M_NOT_FOUND"), "{missing}");
    }
}

#[test]
fn account_data_leaks_to_other_users_or_accepts_server_managed_types() {
    let server = open_server();
    let (alice, token) = register(server.client, "alice");
    let (_, bob_token) = register(server.client, "bob");
    let global = format!("{V3}/user/{alice}/account_data/org.example.config");
    assert_eq!(status(&server, "GET", &global, &token, None), (404, "M_NOT_FOUND".into()));
    assert_eq!(status(&server, "PUT", &global, &token, Some(&json!({ "theme": "dark" }))).0, 200);
    assert_eq!(call(server.client, "GET", &global, Some(&token), None).json(), json!({ "theme": "dark" }));
    assert_eq!(status(&server, "PUT", &global, &token, Some(&json!({ "theme": "light" }))).0, 200);
    assert_eq!(call(server.client, "GET", &global, Some(&token), None).json(), json!({ "theme": "light" }));
    assert_eq!(status(&server, "GET", &global, &bob_token, None), (403, "M_FORBIDDEN".into()));
    assert_eq!(status(&server, "PUT", &global, &bob_token, Some(&json!({}))), (403, "M_FORBIDDEN".into()));
    assert_eq!(status(&server, "PUT", &global, &token, Some(&json!([1]))), (400, "M_NOT_JSON".into()));
    for managed in ["m.fully_read", "m.push_rules"] {
        let path = format!("{V3}/user/{alice}/account_data/{managed}");
        assert_eq!(status(&server, "PUT", &path, &token, Some(&json!({}))), (405, "M_BAD_JSON".into()));
        let path = format!("{V3}/user/{alice}/rooms/!r:localhost/account_data/{managed}");
        assert_eq!(status(&server, "PUT", &path, &token, Some(&json!({}))), (405, "M_BAD_JSON".into()));
    }

    let room = format!("{V3}/user/{alice}/rooms/!r:localhost/account_data/org.example.config");
    assert_eq!(status(&server, "GET", &room, &token, None), (404, "M_NOT_FOUND".into()));
    assert_eq!(status(&server, "PUT", &room, &token, Some(&json!({ "pinned": true }))).0, 200);
    assert_eq!(call(server.client, "GET", &room, Some(&token), None).json(), json!({ "pinned": true }));
    // Room data does not fall back to, or overwrite, global data.
    assert_eq!(call(server.client, "GET", &global, Some(&token), None).json(), json!({ "theme": "light" }));
    assert_eq!(status(&server, "GET", &room, &bob_token, None), (403, "M_FORBIDDEN".into()));
    let bad_room = format!("{V3}/user/{alice}/rooms/not-a-room/account_data/org.example.config");
    assert_eq!(status(&server, "PUT", &bad_room, &token, Some(&json!({}))), (400, "M_INVALID_PARAM".into()));
}

#[test]
fn room_tags_are_lost_or_not_stored_as_m_tag() {
    let server = open_server();
    let (alice, token) = register(server.client, "alice");
    let (_, bob_token) = register(server.client, "bob");
    let tags = format!("{V3}/user/{alice}/rooms/!r:localhost/tags");
    assert_eq!(call(server.client, "GET", &tags, Some(&token), None).json(), json!({ "tags": {} }));
    // Added at once from several clients: none may be lost.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let (addr, tags, token) = (server.client, tags.clone(), token.clone());
            std::thread::spawn(move || {
                call(addr, "PUT", &format!("{tags}/u.t{i}"), Some(&token), Some(&json!({}))).status
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), 200);
    }
    let order = json!({ "order": 0.25 });
    assert_eq!(status(&server, "PUT", &format!("{tags}/m.favourite"), &token, Some(&order)).0, 200);
    let got = call(server.client, "GET", &tags, Some(&token), None).json();
    assert_eq!(got["tags"].as_object().unwrap().len(), 7, "{got}");
    assert_eq!(got["tags"]["m.favourite"], order);
    let m_tag = format!("{V3}/user/{alice}/rooms/!r:localhost/account_data/m.tag");
    assert_eq!(call(server.client, "GET", &m_tag, Some(&token), None).json(), got);

    assert_eq!(status(&server, "DELETE", &format!("{tags}/m.favourite"), &token, None).0, 200);
    assert_eq!(status(&server, "DELETE", &format!("{tags}/never.set"), &token, None).0, 200);
    let got = call(server.client, "GET", &tags, Some(&token), None).json();
    assert!(got["tags"].get("m.favourite").is_none() && got["tags"].get("u.t0").is_some(), "{got}");

    let bad_order = json!({ "order": "first" });
    assert_eq!(status(&server, "PUT", &format!("{tags}/u.x"), &token, Some(&bad_order)), (400, "M_BAD_JSON".into()));
    assert_eq!(status(&server, "GET", &tags, &bob_token, None), (403, "M_FORBIDDEN".into()));
    assert_eq!(
        status(&server, "PUT", &format!("{tags}/u.x"), &bob_token, Some(&json!({}))),
        (403, "M_FORBIDDEN".into())
    );
}

#[test]
fn capabilities_misreport_room_versions_or_profile_changes() {
    let server = open_server();
    let (_, token) = register(server.client, "alice");
    assert_eq!(call(server.client, "GET", &format!("{V3}/capabilities"), None, None).status, 401);
    let caps =
        call(server.client, "GET", &format!("{V3}/capabilities"), Some(&token), None).json()["capabilities"].clone();
    assert_eq!(caps["m.room_versions"]["default"], "12");
    for version in 1..=12 {
        assert_eq!(caps["m.room_versions"]["available"][version.to_string()], "stable", "v{version}");
    }
    assert_eq!(caps["m.change_password"]["enabled"], true);
    assert_eq!(caps["m.set_displayname"]["enabled"], true);
    assert_eq!(caps["m.set_avatar_url"]["enabled"], true);
    assert_eq!(caps["m.3pid_changes"]["enabled"], false);
}

#[test]
fn stored_filters_are_lost_or_ignored_by_sync() {
    let server = open_server();
    let (alice, token) = register(server.client, "alice");
    let (_, bob_token) = register(server.client, "bob");
    let filter = json!({ "room": { "timeline": { "limit": 1 } }, "event_format": "client" });
    let reply = call(server.client, "POST", &format!("{V3}/user/{alice}/filter"), Some(&token), Some(&filter));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let id = reply.json()["filter_id"].as_str().unwrap().to_owned();
    let path = format!("{V3}/user/{alice}/filter/{id}");
    assert_eq!(call(server.client, "GET", &path, Some(&token), None).json(), filter);
    assert_eq!(status(&server, "GET", &path, &bob_token, None), (403, "M_FORBIDDEN".into()));
    let bobs = format!("{V3}/user/{alice}/filter");
    assert_eq!(status(&server, "POST", &bobs, &bob_token, Some(&json!({}))), (403, "M_FORBIDDEN".into()));
    let unknown = format!("{V3}/user/{alice}/filter/12");
    assert_eq!(status(&server, "GET", &unknown, &token, None), (404, "M_NOT_FOUND".into()));
    let post = |body: &Value| status(&server, "POST", &format!("{V3}/user/{alice}/filter"), &token, Some(body));
    assert_eq!(post(&json!("filter")), (400, "M_NOT_JSON".into()));
    assert_eq!(post(&json!({ "room": { "timeline": { "limit": "1" } } })), (400, "M_BAD_JSON".into()));
    assert_eq!(post(&json!({ "room": { "not_rooms": vec!["!x:localhost"; 300] } })), (400, "M_TOO_LARGE".into()));

    let room = create_room(&server, &token);
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let body = json!({ "msgtype": "m.text", "body": text });
        let send = format!("{V3}/rooms/{room}/send/m.room.message/t{i}");
        assert_eq!(status(&server, "PUT", &send, &token, Some(&body)).0, 200);
    }
    let sync = call(server.client, "GET", &format!("{V3}/sync?filter={id}"), Some(&token), None);
    assert_eq!(sync.status, 200, "{}", String::from_utf8_lossy(&sync.body));
    let events = sync.json()["rooms"]["join"][&room]["timeline"]["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["content"]["body"], "three");
    assert_eq!(
        status(&server, "GET", &format!("{V3}/sync?filter=nope"), &token, None),
        (400, "M_INVALID_PARAM".into())
    );
}

#[test]
fn devices_are_renamed_or_deleted_without_the_password() {
    let server = open_server();
    let (_, token) = register(server.client, "alice");
    let (phone, phone_token) = new_device(&server, "alice");
    let list = call(server.client, "GET", &format!("{V3}/devices"), Some(&token), None).json();
    assert_eq!(list["devices"].as_array().unwrap().len(), 2, "{list}");
    let device = format!("{V3}/devices/{phone}");
    assert_eq!(call(server.client, "GET", &device, Some(&token), None).json()["device_id"], phone.as_str());
    assert_eq!(status(&server, "GET", &format!("{V3}/devices/NOPE"), &token, None), (404, "M_NOT_FOUND".into()));
    let rename = json!({ "display_name": "Phone" });
    assert_eq!(status(&server, "PUT", &device, &token, Some(&rename)).0, 200);
    assert_eq!(call(server.client, "GET", &device, Some(&token), None).json()["display_name"], "Phone");
    assert_eq!(
        status(&server, "PUT", &format!("{V3}/devices/NOPE"), &token, Some(&rename)),
        (404, "M_NOT_FOUND".into())
    );
    let too_long = json!({ "display_name": "x".repeat(101) });
    assert_eq!(status(&server, "PUT", &device, &token, Some(&too_long)).0, 400);

    // User-interactive authentication: the flows, then a wrong password.
    let reply = call(server.client, "DELETE", &device, Some(&token), Some(&json!({})));
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["flows"], json!([{ "stages": ["m.login.password"] }]));
    assert!(reply.json()["session"].is_string() && reply.json().get("errcode").is_none());
    let wrong = json!({ "auth": password_auth("alice", "wrong") });
    let reply = call(server.client, "DELETE", &device, Some(&token), Some(&wrong));
    assert_eq!((reply.status, reply.errcode().as_str()), (401, "M_FORBIDDEN"));
    let someone_else = json!({ "auth": password_auth("@bob:localhost", PASSWORD) });
    assert_eq!(status(&server, "DELETE", &device, &token, Some(&someone_else)), (403, "M_FORBIDDEN".into()));
    assert_eq!(status(&server, "GET", &format!("{V3}/account/whoami"), &phone_token, None).0, 200);
    let right = json!({ "auth": password_auth("alice", PASSWORD) });
    assert_eq!(status(&server, "DELETE", &device, &token, Some(&right)).0, 200);
    assert_eq!(
        status(&server, "GET", &format!("{V3}/account/whoami"), &phone_token, None),
        (401, "M_UNKNOWN_TOKEN".into())
    );
    assert_eq!(status(&server, "GET", &device, &token, None).0, 404);

    let (tablet, tablet_token) = new_device(&server, "alice");
    let (laptop, laptop_token) = new_device(&server, "alice");
    let many = format!("{V3}/delete_devices");
    assert_eq!(status(&server, "POST", &many, &token, Some(&json!({ "devices": [tablet, laptop] }))).0, 401);
    assert_eq!(status(&server, "POST", &many, &token, Some(&right)), (400, "M_MISSING_PARAM".into()));
    let body = json!({ "devices": [tablet, laptop], "auth": password_auth("@alice:localhost", PASSWORD) });
    assert_eq!(status(&server, "POST", &many, &token, Some(&body)).0, 200);
    for dead in [&tablet_token, &laptop_token] {
        assert_eq!(status(&server, "GET", &format!("{V3}/account/whoami"), dead, None).0, 401);
    }
    let list = call(server.client, "GET", &format!("{V3}/devices"), Some(&token), None).json();
    assert_eq!(list["devices"].as_array().unwrap().len(), 1, "{list}");
}

/// SyTest "The operation must be consistent through an interactive
/// authentication session": a session started to delete one device must
/// not authorise deleting another.
#[test]
fn uia_session_started_for_one_device_deletes_another() {
    let server = open_server();
    let (_, token) = register(server.client, "alice");
    let (first, _) = new_device(&server, "alice");
    let (second, second_token) = new_device(&server, "alice");
    let started = call(server.client, "DELETE", &format!("{V3}/devices/{first}"), Some(&token), Some(&json!({})));
    assert_eq!(started.status, 401);
    let session = started.json()["session"].as_str().unwrap().to_owned();

    let mut auth = password_auth("alice", PASSWORD);
    auth["session"] = json!(session);
    let other = format!("{V3}/devices/{second}");
    assert_eq!(status(&server, "DELETE", &other, &token, Some(&json!({ "auth": auth }))), (403, "M_FORBIDDEN".into()));
    assert_eq!(status(&server, "GET", &format!("{V3}/account/whoami"), &second_token, None).0, 200);

    // The session finishes the operation it was started for.
    let first_path = format!("{V3}/devices/{first}");
    assert_eq!(status(&server, "DELETE", &first_path, &token, Some(&json!({ "auth": auth }))).0, 200);
    assert_eq!(status(&server, "GET", &first_path, &token, None).0, 404);
}

#[test]
fn password_change_keeps_the_old_password_or_other_sessions() {
    let server = open_server();
    let (_, token) = register(server.client, "alice");
    let (_, other_token) = new_device(&server, "alice");
    let path = format!("{V3}/account/password");
    let body = json!({ "new_password": "new secret" });
    assert_eq!(status(&server, "POST", &path, &token, Some(&body)).0, 401);
    let wrong = json!({ "new_password": "new secret", "auth": password_auth("alice", "wrong") });
    assert_eq!(status(&server, "POST", &path, &token, Some(&wrong)), (401, "M_FORBIDDEN".into()));
    let missing = json!({ "auth": password_auth("alice", PASSWORD) });
    assert_eq!(status(&server, "POST", &path, &token, Some(&missing)), (400, "M_MISSING_PARAM".into()));
    let right = json!({ "new_password": "new secret", "auth": password_auth("alice", PASSWORD) });
    assert_eq!(status(&server, "POST", &path, &token, Some(&right)).0, 200);
    assert_eq!(login(&server, "alice", PASSWORD).status, 403);
    assert_eq!(status(&server, "GET", &format!("{V3}/account/whoami"), &token, None).0, 200);
    assert_eq!(status(&server, "GET", &format!("{V3}/account/whoami"), &other_token, None).0, 401);

    // `logout_devices: false` keeps the other sessions.
    let second = login(&server, "alice", "new secret");
    assert_eq!(second.status, 200);
    let second_token = second.json()["access_token"].as_str().unwrap().to_owned();
    let keep =
        json!({ "new_password": "third", "logout_devices": false, "auth": password_auth("alice", "new secret") });
    assert_eq!(status(&server, "POST", &path, &token, Some(&keep)).0, 200);
    assert_eq!(status(&server, "GET", &format!("{V3}/account/whoami"), &second_token, None).0, 200);
    assert_eq!(login(&server, "alice", "third").status, 200);
}

#[test]
fn deactivated_accounts_can_still_log_in_or_stay_in_rooms() {
    let server = open_server();
    let (_, alice_token) = register(server.client, "alice");
    let (bob, bob_token) = register(server.client, "bob");
    let room = create_room(&server, &alice_token);
    assert_eq!(status(&server, "POST", &format!("{V3}/rooms/{room}/join"), &bob_token, None).0, 200);
    let path = format!("{V3}/account/deactivate");
    assert_eq!(status(&server, "POST", &path, &bob_token, Some(&json!({}))).0, 401);
    let body = json!({ "auth": password_auth("bob", PASSWORD) });
    let reply = call(server.client, "POST", &path, Some(&bob_token), Some(&body));
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json(), json!({ "id_server_unbind_result": "no-support" }));
    assert_eq!(
        status(&server, "GET", &format!("{V3}/account/whoami"), &bob_token, None),
        (401, "M_UNKNOWN_TOKEN".into())
    );
    assert_eq!(login(&server, "bob", PASSWORD).status, 403);
    assert_eq!(member_content(&server, &alice_token, &room, &bob)["membership"], "leave");
    assert_eq!(call(server.client, "GET", &format!("{V3}/profile/{bob}"), None, None).status, 404);
    // The name stays taken.
    let again = json!({ "username": "bob", "password": "p", "auth": { "type": "m.login.dummy" } });
    assert_eq!(call(server.client, "POST", &format!("{V3}/register"), None, Some(&again)).errcode(), "M_USER_IN_USE");
}

#[test]
fn rate_limits_let_a_flood_through_or_hold_back_other_users() {
    let server = Server::start(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_SERVER__CORES", "1"),
        ("TESSERA_RATE_LIMITS__ENABLE", "true"),
        ("TESSERA_RATE_LIMITS__MESSAGE", "{ per_second = 0.001, burst = 3 }"),
        ("TESSERA_RATE_LIMITS__LOGIN_FAILURE", "{ per_second = 0.001, burst = 2 }"),
    ]);
    let (_, alice) = register(server.client, "alice");
    let (_, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice);
    let send = |token: &str, n: u32| {
        let path = format!("{V3}/rooms/{room}/send/m.room.message/t{n}");
        call(server.client, "PUT", &path, Some(token), Some(&json!({ "body": "x" })))
    };
    // createRoom sent events too, but through its own limit.
    for n in 0..3 {
        assert_eq!(send(&alice, n).status, 200);
    }
    let limited = send(&alice, 3);
    assert_eq!((limited.status, limited.errcode().as_str()), (429, "M_LIMIT_EXCEEDED"));
    assert!(limited.json()["retry_after_ms"].as_u64().unwrap() > 0);
    assert_eq!(send(&bob, 0).status, 403, "bob is not in the room, but not limited either");

    // Two wrong passwords, then even the right one waits.
    for _ in 0..2 {
        assert_eq!(login(&server, "alice", "wrong").status, 403);
    }
    assert_eq!(login(&server, "alice", PASSWORD).status, 429);
    assert_eq!(login(&server, "bob", PASSWORD).status, 200, "another account is not held back");
}

#[test]
fn registration_tokens_let_anyone_in_or_outlive_their_uses() {
    let server =
        Server::start(&[("TESSERA_REGISTRATION__ENABLE", "true"), ("TESSERA_REGISTRATION__REQUIRE_TOKEN", "true")]);
    let (_, admin) = common::register_admin(&server, "root");
    let dummy = try_register(&server, "someone", None);
    assert_eq!(dummy.status, 401, "the dummy stage is not enough");
    assert_eq!(dummy.json()["flows"], json!([{ "stages": ["m.login.registration_token"] }]));
    let tokens = "/_synapse/admin/v1/registration_tokens";
    // Only admins manage tokens.
    let made =
        ok(call(server.client, "POST", &format!("{tokens}/new"), Some(&admin), Some(&json!({ "token": "first" }))));
    assert_eq!(made["token"], "first");
    let (_, plain) = register_with_token(&server, "plain", Some("first"));
    let refused = call(server.client, "GET", tokens, Some(&plain), None);
    assert_eq!(refused.status, 403);

    let made =
        ok(call(server.client, "POST", &format!("{tokens}/new"), Some(&admin), Some(&json!({ "uses_allowed": 1 }))));
    let once = made["token"].as_str().unwrap().to_owned();
    assert_eq!(once.len(), 16);
    let validity = |token: &str| {
        ok(call(
            server.client,
            "GET",
            &format!("/_matrix/client/v1/register/m.login.registration_token/validity?token={token}"),
            None,
            None,
        ))["valid"]
            .clone()
    };
    assert_eq!(validity(&once), json!(true));
    register_with_token(&server, "second", Some(&once));
    assert_eq!(validity(&once), json!(false), "used up");
    let again = try_register(&server, "third", Some(&once));
    assert_eq!((again.status, again.errcode().as_str()), (401, "M_UNAUTHORIZED"));
    assert_eq!(ok(call(server.client, "GET", &format!("{tokens}/{once}"), Some(&admin), None))["completed"], 1);

    // More uses, then deleted.
    ok(call(server.client, "PUT", &format!("{tokens}/{once}"), Some(&admin), Some(&json!({ "uses_allowed": null }))));
    register_with_token(&server, "third", Some(&once));
    let listed = ok(call(server.client, "GET", &format!("{tokens}?valid=true"), Some(&admin), None));
    assert_eq!(listed["registration_tokens"].as_array().unwrap().len(), 2);
    ok(call(server.client, "DELETE", &format!("{tokens}/{once}"), Some(&admin), None));
    assert_eq!(try_register(&server, "fourth", Some(&once)).status, 401);
}

/// A registration with the token stage (`None`: the dummy stage).
fn try_register(server: &Server, localpart: &str, token: Option<&str>) -> common::Reply {
    let auth = match token {
        Some(token) => json!({ "type": "m.login.registration_token", "token": token }),
        None => json!({ "type": "m.login.dummy" }),
    };
    let body = json!({ "username": localpart, "password": PASSWORD, "auth": auth });
    call(server.client, "POST", &format!("{V3}/register"), None, Some(&body))
}

fn register_with_token(server: &Server, localpart: &str, token: Option<&str>) -> (String, String) {
    let reply = try_register(server, localpart, token);
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let json = reply.json();
    (json["user_id"].as_str().unwrap().to_owned(), json["access_token"].as_str().unwrap().to_owned())
}

#[test]
fn refresh_tokens_work_twice_or_outlive_their_device() {
    let server = Server::start(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_SESSIONS__REFRESHABLE_LIFETIME_SECS", "1"),
    ]);
    register(server.client, "alice");
    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": "alice" },
        "password": PASSWORD,
        "refresh_token": true,
    });
    let login = ok(call(server.client, "POST", &format!("{V3}/login"), None, Some(&body)));
    assert_eq!(login["expires_in_ms"], 1000);
    let (access, refresh) = (login["access_token"].as_str().unwrap(), login["refresh_token"].as_str().unwrap());
    let whoami = |token: &str| call(server.client, "GET", &format!("{V3}/account/whoami"), Some(token), None);
    assert_eq!(whoami(access).status, 200);
    assert_eq!(whoami(refresh).status, 401, "a refresh token is not an access token");
    let disguised = format!("{V3}/account/whoami?access_token=refresh%00{refresh}");
    let disguised = call(server.client, "GET", &disguised, None, None);
    assert_eq!(disguised.status, 401, "nor is it one under the prefix of its stored digest");

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let expired = whoami(access);
    assert_eq!((expired.status, expired.json()["soft_logout"].clone()), (401, json!(true)));
    let trade = |token: &str| {
        call(server.client, "POST", &format!("{V3}/refresh"), None, Some(&json!({ "refresh_token": token })))
    };
    let fresh = ok(trade(refresh));
    let new_access = fresh["access_token"].as_str().unwrap();
    assert_eq!(whoami(new_access).status, 200);
    assert_eq!(trade(refresh).status, 401, "a refresh token works once");
    assert_eq!(trade(access).status, 401, "an access token does not refresh");

    ok(call(server.client, "POST", &format!("{V3}/logout"), Some(new_access), Some(&json!({}))));
    assert_eq!(trade(fresh["refresh_token"].as_str().unwrap()).status, 401, "logged out: the device is gone");
}
