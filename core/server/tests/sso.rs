//! Single sign-on through CAS, against the real binary and a fake CAS
//! server in this process: login with a login token, and the `m.login.sso`
//! stage of user-interactive authentication.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use common::{call, free_port, get, ok, register, Server};
use percent_encoding::percent_decode_str;
use serde_json::json;

const V3: &str = "/_matrix/client/v3";

/// A CAS server that accepts the tickets it is told about, each for one
/// service URL, and answers every other ticket with a failure.
struct FakeCas {
    addr: SocketAddr,
    /// ticket → (expected service, CAS user name)
    tickets: Arc<Mutex<HashMap<String, (String, String)>>>,
}

impl FakeCas {
    fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
        let addr = listener.local_addr().unwrap();
        let tickets: Arc<Mutex<HashMap<String, (String, String)>>> = Arc::default();
        let known = tickets.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip the headers: the server sends a GET without a body.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                let query: HashMap<String, String> = target
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_owned(), percent_decode_str(v).decode_utf8_lossy().into_owned()))
                    .collect();
                let entry = known.lock().unwrap().remove(&query["ticket"]);
                let body = match entry {
                    Some((service, user))
                        if target.starts_with("/cas/proxyValidate?") && query["service"] == service =>
                    {
                        format!(
                            "<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'><cas:authenticationSuccess>\
                             <cas:user>{user}</cas:user><cas:attributes><cas:name>{user} (CAS)</cas:name>\
                             </cas:attributes></cas:authenticationSuccess></cas:serviceResponse>"
                        )
                    }
                    _ => "<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'>\
                          <cas:authenticationFailure code='INVALID_TICKET'>unknown</cas:authenticationFailure>\
                          </cas:serviceResponse>"
                        .to_owned(),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { addr, tickets }
    }

    fn issue(&self, ticket: &str, service: &str, user: &str) {
        self.tickets.lock().unwrap().insert(ticket.into(), (service.into(), user.into()));
    }
}

fn start(cas: &FakeCas) -> Server {
    let mut server = Server::federating();
    let server_url = format!("http://{}/cas", cas.addr);
    let service_url = format!("http://{}", server.client);
    server.spawn(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_SERVER__CORES", "2"),
        ("TESSERA_CAS__SERVER_URL", &server_url),
        ("TESSERA_CAS__SERVICE_URL", &service_url),
        ("TESSERA_CAS__DISPLAYNAME_ATTRIBUTE", "name"),
    ]);
    server
}

/// The `service` a redirect to the CAS server carries, decoded.
fn service_of(location: &str, cas: &FakeCas) -> String {
    let prefix = format!("http://{}/cas/login?service=", cas.addr);
    let encoded = location.strip_prefix(&prefix).unwrap_or_else(|| panic!("unexpected location {location}"));
    percent_decode_str(encoded).decode_utf8_lossy().into_owned()
}

/// The path and query of a URL of our own server.
fn path_of(url: &str, server: &Server) -> String {
    url.strip_prefix(&format!("http://{}", server.client)).unwrap().to_owned()
}

/// The `loginToken` in a sign-in's last page.
fn login_token_in(page: &[u8]) -> Option<String> {
    let page = String::from_utf8_lossy(page);
    let start = page.find("loginToken=")? + "loginToken=".len();
    Some(page[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
}

fn token_login(server: &Server, token: &str) -> common::Reply {
    call(server.client, "POST", &format!("{V3}/login"), None, Some(&json!({ "type": "m.login.token", "token": token })))
}

#[test]
fn sso_login_hands_out_no_token_or_a_reusable_one() {
    let cas = FakeCas::start();
    let server = start(&cas);
    let flows = ok(get(server.client, &format!("{V3}/login")))["flows"].clone();
    assert!(flows.as_array().unwrap().iter().any(|f| f["type"] == "m.login.sso"), "{flows}");

    let redirect =
        get(server.client, &format!("{V3}/login/sso/redirect/cas?redirectUrl=https%3A%2F%2Fapp.example%2F%3Fx%3D1"));
    assert_eq!(redirect.status, 302);
    let service = service_of(redirect.header("Location").unwrap(), &cas);
    assert_eq!(
        service,
        format!(
            "http://{}/_matrix/client/r0/login/cas/ticket?redirectUrl=https%3A%2F%2Fapp.example%2F%3Fx%3D1",
            server.client
        )
    );

    // A ticket the CAS server does not vouch for signs nobody in.
    let refused = get(server.client, &format!("{}&ticket=ST-forged", path_of(&service, &server)));
    assert_eq!(refused.status, 401);
    assert_eq!(login_token_in(&refused.body), None);

    cas.issue("ST-1", &service, "Alice!");
    let page = get(server.client, &format!("{}&ticket=ST-1", path_of(&service, &server)));
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    assert!(String::from_utf8_lossy(&page.body).contains("https://app.example/?x=1&amp;loginToken="));
    let token = login_token_in(&page.body).expect("a login token in the page");

    let login = ok(token_login(&server, &token));
    assert_eq!(login["user_id"], format!("@alice=21:{}", server.name()));
    let me = login["access_token"].as_str().unwrap();
    let profile =
        ok(call(server.client, "GET", &format!("{V3}/profile/{}", login["user_id"].as_str().unwrap()), Some(me), None));
    assert_eq!(profile["displayname"], "Alice! (CAS)");

    let again = token_login(&server, &token);
    assert_eq!((again.status, again.errcode().as_str()), (403, "M_FORBIDDEN"), "a login token works once");
}

#[test]
fn sso_confirms_a_uia_session_for_someone_else() {
    let cas = FakeCas::start();
    let server = start(&cas);
    let (bob, token) = register(server.client, "bob");
    let device = ok(call(server.client, "GET", &format!("{V3}/devices"), Some(&token), None))["devices"][0]
        ["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delete = format!("{V3}/devices/{device}");
    let challenge = call(server.client, "DELETE", &delete, Some(&token), Some(&json!({})));
    assert_eq!(challenge.status, 401);
    let flows = challenge.json()["flows"].clone();
    assert!(flows.as_array().unwrap().iter().any(|f| f["stages"][0] == "m.login.sso"), "{flows}");

    let confirm_as = |user: &str, ticket: &str| {
        let session = call(server.client, "DELETE", &delete, Some(&token), Some(&json!({}))).json()["session"]
            .as_str()
            .unwrap()
            .to_owned();
        let fallback = get(server.client, &format!("{V3}/auth/m.login.sso/fallback/web?session={session}"));
        assert_eq!(fallback.status, 302);
        let service = service_of(fallback.header("Location").unwrap(), &cas);
        cas.issue(ticket, &service, user);
        let page = get(server.client, &format!("{}&ticket={ticket}", path_of(&service, &server)));
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        session
    };

    // Mallory's CAS account cannot confirm Bob's deletion.
    let session = confirm_as("mallory", "ST-m");
    let denied = call(server.client, "DELETE", &delete, Some(&token), Some(&json!({ "auth": { "session": session } })));
    assert_eq!(denied.status, 403);

    // An unconfirmed session is still a challenge.
    let fresh = call(server.client, "DELETE", &delete, Some(&token), Some(&json!({}))).json()["session"].clone();
    let pending = call(server.client, "DELETE", &delete, Some(&token), Some(&json!({ "auth": { "session": fresh } })));
    assert_eq!(pending.status, 401);

    // Bob's own CAS account (same localpart) confirms it.
    let session = confirm_as("Bob", "ST-b");
    ok(call(server.client, "DELETE", &delete, Some(&token), Some(&json!({ "auth": { "session": session } }))));
    let gone = call(server.client, "GET", &format!("{V3}/account/whoami"), Some(&token), None);
    assert_eq!(gone.status, 401, "{bob}'s deleted device's token still works");
}

#[test]
fn sso_endpoints_answer_as_if_configured_without_a_cas_server() {
    let server = common::open_server();
    let flows = ok(get(server.client, &format!("{V3}/login")))["flows"].clone();
    assert_eq!(flows, json!([{ "type": "m.login.password" }]));
    let redirect = get(server.client, &format!("{V3}/login/sso/redirect?redirectUrl=https%3A%2F%2Fapp"));
    assert_eq!((redirect.status, redirect.errcode().as_str()), (404, "M_UNRECOGNIZED"));
    let token = token_login(&server, "tlt_anything");
    assert_eq!(token.status, 400);
}
