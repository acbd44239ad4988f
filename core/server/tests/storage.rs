//! `tessera serve` on each storage backend.

mod common;

use std::process::Command;

use common::{generate, get, Server, BIN};
use tessera::store::ShardRuntime;
use tessera_storage::postgres::{PgConfig, PgDb};
use tessera_storage::testing::TestCluster;
use tessera_storage::Store;

#[test]
fn serves_on_postgres_and_creates_its_schema() {
    let cluster = TestCluster::start();
    let url = cluster.database("serve");
    let mut server = Server::start(&[
        ("TESSERA_SERVER__CORES", "2"),
        ("TESSERA_STORAGE__BACKEND", "postgres"),
        ("TESSERA_STORAGE__POSTGRES_URL", &url),
    ]);
    assert_eq!(get(server.client, "/health").status, 200);
    assert!(server.signal_and_wait("TERM").success());

    // The shards created the schema: the store opens and answers.
    let mut runtime = tessera_net::runtime::build_shard_runtime().unwrap();
    runtime.block_on(async {
        let db = PgDb::new(&PgConfig { url, readers: 1, sync_writes: true, tls: None }).unwrap();
        let store = db.shard_store(&ShardRuntime, 0).await.unwrap();
        assert_eq!(store.stream_position("nothing-yet").await.unwrap(), None);
    });
}

#[test]
fn postgres_backend_without_url_fails_naming_the_key() {
    let (_dir, config, _, _) = generate();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .env("TESSERA_STORAGE__BACKEND", "postgres")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("storage.postgres_url"));
}

#[test]
fn unreachable_postgres_fails_start_with_a_storage_error() {
    let (_dir, config, _, _) = generate();
    let port = common::free_port();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("TESSERA_STORAGE__BACKEND", "postgres")
        .env("TESSERA_STORAGE__POSTGRES_URL", format!("postgresql://postgres@127.0.0.1:{port}/nowhere"))
        .env("TESSERA_LISTENERS__CLIENT__BIND", format!("[\"127.0.0.1:{}\"]", common::free_port()))
        .env("TESSERA_LISTENERS__FEDERATION__BIND", format!("[\"127.0.0.1:{}\"]", common::free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage: "), "{err}");
}
