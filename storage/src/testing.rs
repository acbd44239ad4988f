//! Test support for this crate's tests and the homeserver's: a throwaway
//! PostgreSQL cluster, and monoio as the PostgreSQL backend's runtime.
//! Built only for tests and benchmarks (feature `test-util`).

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Command;

use crate::postgres::{PgRuntime, PgStream, PgTarget};

/// monoio as the PostgreSQL backend's runtime, as in the server (whose own
/// implementation goes through `tessera-net`, which this crate cannot use).
#[derive(Clone, Copy)]
pub struct Monoio;

impl PgRuntime for Monoio {
    type Stream = PgStream<monoio_compat::TcpStreamCompat, monoio_compat::UnixStreamCompat>;

    async fn connect(&self, to: &PgTarget) -> std::io::Result<Self::Stream> {
        Ok(match to {
            PgTarget::Tcp(addr) => {
                PgStream::Tcp(monoio_compat::TcpStreamCompat::new(monoio::net::TcpStream::connect(addr).await?))
            }
            PgTarget::Unix(path) => {
                PgStream::Unix(monoio_compat::UnixStreamCompat::new(monoio::net::UnixStream::connect(path).await?))
            }
        })
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>) {
        monoio::spawn(task);
    }
}

/// Runs `future` to completion on a fresh io_uring runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("io_uring runtime")
        .block_on(future)
}

const PG_USER: &str = "tessera-pg";

/// A running throwaway PostgreSQL: a cluster in a temp dir, on a free port,
/// run as an unprivileged user (initdb refuses root), stopped when dropped.
pub struct TestCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn as_pg_user(command: &str) -> Command {
    let mut cmd = if is_root() {
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
    pub fn start() -> Self {
        Self::start_with(None, None)
    }

    /// A cluster that also speaks TLS, with this certificate chain and key
    /// (PEM).
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem)), None)
    }

    /// A TLS cluster whose database `certs` admits only clients that
    /// present a certificate signed by `client_ca_pem` whose common name
    /// is the user (`cert` authentication).
    pub fn start_with_client_certs(cert_pem: &str, key_pem: &str, client_ca_pem: &str) -> Self {
        Self::start_with(Some((cert_pem, key_pem)), Some(client_ca_pem))
    }

    fn start_with(tls: Option<(&str, &str)>, client_ca: Option<&str>) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(|d| d.ok()).map(|d| d.path().join("bin")).filter(|b| b.join("initdb").exists()).max()
            })
            .expect(
                "PostgreSQL server binaries not found in /usr/lib/postgresql: run scripts/test, which installs them",
            );
        if is_root() && !Command::new("id").arg(PG_USER).output().is_ok_and(|o| o.status.success()) {
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
        let mut options = format!("-p {port} -k {sock} -c listen_addresses=127.0.0.1");
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (cert_path, key_path) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::write(&cert_path, cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            // PostgreSQL refuses a key others may read; root may own it.
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
            if is_root() {
                let mut c = Command::new("chown");
                c.arg(PG_USER).arg(&cert_path).arg(&key_path);
                run(c, "chown");
            }
            let files =
                format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", cert_path.display(), key_path.display());
            options.push_str(&files);
            if let Some(ca) = client_ca {
                let ca_path = dir.path().join("client-ca.crt");
                std::fs::write(&ca_path, ca).unwrap();
                options.push_str(&format!(" -c ssl_ca_file={}", ca_path.display()));
                // The first matching line decides: these come before
                // initdb's `trust` lines.
                let hba = data.join("pg_hba.conf");
                let rest = std::fs::read_to_string(&hba).unwrap();
                let certs = "hostssl certs all 127.0.0.1/32 cert\nhost certs all 127.0.0.1/32 reject\n";
                std::fs::write(&hba, format!("{certs}{rest}")).unwrap();
            }
        }
        run(
            as_pg_user(&format!(
                "{} -D {} -l {}/pg.log -w -o \"{options}\" start",
                bin.join("pg_ctl").display(),
                data.display(),
                sock
            )),
            "pg_ctl start",
        );
        Self { bin, dir, port }
    }

    /// Creates a fresh database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let mut c = Command::new(self.bin.join("psql"));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-qc"])
            .arg(format!("CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"));
        run(c, "createdb");
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The URL of database `name` through the cluster's Unix socket: the
    /// socket directory as the host, percent-encoded as libpq writes it.
    pub fn unix_url(&self, name: &str) -> String {
        let dir = self.dir.path().display().to_string().replace('/', "%2F");
        format!("postgresql://postgres@{dir}:{}/{name}", self.port)
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
