//! Test harness: runs the real `tessera` binary on free ports with a
//! temporary data directory, and talks raw HTTP to it.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// The Client-Server API's current path prefix.
pub const V3: &str = "/_matrix/client/v3";

/// A running server, killed when dropped.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub client: SocketAddr,
    pub federation: SocketAddr,
    child: Option<Child>,
}

/// A port nobody listens on right now, and not handed out before in this
/// test process: servers bind with SO_REUSEPORT, so two parallel tests
/// given the same port would share it, each server answering some of the
/// other's connections (a likely cause of a CI failure seen once: a
/// request on a fresh connection closed unanswered).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Writes a config with `tessera generate-config` into a new temp dir.
pub fn generate() -> (tempfile::TempDir, PathBuf, u16, u16) {
    generate_named(|_| "localhost".to_owned())
}

/// As [`generate`], with the server name made from the federation port.
pub fn generate_named(server_name: impl FnOnce(u16) -> String) -> (tempfile::TempDir, PathBuf, u16, u16) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    let (client, federation) = (free_port(), free_port());
    let out = Command::new(BIN)
        .args(["generate-config", "--server-name", &server_name(federation), "--config"])
        .arg(&config)
        .args(["--client-port", &client.to_string(), "--federation-port", &federation.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "generate-config failed: {}", String::from_utf8_lossy(&out.stderr));
    (dir, config, client, federation)
}

impl Server {
    /// Starts a server with these environment overrides (`TESSERA_*`).
    pub fn start(env: &[(&str, &str)]) -> Self {
        let (dir, config, client, federation) = generate();
        let mut server = Self {
            dir,
            config,
            client: SocketAddr::from(([127, 0, 0, 1], client)),
            federation: SocketAddr::from(([127, 0, 0, 1], federation)),
            child: None,
        };
        server.spawn(env);
        server
    }

    /// A server named after its federation address (`127.0.0.1:<port>`),
    /// so that other servers reach it by its name; configured, not started.
    pub fn federating() -> Self {
        let (dir, config, client, federation) = generate_named(|port| format!("127.0.0.1:{port}"));
        Self {
            dir,
            config,
            client: SocketAddr::from(([127, 0, 0, 1], client)),
            federation: SocketAddr::from(([127, 0, 0, 1], federation)),
            child: None,
        }
    }

    /// The server name of a [`Server::federating`] server.
    pub fn name(&self) -> String {
        self.federation.to_string()
    }

    /// The self-signed certificate generate-config made for the
    /// federation listener.
    pub fn tls_certificate(&self) -> PathBuf {
        self.dir.path().join("data/tls.crt")
    }

    /// (Re)starts the process on this server's config.
    pub fn spawn(&mut self, env: &[(&str, &str)]) {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"]).arg(&self.config);
        cmd.env("TESSERA_LISTENERS__FEDERATION__BIND", format!("[\"{}\"]", self.federation));
        // Warnings, plus the line that says every shard is listening.
        cmd.env("TESSERA_LOGGING__LEVEL", "warn,tessera::serve=info");
        cmd.env("NO_COLOR", "1");
        // Tests go faster than any person; the rate limit test turns them on.
        cmd.env("TESSERA_RATE_LIMITS__ENABLE", "false");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if line.contains(" ready") {
                    let _ = ready_tx.send(());
                }
                eprintln!("[tessera] {line}");
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tessera exited during start-up: {status}");
            }
            if ready_rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                return;
            }
        }
        panic!("tessera did not report ready within 20 s");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal and waits for the exit status.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap();
        self.wait_exit()
    }

    /// Waits (up to 30 s) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "tessera did not exit within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn errcode(&self) -> String {
        self.json()["errcode"].as_str().unwrap_or_default().to_owned()
    }
}

/// A keep-alive connection that reads responses one at a time.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self { stream, buf: Vec::new() }
    }

    /// A connection, or `None` when nothing listens (a killed server).
    pub fn try_open(addr: SocketAddr) -> Option<Self> {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        Some(Self { stream, buf: Vec::new() })
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).unwrap();
    }

    /// One request and its response, or `None` once the server is gone.
    pub fn try_request(&mut self, raw: &[u8]) -> Option<Reply> {
        self.stream.write_all(raw).ok()?;
        self.read_reply()
    }

    /// Reads one response; `None` if the server closed the connection first.
    pub fn read_reply(&mut self) -> Option<Reply> {
        loop {
            if let Some(reply) = self.parse_one() {
                return Some(reply);
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn parse_one(&mut self) -> Option<Reply> {
        let end = self.buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        if status == 100 {
            self.buf.drain(..end);
            return Some(Reply { status, headers, body: Vec::new() });
        }
        if self.buf.len() < end + len {
            return None;
        }
        let body = self.buf[end..end + len].to_vec();
        self.buf.drain(..end + len);
        Some(Reply { status, headers, body })
    }

    /// Whether the server has closed the connection (reads EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0))
    }
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, raw: &str) -> Reply {
    let mut conn = Conn::open(addr);
    conn.send(raw.as_bytes());
    conn.read_reply().expect("server closed the connection without answering")
}

/// `GET path` on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"))
}

/// A Client-Server API call on a fresh connection, with an optional access
/// token and JSON body.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Reply {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    request(
        addr,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Registers `localpart` (registration must be enabled) and returns its
/// user ID and access token.
pub fn register(addr: SocketAddr, localpart: &str) -> (String, String) {
    let body = serde_json::json!({
        "username": localpart,
        "password": "correct horse battery",
        "auth": { "type": "m.login.dummy" },
    });
    let reply = call(addr, "POST", "/_matrix/client/v3/register", None, Some(&body));
    assert_eq!(reply.status, 200, "register {localpart}: {}", String::from_utf8_lossy(&reply.body));
    let json = reply.json();
    (json["user_id"].as_str().unwrap().to_owned(), json["access_token"].as_str().unwrap().to_owned())
}

/// A two-shard server with registration open: what the API tests start.
pub fn open_server() -> Server {
    Server::start(&[("TESSERA_REGISTRATION__ENABLE", "true"), ("TESSERA_SERVER__CORES", "2")])
}

/// The JSON body of a 200, or a panic showing what came instead.
pub fn ok(reply: Reply) -> serde_json::Value {
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

/// Creates a room with this `createRoom` body; its ID.
pub fn create_room(server: &Server, token: &str, body: serde_json::Value) -> String {
    let reply = call(server.client, "POST", &format!("{V3}/createRoom"), Some(token), Some(&body));
    ok(reply)["room_id"].as_str().unwrap().to_owned()
}

/// The MAC of a `/_synapse/admin/v1/register` request (HMAC-SHA1 over
/// nonce, user, password and admin flag), as operator tools compute it.
pub fn shared_secret_mac(key: &str, nonce: &str, user: &str, password: &str, admin: bool) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    let flag = if admin { "admin" } else { "notadmin" };
    mac.update(format!("{nonce}\0{user}\0{password}\0{flag}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The generated shared secret in a server's config file.
pub fn shared_secret(server: &Server) -> String {
    let config = std::fs::read_to_string(&server.config).unwrap();
    config.lines().find_map(|l| l.strip_prefix("shared_secret = ")).unwrap().trim_matches('"').to_owned()
}

/// Registers a server admin through the shared secret: (user ID, token).
pub fn register_admin(server: &Server, localpart: &str) -> (String, String) {
    let nonce = call(server.client, "GET", "/_synapse/admin/v1/register", None, None).json()["nonce"]
        .as_str()
        .unwrap()
        .to_owned();
    let mac = shared_secret_mac(&shared_secret(server), &nonce, localpart, "admin pw", true);
    let body =
        serde_json::json!({ "nonce": nonce, "username": localpart, "password": "admin pw", "admin": true, "mac": mac });
    let json = ok(call(server.client, "POST", "/_synapse/admin/v1/register", None, Some(&body)));
    (json["user_id"].as_str().unwrap().to_owned(), json["access_token"].as_str().unwrap().to_owned())
}
