//! End-to-end encryption key management on the real binary: uploads,
//! queries, one-time and fallback key claims, and device list changes in
//! `/sync`.

mod common;

use common::{call, create_room, ok, open_server, register, Server, V3};
use serde_json::{json, Value};

fn sync(server: &Server, token: &str, since: Option<&str>) -> Value {
    let path = match since {
        Some(since) => format!("{V3}/sync?timeout=0&since={since}"),
        None => format!("{V3}/sync?timeout=0"),
    };
    ok(call(server.client, "GET", &path, Some(token), None))
}

fn device_of(server: &Server, token: &str) -> String {
    ok(call(server.client, "GET", &format!("{V3}/account/whoami"), Some(token), None))["device_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn keys_are_published_claimed_once_each_and_their_changes_reach_room_mates() {
    let server = open_server();
    let (alice_id, alice) = register(server.client, "alice");
    let (bob_id, bob) = register(server.client, "bob");
    let room = create_room(&server, &alice, json!({ "preset": "public_chat" }));
    ok(call(server.client, "POST", &format!("{V3}/join/{room}"), Some(&bob), Some(&json!({}))));
    let bob_since = sync(&server, &bob, None)["next_batch"].as_str().unwrap().to_owned();
    let device = device_of(&server, &alice);

    let keys = json!({
        "user_id": alice_id, "device_id": device, "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
        "keys": { format!("curve25519:{device}"): "identity", format!("ed25519:{device}"): "signing" },
        "signatures": {},
    });
    let upload = json!({
        "device_keys": keys,
        "one_time_keys": { "signed_curve25519:A": { "key": "one" }, "signed_curve25519:B": { "key": "two" } },
        "fallback_keys": { "signed_curve25519:F": { "key": "fallback", "fallback": true } },
    });
    let counts = ok(call(server.client, "POST", &format!("{V3}/keys/upload"), Some(&alice), Some(&upload)));
    assert_eq!(counts["one_time_key_counts"], json!({ "signed_curve25519": 2 }));
    let mut other = upload.clone();
    other["device_keys"]["device_id"] = json!("NOT_MINE");
    let reply = call(server.client, "POST", &format!("{V3}/keys/upload"), Some(&alice), Some(&other));
    assert_eq!(reply.status, 400, "device keys of another device are refused");

    let query = json!({ "device_keys": { &alice_id: [] } });
    let found = ok(call(server.client, "POST", &format!("{V3}/keys/query"), Some(&bob), Some(&query)));
    assert_eq!(found["device_keys"][&alice_id][&device]["keys"][format!("ed25519:{device}")], "signing");

    // Two one-time keys, each once, then the fallback key (again and again).
    let claim = json!({ "one_time_keys": { &alice_id: { &device: "signed_curve25519" } } });
    let mut handed = Vec::new();
    for _ in 0..4 {
        let claimed = ok(call(server.client, "POST", &format!("{V3}/keys/claim"), Some(&bob), Some(&claim)));
        let key = claimed["one_time_keys"][&alice_id][&device].as_object().unwrap().clone();
        handed.push(key.values().next().unwrap()["key"].as_str().unwrap().to_owned());
    }
    let mut first_two = handed[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["one", "two"]);
    assert_eq!(handed[2..], ["fallback", "fallback"]);
    let alice_sync = sync(&server, &alice, None);
    assert_eq!(alice_sync["device_one_time_keys_count"], json!({}), "{alice_sync}");
    assert_eq!(alice_sync["device_unused_fallback_key_types"], json!([]), "the fallback key was used");

    // Bob learns that alice's devices changed; alice learns of her new login.
    let bob_sync = sync(&server, &bob, Some(&bob_since));
    assert!(bob_sync["device_lists"]["changed"].as_array().unwrap().contains(&json!(alice_id)), "{bob_sync}");
    let alice_since = alice_sync["next_batch"].as_str().unwrap().to_owned();
    let login = json!({
        "type": "m.login.password", "identifier": { "type": "m.id.user", "user": "alice" },
        "password": "correct horse battery",
    });
    ok(call(server.client, "POST", &format!("{V3}/login"), None, Some(&login)));
    let alice_sync = sync(&server, &alice, Some(&alice_since));
    assert!(alice_sync["device_lists"]["changed"].as_array().unwrap().contains(&json!(alice_id)), "{alice_sync}");
    let changes = format!("{V3}/keys/changes?from={alice_since}&to={}", alice_sync["next_batch"].as_str().unwrap());
    assert!(ok(call(server.client, "GET", &changes, Some(&alice), None))["changed"]
        .as_array()
        .unwrap()
        .contains(&json!(alice_id)));

    // Bob leaves their only shared room: alice may stop tracking him.
    let since = alice_sync["next_batch"].as_str().unwrap().to_owned();
    ok(call(server.client, "POST", &format!("{V3}/rooms/{room}/leave"), Some(&bob), Some(&json!({}))));
    let mut left = Value::Null;
    for _ in 0..50 {
        let next = sync(&server, &alice, Some(&since));
        left = next["device_lists"]["left"].clone();
        if left.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(left, json!([bob_id]), "bob shares no room with alice any more");
}
