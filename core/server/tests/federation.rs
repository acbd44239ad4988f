//! Federation between two real servers: requests signed with `X-Matrix`
//! over TLS, keys fetched from the origin, and what a server refuses.

mod common;

use common::{call, ok, register, Server, V3};
use serde_json::json;

/// Two servers named after their federation addresses, each trusting the
/// other's self-signed certificate; each also serves the federation API on
/// its (plain HTTP) client port, where the tests reach it directly.
fn pair() -> (Server, Server) {
    let mut a = Server::federating();
    let mut b = Server::federating();
    let (a_cert, b_cert) = (a.tls_certificate(), b.tls_certificate());
    for (server, other) in [(&mut a, b_cert), (&mut b, a_cert)] {
        let trusted = format!("[\"{}\"]", other.display());
        server.spawn(&[
            ("TESSERA_REGISTRATION__ENABLE", "true"),
            ("TESSERA_LISTENERS__CLIENT__SERVE_FEDERATION", "true"),
            ("TESSERA_FEDERATION__TRUSTED_CA_FILES", &trusted),
        ]);
    }
    (a, b)
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
