//! Bytes on disk for a Matrix-HQ-sized room's state, and what one more
//! membership change adds, on both backends.
//!
//! The room: 100,000 members (99% of its state is `m.room.member`) plus
//! 1,000 other state events, interned as the room's shard does it (state
//! keys and event IDs to room-local numbers) and stored as one snapshot.
//! Then one membership change: a new state key, a new event number and a
//! one-entry delta on top of the snapshot.
//!
//! `cargo bench -p tessera-benches --bench state_bytes`

use std::net::SocketAddr;

use tessera_storage::embedded::{EmbeddedConfig, EmbeddedDb};
use tessera_storage::postgres::{PgConfig, PgDb, PgRuntime, PgTarget};
use tessera_storage::records::{RoomNid, StateGroupRecord, StateKeyRecord};
use tessera_storage::testing::{Monoio, TestCluster};
use tessera_storage::{Op, Store};

const MEMBERS: u32 = 100_000;
const OTHER_STATE: u32 = 1_000;
/// The room's number (vshard 7, first room of that vshard). Its ID is
/// stored once, in the room-number table, not in every state row.
const ROOM_NID: RoomNid = (7 << 48) | 1;

/// A plausible user ID: most members on a few big servers, the rest spread.
fn user_id(i: u32) -> String {
    let server = match i % 10 {
        0..=5 => "matrix.org".to_owned(),
        6 => "mozilla.org".to_owned(),
        _ => format!("hs{}.example.net", i % 2_000),
    };
    format!("@user{:x}{}:{server}", i.wrapping_mul(2_654_435_761), i)
}

/// A v4+ event ID: `$` and 43 URL-safe base64 characters.
fn event_id(i: u32) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let id: String = (0..43)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % 64) as usize] as char
        })
        .collect();
    format!("${id}")
}

/// The room's interned state keys, event numbers and snapshot.
fn room_state() -> Vec<Op> {
    let total = MEMBERS + OTHER_STATE;
    let keys = (0..total)
        .map(|nid| StateKeyRecord {
            nid,
            event_type: if nid < MEMBERS { "m.room.member".into() } else { format!("org.example.widget.{nid}") },
            state_key: if nid < MEMBERS { user_id(nid) } else { String::new() },
        })
        .collect();
    let events = (0..total).map(|nid| (nid, event_id(nid))).collect();
    let snapshot = StateGroupRecord { parent: None, entries: (0..total).map(|nid| (nid, nid)).collect() };
    let auth = (0..total).map(|nid| (nid, member_auth_events())).collect();
    vec![
        Op::PutStateKeys { room: ROOM_NID, keys },
        Op::PutEventNids { room: ROOM_NID, events },
        Op::PutStateGroup { room: ROOM_NID, group: 1, state: snapshot },
        Op::PutAuthEvents { room: ROOM_NID, events: auth },
    ]
}

/// A first join's auth events: create, power levels, join rules (three
/// of the other state events' numbers).
fn member_auth_events() -> Vec<u32> {
    vec![MEMBERS, MEMBERS + 1, MEMBERS + 2]
}

/// One member joins: a new state key, a new event, a one-entry delta, its
/// auth events.
fn one_join() -> Vec<Op> {
    let nid = MEMBERS + OTHER_STATE;
    let key = StateKeyRecord { nid, event_type: "m.room.member".into(), state_key: user_id(nid) };
    vec![
        Op::PutStateKeys { room: ROOM_NID, keys: vec![key] },
        Op::PutEventNids { room: ROOM_NID, events: vec![(nid, event_id(nid))] },
        Op::PutStateGroup {
            room: ROOM_NID,
            group: 2,
            state: StateGroupRecord { parent: Some(1), entries: vec![(nid, nid)] },
        },
        Op::PutAuthEvents { room: ROOM_NID, events: vec![(nid, member_auth_events())] },
    ]
}

/// Key and value bytes the operations hand to the backend (before any
/// compression or per-row overhead).
fn logical_bytes(ops: &[Op]) -> usize {
    ops.iter()
        .map(|op| match op {
            Op::PutStateKeys { keys, .. } => keys.iter().map(|k| 12 + k.event_type.len() + k.state_key.len() + 2).sum(),
            // Both ways: number → ID, and (room, hash of the ID, number).
            Op::PutEventNids { events, .. } => events.iter().map(|(_, id)| 12 + id.len() + 20).sum(),
            Op::PutStateGroup { state, .. } => 16 + state.encode().len(),
            Op::PutAuthEvents { events, .. } => events.iter().map(|(_, auth)| 12 + 4 * auth.len()).sum(),
            _ => 0,
        })
        .sum()
}

/// The parts of the room's state, written and measured one by one.
const PARTS: [&str; 4] = [
    "state keys (type, state_key → number)",
    "event numbers (number ↔ event ID)",
    "snapshot (state key → event, compact)",
    "auth-chain index (number → auth events' numbers)",
];

fn embedded() {
    let open = |dir: &std::path::Path| {
        let config = EmbeddedConfig {
            path: dir.join("db"),
            cache_bytes: 64 << 20,
            write_buffer_bytes: 4 << 20,
            sync_writes: true,
        };
        let db = EmbeddedDb::open(&config).unwrap();
        let store = db.shard_store(0).unwrap();
        db.flush().unwrap();
        (db, store)
    };
    // Each part in a database of its own: fjall flushes and drops its
    // journals in the background, so growth measured step by step in one
    // database lands partly under the next step.
    let mut rows = Vec::new();
    for op in room_state() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = open(dir.path());
        let before = db.disk_space().unwrap();
        let logical = logical_bytes(std::slice::from_ref(&op));
        pollster::block_on(store.write(vec![op])).unwrap();
        db.flush().unwrap();
        rows.push((logical, db.disk_space().unwrap() - before));
    }
    let dir = tempfile::tempdir().unwrap();
    let (db, store) = open(dir.path());
    pollster::block_on(store.write(room_state())).unwrap();
    db.flush().unwrap();
    let before = db.disk_space().unwrap();
    let join = one_join();
    let join_logical = logical_bytes(&join);
    pollster::block_on(store.write(join)).unwrap();
    db.flush().unwrap();
    let join_disk = db.disk_space().unwrap().saturating_sub(before);
    let state = pollster::block_on(store.state_at(ROOM_NID, 2)).unwrap().unwrap();
    assert_eq!(state.len(), (MEMBERS + OTHER_STATE + 1) as usize);
    report("embedded (fjall, LZ4-compressed tables)", &rows, join_logical, join_disk);
}

fn postgres() {
    let cluster = TestCluster::start();
    let url = cluster.database("state_bytes");
    let size_sql = "SELECT sum(pg_total_relation_size(t))::bigint FROM unnest(ARRAY['room_state_key_chunks', \
                    'room_event_nid_chunks', 'room_event_id_buckets', 'state_groups', \
                    'room_auth_event_chunks']::regclass[]) AS t";
    let mut runtime = tessera_net::runtime::build_shard_runtime().unwrap();
    runtime.block_on(async {
        let (client, connection) = url
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .connect_raw(Monoio.connect(&PgTarget::Tcp(addr(&url))).await.unwrap(), tokio_postgres::NoTls)
            .await
            .unwrap();
        monoio::spawn(async move {
            let _ = connection.await;
        });
        let store = PgDb::new(&PgConfig { url: url.clone(), readers: 1, sync_writes: true, tls: None })
            .unwrap()
            .shard_store(&Monoio, 0)
            .await
            .unwrap();
        let size = || async { client.query_one(size_sql, &[]).await.unwrap().get::<_, i64>(0) as u64 };
        let mut rows = Vec::new();
        let mut before = size().await;
        for op in room_state() {
            let logical = logical_bytes(std::slice::from_ref(&op));
            store.write(vec![op]).await.unwrap();
            client.batch_execute("VACUUM ANALYZE").await.unwrap();
            let now = size().await;
            rows.push((logical, now - before));
            before = now;
        }
        let join = one_join();
        let join_logical = logical_bytes(&join);
        store.write(join).await.unwrap();
        client.batch_execute("VACUUM ANALYZE").await.unwrap();
        let join_disk = size().await.saturating_sub(before);
        report("PostgreSQL 15 (heap, primary-key indexes, TOAST)", &rows, join_logical, join_disk);
    });
}

fn addr(url: &str) -> SocketAddr {
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn report(backend: &str, parts: &[(usize, u64)], join_logical: usize, join_disk: u64) {
    let members = f64::from(MEMBERS);
    println!("{backend}: bytes for {MEMBERS} members + {OTHER_STATE} other state events");
    for (name, (logical, disk)) in PARTS.iter().zip(parts) {
        println!(
            "  {name}: logical {logical} ({:.1}/member), on disk {disk} ({:.1}/member)",
            *logical as f64 / members,
            *disk as f64 / members
        );
    }
    println!("  one more join: logical {join_logical} bytes, on disk {join_disk} bytes");
}

fn main() {
    // `cargo test` runs benches with --bench too; measure only when asked.
    if std::env::args().any(|a| a == "--bench") {
        embedded();
        postgres();
    }
}
