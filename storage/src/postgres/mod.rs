//! The PostgreSQL backend, for large deployments.
//!
//! tokio-postgres without its runtime: each connection is a TCP or Unix
//! socket stream from the caller's runtime (`PgRuntime`: monoio in the server) and its driver
//! future runs as a task of the shard that owns it. Every shard has its own
//! small pool: readers, plus one writer connection owned by the shard's
//! committer task, which commits every write waiting at that moment in one
//! transaction (group commit; PostgreSQL fsyncs its WAL at COMMIT). No
//! connection is shared between cores.
//!
//! Host names are resolved once, when the backend is opened on the main
//! thread: no DNS lookup ever runs on a shard.

mod interning;
mod schema;
pub mod tls;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::str::FromStr;
use std::task::{Context, Poll};

use futures_util::future::try_join_all;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::error::{Result, StorageError};
use crate::group_commit::{self, Submission};
use crate::ops::Op;
use crate::records::{
    AccessTokenRecord, AccountDataRecord, AliasRecord, DestinationRecord, DeviceKeysRecord, DeviceRecord, EventNid,
    EventRecord, MediaRecord, OneTimeKeyRecord, OutboundRecord, ReceiptRecord, RegistrationTokenRecord, RoomHeadRecord,
    RoomMemberRecord, RoomNid, ServerKeyRecord, StateGroupRecord, StateKeyRecord, StreamPos, ToDeviceRecord,
    UserRecord, UserRoomRecord, VShard,
};
use crate::store::{Direction, Store};
pub use schema::SCHEMA_VERSION;

/// What the backend needs from the runtime it runs on.
pub trait PgRuntime: Clone + 'static {
    /// A stream speaking tokio's I/O traits (a [`PgStream`] of the
    /// runtime's TCP and Unix streams).
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    /// Connects to the database.
    fn connect(&self, to: &PgTarget) -> impl Future<Output = io::Result<Self::Stream>>;
    /// Runs `task` on the current shard.
    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>);
}

/// Where the database listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgTarget {
    /// A TCP address (the host name resolved once, at start-up).
    Tcp(SocketAddr),
    /// A Unix socket: for a host that is a directory, libpq's
    /// `{directory}/.s.PGSQL.{port}`. The usual set-up when PostgreSQL runs
    /// on the same machine (peer authentication, no TCP stack).
    Unix(PathBuf),
}

/// A connection of either kind, as a runtime's [`PgRuntime::Stream`].
pub enum PgStream<T, U> {
    Tcp(T),
    Unix(U),
}

/// Forwards a poll to whichever stream this is.
macro_rules! either_stream {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            PgStream::Tcp($s) => $call,
            PgStream::Unix($s) => $call,
        }
    };
}

impl<T: AsyncRead + Unpin, U: AsyncRead + Unpin> AsyncRead for PgStream<T, U> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        either_stream!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl<T: AsyncWrite + Unpin, U: AsyncWrite + Unpin> AsyncWrite for PgStream<T, U> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        either_stream!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either_stream!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either_stream!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgresql://user[:password]@host[:port]/database`; a host that is
    /// a directory (`postgresql://tessera@%2Fvar%2Frun%2Fpostgresql/tessera`
    /// or `?host=/var/run/postgresql`) means the Unix socket in it.
    pub url: String,
    /// Reader connections per shard (besides its one writer).
    pub readers: usize,
    /// Wait for the WAL fsync at each commit (`synchronous_commit`). Off
    /// loses the last commits on a crash: for benchmarks only.
    pub sync_writes: bool,
    /// The roots a TLS connection (`sslmode=require` in the URL) verifies
    /// the server's certificate against; `None` refuses `sslmode=require`.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// The database, as configured; opened once per process on the main thread
/// and cloned to every shard.
#[derive(Clone)]
pub struct PgDb {
    inner: std::sync::Arc<PgDbInner>,
}

struct PgDbInner {
    config: tokio_postgres::Config,
    target: PgTarget,
    /// With `sslmode=require`: the roots and the name to verify.
    tls: Option<(std::sync::Arc<rustls::ClientConfig>, ServerName<'static>)>,
    readers: usize,
    sync_writes: bool,
}

impl From<tokio_postgres::Error> for StorageError {
    /// With the causes: "error performing TLS handshake" alone does not
    /// tell an operator that the certificate was refused.
    fn from(e: tokio_postgres::Error) -> Self {
        let mut message = format!("postgres: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(inner) = cause {
            message.push_str(&format!(": {inner}"));
            cause = inner.source();
        }
        Self::Backend(message)
    }
}

impl PgDb {
    /// Parses the URL and resolves its host (blocking: call it before the
    /// shards start).
    pub fn new(config: &PgConfig) -> Result<Self> {
        let bad = |why: String| StorageError::Backend(format!("storage.postgres_url: {why}"));
        let pg = tokio_postgres::Config::from_str(&config.url).map_err(|e| bad(e.to_string()))?;
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let tls = match (pg.get_ssl_mode(), pg.get_hosts()) {
            (SslMode::Require, [Host::Tcp(host)]) => {
                let roots = config.tls.clone().ok_or_else(|| bad("sslmode=require needs TLS roots".into()))?;
                let name = ServerName::try_from(host.clone()).map_err(|e| bad(format!("{host}: {e}")))?;
                Some((roots, name))
            }
            (SslMode::Require, _) => return Err(bad("sslmode=require is for TCP hosts, not Unix sockets".into())),
            // A client certificate is presented only over TLS: without it
            // the operator's certificate would silently go unused.
            _ if config.tls.as_ref().is_some_and(|tls| tls.client_auth_cert_resolver.has_certs()) => {
                return Err(bad("a client certificate (storage.postgres_client_cert) needs sslmode=require".into()))
            }
            _ => None,
        };
        let target = match pg.get_hosts() {
            [Host::Tcp(host)] => {
                let addr = (host.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
                    .next()
                    .ok_or_else(|| bad(format!("{host} has no address")))?;
                PgTarget::Tcp(addr)
            }
            [Host::Unix(dir)] => PgTarget::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            [] => return Err(bad("no host".into())),
            _ => return Err(bad("exactly one host is supported (no fail-over lists)".into())),
        };
        let inner =
            PgDbInner { config: pg, target, tls, readers: config.readers.max(1), sync_writes: config.sync_writes };
        Ok(Self { inner: std::sync::Arc::new(inner) })
    }

    async fn connect<R: PgRuntime>(&self, rt: &R) -> Result<Client> {
        let stream =
            rt.connect(&self.inner.target).await.map_err(|e| StorageError::Backend(format!("postgres: {e}")))?;
        let config = &self.inner.config;
        let client = match &self.inner.tls {
            None => {
                let (client, connection) = config.connect_raw(stream, NoTls).await?;
                drive(rt, connection);
                client
            }
            Some((roots, name)) => {
                let tls = tls::RustlsConnect { config: roots.clone(), name: name.clone() };
                let (client, connection) = config.connect_raw(stream, tls).await?;
                drive(rt, connection);
                client
            }
        };
        Ok(client)
    }

    /// Connects shard `shard`'s pool, creating or checking the schema
    /// first. Its writer holds the shard's writer lock (see
    /// [`Writer::ready`]) before anything is read.
    pub async fn shard_store<R: PgRuntime>(&self, rt: &R, shard: usize) -> Result<PgStore> {
        let connect: Connector = {
            let (db, rt) = (self.clone(), rt.clone());
            Rc::new(move || {
                let (db, rt) = (db.clone(), rt.clone());
                Box::pin(async move { db.connect(&rt).await })
            })
        };
        let mut writer = connect().await?;
        schema::migrate(&mut writer).await?;
        let writer = Writer::ready(writer, self.inner.sync_writes, shard).await?;
        let mut readers = Vec::with_capacity(self.inner.readers);
        for _ in 0..self.inner.readers {
            readers.push(RefCell::new(Rc::new(Reader::new(connect().await?))));
        }
        let (tx, rx) = flume::unbounded();
        rt.spawn(Box::pin(commit_loop(writer, rx, connect.clone())));
        Ok(PgStore { readers, next: Cell::new(0), committer: tx, connect })
    }
}

/// Runs a connection's I/O on the shard until it closes.
fn drive<R: PgRuntime>(
    rt: &R,
    connection: impl Future<Output = std::result::Result<(), tokio_postgres::Error>> + 'static,
) {
    rt.spawn(Box::pin(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "postgres connection closed");
        }
    }));
}

/// Opens a new connection of this shard's pool (after one was lost).
type Connector = Rc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Client>>>>>;

struct Reader {
    client: Client,
    /// Statements prepared on this connection, by SQL text.
    statements: RefCell<HashMap<&'static str, Statement>>,
}

/// The committer's connection and how to make it again.
struct Writer {
    conn: Reader,
    sync_writes: bool,
    shard: usize,
}

/// Advisory lock keys of the shards' writers: this base plus the shard.
const WRITER_LOCK_BASE: i64 = 0x7465_7373_6572_0000;

/// How long a new writer waits for the previous holder of its lock.
const WRITER_LOCK_WAIT: &str = "30s";

impl Writer {
    /// Sets the session up for writing, holding shard `shard`'s writer lock
    /// for the connection's life.
    ///
    /// Why the lock: a killed server's last transaction can still be
    /// queued in PostgreSQL and commit after a new server started. Had the
    /// new shard already read its stream position, it would hand out the
    /// positions that late commit takes, and a room's new events would sort
    /// before older ones (seen as a flaky crash test). The old writer's
    /// backend holds the lock until it has run everything it was sent, so
    /// waiting for the lock waits for that commit. It also stops two
    /// servers from writing one database: the second fails after 30 s.
    async fn ready(client: Client, sync_writes: bool, shard: usize) -> Result<Self> {
        client.batch_execute(&format!("SET lock_timeout = '{WRITER_LOCK_WAIT}'")).await?;
        let key = WRITER_LOCK_BASE + shard as i64;
        if let Err(e) = client.execute("SELECT pg_advisory_lock($1)", &[&key]).await {
            let held = e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE);
            return Err(match held {
                true => StorageError::Backend(format!(
                    "postgres: shard {shard}'s writer lock is held by another connection for over \
                     {WRITER_LOCK_WAIT}: is another Tessera using this database?"
                )),
                false => e.into(),
            });
        }
        client.batch_execute("SET lock_timeout = 0").await?;
        if !sync_writes {
            client.batch_execute("SET synchronous_commit = off").await?;
        }
        Ok(Self { conn: Reader::new(client), sync_writes, shard })
    }
}

impl Reader {
    fn new(client: Client) -> Self {
        Self { client, statements: RefCell::default() }
    }

    async fn statement(&self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.borrow_mut().insert(sql, statement.clone());
        Ok(statement)
    }

    async fn query(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.statement(sql).await?;
        Ok(self.client.query(&statement, params).await?)
    }

    async fn execute(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.statement(sql).await?;
        Ok(self.client.execute(&statement, params).await?)
    }
}

/// One shard's pool.
pub struct PgStore {
    readers: Vec<RefCell<Rc<Reader>>>,
    next: Cell<usize>,
    committer: flume::Sender<Submission>,
    connect: Connector,
}

impl PgStore {
    /// Commits `ops` through the committer; answers the one-time keys their
    /// claims took, in order.
    async fn submit(&self, ops: Vec<Op>) -> Result<Vec<OneTimeKeyRecord>> {
        group_commit::submit(&self.committer, ops).await
    }

    /// The next reader connection, round robin. A connection found closed
    /// (the server restarted, a proxy dropped it) is replaced first; a query
    /// on a connection that dies under it fails once, and the next call
    /// reconnects.
    async fn reader(&self) -> Result<Rc<Reader>> {
        let i = self.next.get();
        self.next.set((i + 1) % self.readers.len());
        let current = self.readers[i].borrow().clone();
        if !current.client.is_closed() {
            return Ok(current);
        }
        tracing::warn!("postgres reader connection lost; reconnecting");
        let fresh = Rc::new(Reader::new((self.connect)().await?));
        *self.readers[i].borrow_mut() = fresh.clone();
        Ok(fresh)
    }
}

async fn commit_loop(mut writer: Writer, rx: flume::Receiver<Submission>, connect: Connector) {
    while let Ok(first) = rx.recv_async().await {
        let group = group_commit::gather(first, &rx);
        if writer.conn.client.is_closed() {
            tracing::warn!("postgres writer connection lost; reconnecting");
            match async { Writer::ready(connect().await?, writer.sync_writes, writer.shard).await }.await {
                Ok(fresh) => writer = fresh,
                Err(e) => {
                    group_commit::answer(group, Err(e));
                    continue;
                }
            }
        }
        let result = commit(&writer.conn, &group).await;
        group_commit::answer(group, result);
    }
}

/// Commits the group; answers, per submission, the one-time keys its claims
/// took.
async fn commit(writer: &Reader, group: &[Submission]) -> Result<Vec<Vec<OneTimeKeyRecord>>> {
    writer.client.batch_execute("BEGIN").await?;
    // Every statement of the group is sent at once (pipelined) and their
    // results awaited together: one round trip, not one per row.
    let staged = match try_join_all(group.iter().flat_map(|s| &s.ops).map(|op| stage(writer, op))).await {
        Ok(staged) => staged,
        Err(e) => {
            let _ = writer.client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    writer.client.batch_execute("COMMIT").await?;
    // One answer per op, in order: hand each submission the keys of its own.
    let mut answers = staged.into_iter();
    Ok(group.iter().map(|s| answers.by_ref().take(s.ops.len()).flatten().collect()).collect())
}

fn pos_to_sql(pos: StreamPos) -> i64 {
    // Positions are allocated from zero upwards; 2^63 is never reached.
    pos as i64
}

/// The statement that appends packed entries (`postgres/interning.rs`) to
/// a room's rows of `$table`, numbered by `$row`: `$1` the room, `$2` the
/// row numbers, `$3` each row's new entries, added after what the row holds.
#[rustfmt::skip]
macro_rules! append_packed_sql {
    ($table:literal, $row:literal) => {
        concat!(
            "INSERT INTO ", $table, " (room_nid, ", $row, ", entries)
            SELECT $1, * FROM unnest($2::integer[], $3::bytea[])
            ON CONFLICT (room_nid, ", $row, ") DO UPDATE
            SET entries = ", $table, ".entries || excluded.entries"
        )
    };
}

/// Runs an `append_packed_sql!` statement with one room's encoded rows.
async fn append_packed(
    w: &Reader,
    sql: &'static str,
    room: RoomNid,
    (rows, entries): (Vec<i32>, Vec<Vec<u8>>),
) -> Result<()> {
    w.execute(sql, &[&(room as i64), &rows, &entries]).await?;
    Ok(())
}

/// Sends one operation's statements; answers the one-time key a claim took.
async fn stage(w: &Reader, op: &Op) -> Result<Option<OneTimeKeyRecord>> {
    match op {
        Op::PutUser { vshard, user } => {
            let sql = "INSERT INTO users (vshard, user_id, password_hash, created_ts, deactivated, is_guest, is_admin,
                    displayname, avatar_url)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (vshard, user_id) DO UPDATE SET password_hash = $3, created_ts = $4,
                    deactivated = $5, is_guest = $6, is_admin = $7, displayname = $8, avatar_url = $9";
            let created = user.created_ts as i64;
            w.execute(
                sql,
                &[
                    &(*vshard as i16),
                    &user.user_id,
                    &user.password_hash,
                    &created,
                    &user.deactivated,
                    &user.is_guest,
                    &user.is_admin,
                    &user.displayname,
                    &user.avatar_url,
                ],
            )
            .await?;
        }
        Op::PutDevice { vshard, device } => {
            let sql = "INSERT INTO devices (vshard, user_id, device_id, display_name, last_seen_ts, last_seen_ip)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (vshard, user_id, device_id) DO UPDATE SET display_name = $4, last_seen_ts = $5,
                    last_seen_ip = $6";
            let seen = device.last_seen_ts.map(|t| t as i64);
            let params: [&(dyn ToSql + Sync); 6] = [
                &(*vshard as i16),
                &device.user_id,
                &device.device_id,
                &device.display_name,
                &seen,
                &device.last_seen_ip,
            ];
            w.execute(sql, &params).await?;
        }
        Op::DeleteDevice { vshard, user_id, device_id } => {
            let v = *vshard as i16;
            w.execute(
                "DELETE FROM devices WHERE vshard = $1 AND user_id = $2 AND device_id = $3",
                &[&v, user_id, device_id],
            )
            .await?;
            w.execute("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2", &[user_id, device_id]).await?;
            for sql in [
                "DELETE FROM to_device WHERE vshard = $1 AND user_id = $2 AND device_id = $3",
                "DELETE FROM device_keys WHERE vshard = $1 AND user_id = $2 AND device_id = $3",
                "DELETE FROM one_time_keys WHERE vshard = $1 AND user_id = $2 AND device_id = $3",
            ] {
                w.execute(sql, &[&v, user_id, device_id]).await?;
            }
        }
        Op::PutAccessToken { digest, token } => {
            let sql = "INSERT INTO access_tokens (digest, user_id, device_id, expires_ts) VALUES ($1, $2, $3, $4)
                ON CONFLICT (digest) DO UPDATE SET user_id = $2, device_id = $3, expires_ts = $4";
            let expires = token.expires_ts.map(|t| t as i64);
            w.execute(sql, &[digest, &token.user_id, &token.device_id, &expires]).await?;
        }
        Op::DeleteAccessToken { digest } => {
            w.execute("DELETE FROM access_tokens WHERE digest = $1", &[digest]).await?;
        }
        Op::PutEvent(event) => {
            let sql = "INSERT INTO events (event_id, room_id, vshard, stream_pos, json) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (event_id) DO UPDATE SET room_id = $2, vshard = $3, stream_pos = $4, json = $5";
            let v = event.vshard as i16;
            let pos = event.stream_pos.map(pos_to_sql);
            w.execute(sql, &[&event.event_id, &event.room_id, &v, &pos, &event.json]).await?;
            if let Some(pos) = pos {
                let sql = "INSERT INTO timeline (vshard, room_id, pos, event_id) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (vshard, room_id, pos) DO UPDATE SET event_id = $4";
                w.execute(sql, &[&v, &event.room_id, &pos, &event.event_id]).await?;
            }
        }
        Op::PutRoomHead { vshard, room_id, head } => {
            let sql = "INSERT INTO room_heads (vshard, room_id, room_version, forward_extremities, depth, state_group,
                    chain_len, next_state_group, next_event_nid, next_state_key_nid)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (vshard, room_id) DO UPDATE SET room_version = $3, forward_extremities = $4, depth = $5,
                    state_group = $6, chain_len = $7, next_state_group = $8, next_event_nid = $9,
                    next_state_key_nid = $10";
            let params: [&(dyn ToSql + Sync); 10] = [
                &(*vshard as i16),
                room_id,
                &head.room_version,
                &head.forward_extremities,
                &(head.depth as i64),
                &(head.state_group as i64),
                &(head.chain_len as i32),
                &(head.next_state_group as i64),
                &(head.next_event_nid as i32),
                &(head.next_state_key_nid as i32),
            ];
            w.execute(sql, &params).await?;
        }
        Op::PutAccountData { vshard, data } => {
            let sql =
                "INSERT INTO account_data (vshard, user_id, room_id, data_type, content) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (vshard, user_id, room_id, data_type) DO UPDATE SET content = $5";
            let room = data.room_id.as_deref().unwrap_or("");
            w.execute(sql, &[&(*vshard as i16), &data.user_id, &room, &data.data_type, &data.content]).await?;
        }
        Op::SetStreamPosition { stream, pos } => {
            let sql = "INSERT INTO stream_positions (stream, pos) VALUES ($1, $2)
                ON CONFLICT (stream) DO UPDATE SET pos = $2";
            w.execute(sql, &[stream, &pos_to_sql(*pos)]).await?;
        }
        Op::PutRoomNid { vshard, room_id, room } => {
            let sql = "INSERT INTO room_nids (vshard, room_id, room_nid) VALUES ($1, $2, $3)
                ON CONFLICT (vshard, room_id) DO UPDATE SET room_nid = $3";
            w.execute(sql, &[&(*vshard as i16), room_id, &(*room as i64)]).await?;
        }
        Op::PutStateKeys { room, keys } => {
            // One statement for all keys: a room joined over federation
            // interns 100,000 at once.
            let sql = append_packed_sql!("room_state_key_chunks", "chunk");
            append_packed(w, sql, *room, interning::encode_state_keys(keys)).await?;
        }
        Op::PutEventNids { room, events } => {
            let sql = append_packed_sql!("room_event_nid_chunks", "chunk");
            append_packed(w, sql, *room, interning::encode_event_ids(events)).await?;
            let sql = append_packed_sql!("room_event_id_buckets", "bucket");
            append_packed(w, sql, *room, interning::encode_id_buckets(events)).await?;
        }
        Op::PutAuthEvents { room, events } => {
            let sql = append_packed_sql!("room_auth_event_chunks", "chunk");
            append_packed(w, sql, *room, interning::encode_auth_events(events)).await?;
        }
        Op::PutStateGroup { room, group, state } => {
            let sql = "INSERT INTO state_groups (room_nid, group_id, parent, entries) VALUES ($1, $2, $3, $4)
                ON CONFLICT (room_nid, group_id) DO UPDATE SET parent = $3, entries = $4";
            let parent = state.parent.map(|p| p as i64);
            w.execute(sql, &[&(*room as i64), &(*group as i64), &parent, &state.encode()]).await?;
        }
        Op::PutMembership { vshard_room, vshard_user, room_id, user_id, membership, event_id } => {
            let sql = "INSERT INTO room_members (vshard, room_id, user_id, membership, event_id)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (vshard, room_id, user_id) DO UPDATE SET membership = $4, event_id = $5";
            w.execute(sql, &[&(*vshard_room as i16), room_id, user_id, membership, event_id]).await?;
            let sql = "INSERT INTO user_rooms (vshard, user_id, room_id, membership) VALUES ($1, $2, $3, $4)
                ON CONFLICT (vshard, user_id, room_id) DO UPDATE SET membership = $4";
            w.execute(sql, &[&(*vshard_user as i16), user_id, room_id, membership]).await?;
        }
        Op::ForgetRoom { vshard_user, user_id, room_id } => {
            let sql = "DELETE FROM user_rooms WHERE vshard = $1 AND user_id = $2 AND room_id = $3";
            w.execute(sql, &[&(*vshard_user as i16), user_id, room_id]).await?;
        }
        Op::PutToDevice { vshard, user_id, device_id, message } => {
            let sql = "INSERT INTO to_device (vshard, user_id, device_id, pos, message) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (vshard, user_id, device_id, pos) DO UPDATE SET message = $5";
            let pos = pos_to_sql(message.pos);
            w.execute(sql, &[&(*vshard as i16), user_id, device_id, &pos, &message.message]).await?;
        }
        Op::DeleteToDevice { vshard, user_id, device_id, up_to } => {
            let sql = "DELETE FROM to_device WHERE vshard = $1 AND user_id = $2 AND device_id = $3 AND pos <= $4";
            let up_to = i64::try_from(*up_to).unwrap_or(i64::MAX);
            w.execute(sql, &[&(*vshard as i16), user_id, device_id, &up_to]).await?;
        }
        Op::PutServerKeys { keys } => {
            let sql = "INSERT INTO server_keys (server_name, key_id, public_key, valid_until_ts)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                ON CONFLICT (server_name, key_id) DO UPDATE SET public_key = excluded.public_key,
                    valid_until_ts = excluded.valid_until_ts";
            let servers: Vec<&str> = keys.iter().map(|k| k.server_name.as_str()).collect();
            let key_ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
            let public: Vec<&str> = keys.iter().map(|k| k.public_key.as_str()).collect();
            let valid: Vec<i64> = keys.iter().map(|k| k.valid_until_ts as i64).collect();
            w.execute(sql, &[&servers, &key_ids, &public, &valid]).await?;
        }
        Op::PutDestination(d) => {
            let sql = "INSERT INTO destinations (destination, failure_count, retry_after_ts) VALUES ($1, $2, $3)
                ON CONFLICT (destination) DO UPDATE SET failure_count = $2, retry_after_ts = $3";
            let failures = i32::try_from(d.failure_count).unwrap_or(i32::MAX);
            w.execute(sql, &[&d.destination, &failures, &(d.retry_after_ts as i64)]).await?;
        }
        Op::PutOutbound { destination, item } => {
            let sql = "INSERT INTO outbound_queue (destination, pos, edu, body) VALUES ($1, $2, $3, $4)
                ON CONFLICT (destination, pos) DO UPDATE SET edu = $3, body = $4";
            w.execute(sql, &[destination, &pos_to_sql(item.pos), &item.edu, &item.body]).await?;
        }
        Op::DeleteOutbound { destination, up_to } => {
            let up_to = i64::try_from(*up_to).unwrap_or(i64::MAX);
            w.execute("DELETE FROM outbound_queue WHERE destination = $1 AND pos <= $2", &[destination, &up_to])
                .await?;
        }
        Op::PutMedia(m) => {
            let sql = "INSERT INTO media (media_id, content_type, upload_name, size, user_id, created_ts)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (media_id) DO UPDATE SET content_type = $2, upload_name = $3, size = $4, user_id = $5,
                    created_ts = $6";
            let params: [&(dyn ToSql + Sync); 6] =
                [&m.media_id, &m.content_type, &m.upload_name, &(m.size as i64), &m.user_id, &(m.created_ts as i64)];
            w.execute(sql, &params).await?;
        }
        Op::PutAlias(a) => {
            let sql = "INSERT INTO room_aliases (alias, room_id, creator) VALUES ($1, $2, $3)
                ON CONFLICT (alias) DO UPDATE SET room_id = $2, creator = $3";
            w.execute(sql, &[&a.alias, &a.room_id, &a.creator]).await?;
        }
        Op::DeleteAlias { alias } => {
            w.execute("DELETE FROM room_aliases WHERE alias = $1", &[alias]).await?;
        }
        Op::PutRegistrationToken(t) => {
            let sql = "INSERT INTO registration_tokens (token, uses_allowed, pending, completed, expiry_time)
                VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token) DO UPDATE
                SET uses_allowed = $2, pending = $3, completed = $4, expiry_time = $5";
            let uses = t.uses_allowed.map(i64::from);
            let expiry = t.expiry_time.map(|ts| ts as i64);
            let (pending, completed) = (i64::from(t.pending), i64::from(t.completed));
            w.execute(sql, &[&t.token, &uses, &pending, &completed, &expiry]).await?;
        }
        Op::DeleteRegistrationToken { token } => {
            w.execute("DELETE FROM registration_tokens WHERE token = $1", &[token]).await?;
        }
        Op::SetRoomPublished { room_id, published } => {
            let sql = if *published {
                "INSERT INTO published_rooms (room_id) VALUES ($1) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM published_rooms WHERE room_id = $1"
            };
            w.execute(sql, &[room_id]).await?;
        }
        Op::PutDeviceKeys { vshard, keys } => {
            let sql = "INSERT INTO device_keys (vshard, user_id, device_id, keys) VALUES ($1, $2, $3, $4)
                ON CONFLICT (vshard, user_id, device_id) DO UPDATE SET keys = $4";
            w.execute(sql, &[&(*vshard as i16), &keys.user_id, &keys.device_id, &keys.keys]).await?;
        }
        Op::PutOneTimeKeys { vshard, user_id, device_id, keys } => {
            let sql = "INSERT INTO one_time_keys (vshard, user_id, device_id, algorithm, key_id, key)
                SELECT $1, $2, $3, * FROM unnest($4::text[], $5::text[], $6::bytea[])
                ON CONFLICT (vshard, user_id, device_id, algorithm, key_id) DO UPDATE SET key = excluded.key";
            let algorithms: Vec<&str> = keys.iter().map(|k| k.algorithm.as_str()).collect();
            let key_ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
            let bodies: Vec<&[u8]> = keys.iter().map(|k| k.key.as_slice()).collect();
            let params: [&(dyn ToSql + Sync); 6] =
                [&(*vshard as i16), user_id, device_id, &algorithms, &key_ids, &bodies];
            w.execute(sql, &params).await?;
        }
        Op::ClaimOneTimeKey { vshard, user_id, device_id, algorithm } => {
            // One statement: the key is picked and deleted in one step, and
            // a claim later in the same transaction sees it gone.
            let sql = "DELETE FROM one_time_keys WHERE (vshard, user_id, device_id, algorithm, key_id) IN (
                    SELECT vshard, user_id, device_id, algorithm, key_id FROM one_time_keys
                    WHERE vshard = $1 AND user_id = $2 AND device_id = $3 AND algorithm = $4
                    ORDER BY key_id COLLATE \"C\" LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING key_id, key";
            let rows = w.query(sql, &[&(*vshard as i16), user_id, device_id, algorithm]).await?;
            return Ok(rows.first().map(|r| OneTimeKeyRecord {
                algorithm: algorithm.clone(),
                key_id: r.get(0),
                key: r.get(1),
            }));
        }
        Op::PutReceipt { vshard, room_id, receipt } => {
            let sql = "INSERT INTO receipts (vshard, room_id, receipt_type, user_id, thread_id, event_id, ts)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (vshard, room_id, receipt_type, user_id, thread_id) DO UPDATE SET event_id = $6, ts = $7";
            let thread = receipt.thread_id.as_deref().unwrap_or("");
            let params: [&(dyn ToSql + Sync); 7] = [
                &(*vshard as i16),
                room_id,
                &receipt.receipt_type,
                &receipt.user_id,
                &thread,
                &receipt.event_id,
                &(receipt.ts as i64),
            ];
            w.execute(sql, &params).await?;
        }
    }
    Ok(None)
}

fn user_from(row: &Row) -> UserRecord {
    UserRecord {
        user_id: row.get("user_id"),
        password_hash: row.get("password_hash"),
        created_ts: row.get::<_, i64>("created_ts") as u64,
        deactivated: row.get("deactivated"),
        is_guest: row.get("is_guest"),
        is_admin: row.get("is_admin"),
        displayname: row.get("displayname"),
        avatar_url: row.get("avatar_url"),
    }
}

fn device_from(row: &Row) -> DeviceRecord {
    DeviceRecord {
        user_id: row.get("user_id"),
        device_id: row.get("device_id"),
        display_name: row.get("display_name"),
        last_seen_ts: row.get::<_, Option<i64>>("last_seen_ts").map(|t| t as u64),
        last_seen_ip: row.get("last_seen_ip"),
    }
}

fn account_data_from(row: &Row) -> AccountDataRecord {
    let room: String = row.get("room_id");
    AccountDataRecord {
        user_id: row.get("user_id"),
        room_id: (!room.is_empty()).then_some(room),
        data_type: row.get("data_type"),
        content: row.get("content"),
    }
}

impl Store for PgStore {
    async fn write(&self, ops: Vec<Op>) -> Result<()> {
        self.submit(ops).await.map(drop)
    }

    async fn user(&self, vshard: VShard, user_id: &str) -> Result<Option<UserRecord>> {
        let sql = "SELECT * FROM users WHERE vshard = $1 AND user_id = $2";
        Ok(self.reader().await?.query(sql, &[&(vshard as i16), &user_id]).await?.first().map(user_from))
    }

    async fn device(&self, vshard: VShard, user_id: &str, device_id: &str) -> Result<Option<DeviceRecord>> {
        let sql = "SELECT * FROM devices WHERE vshard = $1 AND user_id = $2 AND device_id = $3";
        Ok(self.reader().await?.query(sql, &[&(vshard as i16), &user_id, &device_id]).await?.first().map(device_from))
    }

    async fn devices(&self, vshard: VShard, user_id: &str) -> Result<Vec<DeviceRecord>> {
        let sql = "SELECT * FROM devices WHERE vshard = $1 AND user_id = $2 ORDER BY device_id COLLATE \"C\"";
        Ok(self.reader().await?.query(sql, &[&(vshard as i16), &user_id]).await?.iter().map(device_from).collect())
    }

    async fn access_token(&self, digest: &[u8]) -> Result<Option<AccessTokenRecord>> {
        let sql = "SELECT user_id, device_id, expires_ts FROM access_tokens WHERE digest = $1";
        Ok(self.reader().await?.query(sql, &[&digest]).await?.first().map(|row| AccessTokenRecord {
            user_id: row.get(0),
            device_id: row.get(1),
            expires_ts: row.get::<_, Option<i64>>(2).map(|t| t as u64),
        }))
    }

    async fn event(&self, event_id: &str) -> Result<Option<EventRecord>> {
        let sql = "SELECT event_id, room_id, vshard, stream_pos, json FROM events WHERE event_id = $1";
        Ok(self.reader().await?.query(sql, &[&event_id]).await?.first().map(|row| EventRecord {
            event_id: row.get(0),
            room_id: row.get(1),
            vshard: row.get::<_, i16>(2) as VShard,
            stream_pos: row.get::<_, Option<i64>>(3).map(|p| p as u64),
            json: row.get(4),
        }))
    }

    async fn timeline(
        &self,
        vshard: VShard,
        room_id: &str,
        from: Option<StreamPos>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(StreamPos, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let v = vshard as i16;
        let rows = match (direction, from) {
            (Direction::Forward, from) => {
                // Positions are unsigned: "after u64::MAX" is nothing.
                let Ok(after) = from.map_or(Ok(-1), i64::try_from) else { return Ok(Vec::new()) };
                let sql = "SELECT pos, event_id FROM timeline WHERE vshard = $1 AND room_id = $2 AND pos > $3
                    ORDER BY pos ASC LIMIT $4";
                self.reader().await?.query(sql, &[&v, &room_id, &after, &limit]).await?
            }
            (Direction::Backward, from) => {
                let before = from.map_or(i64::MAX, |p| i64::try_from(p).unwrap_or(i64::MAX));
                let sql = "SELECT pos, event_id FROM timeline WHERE vshard = $1 AND room_id = $2 AND pos < $3
                    ORDER BY pos DESC LIMIT $4";
                self.reader().await?.query(sql, &[&v, &room_id, &before, &limit]).await?
            }
        };
        Ok(rows.iter().map(|row| (row.get::<_, i64>(0) as u64, row.get(1))).collect())
    }

    async fn room_head(&self, vshard: VShard, room_id: &str) -> Result<Option<RoomHeadRecord>> {
        let sql = "SELECT * FROM room_heads WHERE vshard = $1 AND room_id = $2";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &room_id]).await?;
        Ok(rows.first().map(|row| RoomHeadRecord {
            room_version: row.get("room_version"),
            forward_extremities: row.get("forward_extremities"),
            depth: row.get::<_, i64>("depth") as u64,
            state_group: row.get::<_, i64>("state_group") as u64,
            chain_len: row.get::<_, i32>("chain_len") as u32,
            next_state_group: row.get::<_, i64>("next_state_group") as u64,
            next_event_nid: row.get::<_, i32>("next_event_nid") as u32,
            next_state_key_nid: row.get::<_, i32>("next_state_key_nid") as u32,
        }))
    }

    async fn account_data(
        &self,
        vshard: VShard,
        user_id: &str,
        room_id: Option<&str>,
        data_type: &str,
    ) -> Result<Option<AccountDataRecord>> {
        let sql = "SELECT * FROM account_data WHERE vshard = $1 AND user_id = $2 AND room_id = $3 AND data_type = $4";
        let room = room_id.unwrap_or("");
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &user_id, &room, &data_type]).await?;
        Ok(rows.first().map(account_data_from))
    }

    async fn all_account_data(&self, vshard: VShard, user_id: &str) -> Result<Vec<AccountDataRecord>> {
        let sql = "SELECT * FROM account_data WHERE vshard = $1 AND user_id = $2";
        Ok(self
            .reader()
            .await?
            .query(sql, &[&(vshard as i16), &user_id])
            .await?
            .iter()
            .map(account_data_from)
            .collect())
    }

    async fn stream_position(&self, stream: &str) -> Result<Option<StreamPos>> {
        let sql = "SELECT pos FROM stream_positions WHERE stream = $1";
        Ok(self.reader().await?.query(sql, &[&stream]).await?.first().map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn room_nid(&self, vshard: VShard, room_id: &str) -> Result<Option<RoomNid>> {
        let sql = "SELECT room_nid FROM room_nids WHERE vshard = $1 AND room_id = $2";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &room_id]).await?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0) as RoomNid))
    }

    async fn state_keys(&self, room: RoomNid) -> Result<Vec<StateKeyRecord>> {
        let sql = "SELECT entries FROM room_state_key_chunks WHERE room_nid = $1";
        let rows = self.reader().await?.query(sql, &[&(room as i64)]).await?;
        interning::decode_state_keys(rows.iter().map(|r| r.get::<_, &[u8]>(0)))
    }

    async fn event_ids_of(&self, room: RoomNid, nids: &[EventNid]) -> Result<Vec<Option<String>>> {
        let sql = "SELECT entries FROM room_event_nid_chunks WHERE room_nid = $1 AND chunk = ANY($2)";
        let chunks = interning::chunks_of(nids);
        let rows = self.reader().await?.query(sql, &[&(room as i64), &chunks]).await?;
        let found = interning::decode_event_ids(rows.iter().map(|r| r.get::<_, &[u8]>(0)))?;
        Ok(nids.iter().map(|nid| found.get(nid).cloned()).collect())
    }

    async fn event_nids_of(&self, room: RoomNid, ids: &[String]) -> Result<Vec<Option<EventNid>>> {
        let hashes: Vec<u64> = ids.iter().map(|id| interning::id_hash(id)).collect();
        let mut buckets: Vec<i32> = hashes.iter().map(|&h| interning::bucket_of(h)).collect();
        buckets.sort_unstable();
        buckets.dedup();
        let sql = "SELECT entries FROM room_event_id_buckets WHERE room_nid = $1 AND bucket = ANY($2)";
        let rows = self.reader().await?.query(sql, &[&(room as i64), &buckets]).await?;
        let by_hash = interning::decode_id_buckets(rows.iter().map(|r| r.get::<_, &[u8]>(0)))?;
        // A hash names candidates; the number → ID rows confirm them. An ID
        // numbered twice (a room rejoined) answers its newest number.
        let mut candidates: Vec<EventNid> =
            hashes.iter().flat_map(|h| by_hash.get(h).into_iter().flatten()).copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        let confirmed = self.event_ids_of(room, &candidates).await?;
        let mut newest: HashMap<&str, EventNid> = HashMap::new();
        for (nid, id) in candidates.iter().zip(&confirmed) {
            if let Some(id) = id {
                let slot = newest.entry(id.as_str()).or_insert(*nid);
                *slot = (*slot).max(*nid);
            }
        }
        Ok(ids.iter().map(|id| newest.get(id.as_str()).copied()).collect())
    }

    async fn auth_events_of(&self, room: RoomNid, nids: &[EventNid]) -> Result<Vec<Option<Vec<EventNid>>>> {
        let sql = "SELECT entries FROM room_auth_event_chunks WHERE room_nid = $1 AND chunk = ANY($2)";
        let chunks = interning::chunks_of(nids);
        let rows = self.reader().await?.query(sql, &[&(room as i64), &chunks]).await?;
        let found = interning::decode_auth_events(rows.iter().map(|r| r.get::<_, &[u8]>(0)))?;
        Ok(nids.iter().map(|nid| found.get(nid).cloned()).collect())
    }

    async fn state_group(&self, room: RoomNid, group: u64) -> Result<Option<StateGroupRecord>> {
        let sql = "SELECT entries FROM state_groups WHERE room_nid = $1 AND group_id = $2";
        let rows = self.reader().await?.query(sql, &[&(room as i64), &(group as i64)]).await?;
        rows.first()
            .map(|r| StateGroupRecord::decode(r.get(0)))
            .transpose()
            .map_err(|why| StorageError::Corrupt { keyspace: "state_groups", why })
    }

    async fn room_members(
        &self,
        vshard: VShard,
        room_id: &str,
        membership: Option<&str>,
    ) -> Result<Vec<RoomMemberRecord>> {
        let sql = "SELECT user_id, membership, event_id FROM room_members
            WHERE vshard = $1 AND room_id = $2 AND ($3::text IS NULL OR membership = $3)
            ORDER BY user_id COLLATE \"C\"";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &room_id, &membership]).await?;
        Ok(rows
            .iter()
            .map(|r| RoomMemberRecord { user_id: r.get(0), membership: r.get(1), event_id: r.get(2) })
            .collect())
    }

    async fn user_rooms(&self, vshard: VShard, user_id: &str, membership: Option<&str>) -> Result<Vec<UserRoomRecord>> {
        let sql = "SELECT room_id, membership FROM user_rooms
            WHERE vshard = $1 AND user_id = $2 AND ($3::text IS NULL OR membership = $3)
            ORDER BY room_id COLLATE \"C\"";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &user_id, &membership]).await?;
        Ok(rows.iter().map(|r| UserRoomRecord { room_id: r.get(0), membership: r.get(1) }).collect())
    }

    async fn to_device(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        after: StreamPos,
        limit: usize,
    ) -> Result<Vec<ToDeviceRecord>> {
        // Positions are unsigned: "after" anything above i64::MAX is nothing.
        let Ok(after) = i64::try_from(after) else { return Ok(Vec::new()) };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql =
            "SELECT pos, message FROM to_device WHERE vshard = $1 AND user_id = $2 AND device_id = $3 AND pos > $4
            ORDER BY pos ASC LIMIT $5";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &user_id, &device_id, &after, &limit]).await?;
        Ok(rows.iter().map(|r| ToDeviceRecord { pos: r.get::<_, i64>(0) as u64, message: r.get(1) }).collect())
    }

    async fn server_keys(&self, server_name: &str) -> Result<Vec<ServerKeyRecord>> {
        let sql = "SELECT server_name, key_id, public_key, valid_until_ts FROM server_keys WHERE server_name = $1
            ORDER BY key_id COLLATE \"C\"";
        let rows = self.reader().await?.query(sql, &[&server_name]).await?;
        Ok(rows
            .iter()
            .map(|r| ServerKeyRecord {
                server_name: r.get(0),
                key_id: r.get(1),
                public_key: r.get(2),
                valid_until_ts: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }

    async fn destination(&self, destination: &str) -> Result<Option<DestinationRecord>> {
        let sql = "SELECT destination, failure_count, retry_after_ts FROM destinations WHERE destination = $1";
        Ok(self.reader().await?.query(sql, &[&destination]).await?.first().map(|r| DestinationRecord {
            destination: r.get(0),
            failure_count: r.get::<_, i32>(1) as u32,
            retry_after_ts: r.get::<_, i64>(2) as u64,
        }))
    }

    async fn outbound(&self, destination: &str, after: StreamPos, limit: usize) -> Result<Vec<OutboundRecord>> {
        // Positions are unsigned: "after" anything above i64::MAX is nothing.
        let Ok(after) = i64::try_from(after) else { return Ok(Vec::new()) };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = "SELECT pos, edu, body FROM outbound_queue WHERE destination = $1 AND pos > $2
            ORDER BY pos ASC LIMIT $3";
        let rows = self.reader().await?.query(sql, &[&destination, &after, &limit]).await?;
        Ok(rows
            .iter()
            .map(|r| OutboundRecord { pos: r.get::<_, i64>(0) as u64, edu: r.get(1), body: r.get(2) })
            .collect())
    }

    async fn media(&self, media_id: &str) -> Result<Option<MediaRecord>> {
        let sql =
            "SELECT media_id, content_type, upload_name, size, user_id, created_ts FROM media WHERE media_id = $1";
        Ok(self.reader().await?.query(sql, &[&media_id]).await?.first().map(|r| MediaRecord {
            media_id: r.get(0),
            content_type: r.get(1),
            upload_name: r.get(2),
            size: r.get::<_, i64>(3) as u64,
            user_id: r.get(4),
            created_ts: r.get::<_, i64>(5) as u64,
        }))
    }

    async fn alias(&self, alias: &str) -> Result<Option<AliasRecord>> {
        let sql = "SELECT alias, room_id, creator FROM room_aliases WHERE alias = $1";
        Ok(self.reader().await?.query(sql, &[&alias]).await?.first().map(|r| AliasRecord {
            alias: r.get(0),
            room_id: r.get(1),
            creator: r.get(2),
        }))
    }

    async fn registration_token(&self, token: &str) -> Result<Option<RegistrationTokenRecord>> {
        let sql =
            "SELECT token, uses_allowed, pending, completed, expiry_time FROM registration_tokens WHERE token = $1";
        Ok(self.reader().await?.query(sql, &[&token]).await?.first().map(token_row))
    }

    async fn registration_tokens(&self) -> Result<Vec<RegistrationTokenRecord>> {
        let sql = "SELECT token, uses_allowed, pending, completed, expiry_time FROM registration_tokens
            ORDER BY token COLLATE \"C\"";
        Ok(self.reader().await?.query(sql, &[]).await?.iter().map(token_row).collect())
    }

    async fn room_aliases(&self, room_id: &str) -> Result<Vec<String>> {
        let sql = "SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias COLLATE \"C\"";
        Ok(self.reader().await?.query(sql, &[&room_id]).await?.iter().map(|r| r.get(0)).collect())
    }

    async fn published_rooms(&self) -> Result<Vec<String>> {
        let sql = "SELECT room_id FROM published_rooms ORDER BY room_id COLLATE \"C\"";
        Ok(self.reader().await?.query(sql, &[]).await?.iter().map(|r| r.get(0)).collect())
    }

    async fn device_keys(&self, vshard: VShard, user_id: &str) -> Result<Vec<DeviceKeysRecord>> {
        let sql = "SELECT user_id, device_id, keys FROM device_keys WHERE vshard = $1 AND user_id = $2
            ORDER BY device_id COLLATE \"C\"";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &user_id]).await?;
        Ok(rows.iter().map(|r| DeviceKeysRecord { user_id: r.get(0), device_id: r.get(1), keys: r.get(2) }).collect())
    }

    async fn one_time_key_counts(&self, vshard: VShard, user_id: &str, device_id: &str) -> Result<Vec<(String, u64)>> {
        let sql = "SELECT algorithm, count(*) FROM one_time_keys WHERE vshard = $1 AND user_id = $2 AND device_id = $3
            GROUP BY algorithm ORDER BY algorithm COLLATE \"C\"";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &user_id, &device_id]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64)).collect())
    }

    async fn claim_one_time_key(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
    ) -> Result<Option<OneTimeKeyRecord>> {
        let claim = Op::claim_one_time_key(vshard, user_id, device_id, algorithm);
        Ok(self.submit(vec![claim]).await?.pop())
    }

    async fn receipts(&self, vshard: VShard, room_id: &str) -> Result<Vec<ReceiptRecord>> {
        let sql =
            "SELECT receipt_type, user_id, thread_id, event_id, ts FROM receipts WHERE vshard = $1 AND room_id = $2
            ORDER BY receipt_type COLLATE \"C\", user_id COLLATE \"C\", thread_id COLLATE \"C\"";
        let rows = self.reader().await?.query(sql, &[&(vshard as i16), &room_id]).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let thread: String = r.get(2);
                ReceiptRecord {
                    receipt_type: r.get(0),
                    user_id: r.get(1),
                    thread_id: (!thread.is_empty()).then_some(thread),
                    event_id: r.get(3),
                    ts: r.get::<_, i64>(4) as u64,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;

/// A `registration_tokens` row (columns in table order).
fn token_row(row: &tokio_postgres::Row) -> RegistrationTokenRecord {
    RegistrationTokenRecord {
        token: row.get(0),
        uses_allowed: row.get::<_, Option<i64>>(1).map(|n| n as u32),
        pending: row.get::<_, i64>(2) as u32,
        completed: row.get::<_, i64>(3) as u32,
        expiry_time: row.get::<_, Option<i64>>(4).map(|ts| ts as u64),
    }
}
