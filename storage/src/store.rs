//! The store's interface: what the homeserver can ask of any backend.

use std::future::Future;

use std::collections::BTreeMap;

use crate::error::{Result, StorageError};
use crate::ops::Op;
use crate::records::{
    AccessTokenRecord, AccountDataRecord, AliasRecord, DestinationRecord, DeviceKeysRecord, DeviceRecord, EventNid,
    EventRecord, MediaRecord, OneTimeKeyRecord, OutboundRecord, ReceiptRecord, RegistrationTokenRecord, RoomHeadRecord,
    RoomMemberRecord, RoomNid, ServerKeyRecord, StateGroupRecord, StateKeyNid, StateKeyRecord, StreamPos,
    ToDeviceRecord, UserRecord, UserRoomRecord, VShard,
};

/// Longest chain of deltas `state_at` will follow: a chain this long means a
/// missing snapshot or a cycle, not a real state.
pub const MAX_STATE_CHAIN: usize = 10_000;

/// An auth chain as [`Store::auth_chain`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthChain {
    /// Every event in it, sorted by number.
    Events(Vec<EventNid>),
    /// An event on the way has no auth events recorded (stored before the
    /// index existed): the caller walks the events themselves instead.
    NotIndexed,
    /// More events than the limit asked.
    TooLarge,
}

/// Which way a timeline is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first.
    Backward,
}

/// A backend, as one shard sees it. Handles are per shard (`!Send` is fine);
/// the data behind them is shared by all shards.
///
/// `write` resolves once the operations are durable (on disk, or committed
/// in PostgreSQL) unless durability was switched off for a benchmark. Reads
/// see every write that has resolved, on any shard.
pub trait Store {
    /// Applies `ops` atomically: all of them or none.
    fn write(&self, ops: Vec<Op>) -> impl Future<Output = Result<()>>;

    /// An account.
    fn user(&self, vshard: VShard, user_id: &str) -> impl Future<Output = Result<Option<UserRecord>>>;

    /// A device.
    fn device(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
    ) -> impl Future<Output = Result<Option<DeviceRecord>>>;

    /// Every device of a user, by device ID.
    fn devices(&self, vshard: VShard, user_id: &str) -> impl Future<Output = Result<Vec<DeviceRecord>>>;

    /// The access token with this digest.
    fn access_token(&self, digest: &[u8]) -> impl Future<Output = Result<Option<AccessTokenRecord>>>;

    /// An event by ID.
    fn event(&self, event_id: &str) -> impl Future<Output = Result<Option<EventRecord>>>;

    /// Up to `limit` timeline entries `(position, event ID)` of a room,
    /// strictly after `from` going forward or strictly before it going
    /// backward (`None`: from the start or the end).
    fn timeline(
        &self,
        vshard: VShard,
        room_id: &str,
        from: Option<StreamPos>,
        direction: Direction,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(StreamPos, String)>>>;

    /// A room's head (`None`: no event of the room has been stored).
    fn room_head(&self, vshard: VShard, room_id: &str) -> impl Future<Output = Result<Option<RoomHeadRecord>>>;

    /// One piece of account data (`room_id: None` for global).
    fn account_data(
        &self,
        vshard: VShard,
        user_id: &str,
        room_id: Option<&str>,
        data_type: &str,
    ) -> impl Future<Output = Result<Option<AccountDataRecord>>>;

    /// All of a user's account data, global and per room.
    fn all_account_data(&self, vshard: VShard, user_id: &str) -> impl Future<Output = Result<Vec<AccountDataRecord>>>;

    /// How far a named stream has got.
    fn stream_position(&self, stream: &str) -> impl Future<Output = Result<Option<StreamPos>>>;

    /// A room's number, if it has one.
    fn room_nid(&self, vshard: VShard, room_id: &str) -> impl Future<Output = Result<Option<RoomNid>>>;

    /// Every interned state key of a room, by number.
    fn state_keys(&self, room: RoomNid) -> impl Future<Output = Result<Vec<StateKeyRecord>>>;

    /// The event IDs of these event numbers of a room (`None` where a number
    /// is unknown), in the order asked.
    fn event_ids_of(&self, room: RoomNid, nids: &[EventNid]) -> impl Future<Output = Result<Vec<Option<String>>>>;

    /// The numbers of these event IDs in a room (`None` where an ID is not
    /// interned in it), in the order asked.
    fn event_nids_of(&self, room: RoomNid, ids: &[String]) -> impl Future<Output = Result<Vec<Option<EventNid>>>>;

    /// The recorded auth events of these events of a room (`None` where
    /// none were recorded), in the order asked.
    fn auth_events_of(
        &self,
        room: RoomNid,
        nids: &[EventNid],
    ) -> impl Future<Output = Result<Vec<Option<Vec<EventNid>>>>>;

    /// The auth chain of `from`: every event reachable through auth events,
    /// read level by level from the index (one batch per level of the auth
    /// graph, not one read per event).
    fn auth_chain(&self, room: RoomNid, from: &[EventNid], limit: usize) -> impl Future<Output = Result<AuthChain>> {
        async move {
            let mut seen = std::collections::HashSet::new();
            let mut level = from.to_vec();
            while !level.is_empty() {
                let mut next = Vec::new();
                for auth in self.auth_events_of(room, &level).await? {
                    let Some(auth) = auth else { return Ok(AuthChain::NotIndexed) };
                    next.extend(auth.into_iter().filter(|&a| seen.insert(a)));
                }
                if seen.len() > limit {
                    return Ok(AuthChain::TooLarge);
                }
                level = next;
            }
            let mut chain: Vec<EventNid> = seen.into_iter().collect();
            chain.sort_unstable();
            Ok(AuthChain::Events(chain))
        }
    }

    /// One stored state group, as stored (snapshot or delta).
    fn state_group(&self, room: RoomNid, group: u64) -> impl Future<Output = Result<Option<StateGroupRecord>>>;

    /// A room's members with this membership (`None`: every membership),
    /// by user ID.
    fn room_members(
        &self,
        vshard: VShard,
        room_id: &str,
        membership: Option<&str>,
    ) -> impl Future<Output = Result<Vec<RoomMemberRecord>>>;

    /// The rooms a user has this membership of (`None`: any), by room ID.
    fn user_rooms(
        &self,
        vshard: VShard,
        user_id: &str,
        membership: Option<&str>,
    ) -> impl Future<Output = Result<Vec<UserRoomRecord>>>;

    /// Every receipt in a room, by receipt type, user and thread (the
    /// unthreaded receipt first).
    fn receipts(&self, vshard: VShard, room_id: &str) -> impl Future<Output = Result<Vec<ReceiptRecord>>>;

    /// Up to `limit` messages of a device's to-device inbox with a position
    /// strictly after `after`, oldest first.
    fn to_device(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        after: StreamPos,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ToDeviceRecord>>>;

    /// The identity keys of every device of a user that uploaded some, by
    /// device ID.
    fn device_keys(&self, vshard: VShard, user_id: &str) -> impl Future<Output = Result<Vec<DeviceKeysRecord>>>;

    /// How many one-time keys a device has left, per algorithm, by
    /// algorithm (`one_time_key_counts` of `/sync` and `/keys/upload`).
    fn one_time_key_counts(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, u64)>>>;

    /// Takes one one-time key of `algorithm` from a device, durably deleted
    /// before it is returned, never the same key to two claims (`None`: the
    /// device has none left).
    fn claim_one_time_key(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
    ) -> impl Future<Output = Result<Option<OneTimeKeyRecord>>>;

    /// The signing keys stored for a server, by key ID.
    fn server_keys(&self, server_name: &str) -> impl Future<Output = Result<Vec<ServerKeyRecord>>>;

    /// The retry state of a destination (`None`: never failed).
    fn destination(&self, destination: &str) -> impl Future<Output = Result<Option<DestinationRecord>>>;

    /// Up to `limit` queued items of a destination with a position strictly
    /// after `after`, oldest first.
    fn outbound(
        &self,
        destination: &str,
        after: StreamPos,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OutboundRecord>>>;

    /// A room alias.
    fn alias(&self, alias: &str) -> impl Future<Output = Result<Option<AliasRecord>>>;

    /// A registration token.
    fn registration_token(&self, token: &str) -> impl Future<Output = Result<Option<RegistrationTokenRecord>>>;

    /// Every registration token, sorted by token.
    fn registration_tokens(&self) -> impl Future<Output = Result<Vec<RegistrationTokenRecord>>>;

    /// Every alias of a room, sorted.
    fn room_aliases(&self, room_id: &str) -> impl Future<Output = Result<Vec<String>>>;

    /// The rooms listed in the public room directory, sorted.
    fn published_rooms(&self) -> impl Future<Output = Result<Vec<String>>>;

    /// The metadata of an uploaded file.
    fn media(&self, media_id: &str) -> impl Future<Output = Result<Option<MediaRecord>>>;

    /// The full state of a group: its chain of deltas applied to the
    /// snapshot it starts from. Sorted by state key.
    fn state_at(
        &self,
        room: RoomNid,
        group: u64,
    ) -> impl Future<Output = Result<Option<Vec<(StateKeyNid, EventNid)>>>> {
        async move {
            let mut chain = Vec::new();
            let mut next = Some(group);
            while let Some(id) = next {
                let Some(state) = self.state_group(room, id).await? else {
                    return if chain.is_empty() {
                        Ok(None)
                    } else {
                        Err(StorageError::Corrupt { keyspace: "state_groups", why: format!("missing parent {id}") })
                    };
                };
                if chain.len() == MAX_STATE_CHAIN {
                    let why = format!("state group {group} has a chain longer than {MAX_STATE_CHAIN}");
                    return Err(StorageError::Corrupt { keyspace: "state_groups", why });
                }
                next = state.parent;
                chain.push(state.entries);
            }
            // Oldest first, so newer changes overwrite older entries.
            let mut state = BTreeMap::new();
            for entries in chain.into_iter().rev() {
                state.extend(entries);
            }
            Ok(Some(state.into_iter().collect()))
        }
    }
}
