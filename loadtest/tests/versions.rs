//! Runs the real binary's `versions` scenario for about a second against an
//! in-process fake homeserver that serves only `/_matrix/client/versions`,
//! and checks the JSON report. (The `tessera` binary is not a dependency of
//! this crate, so the fake stands in for it.)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"versions":["v1.11"]}"#;

/// Answers keep-alive requests on one connection until the client closes it.
fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = String::new();
    loop {
        // Request line and headers; the scenario sends no bodies.
        let mut path = None;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if path.is_none() {
                path = line.split_whitespace().nth(1).map(str::to_owned);
            }
            if line == "\r\n" {
                break;
            }
        }
        let response = if path.as_deref() == Some("/_matrix/client/versions") {
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}", BODY.len())
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()
        };
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn versions_scenario_against_a_fake_server_writes_a_clean_report() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    let json = std::env::temp_dir().join(format!("tessera-loadtest-versions-{}.json", std::process::id()));
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-loadtest"))
        .args(["--url", &format!("http://127.0.0.1:{port}"), "--threads", "2", "--duration", "1"])
        .args(["--json", json.to_str().unwrap(), "versions", "--connections", "4"])
        .output()
        .unwrap();
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(report["scenario"], "versions");
    assert!(report["requests"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["error_count"], 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert_eq!(report["latency"]["request"]["count"], report["requests"]);
    assert!(report["cpu"]["user_secs"].as_f64().unwrap() >= 0.0);
    // The human summary went to stdout.
    assert!(String::from_utf8_lossy(&output.stdout).contains("errors: none"));
}

#[test]
fn non_loopback_targets_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-loadtest"))
        .args(["--url", "http://192.0.2.1:8008", "versions"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not loopback"));
}
