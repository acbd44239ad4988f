//! The HTTP transport on the real binary: endpoints, errors, limits,
//! keep-alive, pipelining, bodies.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{get, request, Conn, Server};

#[test]
fn versions_names_the_spec_versions_clients_require() {
    let server = Server::start(&[]);
    let reply = get(server.client, "/_matrix/client/versions");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply.header("date").is_some_and(|d| d.ends_with(" GMT")), "{:?}", reply.header("date"));
    let body = reply.json();
    let versions: Vec<&str> = body["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    // Element refuses servers without v1.1 or later.
    assert!(versions.contains(&"v1.1"), "{versions:?}");
    assert!(versions.iter().all(|v| v.starts_with("r0.") || v.starts_with("v1.")), "{versions:?}");
    assert!(body["unstable_features"].is_object());
}

#[test]
fn every_response_carries_cors_headers() {
    let server = Server::start(&[]);
    for path in ["/_matrix/client/versions", "/_matrix/nope"] {
        let reply = get(server.client, path);
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"), "{path}");
        assert!(reply.header("access-control-allow-headers").unwrap().contains("Authorization"));
    }
}

#[test]
fn options_preflight_is_answered_without_running_the_endpoint() {
    let server = Server::start(&[]);
    let reply = request(
        server.client,
        "OPTIONS /_matrix/client/v3/login HTTP/1.1\r\nOrigin: https://app.element.io\r\nAccess-Control-Request-Method: POST\r\n\r\n",
    );
    assert_eq!(reply.status, 204);
    assert!(reply.header("access-control-allow-methods").unwrap().contains("POST"));
}

#[test]
fn unknown_endpoint_is_404_unrecognized() {
    let server = Server::start(&[]);
    let reply = get(server.client, "/_matrix/client/v3/does-not-exist");
    assert_eq!((reply.status, reply.errcode().as_str()), (404, "M_UNRECOGNIZED"));
}

#[test]
fn wrong_method_is_405_unrecognized() {
    let server = Server::start(&[]);
    let reply = request(server.client, "DELETE /_matrix/client/versions HTTP/1.1\r\n\r\n");
    assert_eq!((reply.status, reply.errcode().as_str()), (405, "M_UNRECOGNIZED"));
}

#[test]
fn well_known_documents_come_from_config() {
    let server = Server::start(&[("TESSERA_WELL_KNOWN__SERVER", "matrix.example.org:443")]);
    let client = get(server.client, "/.well-known/matrix/client").json();
    assert_eq!(client["m.homeserver"]["base_url"], format!("http://localhost:{}", server.client.port()));
    let fed = get(server.client, "/.well-known/matrix/server").json();
    assert_eq!(fed["m.server"], "matrix.example.org:443");
}

#[test]
fn health_answers_ok() {
    let server = Server::start(&[]);
    let reply = get(server.client, "/health");
    assert_eq!((reply.status, reply.body.as_slice()), (200, &b"OK"[..]));
}

#[test]
fn metrics_count_requests_per_endpoint_across_shards() {
    let server = Server::start(&[("TESSERA_SERVER__CORES", "2")]);
    for _ in 0..10 {
        assert_eq!(get(server.client, "/_matrix/client/versions").status, 200);
    }
    let text = String::from_utf8(get(server.client, "/metrics").body).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("tessera_http_requests_total{listener=\"client\",endpoint=\"GET /_matrix/client/versions\"")
        })
        .unwrap_or_else(|| panic!("no versions counter in:\n{text}"));
    assert!(line.ends_with(" 10"), "{line}");
    assert!(text.contains("tessera_shard_queue_depth{shard=\"1\"}"), "{text}");
    assert!(text.contains("tessera_mesh_jobs_total{from=\"0\",to=\"1\"}"), "{text}");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = Server::start(&[]);
    let mut conn = Conn::open(server.client);
    for _ in 0..50 {
        conn.send(b"GET /health HTTP/1.1\r\n\r\n");
        assert_eq!(conn.read_reply().unwrap().status, 200);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut conn = Conn::open(server.client);
    conn.send(
        b"GET /health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nGET /_matrix/client/versions HTTP/1.1\r\n\r\nPOST /health HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /health HTTP/1.1\r\n\r\n",
    );
    let statuses: Vec<u16> = (0..5).map(|_| conn.read_reply().unwrap().status).collect();
    assert_eq!(statuses, [200, 404, 200, 405, 200]);
}

#[test]
fn chunked_body_is_decoded_and_connection_stays_usable() {
    let server = Server::start(&[]);
    let mut conn = Conn::open(server.client);
    // A chunked body on a known path with the wrong method is read and
    // discarded, then the next request on the connection is answered.
    conn.send(
        b"POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n",
    );
    assert_eq!(conn.read_reply().unwrap().status, 405);
    assert_eq!(conn.read_reply().unwrap().status, 200);
}

#[test]
fn oversized_body_is_413_too_large_before_it_is_sent() {
    let server = Server::start(&[("TESSERA_LIMITS__MAX_BODY_BYTES", "1024")]);
    let mut conn = Conn::open(server.client);
    // The client waits for 100-continue; the server must refuse instead.
    conn.send(b"POST /_matrix/client/versions HTTP/1.1\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n");
    let reply = conn.read_reply().unwrap();
    // The route exists only for GET, so this is 405 before any size check.
    assert_eq!(reply.status, 405);
    let reply = request(server.client, "GET /health HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n");
    assert_eq!((reply.status, reply.errcode().as_str()), (413, "M_TOO_LARGE"));
}

#[test]
fn oversized_chunked_body_is_413_too_large() {
    let server = Server::start(&[("TESSERA_LIMITS__MAX_BODY_BYTES", "1024")]);
    let mut conn = Conn::open(server.client);
    conn.send(b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n");
    let reply = conn.read_reply().unwrap();
    assert_eq!((reply.status, reply.errcode().as_str()), (413, "M_TOO_LARGE"));
    assert!(conn.is_closed());
}

#[test]
fn expect_continue_gets_100_then_the_answer() {
    let server = Server::start(&[]);
    let mut conn = Conn::open(server.client);
    conn.send(b"GET /health HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(conn.read_reply().unwrap().status, 100);
    conn.send(b"{}");
    assert_eq!(conn.read_reply().unwrap().status, 200);
}

#[test]
fn oversized_headers_are_431_and_close() {
    let server = Server::start(&[]);
    let mut conn = Conn::open(server.client);
    let big = format!("GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    // The server may close before reading everything; ignore write errors.
    let _ = conn.stream.write_all(big.as_bytes());
    let reply = conn.read_reply().unwrap();
    assert_eq!((reply.status, reply.errcode().as_str()), (431, "M_TOO_LARGE"));
    assert!(conn.is_closed());
}

#[test]
fn malformed_request_is_400_and_server_survives() {
    let server = Server::start(&[]);
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
        b"GET /health HTTP/9.9\r\n\r\n",
        b"G E T\r\n\r\n",
    ] {
        let mut conn = Conn::open(server.client);
        conn.send(garbage);
        let reply = conn.read_reply().unwrap();
        assert_eq!(reply.status, 400, "{garbage:?}");
        assert!(conn.is_closed());
    }
    assert_eq!(get(server.client, "/health").status, 200);
}

#[test]
fn request_smuggling_framing_is_refused() {
    let server = Server::start(&[]);
    let reply = request(
        server.client,
        "POST /health HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert_eq!(reply.status, 400);
}

#[test]
fn slow_client_is_timed_out_with_408() {
    let server = Server::start(&[("TESSERA_LIMITS__REQUEST_TIMEOUT_SECS", "1")]);
    let mut conn = Conn::open(server.client);
    let started = Instant::now();
    conn.send(b"GET /health HTTP/1.1\r\nX-Slow: ");
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(conn.is_closed());
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let server = Server::start(&[("TESSERA_LIMITS__IDLE_TIMEOUT_SECS", "1")]);
    let mut conn = Conn::open(server.client);
    conn.send(b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(conn.read_reply().unwrap().status, 200);
    let started = Instant::now();
    assert!(conn.is_closed());
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[test]
fn connections_over_the_limit_get_503() {
    // One shard, one connection allowed.
    let server = Server::start(&[("TESSERA_SERVER__CORES", "1"), ("TESSERA_LIMITS__MAX_CONNECTIONS", "1")]);
    // The harness's readiness probe may still hold the one slot for a moment.
    let mut first = serve_eventually(server.client);
    first.send(b"GET /health HTTP/1.1\r\n\r\n");
    assert_eq!(first.read_reply().unwrap().status, 200);
    let mut second = Conn::open(server.client);
    let reply = second.read_reply().unwrap();
    assert_eq!((reply.status, reply.errcode().as_str()), (503, "M_LIMIT_EXCEEDED"));
    drop(first);
    // Once the first leaves, new connections are served again.
    serve_eventually(server.client);
}

/// A connection on which /health answers 200, retrying while the server
/// answers 503 because its connection slots are taken.
fn serve_eventually(addr: std::net::SocketAddr) -> Conn {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut conn = Conn::open(addr);
        conn.send(b"GET /health HTTP/1.1\r\n\r\n");
        match conn.read_reply().map(|r| r.status) {
            Some(200) => return conn,
            other => assert!(Instant::now() < deadline, "still refused: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn http10_request_gets_response_and_close() {
    let server = Server::start(&[]);
    let mut conn = Conn::open(server.client);
    conn.send(b"GET /health HTTP/1.0\r\n\r\n");
    let reply = conn.read_reply().unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(conn.is_closed());
}
