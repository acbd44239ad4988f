//! Writes, as domain operations. A shard collects the operations of a
//! request and hands them to [`Store::write`](crate::Store::write) as one
//! atomic unit; the backend turns them into its own writes (keys or rows)
//! and commits many such units together (group commit).

use std::collections::HashMap;

use crate::records::{
    AccessTokenRecord, AccountDataRecord, AliasRecord, DestinationRecord, DeviceKeysRecord, DeviceRecord, EventNid,
    EventRecord, MediaRecord, OneTimeKeyRecord, OutboundRecord, ReceiptRecord, RegistrationTokenRecord, RoomHeadRecord,
    RoomNid, ServerKeyRecord, StateGroupRecord, StateKeyRecord, StreamPos, ToDeviceRecord, UserRecord, VShard,
};

/// One write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Creates or replaces an account.
    PutUser {
        /// The user's partition.
        vshard: VShard,
        /// The account.
        user: UserRecord,
    },
    /// Creates or replaces a device.
    PutDevice {
        /// The owner's partition.
        vshard: VShard,
        /// The device.
        device: DeviceRecord,
    },
    /// Deletes a device, every access token issued to it, its to-device
    /// inbox, its device keys and its one-time keys.
    DeleteDevice {
        /// The owner's partition.
        vshard: VShard,
        /// Owner.
        user_id: String,
        /// Device.
        device_id: String,
    },
    /// Stores an access token under its digest.
    PutAccessToken {
        /// Digest of the token (the caller hashes; the token itself is never
        /// stored).
        digest: Vec<u8>,
        /// Whose it is.
        token: AccessTokenRecord,
    },
    /// Deletes one access token.
    DeleteAccessToken {
        /// Digest of the token.
        digest: Vec<u8>,
    },
    /// Stores an event, and places it in its room's timeline if it has a
    /// stream position.
    PutEvent(EventRecord),
    /// Replaces a room's head (extremities, depth, current state, counters).
    PutRoomHead {
        /// The room's partition.
        vshard: VShard,
        /// The room.
        room_id: String,
        /// The head.
        head: RoomHeadRecord,
    },
    /// Creates or replaces a piece of account data.
    PutAccountData {
        /// The owner's partition.
        vshard: VShard,
        /// The data.
        data: AccountDataRecord,
    },
    /// Gives a room its number (once, when the room is first stored).
    PutRoomNid {
        /// The room's partition.
        vshard: VShard,
        /// The room.
        room_id: String,
        /// Its number.
        room: RoomNid,
    },
    /// Interns state keys of a room (new numbers only; a number never
    /// changes meaning).
    PutStateKeys {
        /// The room.
        room: RoomNid,
        /// The new keys.
        keys: Vec<StateKeyRecord>,
    },
    /// Interns event IDs of a room, both ways (number to ID and back).
    PutEventNids {
        /// The room.
        room: RoomNid,
        /// (number, event ID) pairs.
        events: Vec<(EventNid, String)>,
    },
    /// Records the auth events of numbered events of a room: the auth-chain
    /// index. Written with the event; never changes.
    PutAuthEvents {
        /// The room.
        room: RoomNid,
        /// (event, its auth events), by number.
        events: Vec<(EventNid, Vec<EventNid>)>,
    },
    /// Stores a room state (snapshot or delta) under its group number.
    PutStateGroup {
        /// The room.
        room: RoomNid,
        /// The group's number, unique within the room.
        group: u64,
        /// The state.
        state: StateGroupRecord,
    },
    /// Sets a user's membership of a room, in both directions: the room's
    /// member list (under the room's vshard) and the user's room list (under
    /// the user's), so neither read crosses partitions.
    PutMembership {
        /// The room's partition.
        vshard_room: VShard,
        /// The user's partition.
        vshard_user: VShard,
        /// The room.
        room_id: String,
        /// The member.
        user_id: String,
        /// `join`, `invite`, `knock`, `leave` or `ban`.
        membership: String,
        /// The `m.room.member` event that set it.
        event_id: String,
    },
    /// Forgets a room for a user (Client-Server API, "Leaving rooms"): drops
    /// the user's row of the room, so `user_rooms` no longer lists it; the
    /// room's member row stays. The next `PutMembership` brings it back.
    ForgetRoom {
        /// The user's partition.
        vshard_user: VShard,
        /// The user.
        user_id: String,
        /// The room.
        room_id: String,
    },
    /// Creates or replaces a user's receipt of one type and thread in a room.
    PutReceipt {
        /// The room's partition.
        vshard: VShard,
        /// The room.
        room_id: String,
        /// The receipt.
        receipt: ReceiptRecord,
    },
    /// Appends a message to a device's to-device inbox. The recipient's
    /// shard allocates the position (above every earlier one of the device,
    /// e.g. from a stream it records with `SetStreamPosition`).
    PutToDevice {
        /// The recipient's partition.
        vshard: VShard,
        /// Recipient.
        user_id: String,
        /// Recipient device.
        device_id: String,
        /// The message and its position.
        message: ToDeviceRecord,
    },
    /// Deletes the messages of a device's inbox up to and including
    /// position `up_to` (those the device has acknowledged).
    DeleteToDevice {
        /// The recipient's partition.
        vshard: VShard,
        /// Recipient.
        user_id: String,
        /// Recipient device.
        device_id: String,
        /// Last acknowledged position.
        up_to: StreamPos,
    },
    /// Creates or replaces a device's identity keys.
    PutDeviceKeys {
        /// The owner's partition.
        vshard: VShard,
        /// The keys.
        keys: DeviceKeysRecord,
    },
    /// Adds one-time keys to a device. A key ID is one row: uploading it
    /// again replaces its key rather than adding a second one.
    PutOneTimeKeys {
        /// The owner's partition.
        vshard: VShard,
        /// Owner.
        user_id: String,
        /// Device.
        device_id: String,
        /// The keys.
        keys: Vec<OneTimeKeyRecord>,
    },
    /// Takes (reads and deletes, in one step) one one-time key of an
    /// algorithm from a device, so no two claims get the same key. Issued
    /// by [`Store::claim_one_time_key`](crate::Store::claim_one_time_key),
    /// which returns the key taken; in a plain `write` the key is deleted
    /// unseen.
    ClaimOneTimeKey {
        /// The owner's partition.
        vshard: VShard,
        /// Owner.
        user_id: String,
        /// Device.
        device_id: String,
        /// Algorithm, e.g. `signed_curve25519`.
        algorithm: String,
    },
    /// Stores signing keys of another server (replacing those with the same
    /// server and key ID).
    PutServerKeys {
        /// The keys.
        keys: Vec<ServerKeyRecord>,
    },
    /// Creates or replaces the retry state of a destination.
    PutDestination(DestinationRecord),
    /// Appends a PDU or EDU to a destination's outbound queue. The sending
    /// shard allocates the position, above every earlier one of the
    /// destination.
    PutOutbound {
        /// The server it goes to.
        destination: String,
        /// The PDU or EDU and its position.
        item: OutboundRecord,
    },
    /// Deletes a destination's queued items up to and including position
    /// `up_to` (those a transaction has delivered).
    DeleteOutbound {
        /// The server.
        destination: String,
        /// Last delivered position.
        up_to: StreamPos,
    },
    /// Creates or replaces the metadata of an uploaded file.
    PutMedia(MediaRecord),
    /// Creates or replaces a room alias.
    PutAlias(AliasRecord),
    /// Deletes a room alias.
    DeleteAlias {
        /// The alias.
        alias: String,
    },
    /// Creates or replaces a registration token.
    PutRegistrationToken(RegistrationTokenRecord),
    /// Deletes a registration token.
    DeleteRegistrationToken {
        /// The token.
        token: String,
    },
    /// Lists a room in the public room directory, or removes it.
    SetRoomPublished {
        /// The room.
        room_id: String,
        /// Listed or not.
        published: bool,
    },
    /// Records how far a named stream has got (e.g. a shard's event stream).
    SetStreamPosition {
        /// Stream name.
        stream: String,
        /// Position.
        pos: StreamPos,
    },
}

impl Op {
    /// `ops` with each room's interning writes (state keys, event numbers,
    /// auth events) merged into the first of their kind, in order: a room
    /// joined over federation numbers 100,000 events one op at a time, and
    /// PostgreSQL would rewrite a packed row once per op instead of once.
    /// The batch is written atomically, and nothing else in it reads these
    /// rows, so where in the batch they land does not matter.
    pub fn merge_interning(ops: Vec<Op>) -> Vec<Op> {
        let mut merged: Vec<Op> = Vec::with_capacity(ops.len());
        // (kind, room) -> index in `merged` of the op that collects them.
        let mut first: HashMap<(u8, RoomNid), usize> = HashMap::new();
        for op in ops {
            let slot = match &op {
                Op::PutStateKeys { room, .. } => Some((0, *room)),
                Op::PutEventNids { room, .. } => Some((1, *room)),
                Op::PutAuthEvents { room, .. } => Some((2, *room)),
                _ => None,
            };
            let Some(slot) = slot else {
                merged.push(op);
                continue;
            };
            let Some(&at) = first.get(&slot) else {
                first.insert(slot, merged.len());
                merged.push(op);
                continue;
            };
            match (&mut merged[at], op) {
                (Op::PutStateKeys { keys, .. }, Op::PutStateKeys { keys: more, .. }) => keys.extend(more),
                (Op::PutEventNids { events, .. }, Op::PutEventNids { events: more, .. }) => events.extend(more),
                (Op::PutAuthEvents { events, .. }, Op::PutAuthEvents { events: more, .. }) => events.extend(more),
                (_, op) => unreachable!("slot {slot:?} holds another kind than {op:?}"),
            }
        }
        merged
    }

    /// The operation that claims one of a device's one-time keys for
    /// `algorithm`, as `Store::claim_one_time_key` submits it.
    pub(crate) fn claim_one_time_key(vshard: VShard, user_id: &str, device_id: &str, algorithm: &str) -> Self {
        Self::ClaimOneTimeKey {
            vshard,
            user_id: user_id.into(),
            device_id: device_id.into(),
            algorithm: algorithm.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_writes_merge_per_room_and_kind_in_order() {
        let key = |nid| StateKeyRecord { nid, event_type: "m.room.member".into(), state_key: format!("@{nid}:x") };
        let ops = vec![
            Op::PutEventNids { room: 1, events: vec![(0, "$a".into())] },
            Op::PutStateKeys { room: 1, keys: vec![key(0)] },
            Op::PutEventNids { room: 2, events: vec![(0, "$other".into())] },
            Op::SetStreamPosition { stream: "s".into(), pos: 3 },
            Op::PutEventNids { room: 1, events: vec![(1, "$b".into())] },
            Op::PutStateKeys { room: 1, keys: vec![key(1)] },
            Op::PutAuthEvents { room: 1, events: vec![(1, vec![0])] },
        ];
        assert_eq!(
            Op::merge_interning(ops),
            [
                Op::PutEventNids { room: 1, events: vec![(0, "$a".into()), (1, "$b".into())] },
                Op::PutStateKeys { room: 1, keys: vec![key(0), key(1)] },
                Op::PutEventNids { room: 2, events: vec![(0, "$other".into())] },
                Op::SetStreamPosition { stream: "s".into(), pos: 3 },
                Op::PutAuthEvents { room: 1, events: vec![(1, vec![0])] },
            ]
        );
    }
}
