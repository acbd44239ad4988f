//! Runs the real binary's `versions` scenario for about a second against an
//! in-process fake homeserver that serves only `/_matrix/client/versions`,
//! and checks the JSON report. (The `tessera` binary is not a dependency of
//! this crate, so the fake stands in for it.)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"versions":["v1.11"]}"#;

/// Answers keep-alive requests on one connection until the client closes
/// it. While `limit_left` is above zero, answers 429 M_LIMIT_EXCEEDED
/// instead (and counts it down).
fn serve(stream: TcpStream, limit_left: Arc<AtomicU32>) {
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
        let limited = limit_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        let response = if limited {
            let body = r#"{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":50}"#;
            format!("HTTP/1.1 429 Too Many Requests\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        } else if path.as_deref() == Some("/_matrix/client/versions") {
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}", BODY.len())
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned()
        };
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Starts the fake server, runs `versions` against it for a second and
/// returns the JSON report and the summary printed on stdout.
fn run_versions(rate_limited_responses: u32, name: &str) -> (serde_json::Value, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let limit_left = Arc::new(AtomicU32::new(rate_limited_responses));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let limit_left = limit_left.clone();
            std::thread::spawn(move || serve(stream, limit_left));
        }
    });
    let json = std::env::temp_dir().join(format!("tessera-loadtest-{name}-{}.json", std::process::id()));
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
    (report, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn versions_scenario_against_a_fake_server_writes_a_clean_report() {
    let (report, stdout) = run_versions(0, "versions");
    assert_eq!(report["scenario"], "versions");
    assert!(report["requests"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(report["error_count"], 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert_eq!(report["latency"]["request"]["count"], report["requests"]);
    assert!(report["cpu"]["user_secs"].as_f64().unwrap() >= 0.0);
    assert_eq!(report["rate_limited"], 0);
    // The human summary went to stdout.
    assert!(stdout.contains("errors: none"));
}

#[test]
fn rate_limiting_is_waited_out_counted_and_warned_about() {
    let (report, stdout) = run_versions(3, "rate-limited");
    assert_eq!(report["rate_limited"], 3, "{report:#}");
    assert_eq!(report["error_count"], 0, "{report:#}");
    assert!(report["requests"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["warnings"][0].as_str().unwrap().contains("rate-limited 3 requests"), "{report:#}");
    assert!(stdout.contains("WARNING"));
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
