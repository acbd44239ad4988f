//! Key layout of the key-value backend (see `docs/storage.md`).
//!
//! Keys of room- and user-scoped rows start with the row's virtual shard
//! (2 bytes, big-endian), so one vshard's rows are one contiguous range per
//! keyspace: a vshard can be scanned, copied or moved on its own. Parts are
//! separated by a 0x00 byte, which no Matrix identifier contains; positions
//! are big-endian so byte order is numeric order.

use crate::records::{RoomNid, StreamPos, VShard};

const SEP: u8 = 0;

/// `vshard ‖ id`
pub(crate) fn scoped(vshard: VShard, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + id.len() + 1 + 16);
    key.extend_from_slice(&vshard.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// `vshard ‖ id ‖ 0x00`: the prefix of every row under `id`.
pub(crate) fn scoped_prefix(vshard: VShard, id: &str) -> Vec<u8> {
    let mut key = scoped(vshard, id);
    key.push(SEP);
    key
}

/// `vshard ‖ id ‖ 0x00 ‖ sub`: a row under `id`, such as a user's device
/// (user, device), a room's member (room, user) or a user's room (user, room).
pub(crate) fn scoped_pair(vshard: VShard, id: &str, sub: &str) -> Vec<u8> {
    let mut key = scoped_prefix(vshard, id);
    key.extend_from_slice(sub.as_bytes());
    key
}

/// `user ‖ 0x00 ‖ device ‖ 0x00 ‖ digest`: the tokens of a device.
pub(crate) fn device_token(user_id: &str, device_id: &str, digest: &[u8]) -> Vec<u8> {
    let mut key = device_tokens_prefix(user_id, device_id);
    key.extend_from_slice(digest);
    key
}

/// `server ‖ 0x00 ‖ key ID`: a signing key of another server.
pub(crate) fn server_key(server_name: &str, key_id: &str) -> Vec<u8> {
    let mut key = unscoped_prefix(server_name);
    key.extend_from_slice(key_id.as_bytes());
    key
}

/// `room ‖ 0x00 ‖ alias`: an alias of a room.
pub(crate) fn room_alias(room_id: &str, alias: &str) -> Vec<u8> {
    let mut key = unscoped_prefix(room_id);
    key.extend_from_slice(alias.as_bytes());
    key
}

/// `user ‖ 0x00 ‖ device ‖ 0x00`
pub(crate) fn device_tokens_prefix(user_id: &str, device_id: &str) -> Vec<u8> {
    let mut key = unscoped_prefix(user_id);
    key.extend_from_slice(device_id.as_bytes());
    key.push(SEP);
    key
}

/// `vshard ‖ room ‖ 0x00 ‖ position`
pub(crate) fn timeline(vshard: VShard, room_id: &str, pos: StreamPos) -> Vec<u8> {
    let mut key = scoped_prefix(vshard, room_id);
    key.extend_from_slice(&pos.to_be_bytes());
    key
}

/// The position at the end of a timeline or queue key.
pub(crate) fn trailing_pos(key: &[u8]) -> Option<StreamPos> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(StreamPos::from_be_bytes(tail))
}

/// `room number ‖ number` (state keys, event numbers). The room number
/// starts with the vshard, so these rows too are grouped by vshard.
pub(crate) fn room_nid(room: RoomNid, nid: u32) -> [u8; 12] {
    let mut key = [0; 12];
    key[..8].copy_from_slice(&room.to_be_bytes());
    key[8..].copy_from_slice(&nid.to_be_bytes());
    key
}

/// A stable 64-bit hash of an event ID (FNV-1a), for finding an event's
/// number by ID without storing the ID twice. Not a defence: event IDs of
/// room versions 1 and 2 are chosen by other servers and can be made to
/// collide, so a lookup confirms each candidate through the number → ID
/// rows.
pub(crate) fn id_hash(event_id: &str) -> u64 {
    event_id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3))
}

/// `room number ‖ hash of an event ID ‖ event number`
pub(crate) fn room_hash_nid(room: RoomNid, hash: u64, nid: u32) -> [u8; 20] {
    let mut key = [0; 20];
    key[..8].copy_from_slice(&room.to_be_bytes());
    key[8..16].copy_from_slice(&hash.to_be_bytes());
    key[16..].copy_from_slice(&nid.to_be_bytes());
    key
}

/// `room number ‖ group`
pub(crate) fn state_group(room: RoomNid, group: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&room.to_be_bytes());
    key[8..].copy_from_slice(&group.to_be_bytes());
    key
}

/// `vshard ‖ user ‖ 0x00 ‖ room or empty ‖ 0x00 ‖ type`
pub(crate) fn account_data(vshard: VShard, user_id: &str, room_id: Option<&str>, data_type: &str) -> Vec<u8> {
    let mut key = scoped_prefix(vshard, user_id);
    key.extend_from_slice(room_id.unwrap_or("").as_bytes());
    key.push(SEP);
    key.extend_from_slice(data_type.as_bytes());
    key
}

/// `vshard ‖ room ‖ 0x00 ‖ receipt type ‖ 0x00 ‖ user ‖ 0x00 ‖ thread or
/// empty`: so the unthreaded receipt sorts before the threaded ones.
pub(crate) fn receipt(
    vshard: VShard,
    room_id: &str,
    receipt_type: &str,
    user_id: &str,
    thread_id: Option<&str>,
) -> Vec<u8> {
    let mut key = scoped_prefix(vshard, room_id);
    for part in [receipt_type, user_id] {
        key.extend_from_slice(part.as_bytes());
        key.push(SEP);
    }
    key.extend_from_slice(thread_id.unwrap_or("").as_bytes());
    key
}

/// `vshard ‖ user ‖ 0x00 ‖ device ‖ 0x00`: the prefix of a device's
/// to-device inbox and of its one-time keys.
pub(crate) fn device_prefix(vshard: VShard, user_id: &str, device_id: &str) -> Vec<u8> {
    let mut key = scoped_pair(vshard, user_id, device_id);
    key.push(SEP);
    key
}

/// `prefix ‖ position`: a row of a queue (a to-device inbox, an outbound
/// federation queue).
pub(crate) fn positioned(prefix: &[u8], pos: StreamPos) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&pos.to_be_bytes());
    key
}

/// `id ‖ 0x00`: the prefix of every row under an ID that has no vshard (a
/// server name, a destination).
pub(crate) fn unscoped_prefix(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1 + 16);
    key.extend_from_slice(id.as_bytes());
    key.push(SEP);
    key
}

/// `vshard ‖ user ‖ 0x00 ‖ device ‖ 0x00 ‖ algorithm ‖ 0x00`: the one-time
/// keys of one algorithm of a device.
pub(crate) fn one_time_keys_prefix(vshard: VShard, user_id: &str, device_id: &str, algorithm: &str) -> Vec<u8> {
    let mut key = device_prefix(vshard, user_id, device_id);
    key.extend_from_slice(algorithm.as_bytes());
    key.push(SEP);
    key
}

/// `vshard ‖ user ‖ 0x00 ‖ device ‖ 0x00 ‖ algorithm ‖ 0x00 ‖ key ID`
pub(crate) fn one_time_key(vshard: VShard, user_id: &str, device_id: &str, algorithm: &str, key_id: &str) -> Vec<u8> {
    let mut key = one_time_keys_prefix(vshard, user_id, device_id, algorithm);
    key.extend_from_slice(key_id.as_bytes());
    key
}

/// The algorithm of a one-time key key, after the device's prefix.
pub(crate) fn one_time_key_algorithm(tail: &[u8]) -> Option<&[u8]> {
    tail.iter().position(|&b| b == SEP).map(|end| &tail[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_keys_sort_by_position() {
        let a = timeline(7, "!r:x", 9);
        let b = timeline(7, "!r:x", 256);
        assert!(a < b);
        assert_eq!(trailing_pos(&b), Some(256));
    }

    #[test]
    fn one_room_is_not_a_prefix_of_another() {
        // "!r:x" must not match the rows of "!r:xy".
        let prefix = scoped_prefix(1, "!r:x");
        assert!(!timeline(1, "!r:xy", 1).starts_with(&prefix));
    }

    #[test]
    fn vshard_leads_every_scoped_key() {
        assert_eq!(&scoped(0x0102, "@a:b")[..2], &[1, 2]);
    }
}
