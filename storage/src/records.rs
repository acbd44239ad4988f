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
