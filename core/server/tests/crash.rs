//! SIGKILL in the middle of a message load on the real server, on both
//! storage backends. A 200 with an event ID promises the message is on disk
//! (group commit), so after a restart every acknowledged message must be
//! readable by its ID, present exactly once in its room's history and in
//! each sender's order, and the room must take new messages after it (its
//! head and stream position reloaded consistently). The storage crate's
//! own crash test (`storage/tests/crash.rs`) covers the store alone; this
//! one covers the server's path from HTTP to disk.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{call, create_room, register, Conn, Server, V3};
use serde_json::json;
use tessera_storage::testing::TestCluster;

const ROOMS: usize = 4;
const SENDERS: usize = 8;

/// One acknowledged message: room, event ID, sender thread, sequence.
struct Acked {
    room: String,
    event_id: String,
    sender: usize,
    seq: u64,
}

fn body_of(sender: usize, seq: u64) -> String {
    format!("crash-test sender={sender} seq={seq}")
}

fn parse_body(body: &str) -> Option<(usize, u64)> {
    let rest = body.strip_prefix("crash-test sender=")?;
    let (sender, seq) = rest.split_once(" seq=")?;
    Some((sender.parse().ok()?, seq.parse().ok()?))
}

/// Sends messages on a keep-alive connection until the server is gone,
/// recording those answered with 200.
fn send_until_killed(server: std::net::SocketAddr, token: String, room: String, sender: usize) -> Vec<Acked> {
    let mut acked = Vec::new();
    let Some(mut conn) = Conn::try_open(server) else { return acked };
    for seq in 0.. {
        let body = json!({ "msgtype": "m.text", "body": body_of(sender, seq) }).to_string();
        let raw = format!(
            "PUT {V3}/rooms/{room}/send/m.room.message/s{sender}-{seq} HTTP/1.1\r\nHost: localhost\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match conn.try_request(raw.as_bytes()) {
            Some(reply) if reply.status == 200 => {
                let event_id = reply.json()["event_id"].as_str().unwrap().to_owned();
                acked.push(Acked { room: room.clone(), event_id, sender, seq });
            }
            Some(reply) => {
                panic!("send failed before the kill: {} {}", reply.status, String::from_utf8_lossy(&reply.body))
            }
            None => break,
        }
    }
    acked
}

/// Every message body of a room, oldest first, through `/messages`.
fn history(server: &Server, token: &str, room: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut from = String::new();
    loop {
        let path = format!("{V3}/rooms/{room}/messages?dir=b&limit=200{from}");
        let page = call(server.client, "GET", &path, Some(token), None).json();
        let chunk = page["chunk"].as_array().unwrap();
        bodies.extend(chunk.iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)));
        match page["end"].as_str() {
            Some(end) if !chunk.is_empty() => from = format!("&from={end}"),
            _ => break,
        }
    }
    bodies.reverse();
    bodies
}

fn acknowledged_messages_survive_sigkill(env: &[(&str, &str)]) {
    let mut server = Server::start(env);
    let (_, token) = register(server.client, "alice");
    let rooms: Vec<String> =
        (0..ROOMS).map(|i| create_room(&server, &token, json!({ "name": format!("r{i}") }))).collect();

    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (addr, token, room) = (server.client, token.clone(), rooms[sender % ROOMS].clone());
            std::thread::spawn(move || send_until_killed(addr, token, room, sender))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let status = server.signal_and_wait("KILL");
    assert!(!status.success(), "the server must die of the SIGKILL, not exit");
    let acked: Vec<Acked> = senders.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(acked.len() >= 20, "the load must have been running: only {} acknowledged", acked.len());

    server.spawn(env);

    // Every acknowledged message is readable by its ID...
    for a in &acked {
        let path = format!("{V3}/rooms/{}/event/{}", a.room, a.event_id);
        let reply = call(server.client, "GET", &path, Some(&token), None);
        assert_eq!(reply.status, 200, "acknowledged {} lost: {}", a.event_id, String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["content"]["body"], body_of(a.sender, a.seq));
    }
    // ...and in its room's history once, each sender's messages in order, with
    // nothing before an acknowledged message missing (a sender sends one at
    // a time, so its history is a prefix 0..n, possibly plus the one message
    // in flight at the kill).
    let acked_per_sender: HashMap<usize, u64> = acked.iter().fold(HashMap::new(), |mut m, a| {
        let e = m.entry(a.sender).or_insert(0);
        *e = (*e).max(a.seq + 1);
        m
    });
    for (i, room) in rooms.iter().enumerate() {
        let mut next: HashMap<usize, u64> = HashMap::new();
        for body in history(&server, &token, room) {
            let Some((sender, seq)) = parse_body(&body) else { continue };
            assert_eq!(sender % ROOMS, i, "a message of sender {sender} in the wrong room");
            let expected = next.entry(sender).or_insert(0);
            assert_eq!(seq, *expected, "sender {sender}: history skips or repeats before seq {seq}");
            *expected += 1;
        }
        for sender in (0..SENDERS).filter(|s| s % ROOMS == i) {
            let kept = next.get(&sender).copied().unwrap_or(0);
            let acknowledged = acked_per_sender.get(&sender).copied().unwrap_or(0);
            assert!(
                kept == acknowledged || kept == acknowledged + 1,
                "sender {sender}: {acknowledged} acknowledged, {kept} in the history"
            );
        }

        // The room goes on: a new message lands after everything else.
        let path = format!("{V3}/rooms/{room}/send/m.room.message/after-restart");
        let reply =
            call(server.client, "PUT", &path, Some(&token), Some(&json!({ "msgtype": "m.text", "body": "after" })));
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        assert_eq!(history(&server, &token, room).last().map(String::as_str), Some("after"));
    }
}

#[test]
fn embedded_acknowledged_messages_survive_sigkill() {
    acknowledged_messages_survive_sigkill(&[("TESSERA_REGISTRATION__ENABLE", "true"), ("TESSERA_SERVER__CORES", "2")]);
}

#[test]
fn postgres_acknowledged_messages_survive_sigkill() {
    let cluster = TestCluster::start();
    let url = cluster.database("crash");
    acknowledged_messages_survive_sigkill(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_SERVER__CORES", "2"),
        ("TESSERA_STORAGE__BACKEND", "postgres"),
        ("TESSERA_STORAGE__POSTGRES_URL", &url),
    ]);
}
