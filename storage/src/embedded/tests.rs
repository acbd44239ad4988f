use super::*;
use crate::conformance::{self, event, user};

fn config(dir: &std::path::Path) -> EmbeddedConfig {
    EmbeddedConfig { path: dir.join("db"), cache_bytes: 8 << 20, write_buffer_bytes: 4 << 20, sync_writes: true }
}

#[test]
fn embedded_backend_passes_conformance() {
    let dirs = std::cell::RefCell::new(Vec::new());
    pollster::block_on(conformance::run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedDb::open(&config(dir.path())).unwrap().shard_store(0).unwrap();
        dirs.borrow_mut().push(dir);
        std::future::ready(store)
    }));
}

#[test]
fn acknowledged_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = EmbeddedDb::open(&config(dir.path())).unwrap();
        let store = db.shard_store(0).unwrap();
        pollster::block_on(
            store.write(vec![Op::PutUser { vshard: 1, user: user("@a:x") }, Op::PutEvent(event("!r:x", 1, Some(1)))]),
        )
        .unwrap();
    }
    let store = EmbeddedDb::open(&config(dir.path())).unwrap().shard_store(0).unwrap();
    assert_eq!(pollster::block_on(store.user(1, "@a:x")).unwrap(), Some(user("@a:x")));
    assert_eq!(pollster::block_on(store.timeline(3, "!r:x", None, Direction::Forward, 5)).unwrap().len(), 1);
}

#[test]
fn database_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = EmbeddedDb::open(&config(dir.path())).unwrap();
        schema::stamp(&db.inner.db, &db.inner.ks.meta, schema::SCHEMA_VERSION + 1).unwrap();
    }
    let Err(err) = EmbeddedDb::open(&config(dir.path())) else { panic!("opened a newer schema") };
    assert!(matches!(err, StorageError::NewerSchema { .. }), "{err}");
}

#[test]
fn two_shards_write_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = EmbeddedDb::open(&config(dir.path())).unwrap();
    let (a, b) = (db.shard_store(0).unwrap(), db.shard_store(1).unwrap());
    pollster::block_on(a.write(vec![Op::PutUser { vshard: 1, user: user("@a:x") }])).unwrap();
    pollster::block_on(b.write(vec![Op::PutUser { vshard: 2, user: user("@b:x") }])).unwrap();
    assert!(pollster::block_on(a.user(2, "@b:x")).unwrap().is_some());
    assert!(pollster::block_on(b.user(1, "@a:x")).unwrap().is_some());
}

#[test]
fn many_keyspaces_just_under_their_own_limit_stay_within_the_shared_budget() {
    // Budget 2 MiB, so each keyspace alone may hold 1 MiB. Three keyspaces
    // at 0.8 MiB each stay under their own limit; only the shared budget
    // can make the database flush.
    let dir = tempfile::tempdir().unwrap();
    let budget = 2 << 20;
    let db = EmbeddedDb::open(&EmbeddedConfig { write_buffer_bytes: budget, ..config(dir.path()) }).unwrap();
    let store = db.shard_store(0).unwrap();
    let blob = vec![b'x'; 100 << 10];
    for i in 0..8 {
        let account_data = AccountDataRecord {
            user_id: "@a:x".into(),
            room_id: None,
            data_type: format!("t{i}"),
            content: blob.clone(),
        };
        let to_device = ToDeviceRecord { pos: i + 1, message: blob.clone() };
        let user = UserRecord { displayname: Some(format!("{i}{}", "x".repeat(100 << 10))), ..user("@a:x") };
        pollster::block_on(store.write(vec![
            Op::PutAccountData { vshard: 1, data: account_data },
            Op::PutToDevice { vshard: 1, user_id: "@a:x".into(), device_id: "D".into(), message: to_device },
            Op::PutUser { vshard: 1, user },
        ]))
        .unwrap();
    }
    // Sealed memtables count until fjall's workers have flushed them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.inner.db.write_buffer_size() > budget && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(db.inner.db.write_buffer_size() <= budget, "{} bytes in memtables", db.inner.db.write_buffer_size());
}

#[test]
fn a_version_1_database_finds_its_event_numbers_by_id_after_migrating() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = EmbeddedDb::open(&config(dir.path())).unwrap();
        let store = db.shard_store(0).unwrap();
        let nids = Op::PutEventNids { room: 9, events: vec![(4, "$four".into())] };
        pollster::block_on(store.write(vec![nids])).unwrap();
        // As version 1 left it: no reverse entries.
        let reverse = crate::keys::room_hash_nid(9, crate::keys::id_hash("$four"), 4);
        db.inner.ks.event_nids_by_id.remove(reverse.as_slice()).unwrap();
        schema::stamp(&db.inner.db, &db.inner.ks.meta, 1).unwrap();
    }
    let store = EmbeddedDb::open(&config(dir.path())).unwrap().shard_store(0).unwrap();
    assert_eq!(pollster::block_on(store.event_nids_of(9, &["$four".into()])).unwrap(), [Some(4)]);
    assert_eq!(pollster::block_on(store.event_nids_of(8, &["$four".into()])).unwrap(), [None], "another room's");
}
