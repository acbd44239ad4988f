//! Timeline appends per second on one shard, on both backends, with and
//! without durable acknowledgement (`sync_writes`). The PostgreSQL runs use
//! a throwaway local cluster (PostgreSQL 15 from Debian, default settings,
//! `fsync = on`), started by the benchmark.
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
use tessera_storage::postgres::{PgConfig, PgDb};
use tessera_storage::records::{EventRecord, RoomHeadRecord};
use tessera_storage::testing::{Monoio, TestCluster};
use tessera_storage::{Op, Store};

const ROOM: &str = "!bench:example.org";

fn open(dir: &std::path::Path, sync_writes: bool) -> EmbeddedStore {
    let config =
        EmbeddedConfig { path: dir.join("db"), cache_bytes: 64 << 20, write_buffer_bytes: 4 << 20, sync_writes };
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
        Op::PutRoomHead {
            vshard: 1,
            room_id: ROOM.into(),
            head: RoomHeadRecord {
                room_version: "12".into(),
                forward_extremities: vec![event_id],
                depth: n,
                state_group: 0,
                chain_len: 0,
                next_state_group: 1,
                next_event_nid: 0,
                next_state_key_nid: 0,
            },
        },
    ]
}

/// One burst of `writers` concurrent appends, awaited together.
async fn burst(store: &impl Store, writers: u64, next: &mut u64) {
    let writes = (0..writers).map(|_| {
        *next += 1;
        store.write(append(*next))
    });
    for result in join_all(writes).await {
        result.unwrap();
    }
}

fn embedded(c: &mut Criterion) {
    let mut group = c.benchmark_group("timeline_append_embedded");
    for sync_writes in [true, false] {
        for writers in [1u64, 64] {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path(), sync_writes);
            let mut next = 0u64;
            group.throughput(Throughput::Elements(writers));
            let name = if sync_writes { "durable" } else { "not_durable" };
            group.bench_function(BenchmarkId::new(name, format!("{writers}_writers")), |b| {
                b.iter(|| pollster::block_on(burst(&store, writers, &mut next)))
            });
        }
    }
    group.finish();
}

fn postgres(c: &mut Criterion) {
    let cluster = TestCluster::start();
    let mut runtime = tessera_net::runtime::build_shard_runtime().unwrap();
    let mut group = c.benchmark_group("timeline_append_postgres");
    for sync_writes in [true, false] {
        for writers in [1u64, 64] {
            let url = cluster.database(&format!("bench_{sync_writes}_{writers}"));
            let config = PgConfig { url, readers: 1, sync_writes, tls: None };
            let store = runtime.block_on(async { PgDb::new(&config).unwrap().shard_store(&Monoio, 0).await.unwrap() });
            let mut next = 0u64;
            group.throughput(Throughput::Elements(writers));
            let name = if sync_writes { "durable" } else { "not_durable" };
            group.bench_function(BenchmarkId::new(name, format!("{writers}_writers")), |b| {
                b.iter(|| runtime.block_on(burst(&store, writers, &mut next)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(5));
    targets = embedded, postgres
}
criterion_main!(benches);
