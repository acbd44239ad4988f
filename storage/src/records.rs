//! The records the store keeps: plain data (IDs as strings, bodies as
//! bytes, positions as integers). The homeserver maps its Matrix types onto
//! these; the store never interprets them beyond what indexes need.
//!
//! Every record is encoded with postcard. Adding a field is a schema change
//! (see `embedded/schema.rs`): postcard is not self-describing.

use serde::{Deserialize, Serialize};

/// Index of a virtual shard: the partition a room's or user's rows live in.
/// The homeserver computes it (`tessera_net::vshard`); the store only files
/// rows under it, so a shard's writes and scans stay within its partitions.
pub type VShard = u16;

/// A position in a stream, increasing.
pub type StreamPos = u64;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Full user ID, `@local:server`.
    pub user_id: String,
    /// Argon2 PHC string; `None` for accounts that cannot log in with a
    /// password (guests, appservice users, SSO-only).
    pub password_hash: Option<String>,
    /// Creation time, POSIX milliseconds.
    pub created_ts: u64,
    /// Whether the account is deactivated.
    pub deactivated: bool,
    /// Guest account.
    pub is_guest: bool,
    /// Server admin.
    pub is_admin: bool,
    /// Profile display name (Client-Server API, "Profiles").
    pub displayname: Option<String>,
    /// Profile avatar, an `mxc://` URI.
    pub avatar_url: Option<String>,
}

/// A device (a login session with its own keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Owner.
    pub user_id: String,
    /// Device ID.
    pub device_id: String,
    /// Human-readable name.
    pub display_name: Option<String>,
    /// Last use, POSIX milliseconds.
    pub last_seen_ts: Option<u64>,
    /// Last client address.
    pub last_seen_ip: Option<String>,
}

/// An access token, stored under a digest of the token (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenRecord {
    /// Owner.
    pub user_id: String,
    /// Device the token belongs to.
    pub device_id: String,
    /// Expiry, POSIX milliseconds; `None` for tokens that do not expire.
    pub expires_ts: Option<u64>,
}

/// An event as stored: its JSON and where it sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Event ID.
    pub event_id: String,
    /// The room.
    pub room_id: String,
    /// The room's partition.
    pub vshard: VShard,
    /// Position in the room's timeline, if it is in it (outliers are not).
    pub stream_pos: Option<StreamPos>,
    /// The event's JSON (the PDU as received or created).
    pub json: Vec<u8>,
}

/// Where a room stands, as its shard needs it to add the next event: kept
/// with every event the room's shard writes, so a restarted shard picks the
/// room up without replaying its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomHeadRecord {
    /// The room version (`m.room.create`'s `room_version`).
    pub room_version: String,
    /// The forward extremities: the events with no children yet, which the
    /// next event will reference as `prev_events`.
    pub forward_extremities: Vec<String>,
    /// The greatest `depth` in the room.
    pub depth: u64,
    /// The state group holding the room's current state.
    pub state_group: u64,
    /// How many deltas lead from `state_group` back to a snapshot.
    pub chain_len: u32,
    /// The next state group number to allocate.
    pub next_state_group: u64,
    /// The next event number to allocate.
    pub next_event_nid: EventNid,
    /// The next state key number to allocate.
    pub next_state_key_nid: StateKeyNid,
}

/// Global or per-room account data of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDataRecord {
    /// Owner.
    pub user_id: String,
    /// `None` for global account data.
    pub room_id: Option<String>,
    /// Event type, e.g. `m.direct`.
    pub data_type: String,
    /// Content JSON.
    pub content: Vec<u8>,
}

/// A user's membership of a room as the room sees it: one row per user who
/// has an `m.room.member` state event in the room (Client-Server API, "Room
/// membership"), so member lists and counts need no state walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMemberRecord {
    /// The member.
    pub user_id: String,
    /// `content.membership` of the current event: `join`, `invite`,
    /// `knock`, `leave` or `ban`.
    pub membership: String,
    /// The current `m.room.member` event.
    pub event_id: String,
}

/// A user's membership of a room as the user sees it (the rooms `/sync`
/// walks), filed under the user's vshard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRoomRecord {
    /// The room.
    pub room_id: String,
    /// As in [`RoomMemberRecord::membership`].
    pub membership: String,
}

/// A user's receipt in a room (Client-Server API, "Receipts"): the event up
/// to which the user has read, one per receipt type and thread ("Threaded
/// read receipts": a threaded receipt does not replace the unthreaded one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// `m.read` or `m.read.private`.
    pub receipt_type: String,
    /// Whose receipt.
    pub user_id: String,
    /// `None` for an unthreaded receipt; a thread root's event ID or `main`.
    pub thread_id: Option<String>,
    /// The event read up to.
    pub event_id: String,
    /// When, POSIX milliseconds.
    pub ts: u64,
}

/// A message waiting in a device's to-device inbox (Client-Server API,
/// "Send-to-Device messaging"): kept until the device acknowledges it by
/// syncing again with the token that followed it, then deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceRecord {
    /// Position in the device's inbox, increasing in order of arrival.
    pub pos: StreamPos,
    /// The event as `/sync` lists it (`sender`, `type`, `content`), JSON.
    pub message: Vec<u8>,
}

/// A device's identity keys as it uploaded them (Client-Server API, "Key
/// Distribution": `device_keys` of `POST /keys/upload`), served to other
/// users by `POST /keys/query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeysRecord {
    /// Owner.
    pub user_id: String,
    /// Device.
    pub device_id: String,
    /// The signed `DeviceKeys` object, JSON.
    pub keys: Vec<u8>,
}

/// A one-time key of a device (Client-Server API, "One-time and fallback
/// keys"): handed out to at most one claimer by `POST /keys/claim`, then
/// gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimeKeyRecord {
    /// Key algorithm, e.g. `signed_curve25519`.
    pub algorithm: String,
    /// Key ID within the algorithm (the part after `algorithm:`).
    pub key_id: String,
    /// The key (a string or a signed key object), JSON.
    pub key: Vec<u8>,
}

/// A signing key another server published (Server-Server API, "Retrieving
/// server keys"), kept to verify its requests and events without fetching
/// the key again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerKeyRecord {
    /// The server.
    pub server_name: String,
    /// Key ID, e.g. `ed25519:abc123`.
    pub key_id: String,
    /// The public key as published: unpadded base64.
    pub public_key: String,
    /// Until when the key may be used to verify, POSIX milliseconds.
    pub valid_until_ts: u64,
}

/// How sending to another server has been going: consecutive failures, and
/// when the next attempt may be made (backoff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationRecord {
    /// The server.
    pub destination: String,
    /// Failed attempts since the last success; 0 when sending works.
    pub failure_count: u32,
    /// No attempt before this, POSIX milliseconds.
    pub retry_after_ts: u64,
}

/// A PDU or EDU waiting to be sent to one server in a transaction
/// (Server-Server API, "Transactions"), deleted once a transaction holding
/// it has been accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRecord {
    /// Position in the destination's queue, increasing in order of sending.
    pub pos: StreamPos,
    /// An EDU (the transaction's `edus`), not a PDU (its `pdus`).
    pub edu: bool,
    /// The PDU or EDU, JSON.
    pub body: Vec<u8>,
}

/// What is known of a file uploaded to this server's content repository
/// (Client-Server API, "Content repository"), served with it by the
/// download endpoints; the bytes themselves are not in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// The media ID, the last part of its `mxc://` URI.
    pub media_id: String,
    /// `Content-Type` of the upload, if it gave one.
    pub content_type: Option<String>,
    /// The `filename` it was uploaded with, if any.
    pub upload_name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Who uploaded it.
    pub user_id: String,
    /// Upload time, POSIX milliseconds.
    pub created_ts: u64,
}

/// A local room alias (Client-Server API, "Room aliases"): `#name:server`
/// → room, with who created it (who may delete it besides admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// The full alias, `#name:server`.
    pub alias: String,
    /// The room it names.
    pub room_id: String,
    /// The user who created it.
    pub creator: String,
}

/// A registration token (spec: client-server API,
/// `m.login.registration_token`): lets someone register while registration
/// needs one. Valid while unexpired and not used up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationTokenRecord {
    /// The token itself (`[A-Za-z0-9._~-]`, at most 64 characters).
    pub token: String,
    /// Registrations it allows in all; `None` for unlimited.
    pub uses_allowed: Option<u32>,
    /// Registrations under way with it (counted against `uses_allowed`).
    pub pending: u32,
    /// Registrations completed with it.
    pub completed: u32,
    /// When it stops working, POSIX milliseconds; `None` for never.
    pub expiry_time: Option<u64>,
}

/// A process-wide number standing for a room in the keys of its state rows,
/// so a 100,000-row table does not repeat a 30-byte room ID 100,000 times.
/// The top 16 bits are the room's vshard (so a vshard's rows stay one key
/// range), the low 48 a counter of that vshard, allocated by its shard
/// ([`room_nid`]).
pub type RoomNid = u64;

/// The room number for counter value `counter` of `vshard`.
pub fn room_nid(vshard: VShard, counter: u64) -> RoomNid {
    (u64::from(vshard) << 48) | (counter & ((1 << 48) - 1))
}

/// A room-local number standing for an `(event type, state key)` pair, so
/// state entries are two small integers instead of two strings. Allocated
/// densely from 0 by the room's shard.
pub type StateKeyNid = u32;

/// A room-local number standing for an event ID, allocated densely from 0
/// by the room's shard.
pub type EventNid = u32;

/// One interned state key of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateKeyRecord {
    /// Its number.
    pub nid: StateKeyNid,
    /// Event type, e.g. `m.room.member`.
    pub event_type: String,
    /// State key, e.g. a user ID.
    pub state_key: String,
}

/// A room state: either a full snapshot, or the changes against a parent
/// state. The room's shard decides which (a new snapshot when the chain of
/// deltas behind a state grows long), so one membership change costs one
/// delta entry, not a copy of a 100,000-member state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateGroupRecord {
    /// The state this one changes; `None` for a full snapshot.
    pub parent: Option<u64>,
    /// The snapshot's entries, or the changes: state key → event, sorted
    /// by state key, each state key at most once.
    pub entries: Vec<(StateKeyNid, EventNid)>,
}

impl StateGroupRecord {
    /// Compact encoding: state keys as gaps from the previous one (mostly 1,
    /// so one byte), events as varints; about 4 bytes an entry.
    pub fn encode(&self) -> Vec<u8> {
        let mut prev = 0;
        let gaps: Vec<(u32, u32)> = self
            .entries
            .iter()
            .map(|&(key, event)| {
                let gap = key.wrapping_sub(prev);
                prev = key;
                (gap, event)
            })
            .collect();
        postcard::to_allocvec(&(self.parent, gaps)).expect("state groups always serialise")
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let (parent, gaps): (Option<u64>, Vec<(u32, u32)>) = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        let mut key = 0u32;
        let mut entries = Vec::with_capacity(gaps.len());
        for (i, (gap, event)) in gaps.into_iter().enumerate() {
            key = key.checked_add(gap).filter(|_| i == 0 || gap > 0).ok_or("state keys out of order")?;
            entries.push((key, event));
        }
        Ok(Self { parent, entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_group_encoding_round_trips_and_is_compact() {
        let group = StateGroupRecord { parent: None, entries: (0..10_000).map(|k| (k, k + 5)).collect() };
        let bytes = group.encode();
        assert_eq!(StateGroupRecord::decode(&bytes).unwrap(), group);
        assert!(bytes.len() < 10_000 * 4, "{} bytes", bytes.len());
    }

    #[test]
    fn unsorted_state_group_is_refused_on_decode() {
        let bad = postcard::to_allocvec(&(None::<u64>, vec![(5u32, 1u32), (0, 2)])).unwrap();
        assert!(StateGroupRecord::decode(&bad).is_err());
    }
}
