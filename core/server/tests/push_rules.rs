//! Push rules on the real binary: what clients read at start-up, what their
//! notification settings change, and that `/sync` carries the result.

mod common;

use common::{call, ok, open_server, register, Server, V3};
use serde_json::{json, Value};

fn req(server: &Server, token: &str, method: &str, path: &str, body: Option<Value>) -> common::Reply {
    call(server.client, method, &format!("{V3}{path}"), Some(token), body.as_ref())
}

fn rule_ids(set: &Value, kind: &str) -> Vec<String> {
    set[kind].as_array().unwrap().iter().map(|r| r["rule_id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_new_user_gets_the_spec_defaults_and_a_client_can_start() {
    let server = open_server();
    let (me, token) = register(server.client, "alice");
    let all = ok(req(&server, &token, "GET", "/pushrules/", None));
    let global = &all["global"];
    assert_eq!(rule_ids(global, "override")[0], ".m.rule.master");
    assert!(rule_ids(global, "underride").contains(&".m.rule.message".to_owned()));
    let invite = ok(req(&server, &token, "GET", "/pushrules/global/override/.m.rule.invite_for_me", None));
    assert_eq!(invite["conditions"][2]["pattern"], me);
    assert_eq!(ok(req(&server, &token, "GET", "/pushrules/global/", None)), *global);
    // Unauthenticated, unknown kinds and rules get the spec's errors.
    assert_eq!(call(server.client, "GET", &format!("{V3}/pushrules/"), None, None).status, 401);
    let reply = req(&server, &token, "GET", "/pushrules/global/everything/x", None);
    assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_INVALID_PARAM"));
    let reply = req(&server, &token, "GET", "/pushrules/global/room/!nope:x", None);
    assert_eq!((reply.status, reply.errcode().as_str()), (404, "M_NOT_FOUND"));
}

#[test]
fn notification_settings_change_the_rules_and_reach_sync() {
    let server = open_server();
    let (_, token) = register(server.client, "alice");
    let since = ok(req(&server, &token, "GET", "/sync?timeout=0", None))["next_batch"].as_str().unwrap().to_owned();

    // Mute a room, switch a default off, add a keyword.
    let room = "/pushrules/global/room/!quiet:localhost";
    ok(req(&server, &token, "PUT", room, Some(json!({ "actions": ["dont_notify"] }))));
    ok(req(
        &server,
        &token,
        "PUT",
        "/pushrules/global/underride/.m.rule.message/enabled",
        Some(json!({ "enabled": false })),
    ));
    let keyword = json!({ "pattern": "cake", "actions": ["notify", { "set_tweak": "highlight" }] });
    ok(req(&server, &token, "PUT", "/pushrules/global/content/cake", Some(keyword)));
    let enabled = ok(req(&server, &token, "GET", "/pushrules/global/underride/.m.rule.message/enabled", None));
    assert_eq!(enabled, json!({ "enabled": false }));
    let actions = ok(req(&server, &token, "GET", "/pushrules/global/room/!quiet:localhost/actions", None));
    assert_eq!(actions, json!({ "actions": ["dont_notify"] }));

    let sync = ok(req(&server, &token, "GET", &format!("/sync?timeout=0&since={since}"), None));
    let events = sync["account_data"]["events"].as_array().unwrap();
    let pushed = events.iter().find(|e| e["type"] == "m.push_rules").expect("m.push_rules in account_data");
    assert_eq!(rule_ids(&pushed["content"]["global"], "content"), ["cake"]);

    // Defaults can be disabled but not deleted; user rules can be deleted.
    let reply = req(&server, &token, "DELETE", "/pushrules/global/underride/.m.rule.message", None);
    assert_eq!((reply.status, reply.errcode().as_str()), (400, "M_INVALID_PARAM"));
    ok(req(&server, &token, "DELETE", room, None));
    assert_eq!(req(&server, &token, "GET", room, None).status, 404);
    // Clients may not write the rules as plain account data.
    let me = ok(req(&server, &token, "GET", "/account/whoami", None))["user_id"].as_str().unwrap().to_owned();
    let reply = req(&server, &token, "PUT", &format!("/user/{me}/account_data/m.push_rules"), Some(json!({})));
    assert_eq!(reply.status, 405);
}
