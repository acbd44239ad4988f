//! A real Matrix client, matrix-nio, through a whole user journey against the
//! real binary: register (UIA with m.login.dummy), log in with a password,
//! whoami, create a room, invite, join, 31 messages seen through incremental
//! /sync, backwards pagination with /messages, a topic change, leave,
//! joined_members, logout. The journey itself is
//! `tests/journey/nio_journey.py`; this runs it on each storage backend.
//!
//! The Python comes from `NIO_JOURNEY_PYTHON` (set by `scripts/test`, which
//! builds the venv at `target/nio-venv`), else `target/nio-venv/bin/python`
//! under the workspace root. Without either the tests fail: a skipped
//! client test would look like a passing one. (Not `TESSERA_…`: tessera reads
//! every `TESSERA_*` variable as a config key and refuses unknown ones, and
//! the servers the tests start inherit the environment.)

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use tessera_storage::testing::TestCluster;

/// Longer than the script's own 120 s limit, so the script reports first.
const JOURNEY_LIMIT: Duration = Duration::from_secs(180);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn nio_python() -> PathBuf {
    if let Some(python) = std::env::var_os("NIO_JOURNEY_PYTHON").filter(|p| !p.is_empty()) {
        let python = PathBuf::from(python);
        assert!(
            python.exists(),
            "NIO_JOURNEY_PYTHON={} does not exist; run scripts/test, which builds the matrix-nio venv at target/nio-venv",
            python.display()
        );
        return python;
    }
    let python = workspace_root().join("target/nio-venv/bin/python");
    assert!(
        python.exists(),
        "no Python with matrix-nio: NIO_JOURNEY_PYTHON is unset and {} does not exist; run scripts/test, \
         which builds the venv from core/server/tests/journey/requirements.txt",
        python.display()
    );
    python
}

/// Runs the journey against `server` and fails the test, with the script's
/// output, unless it exits 0.
fn run_journey(server: &Server, backend: &str) {
    let python = nio_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/journey/nio_journey.py");
    let url = format!("http://{}", server.client);
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(&url)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.read_to_string(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + JOURNEY_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let report = format!(
        "matrix-nio journey on the {backend} backend against {url}\n--- stdout\n{stdout}--- stderr\n{stderr}---"
    );
    match status {
        None => panic!("the journey did not finish within {JOURNEY_LIMIT:?}\n{report}"),
        Some(status) if !status.success() => panic!("the journey failed ({status})\n{report}"),
        Some(_) => eprintln!("{report}"),
    }
}

#[test]
fn matrix_nio_journey_on_embedded_backend() {
    let server = Server::start(&[("TESSERA_REGISTRATION__ENABLE", "true"), ("TESSERA_SERVER__CORES", "2")]);
    run_journey(&server, "embedded");
}

#[test]
fn matrix_nio_journey_on_postgres_backend() {
    let cluster = TestCluster::start();
    let url = cluster.database("nio");
    let server = Server::start(&[
        ("TESSERA_REGISTRATION__ENABLE", "true"),
        ("TESSERA_SERVER__CORES", "2"),
        ("TESSERA_STORAGE__BACKEND", "postgres"),
        ("TESSERA_STORAGE__POSTGRES_URL", &url),
    ]);
    run_journey(&server, "postgres");
}
