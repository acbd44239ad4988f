//! The PostgreSQL backend against a real PostgreSQL that the test starts
//! ([`TestCluster`]).

use super::*;
use crate::conformance;
use crate::testing::{block_on, Monoio, TestCluster};

fn config(url: String) -> PgConfig {
    PgConfig { url, readers: 2, sync_writes: true }
}

#[test]
fn postgres_backend_passes_conformance() {
    let cluster = TestCluster::start();
    let next = Cell::new(0);
    block_on(conformance::run_all(|| {
        next.set(next.get() + 1);
        let url = cluster.database(&format!("conformance_{}", next.get()));
        async move { PgDb::new(&config(url)).unwrap().shard_store(&Monoio).await.unwrap() }
    }));
}

#[test]
fn postgres_newer_schema_is_refused_and_shards_share_one_schema() {
    let cluster = TestCluster::start();
    let url = cluster.database("schema");
    block_on(async {
        let db = PgDb::new(&config(url)).unwrap();
        // Two shards connecting at once: one creates the schema, the other
        // waits on the advisory lock and finds it.
        let (a, b) = futures_util::future::join(db.shard_store(&Monoio), db.shard_store(&Monoio)).await;
        let (a, b) = (a.unwrap(), b.unwrap());
        a.write(vec![Op::PutUser { vshard: 1, user: conformance::user("@a:x") }]).await.unwrap();
        assert!(b.user(1, "@a:x").await.unwrap().is_some());
        a.readers[0].execute("UPDATE schema_version SET version = version + 1", &[]).await.unwrap();
        let Err(err) = db.shard_store(&Monoio).await else { panic!("opened a newer schema") };
        assert!(matches!(err, StorageError::NewerSchema { .. }), "{err}");
    });
}
