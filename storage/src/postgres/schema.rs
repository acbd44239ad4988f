//! The PostgreSQL schema and its migrations.
//!
//! Every shard connects at start-up; the first to take the advisory lock
//! creates or migrates the schema, the others wait for it and then only
//! check the version. A database with a newer version is refused.

use tokio_postgres::Client;

use crate::error::{Result, StorageError};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: i32 = 4;

/// Advisory lock key that serialises migrations ("tessera" in ASCII).
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261;

/// Version 1. Columns mirror the records; JSON bodies stay `bytea` so they
/// come back byte for byte as they were stored.
const V1: &str = "
CREATE TABLE users (
    vshard smallint NOT NULL,
    user_id text NOT NULL,
    password_hash text,
    created_ts bigint NOT NULL,
    deactivated boolean NOT NULL,
    is_guest boolean NOT NULL,
    is_admin boolean NOT NULL,
    displayname text,
    avatar_url text,
    PRIMARY KEY (vshard, user_id)
);
CREATE TABLE devices (
    vshard smallint NOT NULL,
    user_id text NOT NULL,
    device_id text NOT NULL,
    display_name text,
    last_seen_ts bigint,
    last_seen_ip text,
    PRIMARY KEY (vshard, user_id, device_id)
);
CREATE TABLE access_tokens (
    digest bytea PRIMARY KEY,
    user_id text NOT NULL,
    device_id text NOT NULL,
    expires_ts bigint
);
CREATE INDEX access_tokens_by_device ON access_tokens (user_id, device_id);
CREATE TABLE events (
    event_id text PRIMARY KEY,
    room_id text NOT NULL,
    vshard smallint NOT NULL,
    stream_pos bigint,
    json bytea NOT NULL
);
CREATE TABLE timeline (
    vshard smallint NOT NULL,
    room_id text NOT NULL,
    pos bigint NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (vshard, room_id, pos)
);
CREATE TABLE room_heads (
    vshard smallint NOT NULL,
    room_id text NOT NULL,
    room_version text NOT NULL,
    forward_extremities text[] NOT NULL,
    depth bigint NOT NULL,
    state_group bigint NOT NULL,
    chain_len integer NOT NULL,
    next_state_group bigint NOT NULL,
    next_event_nid integer NOT NULL,
    next_state_key_nid integer NOT NULL,
    PRIMARY KEY (vshard, room_id)
);
CREATE TABLE account_data (
    vshard smallint NOT NULL,
    user_id text NOT NULL,
    room_id text NOT NULL, -- '' for global account data
    data_type text NOT NULL,
    content bytea NOT NULL,
    PRIMARY KEY (vshard, user_id, room_id, data_type)
);
CREATE TABLE stream_positions (
    stream text PRIMARY KEY,
    pos bigint NOT NULL
);
CREATE TABLE room_nids (
    vshard smallint NOT NULL,
    room_id text NOT NULL,
    room_nid bigint NOT NULL UNIQUE,
    PRIMARY KEY (vshard, room_id)
);
CREATE TABLE room_state_keys (
    room_nid bigint NOT NULL,
    nid integer NOT NULL,
    event_type text NOT NULL,
    state_key text NOT NULL,
    PRIMARY KEY (room_nid, nid)
);
CREATE TABLE room_event_nids (
    room_nid bigint NOT NULL,
    nid integer NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (room_nid, nid)
);
-- entries: the compact encoding of storage::records::StateGroupRecord
-- (parent included), so a 100,000-entry snapshot is one ~400 KB value.
CREATE TABLE state_groups (
    room_nid bigint NOT NULL,
    group_id bigint NOT NULL,
    parent bigint,
    entries bytea NOT NULL,
    PRIMARY KEY (room_nid, group_id)
);
-- Memberships in both directions, each under its own partition: a room's
-- member list under the room's vshard, a user's rooms under the user's.
CREATE TABLE room_members (
    vshard smallint NOT NULL,
    room_id text NOT NULL,
    user_id text NOT NULL,
    membership text NOT NULL,
    event_id text NOT NULL,
    PRIMARY KEY (vshard, room_id, user_id)
);
CREATE TABLE user_rooms (
    vshard smallint NOT NULL,
    user_id text NOT NULL,
    room_id text NOT NULL,
    membership text NOT NULL,
    PRIMARY KEY (vshard, user_id, room_id)
);
CREATE TABLE receipts (
    vshard smallint NOT NULL,
    room_id text NOT NULL,
    receipt_type text NOT NULL,
    user_id text NOT NULL,
    thread_id text NOT NULL, -- '' for an unthreaded receipt
    event_id text NOT NULL,
    ts bigint NOT NULL,
    PRIMARY KEY (vshard, room_id, receipt_type, user_id, thread_id)
);
CREATE TABLE to_device (
    vshard smallint NOT NULL,
    user_id text NOT NULL,
    device_id text NOT NULL,
    pos bigint NOT NULL,
    message bytea NOT NULL,
    PRIMARY KEY (vshard, user_id, device_id, pos)
);
CREATE TABLE device_keys (
    vshard smallint NOT NULL,
    user_id text NOT NULL,
    device_id text NOT NULL,
    keys bytea NOT NULL,
    PRIMARY KEY (vshard, user_id, device_id)
);
CREATE TABLE one_time_keys (
    vshard smallint NOT NULL,
    user_id text NOT NULL,
    device_id text NOT NULL,
    algorithm text NOT NULL,
    key_id text NOT NULL,
    key bytea NOT NULL,
    PRIMARY KEY (vshard, user_id, device_id, algorithm, key_id)
);
CREATE TABLE server_keys (
    server_name text NOT NULL,
    key_id text NOT NULL,
    public_key text NOT NULL, -- unpadded base64, as published
    valid_until_ts bigint NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
CREATE TABLE destinations (
    destination text PRIMARY KEY,
    failure_count integer NOT NULL,
    retry_after_ts bigint NOT NULL
);
CREATE TABLE outbound_queue (
    destination text NOT NULL,
    pos bigint NOT NULL,
    edu boolean NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (destination, pos)
);
CREATE TABLE room_aliases (
    alias text PRIMARY KEY,
    room_id text NOT NULL,
    creator text NOT NULL
);
CREATE INDEX room_aliases_by_room ON room_aliases (room_id);
CREATE TABLE published_rooms (
    room_id text PRIMARY KEY
);
CREATE TABLE media (
    media_id text PRIMARY KEY,
    content_type text,
    upload_name text,
    size bigint NOT NULL,
    user_id text NOT NULL,
    created_ts bigint NOT NULL
);
";

/// Version 2: registration tokens.
const V2: &str = "
CREATE TABLE registration_tokens (
    token text PRIMARY KEY,
    uses_allowed bigint,
    pending bigint NOT NULL,
    completed bigint NOT NULL,
    expiry_time bigint
);
";

/// Version 3: the interning tables packed 128 numbers to a row
/// (`postgres/interning.rs`), the rows of version 1 moved over in the
/// same layout: number, then each string's u16 length and bytes.
const V3: &str = "
CREATE TABLE room_state_key_chunks (
    room_nid bigint NOT NULL,
    chunk integer NOT NULL,
    entries bytea NOT NULL,
    PRIMARY KEY (room_nid, chunk)
);
INSERT INTO room_state_key_chunks (room_nid, chunk, entries)
    SELECT room_nid, nid / 128, string_agg(
        int4send(nid)
            || int2send(octet_length(convert_to(event_type, 'UTF8'))::smallint) || convert_to(event_type, 'UTF8')
            || int2send(octet_length(convert_to(state_key, 'UTF8'))::smallint) || convert_to(state_key, 'UTF8'),
        ''::bytea ORDER BY nid)
    FROM room_state_keys GROUP BY room_nid, nid / 128;
DROP TABLE room_state_keys;
CREATE TABLE room_event_nid_chunks (
    room_nid bigint NOT NULL,
    chunk integer NOT NULL,
    entries bytea NOT NULL,
    PRIMARY KEY (room_nid, chunk)
);
INSERT INTO room_event_nid_chunks (room_nid, chunk, entries)
    SELECT room_nid, nid / 128, string_agg(
        int4send(nid) || int2send(octet_length(convert_to(event_id, 'UTF8'))::smallint) || convert_to(event_id, 'UTF8'),
        ''::bytea ORDER BY nid)
    FROM room_event_nids GROUP BY room_nid, nid / 128;
DROP TABLE room_event_nids;
";

/// Version 4: event numbers by ID (`room_event_nid_chunks` the other way,
/// packed by a hash of the ID; filled from it by [`fill_event_id_buckets`])
/// and the auth-chain index, packed like the interning tables. The index
/// starts with the events written from then on; older ones are walked from
/// their JSON.
const V4: &str = "
CREATE TABLE room_event_id_buckets (
    room_nid bigint NOT NULL,
    bucket integer NOT NULL,
    entries bytea NOT NULL,
    PRIMARY KEY (room_nid, bucket)
);
CREATE TABLE room_auth_event_chunks (
    room_nid bigint NOT NULL,
    chunk integer NOT NULL,
    entries bytea NOT NULL,
    PRIMARY KEY (room_nid, chunk)
);
";

/// Fills `room_event_id_buckets` from the packed interning rows (which SQL
/// cannot unpack), one room at a time.
async fn fill_event_id_buckets(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    let rooms = tx.query("SELECT DISTINCT room_nid FROM room_event_nid_chunks", &[]).await?;
    for room in rooms {
        let room: i64 = room.get(0);
        let rows = tx.query("SELECT entries FROM room_event_nid_chunks WHERE room_nid = $1", &[&room]).await?;
        let ids: Vec<(u32, String)> =
            super::interning::decode_event_ids(rows.iter().map(|r| r.get::<_, &[u8]>(0)))?.into_iter().collect();
        let (buckets, entries) = super::interning::encode_id_buckets(&ids);
        let sql = "INSERT INTO room_event_id_buckets (room_nid, bucket, entries)
            SELECT $1, * FROM unnest($2::integer[], $3::bytea[])";
        tx.execute(sql, &[&room, &buckets, &entries]).await?;
    }
    Ok(())
}

/// The statements that take version `n - 1` to version `n`, from 2 on.
const MIGRATIONS: &[(i32, &str)] = &[(2, V2), (3, V3), (4, V4)];

/// Creates or checks the schema.
pub(crate) async fn migrate(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)").await?;
    let found: Option<i32> = tx.query_opt("SELECT version FROM schema_version", &[]).await?.map(|row| row.get(0));
    let from = match found {
        None => {
            tx.batch_execute(V1).await?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&1i32]).await?;
            1
        }
        Some(v) if v > SCHEMA_VERSION => {
            return Err(StorageError::NewerSchema { found: v as u32, supported: SCHEMA_VERSION as u32 });
        }
        Some(v) => v,
    };
    // In the same transaction: a crash leaves the old version whole.
    for (version, statements) in MIGRATIONS.iter().filter(|(version, _)| *version > from) {
        tx.batch_execute(statements).await?;
        tx.execute("UPDATE schema_version SET version = $1", &[version]).await?;
        if *version == 4 {
            fill_event_id_buckets(&tx).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
