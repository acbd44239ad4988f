//! Process life: the CLI contract, config errors, shutdown, the data dir.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{generate, Conn, Server, BIN};

#[test]
fn sigterm_stops_cleanly_with_exit_zero_and_closes_idle_connections() {
    let mut server = Server::start(&[("TESSERA_SERVER__CORES", "2")]);
    let mut idle = Conn::open(server.client);
    idle.send(b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(idle.read_reply().unwrap().status, 200);
    let started = Instant::now();
    let status = server.signal_and_wait("TERM");
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(5), "idle connections held shutdown up");
    assert!(idle.is_closed());
}

#[test]
fn request_in_flight_at_shutdown_is_finished() {
    let mut server = Server::start(&[("TESSERA_SERVER__CORES", "1")]);
    let mut conn = Conn::open(server.client);
    // Half a request: the connection is busy, not idle.
    conn.send(b"GET /health HTTP/1.1\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.pid().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    conn.send(b"Host: localhost\r\n\r\n");
    let reply = conn.read_reply().expect("in-flight request dropped at shutdown");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(server.wait_exit().success());
}

#[test]
fn second_server_on_same_data_dir_is_refused() {
    let server = Server::start(&[]);
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&server.config)
        .env("TESSERA_LISTENERS__CLIENT__BIND", format!("[\"127.0.0.1:{}\"]", common::free_port()))
        .env("TESSERA_LISTENERS__FEDERATION__BIND", format!("[\"127.0.0.1:{}\"]", common::free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another tessera process"));
}

#[test]
fn generate_config_refuses_to_overwrite() {
    let (_dir, config, _, _) = generate();
    let out = Command::new(BIN)
        .args(["generate-config", "--server-name", "localhost", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn check_config_accepts_generated_config() {
    let (_dir, config, _, _) = generate();
    let out = Command::new(BIN).args(["check-config", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("[registration]\n# Whether anyone may create an account"));
    assert!(text.contains("enable = false"));
}

#[test]
fn bad_environment_override_fails_at_start_naming_the_key() {
    let (_dir, config, _, _) = generate();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .env("TESSERA_LIMITS__MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limits.max_body_bytes"), "{err}");
}

#[test]
fn unknown_config_key_fails_naming_the_key() {
    let (_dir, config, _, _) = generate();
    let text = std::fs::read_to_string(&config).unwrap().replace("vshards = 256", "vshards = 256\nvshard = 3");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(BIN).args(["check-config", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.vshard"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn environment_override_enables_registration() {
    let (_dir, config, _, _) = generate();
    // An override with a value of the wrong type is caught; a right one passes.
    let ok = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .env("TESSERA_REGISTRATION__ENABLE", "true")
        .output()
        .unwrap();
    assert!(ok.status.success());
    let bad = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .env("TESSERA_REGISTRATION__ENABLE", "[1]")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("registration.enable"));
}

#[test]
fn second_server_on_the_same_port_refuses_to_start_instead_of_sharing_it() {
    let first = Server::start(&[]);
    let (_dir, config, _, _) = generate();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .env("TESSERA_LISTENERS__CLIENT__BIND", format!("[\"{}\"]", first.client))
        .env("TESSERA_LISTENERS__FEDERATION__ENABLE", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
