//! The embedded backend: fjall, an LSM tree in pure Rust, inside the data
//! directory. Zero setup; the default.
//!
//! One fjall database per process, shared by all shards (fjall is built
//! for concurrent readers and writers). Reads run on the calling shard and
//! are served from memtables and the block cache; writes go through the
//! shard's own committer thread ([`committer`]), so no shard ever waits for
//! another shard's writes or for an fsync on its reactor.

mod committer;
pub mod schema;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use fjall::config::{BlockSizePolicy, CompressionPolicy};
use fjall::{AbstractTree, CompressionType, Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch as WriteBatch};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, StorageError};
use crate::keys;
use crate::ops::Op;
use crate::records::{
    AccessTokenRecord, AccountDataRecord, AliasRecord, DestinationRecord, DeviceKeysRecord, DeviceRecord, EventNid,
    EventRecord, MediaRecord, OneTimeKeyRecord, OutboundRecord, ReceiptRecord, RegistrationTokenRecord, RoomHeadRecord,
    RoomMemberRecord, RoomNid, ServerKeyRecord, StateGroupRecord, StateKeyRecord, StreamPos, ToDeviceRecord,
    UserRecord, UserRoomRecord, VShard,
};
use crate::store::{Direction, Store};
use committer::Committer;

/// Data block size of the cold keyspaces: larger blocks compress better and
/// these are read by point lookups and whole-room scans, not hot ranges.
const COLD_BLOCK_BYTES: u32 = 16 * 1024;

/// How to open the embedded database.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Directory of the database (inside the data directory).
    pub path: PathBuf,
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Bytes of written data all keyspaces together may hold in memory
    /// (memtables) before the largest is flushed to disk. fjall bounds each
    /// keyspace alone (64 MiB by default, and we have 27 keyspaces): a
    /// message load grew the process by hundreds of MiB, and even 2 MiB
    /// per keyspace held 9 MiB of a 20 MiB heap (docs/benchmarks.md).
    /// Flushes run on fjall's own threads.
    pub write_buffer_bytes: u64,
    /// Make every acknowledged write durable (fsync). Turning it off loses
    /// the last writes on a crash: for benchmarks only.
    pub sync_writes: bool,
}

/// The keyspaces, one per kind of row (see `docs/storage.md`).
pub(crate) struct Keyspaces {
    meta: Keyspace,
    users: Keyspace,
    devices: Keyspace,
    tokens: Keyspace,
    device_tokens: Keyspace,
    events: Keyspace,
    timeline: Keyspace,
    room_heads: Keyspace,
    account_data: Keyspace,
    streams: Keyspace,
    room_nids: Keyspace,
    state_keys: Keyspace,
    event_nids: Keyspace,
    /// (room, hash of the event ID, number), empty values: `event_nids` the
    /// other way, confirmed through it.
    event_nids_by_id: Keyspace,
    /// (room, event number) → its auth events' numbers: the auth-chain index.
    auth_events: Keyspace,
    state_groups: Keyspace,
    room_members: Keyspace,
    user_rooms: Keyspace,
    receipts: Keyspace,
    to_device: Keyspace,
    device_keys: Keyspace,
    one_time_keys: Keyspace,
    server_keys: Keyspace,
    destinations: Keyspace,
    outbound: Keyspace,
    media: Keyspace,
    aliases: Keyspace,
    room_aliases: Keyspace,
    published: Keyspace,
    registration_tokens: Keyspace,
}

impl Keyspaces {
    /// Every keyspace, for upkeep of the whole database.
    fn all(&self) -> [&Keyspace; 30] {
        [
            &self.meta,
            &self.users,
            &self.devices,
            &self.tokens,
            &self.device_tokens,
            &self.events,
            &self.timeline,
            &self.room_heads,
            &self.account_data,
            &self.streams,
            &self.room_nids,
            &self.state_keys,
            &self.event_nids,
            &self.event_nids_by_id,
            &self.auth_events,
            &self.state_groups,
            &self.room_members,
            &self.user_rooms,
            &self.receipts,
            &self.to_device,
            &self.device_keys,
            &self.one_time_keys,
            &self.server_keys,
            &self.destinations,
            &self.outbound,
            &self.media,
            &self.aliases,
            &self.room_aliases,
            &self.published,
            &self.registration_tokens,
        ]
    }
}

pub(crate) struct Inner {
    db: Database,
    ks: Keyspaces,
    sync_writes: bool,
    write_buffer_bytes: u64,
}

impl Inner {
    /// Keeps the memtables of all keyspaces together under the write-buffer
    /// budget: when they exceed it, the largest active memtable is sealed
    /// and handed to fjall's flush workers. Called by the committers after
    /// each group commit, so the check costs one pass over 27 counters per
    /// fsync, not per write. Sealed memtables still count until their flush
    /// finishes; a memtable below an eighth of the budget is left alone so
    /// that slow flushes cannot turn into a stream of tiny tables.
    fn bound_write_buffer(&self) -> Result<()> {
        if self.db.write_buffer_size() <= self.write_buffer_bytes {
            return Ok(());
        }
        let largest = self.ks.all().into_iter().max_by_key(|k| k.tree.active_memtable().size());
        if let Some(keyspace) = largest {
            if keyspace.tree.active_memtable().size() >= self.write_buffer_bytes / 8 {
                keyspace.rotate_memtable()?;
            }
        }
        Ok(())
    }
}

/// The open database, shared by every shard of the process.
#[derive(Clone)]
pub struct EmbeddedDb {
    inner: Arc<Inner>,
}

impl EmbeddedDb {
    /// Opens (creating if needed) the database and checks its schema.
    pub fn open(config: &EmbeddedConfig) -> Result<Self> {
        let db = Database::builder(&config.path).cache_size(config.cache_bytes).open()?;
        // No keyspace alone may take the whole budget; `bound_write_buffer`
        // keeps their sum under it.
        let memtable = config.write_buffer_bytes / 2;
        let open = |name: &str| db.keyspace(name, || KeyspaceCreateOptions::default().max_memtable_size(memtable));
        // Large, rarely rewritten data (event JSON, the interning tables of
        // huge rooms): compressed at every level and in bigger blocks, where
        // fjall's default leaves the first two levels uncompressed for
        // write speed. Measured in docs/benchmarks.md.
        let cold = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(memtable)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                    .data_block_size_policy(BlockSizePolicy::all(COLD_BLOCK_BYTES))
            })
        };
        let ks = Keyspaces {
            meta: open("meta")?,
            users: open("users")?,
            devices: open("devices")?,
            tokens: open("tokens")?,
            device_tokens: open("device_tokens")?,
            events: cold("events")?,
            timeline: open("timeline")?,
            room_heads: open("room_heads")?,
            account_data: open("account_data")?,
            streams: open("streams")?,
            room_nids: open("room_nids")?,
            state_keys: cold("state_keys")?,
            event_nids: cold("event_nids")?,
            event_nids_by_id: cold("event_nids_by_id")?,
            auth_events: cold("auth_events")?,
            state_groups: open("state_groups")?,
            room_members: open("room_members")?,
            user_rooms: open("user_rooms")?,
            receipts: open("receipts")?,
            to_device: open("to_device")?,
            device_keys: open("device_keys")?,
            one_time_keys: open("one_time_keys")?,
            server_keys: open("server_keys")?,
            destinations: open("destinations")?,
            outbound: open("outbound")?,
            media: open("media")?,
            aliases: open("aliases")?,
            room_aliases: open("room_aliases")?,
            published: open("published")?,
            registration_tokens: open("registration_tokens")?,
        };
        schema::check(&db, &ks)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                ks,
                sync_writes: config.sync_writes,
                write_buffer_bytes: config.write_buffer_bytes,
            }),
        })
    }

    /// A handle for shard `shard`, with its own committer thread.
    pub fn shard_store(&self, shard: usize) -> Result<EmbeddedStore> {
        let committer = Committer::start(self.inner.clone(), format!("commit-{shard}"))?;
        Ok(EmbeddedStore { inner: self.inner.clone(), committer })
    }

    /// Makes every committed write durable (for shutdown when writes are
    /// not synced as they are acknowledged).
    pub fn sync(&self) -> Result<()> {
        Ok(self.inner.db.persist(fjall::PersistMode::SyncAll)?)
    }

    /// Writes every memtable out to its tables and waits, so that
    /// `disk_space` counts data in its final, compressed form.
    pub fn flush(&self) -> Result<()> {
        for keyspace in self.inner.ks.all() {
            keyspace.rotate_memtable_and_wait()?;
            // A memtable the write-buffer budget sealed already is flushed
            // in the background; fjall's wait covers only the one it seals.
            while keyspace.sealed_memtable_count() > 0 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        Ok(())
    }

    /// Bytes the database takes on disk (journals and tables).
    pub fn disk_space(&self) -> Result<u64> {
        Ok(self.inner.db.disk_space()?)
    }
}

/// One shard's handle on the embedded database.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    committer: Committer,
}

fn encode(value: &impl Serialize) -> Vec<u8> {
    // Serialising plain records into a Vec cannot fail.
    postcard::to_allocvec(value).expect("records always serialise")
}

fn decode<T: DeserializeOwned>(keyspace: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StorageError::Corrupt { keyspace, why: e.to_string() })
}

/// Stages the deletion of a queue's rows (keys `prefix ‖ position`) up to
/// and including position `up_to`, as committed before the batch.
fn stage_queue_delete(batch: &mut WriteBatch, ks: &Keyspace, prefix: &[u8], up_to: StreamPos) -> Result<()> {
    for entry in ks.range(keys::positioned(prefix, 0)..=keys::positioned(prefix, up_to)) {
        batch.remove(ks, entry.key()?);
    }
    Ok(())
}

fn utf8(keyspace: &'static str, bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| StorageError::Corrupt { keyspace, why: "ID is not UTF-8".into() })
}

impl Inner {
    /// Adds one operation's writes to `batch`, and answers the one-time key
    /// a claim takes. Reads it needs (to delete a device's tokens, to pick a
    /// one-time key) see the state before the batch, which is the state
    /// after every earlier group: groups are committed one at a time per
    /// shard, and a device is only ever written by its owner's shard. Keys
    /// already claimed in this batch are in `taken`.
    fn stage(&self, batch: &mut WriteBatch, op: &Op, taken: &mut HashSet<Vec<u8>>) -> Result<Option<OneTimeKeyRecord>> {
        let ks = &self.ks;
        match op {
            Op::PutUser { vshard, user } => batch.insert(&ks.users, keys::scoped(*vshard, &user.user_id), encode(user)),
            Op::PutDevice { vshard, device } => batch.insert(
                &ks.devices,
                keys::scoped_pair(*vshard, &device.user_id, &device.device_id),
                encode(device),
            ),
            Op::DeleteDevice { vshard, user_id, device_id } => {
                batch.remove(&ks.devices, keys::scoped_pair(*vshard, user_id, device_id));
                let prefix = keys::device_tokens_prefix(user_id, device_id);
                for entry in ks.device_tokens.prefix(&prefix) {
                    let key = entry.key()?;
                    batch.remove(&ks.tokens, &key[prefix.len()..]);
                    batch.remove(&ks.device_tokens, key);
                }
                let device = keys::device_prefix(*vshard, user_id, device_id);
                for rows in [&ks.to_device, &ks.one_time_keys] {
                    for entry in rows.prefix(&device) {
                        batch.remove(rows, entry.key()?);
                    }
                }
                batch.remove(&ks.device_keys, keys::scoped_pair(*vshard, user_id, device_id));
            }
            Op::PutAccessToken { digest, token } => {
                batch.insert(&ks.tokens, digest.as_slice(), encode(token));
                batch.insert(&ks.device_tokens, keys::device_token(&token.user_id, &token.device_id, digest), []);
            }
            Op::DeleteAccessToken { digest } => {
                if let Some(bytes) = ks.tokens.get(digest)? {
                    let token: AccessTokenRecord = decode("tokens", &bytes)?;
                    batch.remove(&ks.device_tokens, keys::device_token(&token.user_id, &token.device_id, digest));
                }
                batch.remove(&ks.tokens, digest.as_slice());
            }
            Op::PutEvent(event) => {
                if let Some(pos) = event.stream_pos {
                    let key = keys::timeline(event.vshard, &event.room_id, pos);
                    batch.insert(&ks.timeline, key, event.event_id.as_bytes());
                }
                batch.insert(&ks.events, event.event_id.as_bytes(), encode(event));
            }
            Op::PutRoomHead { vshard, room_id, head } => {
                batch.insert(&ks.room_heads, keys::scoped(*vshard, room_id), encode(head))
            }
            Op::PutAccountData { vshard, data } => {
                let key = keys::account_data(*vshard, &data.user_id, data.room_id.as_deref(), &data.data_type);
                batch.insert(&ks.account_data, key, encode(data));
            }
            Op::SetStreamPosition { stream, pos } => {
                batch.insert(&ks.streams, stream.as_bytes(), pos.to_be_bytes().as_slice())
            }
            Op::PutRoomNid { vshard, room_id, room } => {
                batch.insert(&ks.room_nids, keys::scoped(*vshard, room_id), room.to_be_bytes().as_slice())
            }
            Op::PutStateKeys { room, keys: state_keys } => {
                for key in state_keys {
                    let value = encode(&(&key.event_type, &key.state_key));
                    batch.insert(&ks.state_keys, keys::room_nid(*room, key.nid).as_slice(), value);
                }
            }
            Op::PutEventNids { room, events } => {
                for (nid, event_id) in events {
                    batch.insert(&ks.event_nids, keys::room_nid(*room, *nid).as_slice(), event_id.as_bytes());
                    let key = keys::room_hash_nid(*room, keys::id_hash(event_id), *nid);
                    batch.insert(&ks.event_nids_by_id, key.as_slice(), []);
                }
            }
            Op::PutAuthEvents { room, events } => {
                for (nid, auth) in events {
                    batch.insert(&ks.auth_events, keys::room_nid(*room, *nid).as_slice(), encode(auth));
                }
            }
            Op::PutStateGroup { room, group, state } => {
                batch.insert(&ks.state_groups, keys::state_group(*room, *group).as_slice(), state.encode())
            }
            Op::PutMembership { vshard_room, vshard_user, room_id, user_id, membership, event_id } => {
                let key = keys::scoped_pair(*vshard_room, room_id, user_id);
                batch.insert(&ks.room_members, key, encode(&(membership, event_id)));
                batch.insert(&ks.user_rooms, keys::scoped_pair(*vshard_user, user_id, room_id), encode(membership));
            }
            Op::ForgetRoom { vshard_user, user_id, room_id } => {
                batch.remove(&ks.user_rooms, keys::scoped_pair(*vshard_user, user_id, room_id))
            }
            Op::PutToDevice { vshard, user_id, device_id, message } => {
                let key = keys::positioned(&keys::device_prefix(*vshard, user_id, device_id), message.pos);
                batch.insert(&ks.to_device, key, message.message.as_slice());
            }
            Op::DeleteToDevice { vshard, user_id, device_id, up_to } => {
                stage_queue_delete(batch, &ks.to_device, &keys::device_prefix(*vshard, user_id, device_id), *up_to)?
            }
            Op::PutServerKeys { keys: server_keys } => {
                for k in server_keys {
                    batch.insert(&ks.server_keys, keys::server_key(&k.server_name, &k.key_id), encode(k));
                }
            }
            Op::PutDestination(destination) => {
                batch.insert(&ks.destinations, destination.destination.as_bytes(), encode(destination))
            }
            Op::PutOutbound { destination, item } => {
                let key = keys::positioned(&keys::unscoped_prefix(destination), item.pos);
                batch.insert(&ks.outbound, key, encode(&(item.edu, &item.body)));
            }
            Op::DeleteOutbound { destination, up_to } => {
                stage_queue_delete(batch, &ks.outbound, &keys::unscoped_prefix(destination), *up_to)?
            }
            Op::PutMedia(media) => batch.insert(&ks.media, media.media_id.as_bytes(), encode(media)),
            Op::PutAlias(alias) => {
                batch.insert(&ks.aliases, alias.alias.as_bytes(), encode(alias));
                batch.insert(&ks.room_aliases, keys::room_alias(&alias.room_id, &alias.alias), []);
            }
            Op::DeleteAlias { alias } => {
                if let Some(bytes) = ks.aliases.get(alias.as_bytes())? {
                    let record: AliasRecord = decode("aliases", &bytes)?;
                    batch.remove(&ks.room_aliases, keys::room_alias(&record.room_id, alias));
                }
                batch.remove(&ks.aliases, alias.as_bytes());
            }
            Op::PutRegistrationToken(token) => {
                batch.insert(&ks.registration_tokens, token.token.as_bytes(), encode(token))
            }
            Op::DeleteRegistrationToken { token } => batch.remove(&ks.registration_tokens, token.as_bytes()),
            Op::SetRoomPublished { room_id, published: true } => batch.insert(&ks.published, room_id.as_bytes(), []),
            Op::SetRoomPublished { room_id, published: false } => batch.remove(&ks.published, room_id.as_bytes()),
            Op::PutDeviceKeys { vshard, keys: device_keys } => {
                let key = keys::scoped_pair(*vshard, &device_keys.user_id, &device_keys.device_id);
                batch.insert(&ks.device_keys, key, encode(device_keys));
            }
            Op::PutOneTimeKeys { vshard, user_id, device_id, keys: one_time_keys } => {
                for k in one_time_keys {
                    let key = keys::one_time_key(*vshard, user_id, device_id, &k.algorithm, &k.key_id);
                    batch.insert(&ks.one_time_keys, key, k.key.as_slice());
                }
            }
            Op::ClaimOneTimeKey { vshard, user_id, device_id, algorithm } => {
                let prefix = keys::one_time_keys_prefix(*vshard, user_id, device_id, algorithm);
                for entry in ks.one_time_keys.prefix(&prefix) {
                    let (key, value) = entry.into_inner()?;
                    if taken.insert(key.to_vec()) {
                        let key_id = utf8("one_time_keys", &key[prefix.len()..])?;
                        batch.remove(&ks.one_time_keys, key);
                        return Ok(Some(OneTimeKeyRecord {
                            algorithm: algorithm.clone(),
                            key_id,
                            key: value.to_vec(),
                        }));
                    }
                }
            }
            Op::PutReceipt { vshard, room_id, receipt } => {
                let r = receipt;
                let key = keys::receipt(*vshard, room_id, &r.receipt_type, &r.user_id, r.thread_id.as_deref());
                batch.insert(&ks.receipts, key, encode(receipt));
            }
        }
        Ok(None)
    }

    fn get<T: DeserializeOwned>(&self, ks: &Keyspace, name: &'static str, key: &[u8]) -> Result<Option<T>> {
        ks.get(key)?.map(|bytes| decode(name, &bytes)).transpose()
    }

    /// The rows under `prefix` as (rest of the key, value), for keyspaces
    /// whose keys end in an ID that the value does not repeat.
    fn scan_tail<T: DeserializeOwned>(
        &self,
        ks: &Keyspace,
        name: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<(String, T)>> {
        ks.prefix(prefix)
            .map(|entry| {
                let (key, value) = entry.into_inner()?;
                Ok((utf8(name, &key[prefix.len()..])?, decode(name, &value)?))
            })
            .collect()
    }

    /// Up to `limit` rows of a queue (keys `prefix ‖ position`) with a
    /// position strictly after `after`, oldest first, as (position, value).
    fn queue_after(
        &self,
        ks: &Keyspace,
        name: &'static str,
        prefix: &[u8],
        after: StreamPos,
        limit: usize,
    ) -> Result<Vec<(StreamPos, Vec<u8>)>> {
        let Some(first) = after.checked_add(1) else { return Ok(Vec::new()) };
        ks.range(keys::positioned(prefix, first)..=keys::positioned(prefix, StreamPos::MAX))
            .take(limit)
            .map(|entry| {
                let (key, value) = entry.into_inner()?;
                let pos = keys::trailing_pos(&key)
                    .ok_or(StorageError::Corrupt { keyspace: name, why: "key too short for a position".into() })?;
                Ok((pos, value.to_vec()))
            })
            .collect()
    }

    fn scan<T: DeserializeOwned>(&self, ks: &Keyspace, name: &'static str, prefix: &[u8]) -> Result<Vec<T>> {
        ks.prefix(prefix).map(|entry| decode(name, &entry.value()?)).collect()
    }
}

impl Store for EmbeddedStore {
    async fn write(&self, ops: Vec<Op>) -> Result<()> {
        self.committer.submit(ops).await.map(drop)
    }

    async fn user(&self, vshard: VShard, user_id: &str) -> Result<Option<UserRecord>> {
        self.inner.get(&self.inner.ks.users, "users", &keys::scoped(vshard, user_id))
    }

    async fn device(&self, vshard: VShard, user_id: &str, device_id: &str) -> Result<Option<DeviceRecord>> {
        self.inner.get(&self.inner.ks.devices, "devices", &keys::scoped_pair(vshard, user_id, device_id))
    }

    async fn devices(&self, vshard: VShard, user_id: &str) -> Result<Vec<DeviceRecord>> {
        self.inner.scan(&self.inner.ks.devices, "devices", &keys::scoped_prefix(vshard, user_id))
    }

    async fn access_token(&self, digest: &[u8]) -> Result<Option<AccessTokenRecord>> {
        self.inner.get(&self.inner.ks.tokens, "tokens", digest)
    }

    async fn event(&self, event_id: &str) -> Result<Option<EventRecord>> {
        self.inner.get(&self.inner.ks.events, "events", event_id.as_bytes())
    }

    async fn timeline(
        &self,
        vshard: VShard,
        room_id: &str,
        from: Option<StreamPos>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(StreamPos, String)>> {
        let prefix = keys::scoped_prefix(vshard, room_id);
        let ks = &self.inner.ks.timeline;
        let entries: Box<dyn Iterator<Item = fjall::Guard>> = match (direction, from) {
            (Direction::Forward, None) => Box::new(ks.prefix(&prefix)),
            (Direction::Backward, None) => Box::new(ks.prefix(&prefix).rev()),
            (Direction::Forward, Some(pos)) => match pos.checked_add(1) {
                Some(next) => Box::new(
                    ks.range(keys::timeline(vshard, room_id, next)..=keys::timeline(vshard, room_id, u64::MAX)),
                ),
                None => return Ok(Vec::new()),
            },
            (Direction::Backward, Some(pos)) => {
                Box::new(ks.range(keys::timeline(vshard, room_id, 0)..keys::timeline(vshard, room_id, pos)).rev())
            }
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for entry in entries.take(limit) {
            let (key, value) = entry.into_inner()?;
            let pos = keys::trailing_pos(&key)
                .ok_or(StorageError::Corrupt { keyspace: "timeline", why: "key too short for a position".into() })?;
            let event_id = String::from_utf8(value.to_vec())
                .map_err(|_| StorageError::Corrupt { keyspace: "timeline", why: "event ID is not UTF-8".into() })?;
            out.push((pos, event_id));
        }
        Ok(out)
    }

    async fn room_head(&self, vshard: VShard, room_id: &str) -> Result<Option<RoomHeadRecord>> {
        self.inner.get(&self.inner.ks.room_heads, "room_heads", &keys::scoped(vshard, room_id))
    }

    async fn account_data(
        &self,
        vshard: VShard,
        user_id: &str,
        room_id: Option<&str>,
        data_type: &str,
    ) -> Result<Option<AccountDataRecord>> {
        let key = keys::account_data(vshard, user_id, room_id, data_type);
        self.inner.get(&self.inner.ks.account_data, "account_data", &key)
    }

    async fn all_account_data(&self, vshard: VShard, user_id: &str) -> Result<Vec<AccountDataRecord>> {
        self.inner.scan(&self.inner.ks.account_data, "account_data", &keys::scoped_prefix(vshard, user_id))
    }

    async fn stream_position(&self, stream: &str) -> Result<Option<StreamPos>> {
        let Some(bytes) = self.inner.ks.streams.get(stream.as_bytes())? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StorageError::Corrupt { keyspace: "streams", why: "position is not 8 bytes".into() })?;
        Ok(Some(StreamPos::from_be_bytes(bytes)))
    }

    async fn room_nid(&self, vshard: VShard, room_id: &str) -> Result<Option<RoomNid>> {
        let Some(bytes) = self.inner.ks.room_nids.get(keys::scoped(vshard, room_id))? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| StorageError::Corrupt { keyspace: "room_nids", why: "room number is not 8 bytes".into() })?;
        Ok(Some(RoomNid::from_be_bytes(bytes)))
    }

    async fn state_keys(&self, room: RoomNid) -> Result<Vec<StateKeyRecord>> {
        let corrupt = |why: &str| StorageError::Corrupt { keyspace: "state_keys", why: why.into() };
        self.inner
            .ks
            .state_keys
            .prefix(room.to_be_bytes())
            .map(|entry| {
                let (key, value) = entry.into_inner()?;
                let nid: [u8; 4] = key[8..].try_into().map_err(|_| corrupt("number is not 4 bytes"))?;
                let (event_type, state_key): (String, String) = decode("state_keys", &value)?;
                Ok(StateKeyRecord { nid: u32::from_be_bytes(nid), event_type, state_key })
            })
            .collect()
    }

    async fn event_ids_of(&self, room: RoomNid, nids: &[EventNid]) -> Result<Vec<Option<String>>> {
        nids.iter()
            .map(|&nid| {
                let Some(bytes) = self.inner.ks.event_nids.get(keys::room_nid(room, nid))? else {
                    return Ok(None);
                };
                String::from_utf8(bytes.to_vec())
                    .map(Some)
                    .map_err(|_| StorageError::Corrupt { keyspace: "event_nids", why: "event ID is not UTF-8".into() })
            })
            .collect()
    }

    async fn event_nids_of(&self, room: RoomNid, ids: &[String]) -> Result<Vec<Option<EventNid>>> {
        let ks = &self.inner.ks;
        ids.iter()
            .map(|id| {
                // The hash names candidates, newest last; the number → ID
                // rows confirm them. An ID numbered twice (a room rejoined)
                // answers its newest number.
                let prefix = keys::room_hash_nid(room, keys::id_hash(id), 0);
                for entry in ks.event_nids_by_id.prefix(&prefix[..16]).rev() {
                    let key = entry.key()?;
                    let nid =
                        key.get(16..20).and_then(|n| n.try_into().ok()).map(u32::from_be_bytes).ok_or_else(|| {
                            StorageError::Corrupt { keyspace: "event_nids_by_id", why: "key is not 20 bytes".into() }
                        })?;
                    if ks.event_nids.get(keys::room_nid(room, nid))?.is_some_and(|found| *found == *id.as_bytes()) {
                        return Ok(Some(nid));
                    }
                }
                Ok(None)
            })
            .collect()
    }

    async fn auth_events_of(&self, room: RoomNid, nids: &[EventNid]) -> Result<Vec<Option<Vec<EventNid>>>> {
        nids.iter()
            .map(|&nid| self.inner.get(&self.inner.ks.auth_events, "auth_events", keys::room_nid(room, nid).as_slice()))
            .collect()
    }

    async fn state_group(&self, room: RoomNid, group: u64) -> Result<Option<StateGroupRecord>> {
        let Some(bytes) = self.inner.ks.state_groups.get(keys::state_group(room, group))? else {
            return Ok(None);
        };
        StateGroupRecord::decode(&bytes)
            .map(Some)
            .map_err(|why| StorageError::Corrupt { keyspace: "state_groups", why })
    }

    async fn room_members(
        &self,
        vshard: VShard,
        room_id: &str,
        membership: Option<&str>,
    ) -> Result<Vec<RoomMemberRecord>> {
        let rows: Vec<(String, (String, String))> =
            self.inner.scan_tail(&self.inner.ks.room_members, "room_members", &keys::scoped_prefix(vshard, room_id))?;
        Ok(rows
            .into_iter()
            .filter(|(_, (m, _))| membership.is_none_or(|wanted| m == wanted))
            .map(|(user_id, (membership, event_id))| RoomMemberRecord { user_id, membership, event_id })
            .collect())
    }

    async fn user_rooms(&self, vshard: VShard, user_id: &str, membership: Option<&str>) -> Result<Vec<UserRoomRecord>> {
        let rows: Vec<(String, String)> =
            self.inner.scan_tail(&self.inner.ks.user_rooms, "user_rooms", &keys::scoped_prefix(vshard, user_id))?;
        Ok(rows
            .into_iter()
            .filter(|(_, m)| membership.is_none_or(|wanted| m == wanted))
            .map(|(room_id, membership)| UserRoomRecord { room_id, membership })
            .collect())
    }

    async fn to_device(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        after: StreamPos,
        limit: usize,
    ) -> Result<Vec<ToDeviceRecord>> {
        let prefix = keys::device_prefix(vshard, user_id, device_id);
        let rows = self.inner.queue_after(&self.inner.ks.to_device, "to_device", &prefix, after, limit)?;
        Ok(rows.into_iter().map(|(pos, message)| ToDeviceRecord { pos, message }).collect())
    }

    async fn server_keys(&self, server_name: &str) -> Result<Vec<ServerKeyRecord>> {
        self.inner.scan(&self.inner.ks.server_keys, "server_keys", &keys::unscoped_prefix(server_name))
    }

    async fn destination(&self, destination: &str) -> Result<Option<DestinationRecord>> {
        self.inner.get(&self.inner.ks.destinations, "destinations", destination.as_bytes())
    }

    async fn outbound(&self, destination: &str, after: StreamPos, limit: usize) -> Result<Vec<OutboundRecord>> {
        let prefix = keys::unscoped_prefix(destination);
        let rows = self.inner.queue_after(&self.inner.ks.outbound, "outbound", &prefix, after, limit)?;
        rows.into_iter()
            .map(|(pos, value)| {
                let (edu, body) = decode("outbound", &value)?;
                Ok(OutboundRecord { pos, edu, body })
            })
            .collect()
    }

    async fn media(&self, media_id: &str) -> Result<Option<MediaRecord>> {
        self.inner.get(&self.inner.ks.media, "media", media_id.as_bytes())
    }

    async fn alias(&self, alias: &str) -> Result<Option<AliasRecord>> {
        self.inner.get(&self.inner.ks.aliases, "aliases", alias.as_bytes())
    }

    async fn room_aliases(&self, room_id: &str) -> Result<Vec<String>> {
        let prefix = keys::unscoped_prefix(room_id);
        let mut out = Vec::new();
        for entry in self.inner.ks.room_aliases.prefix(&prefix) {
            let key = entry.key()?;
            let alias = String::from_utf8(key[prefix.len()..].to_vec())
                .map_err(|_| StorageError::Corrupt { keyspace: "room_aliases", why: "alias is not UTF-8".into() })?;
            out.push(alias);
        }
        Ok(out)
    }

    async fn registration_token(&self, token: &str) -> Result<Option<RegistrationTokenRecord>> {
        self.inner.get(&self.inner.ks.registration_tokens, "registration_tokens", token.as_bytes())
    }

    async fn registration_tokens(&self) -> Result<Vec<RegistrationTokenRecord>> {
        let mut out = Vec::new();
        for entry in self.inner.ks.registration_tokens.iter() {
            out.push(decode("registration_tokens", &entry.value()?)?);
        }
        Ok(out)
    }

    async fn published_rooms(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in self.inner.ks.published.iter() {
            let key = entry.key()?;
            out.push(
                String::from_utf8(key.to_vec())
                    .map_err(|_| StorageError::Corrupt { keyspace: "published", why: "room ID is not UTF-8".into() })?,
            );
        }
        Ok(out)
    }

    async fn device_keys(&self, vshard: VShard, user_id: &str) -> Result<Vec<DeviceKeysRecord>> {
        self.inner.scan(&self.inner.ks.device_keys, "device_keys", &keys::scoped_prefix(vshard, user_id))
    }

    async fn one_time_key_counts(&self, vshard: VShard, user_id: &str, device_id: &str) -> Result<Vec<(String, u64)>> {
        let prefix = keys::device_prefix(vshard, user_id, device_id);
        let mut counts = BTreeMap::new();
        for entry in self.inner.ks.one_time_keys.prefix(&prefix) {
            let key = entry.key()?;
            let algorithm = keys::one_time_key_algorithm(&key[prefix.len()..])
                .ok_or(StorageError::Corrupt { keyspace: "one_time_keys", why: "key has no algorithm".into() })?;
            *counts.entry(utf8("one_time_keys", algorithm)?).or_insert(0) += 1;
        }
        Ok(counts.into_iter().collect())
    }

    async fn claim_one_time_key(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
    ) -> Result<Option<OneTimeKeyRecord>> {
        let claim = Op::claim_one_time_key(vshard, user_id, device_id, algorithm);
        Ok(self.committer.submit(vec![claim]).await?.pop())
    }

    async fn receipts(&self, vshard: VShard, room_id: &str) -> Result<Vec<ReceiptRecord>> {
        self.inner.scan(&self.inner.ks.receipts, "receipts", &keys::scoped_prefix(vshard, room_id))
    }
}

#[cfg(test)]
mod tests;
