//! Crash consistency of both backends: a writer process is killed with
//! SIGKILL in the middle of a write load; every write it had seen
//! acknowledged must be there after reopening, and the indexes must agree.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tessera_storage::embedded::{EmbeddedConfig, EmbeddedDb};
use tessera_storage::postgres::{PgConfig, PgDb};
use tessera_storage::records::{EventRecord, RoomHeadRecord};
use tessera_storage::testing::{block_on, Monoio, TestCluster};
use tessera_storage::{Direction, Op, Store};

const DIR_VAR: &str = "TESSERA_CRASH_TEST_DIR";
/// Set in the child to write to PostgreSQL at this URL instead.
const PG_VAR: &str = "TESSERA_CRASH_TEST_PG";
const ROOM: &str = "!crash:example.org";

fn config(dir: &str) -> EmbeddedConfig {
    EmbeddedConfig {
        path: format!("{dir}/db").into(),
        cache_bytes: 8 << 20,
        write_buffer_bytes: 4 << 20,
        sync_writes: true,
    }
}

fn event(n: u64) -> EventRecord {
    EventRecord {
        event_id: format!("$crash{n}"),
        room_id: ROOM.into(),
        vshard: 9,
        stream_pos: Some(n),
        json: vec![b'x'; 200],
    }
}

/// Writes 32 events at a time forever, printing each acknowledgement.
async fn write_forever(store: &impl Store) {
    let mut stdout = std::io::stdout().lock();
    for round in 0u64.. {
        let writes = (0..32).map(|i| {
            let n = round * 32 + i;
            async move {
                let head = RoomHeadRecord {
                    room_version: "12".into(),
                    forward_extremities: vec![event(n).event_id],
                    depth: n,
                    state_group: 0,
                    chain_len: 0,
                    next_state_group: 1,
                    next_event_nid: 0,
                    next_state_key_nid: 0,
                };
                let ops = vec![Op::PutEvent(event(n)), Op::PutRoomHead { vshard: 9, room_id: ROOM.into(), head }];
                store.write(ops).await.map(|()| n)
            }
        });
        for n in join_all(writes).await {
            writeln!(stdout, "ack {}", n.unwrap()).unwrap();
        }
        stdout.flush().unwrap();
    }
}

/// The writer. Runs only as the child of the tests below.
#[test]
#[ignore = "run by the crash tests as their child process"]
fn crash_writer() {
    if let Ok(url) = std::env::var(PG_VAR) {
        block_on(async {
            let store = PgDb::new(&pg_config(url)).unwrap().shard_store(&Monoio, 0).await.unwrap();
            write_forever(&store).await;
        });
    } else if let Ok(dir) = std::env::var(DIR_VAR) {
        let store = EmbeddedDb::open(&config(&dir)).unwrap().shard_store(0).unwrap();
        pollster::block_on(write_forever(&store));
    }
}

/// Runs the writer, kills it mid-load, and returns what it acknowledged.
fn acknowledged_before_sigkill(env: (&str, &str)) -> BTreeSet<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_writer", "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = BTreeSet::new();
    let started = Instant::now();
    // Kill it mid-load, once a good number of writes were acknowledged.
    while acked.len() < 3000 && started.elapsed() < Duration::from_secs(60) {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(n) = line.strip_prefix("ack ") {
                    acked.insert(n.parse::<u64>().unwrap());
                }
            }
            _ => break,
        }
    }
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    // Acknowledgements printed before the kill still count.
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("ack ") {
            acked.insert(n.parse::<u64>().unwrap());
        }
    }
    child.wait().unwrap();
    assert!(acked.len() >= 100, "the writer acknowledged only {} writes", acked.len());
    acked
}

/// Every acknowledged write is there, and the timeline, the events and the
/// forward extremity agree.
async fn check_after_crash(store: &impl Store, acked: &BTreeSet<u64>) {
    let timeline = store.timeline(9, ROOM, None, Direction::Forward, usize::MAX).await.unwrap();
    let in_timeline: BTreeSet<u64> = timeline.iter().map(|(pos, _)| *pos).collect();
    let lost: Vec<&u64> = acked.difference(&in_timeline).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    for (pos, event_id) in &timeline {
        let stored = store.event(event_id).await.unwrap().expect("timeline entry without its event");
        assert_eq!(stored.stream_pos, Some(*pos));
    }
    let extremities = store.room_head(9, ROOM).await.unwrap().expect("no room head").forward_extremities;
    assert_eq!(extremities.len(), 1);
    assert!(store.event(&extremities[0]).await.unwrap().is_some());
}

#[test]
fn embedded_acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap().to_owned();
    let acked = acknowledged_before_sigkill((DIR_VAR, &dir));
    let store = EmbeddedDb::open(&config(&dir)).unwrap().shard_store(0).unwrap();
    pollster::block_on(check_after_crash(&store, &acked));
}

#[test]
fn postgres_acknowledged_writes_survive_sigkill() {
    let cluster = TestCluster::start();
    let url = cluster.database("crash");
    let acked = acknowledged_before_sigkill((PG_VAR, &url));
    block_on(async {
        let store = PgDb::new(&pg_config(url)).unwrap().shard_store(&Monoio, 0).await.unwrap();
        check_after_crash(&store, &acked).await;
    });
}

fn pg_config(url: String) -> PgConfig {
    PgConfig { url, readers: 1, sync_writes: true, tls: None }
}
