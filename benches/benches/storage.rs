//! Timeline appends per second on one shard, embedded backend, with and
//! without durable acknowledgement (`sync_writes`).
//!
//! One iteration is a burst of `WRITERS` concurrent appends from one shard,
//! each a request's worth of writes (the event and the new forward
//! extremity), awaited together: the shape of a busy room, where group
//! commit folds the burst into few fsyncs.
//!
//! `cargo bench -p tessera-benches --bench storage`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::future::join_all;
use tessera_storage::embedded::{EmbeddedConfig, EmbeddedDb, EmbeddedStore};
use tessera_storage::records::EventRecord;
use tessera_storage::{Op, Store};

const ROOM: &str = "!bench:example.org";

fn open(dir: &std::path::Path, sync_writes: bool) -> EmbeddedStore {
    let config = EmbeddedConfig { path: dir.join("db"), cache_bytes: 64 << 20, sync_writes };
    EmbeddedDb::open(&config).unwrap().shard_store(0).unwrap()
}

fn append(n: u64) -> Vec<Op> {
    let event_id = format!("$bench{n:012}");
    vec![
        Op::PutEvent(EventRecord {
            event_id: event_id.clone(),
            room_id: ROOM.into(),
            vshard: 1,
            stream_pos: Some(n),
            // A typical small message event's JSON.
            json: vec![b'x'; 600],
        }),
        Op::SetForwardExtremities { vshard: 1, room_id: ROOM.into(), event_ids: vec![event_id] },
    ]
}

fn timeline_appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeline_append");
    for sync_writes in [true, false] {
        for writers in [1u64, 64] {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path(), sync_writes);
            let mut next = 0u64;
            group.throughput(Throughput::Elements(writers));
            let name = if sync_writes { "durable" } else { "not_durable" };
            group.bench_function(BenchmarkId::new(name, format!("{writers}_writers")), |b| {
                b.iter(|| {
                    let burst = (0..writers).map(|_| {
                        next += 1;
                        store.write(append(next))
                    });
                    for result in pollster::block_on(join_all(burst)) {
                        result.unwrap();
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = timeline_appends
}
criterion_main!(benches);
