//! The PostgreSQL backend against a real PostgreSQL that the test starts:
//! a throwaway cluster in a temp dir, on a free port, run as an
//! unprivileged user (initdb refuses root), stopped when the test ends.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;

use super::*;
use crate::conformance;

const PG_USER: &str = "tessera-pg";

/// A running throwaway cluster.
pub(crate) struct TestCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub(crate) port: u16,
}

fn as_pg_user(command: &str) -> Command {
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        let mut c = Command::new("su");
        c.args(["-s", "/bin/sh", PG_USER, "-c", command]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", command]);
        c
    };
    cmd.env_remove("PGDATA");
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCluster {
    pub(crate) fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(|d| d.ok()).map(|d| d.path().join("bin")).filter(|b| b.join("initdb").exists()).max()
            })
            .expect(
                "PostgreSQL server binaries not found in /usr/lib/postgresql: run scripts/test, which installs them",
            );
        if unsafe { libc::geteuid() } == 0
            && !Command::new("id").arg(PG_USER).output().is_ok_and(|o| o.status.success())
        {
            run(
                {
                    let mut c = Command::new("useradd");
                    c.args(["-M", "-r", "-s", "/usr/sbin/nologin", PG_USER]);
                    c
                },
                "useradd",
            );
        }
        let dir = tempfile::tempdir().unwrap();
        run(
            {
                let mut c = Command::new("chmod");
                c.arg("0777").arg(dir.path());
                c
            },
            "chmod",
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = dir.path().join("data");
        let sock = dir.path().display().to_string();
        run(
            as_pg_user(&format!(
                "{} -D {} -U postgres --auth=trust -E UTF8 --locale=C",
                bin.join("initdb").display(),
                data.display()
            )),
            "initdb",
        );
        run(
            as_pg_user(&format!(
                "{} -D {} -l {}/pg.log -w -o \"-p {port} -k {sock} -c listen_addresses=127.0.0.1\" start",
                bin.join("pg_ctl").display(),
                data.display(),
                sock
            )),
            "pg_ctl start",
        );
        Self { bin, dir, port }
    }

    /// Creates a fresh database and returns its URL.
    pub(crate) fn database(&self, name: &str) -> String {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-qc"])
            .arg(format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"));
        run(c, "createdb");
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = as_pg_user(&format!(
            "{} -D {} -m immediate -w stop",
            self.bin.join("pg_ctl").display(),
            self.dir.path().join("data").display()
        ))
        .output();
    }
}

/// monoio as the backend's runtime, as in the server.
#[derive(Clone)]
pub(crate) struct Monoio;

impl PgRuntime for Monoio {
    type Stream = monoio_compat::TcpStreamCompat;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        Ok(monoio_compat::TcpStreamCompat::new(monoio::net::TcpStream::connect(addr).await?))
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>) {
        monoio::spawn(task);
    }
}

pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().enable_timer().build().unwrap().block_on(f)
}

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
