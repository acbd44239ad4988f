//! Crash consistency of the embedded backend: a writer process is killed
//! with SIGKILL in the middle of a write load; every write it had seen
//! acknowledged must be there after reopening, and the indexes must agree.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tessera_storage::embedded::{EmbeddedConfig, EmbeddedDb};
use tessera_storage::records::EventRecord;
use tessera_storage::{Direction, Op, Store};

const DIR_VAR: &str = "TESSERA_CRASH_TEST_DIR";
const ROOM: &str = "!crash:example.org";

fn config(dir: &str) -> EmbeddedConfig {
    EmbeddedConfig { path: format!("{dir}/db").into(), cache_bytes: 8 << 20, sync_writes: true }
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

/// The writer. Runs only as the child of the test below.
#[test]
#[ignore = "run by acknowledged_writes_survive_sigkill as its child process"]
fn crash_writer() {
    let Ok(dir) = std::env::var(DIR_VAR) else { return };
    let store = EmbeddedDb::open(&config(&dir)).unwrap().shard_store(0).unwrap();
    let mut stdout = std::io::stdout().lock();
    for round in 0u64.. {
        // 32 writers at a time, so writes share group commits.
        let writes = (0..32).map(|i| {
            let n = round * 32 + i;
            let store = &store;
            async move {
                store
                    .write(vec![
                        Op::PutEvent(event(n)),
                        Op::SetForwardExtremities {
                            vshard: 9,
                            room_id: ROOM.into(),
                            event_ids: vec![event(n).event_id],
                        },
                    ])
                    .await
                    .map(|()| n)
            }
        });
        for n in pollster::block_on(join_all(writes)) {
            writeln!(stdout, "ack {}", n.unwrap()).unwrap();
        }
        stdout.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let dir_str = dir.path().to_str().unwrap().to_owned();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_writer", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, &dir_str)
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

    let store = EmbeddedDb::open(&config(&dir_str)).unwrap().shard_store(0).unwrap();
    let timeline = pollster::block_on(store.timeline(9, ROOM, None, Direction::Forward, usize::MAX)).unwrap();
    let in_timeline: BTreeSet<u64> = timeline.iter().map(|(pos, _)| *pos).collect();
    let lost: Vec<&u64> = acked.difference(&in_timeline).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    // Indexes agree: every timeline entry points at a stored event that
    // says it sits at that position.
    for (pos, event_id) in &timeline {
        let stored = pollster::block_on(store.event(event_id)).unwrap().expect("timeline entry without its event");
        assert_eq!(stored.stream_pos, Some(*pos));
    }
    // The extremity is one of the stored events.
    let extremities = pollster::block_on(store.forward_extremities(9, ROOM)).unwrap();
    assert_eq!(extremities.len(), 1);
    assert!(pollster::block_on(store.event(&extremities[0])).unwrap().is_some());
}
