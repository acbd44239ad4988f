//! The Client-Server API calls the scenarios make, and nothing else: the
//! tool must run against any homeserver, so it relies on no extension.
//!
//! Every call goes through [`call`], which honours `429 M_LIMIT_EXCEEDED`:
//! it counts the response, warns once, waits `retry_after_ms` and retries,
//! so a rate-limited target shows up as a warning beside slow numbers
//! instead of as a wall of errors.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::json;
use tessera_net::runtime::{sleep, Duration};

use crate::config::RegistrationMode;
use crate::http::{Conn, HttpError, Response};
use crate::stats::{Metrics, RATE_LIMITED};

/// Retries of one request that keeps getting 429 before giving up.
const MAX_RATE_LIMIT_RETRIES: u32 = 50;
/// Longest wait for one 429, whatever `retry_after_ms` says.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

static WARNED_RATE_LIMIT: AtomicBool = AtomicBool::new(false);

/// A failed API call.
#[derive(Debug)]
pub enum ApiError {
    /// Transport failure.
    Http(HttpError),
    /// A non-success status, with the Matrix `errcode` if the body had one.
    Status { status: u16, errcode: String, error: String },
    /// A success status with a body we could not read.
    BadJson(String),
}

impl ApiError {
    /// The error's kind for the error counts: transport kind, or
    /// `<status> <errcode>`.
    pub fn kind(&self) -> String {
        match self {
            Self::Http(e) => e.kind().to_owned(),
            Self::Status { status, errcode, .. } => format!("{status} {errcode}"),
            Self::BadJson(_) => "bad_json".to_owned(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(e) => e.fmt(f),
            Self::Status { status, errcode, error } => write!(f, "HTTP {status} {errcode}: {error}"),
            Self::BadJson(e) => write!(f, "unreadable response: {e}"),
        }
    }
}

impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
    retry_after_ms: Option<u64>,
}

fn status_error(resp: &Response) -> ApiError {
    let body: ErrorBody = serde_json::from_slice(&resp.body).unwrap_or_default();
    ApiError::Status { status: resp.status, errcode: body.errcode, error: body.error }
}

/// Sends a request, waiting out and retrying rate limiting. Returns any
/// other response as is.
pub async fn call(
    conn: &mut Conn,
    metrics: &mut Metrics,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Response, ApiError> {
    let mut retries = 0;
    loop {
        let resp = conn.request(method, path, token, body).await?;
        if resp.status != 429 || retries == MAX_RATE_LIMIT_RETRIES {
            return Ok(resp);
        }
        let err: ErrorBody = serde_json::from_slice(&resp.body).unwrap_or_default();
        metrics.count(RATE_LIMITED, 1);
        if !WARNED_RATE_LIMIT.swap(true, Ordering::Relaxed) {
            eprintln!(
                "WARNING: the target is rate-limiting ({} on {method} {}); waiting retry_after_ms and retrying. \
                 Numbers from this run measure the limiter.",
                if err.errcode.is_empty() { "429" } else { &err.errcode },
                path.split('?').next().unwrap_or(path)
            );
        }
        sleep(Duration::from_millis(err.retry_after_ms.unwrap_or(1000)).min(MAX_RETRY_AFTER)).await;
        retries += 1;
    }
}

/// [`call`], requiring a 2xx status and a JSON body of type `T`.
pub async fn call_json<T: serde::de::DeserializeOwned>(
    conn: &mut Conn,
    metrics: &mut Metrics,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<T, ApiError> {
    let body = body.map(|b| serde_json::to_vec(b).expect("JSON serialises"));
    let resp = call(conn, metrics, method, path, token, body.as_deref()).await?;
    if !(200..300).contains(&resp.status) {
        return Err(status_error(&resp));
    }
    serde_json::from_slice(&resp.body).map_err(|e| ApiError::BadJson(e.to_string()))
}

/// A logged-in user.
#[derive(Clone, Debug, Deserialize)]
pub struct Session {
    /// Full user ID.
    pub user_id: String,
    /// Access token.
    pub access_token: String,
}

/// Registers `username` and returns its session.
pub async fn register(
    conn: &mut Conn,
    metrics: &mut Metrics,
    mode: RegistrationMode,
    shared_secret: Option<&str>,
    username: &str,
    password: &str,
) -> Result<Session, ApiError> {
    match mode {
        RegistrationMode::Dummy => register_dummy(conn, metrics, username, password).await,
        RegistrationMode::Admin => {
            let secret = shared_secret.expect("checked when the options were read");
            register_admin(conn, metrics, secret, username, password).await
        }
    }
}

/// `m.login.dummy` registration: the first request starts a user-interactive
/// auth session (401 with `session`), the second completes it.
async fn register_dummy(
    conn: &mut Conn,
    metrics: &mut Metrics,
    username: &str,
    password: &str,
) -> Result<Session, ApiError> {
    const PATH: &str = "/_matrix/client/v3/register";
    let mut body = json!({
        "username": username,
        "password": password,
        "initial_device_display_name": "tessera-loadtest",
    });
    let first = call(conn, metrics, "POST", PATH, None, Some(&serde_json::to_vec(&body).expect("json"))).await?;
    match first.status {
        200 => return serde_json::from_slice(&first.body).map_err(|e| ApiError::BadJson(e.to_string())),
        401 => {}
        _ => return Err(status_error(&first)),
    }
    #[derive(Deserialize)]
    struct Uia {
        session: Option<String>,
    }
    let uia: Uia = serde_json::from_slice(&first.body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    body["auth"] = json!({ "type": "m.login.dummy", "session": uia.session });
    call_json(conn, metrics, "POST", PATH, None, Some(&body)).await
}

/// Shared-secret registration (`/_synapse/admin/v1/register`), which Synapse
/// and Tessera both serve: fetch a nonce, then post with the HMAC.
async fn register_admin(
    conn: &mut Conn,
    metrics: &mut Metrics,
    secret: &str,
    username: &str,
    password: &str,
) -> Result<Session, ApiError> {
    const PATH: &str = "/_synapse/admin/v1/register";
    #[derive(Deserialize)]
    struct Nonce {
        nonce: String,
    }
    let nonce: Nonce = call_json(conn, metrics, "GET", PATH, None, None).await?;
    let body = json!({
        "nonce": nonce.nonce,
        "username": username,
        "password": password,
        "admin": false,
        "mac": admin_mac(secret, &nonce.nonce, username, password, false),
    });
    call_json(conn, metrics, "POST", PATH, None, Some(&body)).await
}

/// The shared-secret registration MAC: hex HMAC-SHA1 over
/// `nonce \0 user \0 password \0 (admin|notadmin)`, keyed with the secret.
pub fn admin_mac(secret: &str, nonce: &str, user: &str, password: &str, admin: bool) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    for (i, part) in [nonce, user, password, if admin { "admin" } else { "notadmin" }].into_iter().enumerate() {
        if i > 0 {
            ctx.update(b"\0");
        }
        ctx.update(part.as_bytes());
    }
    ctx.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes one path segment or query value.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// Creates a public room and returns its ID.
pub async fn create_room(conn: &mut Conn, metrics: &mut Metrics, token: &str, name: &str) -> Result<String, ApiError> {
    #[derive(Deserialize)]
    struct Created {
        room_id: String,
    }
    let body = json!({ "preset": "public_chat", "name": name, "visibility": "private" });
    let created: Created =
        call_json(conn, metrics, "POST", "/_matrix/client/v3/createRoom", Some(token), Some(&body)).await?;
    Ok(created.room_id)
}

/// Joins a room by ID.
pub async fn join(conn: &mut Conn, metrics: &mut Metrics, token: &str, room_id: &str) -> Result<(), ApiError> {
    let path = format!("/_matrix/client/v3/join/{}", encode(room_id));
    let _: serde::de::IgnoredAny = call_json(conn, metrics, "POST", &path, Some(token), Some(&json!({}))).await?;
    Ok(())
}

/// Sends an `m.text` message with transaction ID `txn`.
pub async fn send_text(
    conn: &mut Conn,
    metrics: &mut Metrics,
    token: &str,
    room_id: &str,
    txn: &str,
    body: &str,
) -> Result<(), ApiError> {
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", encode(room_id), encode(txn));
    let content = json!({ "msgtype": "m.text", "body": body });
    let _: serde::de::IgnoredAny = call_json(conn, metrics, "PUT", &path, Some(token), Some(&content)).await?;
    Ok(())
}

/// Filter of the receivers' /sync: only room timelines (no presence,
/// account data or ephemeral events), so the client parses what it measures
/// and little else.
pub const TIMELINE_FILTER: &str = r#"{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},"room":{"timeline":{"limit":100},"state":{"lazy_load_members":true},"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}}}"#;

/// Filter of the /sync that only fetches a starting `next_batch`: no rooms
/// at all. Sync tokens do not depend on the filter, and computing the
/// state of a room with thousands of members for every member's first
/// sync made setup take minutes on Synapse.
pub const TOKEN_ONLY_FILTER: &str =
    r#"{"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]},"room":{"rooms":[]}}"#;

/// The `/sync` path, with an inline filter if given.
pub fn sync_path(since: Option<&str>, timeout_ms: u64, filter: Option<&str>) -> String {
    let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
    if let Some(since) = since {
        path.push_str("&since=");
        path.push_str(&encode(since));
    }
    if let Some(filter) = filter {
        path.push_str("&filter=");
        path.push_str(&encode(filter));
    }
    path
}

/// The marker a measured message carries in its body: the run, a unique id
/// and the send time, so a receiver can match it and time its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The run's id: messages of earlier runs in the same room are ignored.
    pub run: u64,
    /// Unique within the run.
    pub id: u64,
    /// Send time, nanoseconds since the run's clock epoch (the intended send
    /// time at a fixed rate).
    pub sent_ns: u64,
}

const MARKER_PREFIX: &str = "tessera-loadtest";

impl Marker {
    /// The message body.
    pub fn body(&self) -> String {
        format!("{MARKER_PREFIX} run={:x} id={} sent_ns={}", self.run, self.id, self.sent_ns)
    }

    /// Reads a body written by [`Marker::body`].
    pub fn parse(body: &str) -> Option<Self> {
        let mut parts = body.strip_prefix(MARKER_PREFIX)?.split_whitespace();
        let run = u64::from_str_radix(parts.next()?.strip_prefix("run=")?, 16).ok()?;
        let id = parts.next()?.strip_prefix("id=")?.parse().ok()?;
        let sent_ns = parts.next()?.strip_prefix("sent_ns=")?.parse().ok()?;
        Some(Self { run, id, sent_ns })
    }
}

/// What a receiver needs from one /sync response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncBatch {
    /// The token for the next /sync.
    pub next_batch: String,
    /// Markers of run `run` found in the joined rooms' timelines.
    pub markers: Vec<Marker>,
    /// Rooms whose timeline was `limited` (events may have been skipped).
    pub limited: u64,
}

/// Reads a /sync response body, keeping only the markers of run `run`.
pub fn parse_sync(body: &[u8], run: u64) -> Result<SyncBatch, String> {
    #[derive(Deserialize)]
    struct Sync {
        next_batch: String,
        #[serde(default)]
        rooms: Rooms,
    }
    #[derive(Deserialize, Default)]
    struct Rooms {
        #[serde(default)]
        join: HashMap<String, Joined>,
    }
    #[derive(Deserialize)]
    struct Joined {
        #[serde(default)]
        timeline: Timeline,
    }
    #[derive(Deserialize, Default)]
    struct Timeline {
        #[serde(default)]
        events: Vec<Event>,
        #[serde(default)]
        limited: bool,
    }
    #[derive(Deserialize)]
    struct Event {
        #[serde(default)]
        content: Content,
    }
    #[derive(Deserialize, Default)]
    struct Content {
        // Any JSON: a body that is not a string is someone else's event.
        #[serde(default)]
        body: serde_json::Value,
    }
    let sync: Sync = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut batch = SyncBatch { next_batch: sync.next_batch, ..SyncBatch::default() };
    for room in sync.rooms.join.into_values() {
        batch.limited += u64::from(room.timeline.limited);
        for event in room.timeline.events {
            if let Some(marker) = event.content.body.as_str().and_then(Marker::parse).filter(|m| m.run == run) {
                batch.markers.push(marker);
            }
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_mac_matches_an_independent_computation() {
        // python3: hmac.new(b'tessera-test-shared-secret',
        //     b'abcdef\x00alice\x00pass word\x00notadmin', hashlib.sha1).hexdigest()
        assert_eq!(
            admin_mac("tessera-test-shared-secret", "abcdef", "alice", "pass word", false),
            "de9ae29b905c87ab64a2c6aeb95c97f2d7561b57"
        );
        assert_eq!(
            admin_mac("tessera-test-shared-secret", "abcdef", "alice", "pass word", true),
            "0462d28bbd8e96dc6d3e32df8eb8783859673770"
        );
    }

    #[test]
    fn markers_round_trip_and_foreign_bodies_are_ignored() {
        let m = Marker { run: 0xabc, id: 42, sent_ns: 123_456_789 };
        assert_eq!(Marker::parse(&m.body()), Some(m));
        for body in
            ["hello", "tessera-loadtest", "tessera-loadtest run=zz id=1 sent_ns=2", "tessera-loadtest run=1 id=1"]
        {
            assert_eq!(Marker::parse(body), None, "{body}");
        }
    }

    #[test]
    fn sync_parsing_keeps_this_runs_markers() {
        let mine = Marker { run: 7, id: 1, sent_ns: 5 };
        let other_run = Marker { run: 8, id: 2, sent_ns: 6 };
        let body = json!({
            "next_batch": "s72_1",
            "presence": {"events": []},
            "rooms": {"join": {
                "!a:x": {"timeline": {"limited": true, "events": [
                    {"type": "m.room.message", "content": {"msgtype": "m.text", "body": mine.body()}},
                    {"type": "m.room.member", "content": {"membership": "join"}},
                    {"type": "m.room.message", "content": {"body": {"not": "a string"}}},
                ]}},
                "!b:x": {"timeline": {"events": [{"content": {"body": other_run.body()}}]}, "state": {"events": []}},
            }, "invite": {}},
        });
        let batch = parse_sync(&serde_json::to_vec(&body).unwrap(), 7).unwrap();
        assert_eq!(batch, SyncBatch { next_batch: "s72_1".into(), markers: vec![mine], limited: 1 });
        let empty = parse_sync(br#"{"next_batch":"n"}"#, 7).unwrap();
        assert_eq!(empty.next_batch, "n");
        assert!(parse_sync(b"{}", 7).is_err());
    }

    #[test]
    fn sync_path_encodes_since_and_filter() {
        assert_eq!(sync_path(None, 0, None), "/_matrix/client/v3/sync?timeout=0");
        let p = sync_path(Some("s1_2~3"), 30000, Some(TIMELINE_FILTER));
        assert!(p.starts_with("/_matrix/client/v3/sync?timeout=30000&since=s1%5F2%7E3&filter=%7B%22presence"), "{p}");
        assert!(!p[p.find("filter=").unwrap()..].contains(['{', '"', ' ']));
        for filter in [TIMELINE_FILTER, TOKEN_ONLY_FILTER] {
            serde_json::from_str::<serde_json::Value>(filter).unwrap();
        }
    }
}
