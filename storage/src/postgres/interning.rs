//! A room's interning tables on PostgreSQL: state keys and event IDs by
//! number, packed [`CHUNK`] numbers to a row.
//!
//! One row per number cost about 120 bytes a member in a 100,000-member
//! room (heap tuple header, item pointer and primary-key index entry for a
//! 30-byte payload), three times the 40-byte goal. Packed, a row holds the
//! entries of numbers `chunk * CHUNK ..` one after another; a row past
//! about 2 KB is compressed by PostgreSQL's TOAST, which does well on
//! state keys (`m.room.member` and user IDs repeat their parts). New
//! entries are appended to their row by the server (`entries || new`),
//! so interning one more key sends only that key; re-interning a number
//! appends again and the later entry wins when read.
//!
//! Entry layout: number (u32, big-endian), then each string as a u16
//! big-endian byte length and its UTF-8 bytes: `(event type, state key)`
//! for state keys, `event ID` for events. The auth-chain index packs the
//! same way: an event's number, a u16 count, then its auth events'
//! numbers (u32 each). Event numbers by ID are packed by a hash of the ID
//! instead: [`id_hash`] (u64) and the number (u32), `BUCKETS` rows a room.

use std::collections::{BTreeMap, HashMap};

use crate::error::{Result, StorageError};
pub(crate) use crate::keys::id_hash;
use crate::records::StateKeyRecord;

/// Numbers per row.
pub const CHUNK: u32 = 128;

/// The row a number is in.
fn chunk_of(nid: u32) -> i32 {
    (nid / CHUNK) as i32
}

/// The rows that hold `nids`, each once: what a read of them selects.
pub fn chunks_of(nids: &[u32]) -> Vec<i32> {
    let mut chunks: Vec<i32> = nids.iter().map(|&n| chunk_of(n)).collect();
    chunks.sort_unstable();
    chunks.dedup();
    chunks
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Event types, state keys and event IDs are at most 255 bytes (spec),
    // checked before they get here; the cut is only a guard.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Entries (a number and its strings) packed per row: `(chunk, bytes)`,
/// chunks ascending.
fn pack<'a, const N: usize>(entries: impl Iterator<Item = (u32, [&'a str; N])>) -> (Vec<i32>, Vec<Vec<u8>>) {
    pack_with(entries, |out, strings| strings.into_iter().for_each(|s| put_str(out, s)))
}

/// Entries packed per row, each a number followed by what `put` writes of
/// its payload.
fn pack_with<T>(entries: impl Iterator<Item = (u32, T)>, put: impl Fn(&mut Vec<u8>, T)) -> (Vec<i32>, Vec<Vec<u8>>) {
    pack_rows(entries.map(|(nid, payload)| (chunk_of(nid), (nid, payload))), |out, (nid, payload)| {
        out.extend_from_slice(&nid.to_be_bytes());
        put(out, payload);
    })
}

/// Entries packed into the rows their keys name, each as `put` writes it.
fn pack_rows<T>(entries: impl Iterator<Item = (i32, T)>, put: impl Fn(&mut Vec<u8>, T)) -> (Vec<i32>, Vec<Vec<u8>>) {
    let mut rows: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
    for (row, entry) in entries {
        put(rows.entry(row).or_default(), entry);
    }
    rows.into_iter().unzip()
}

/// Rows per room of event numbers by ID: an ID's row is picked by its hash.
const BUCKETS: u64 = 1024;

/// The row of an ID's hash.
pub fn bucket_of(hash: u64) -> i32 {
    (hash % BUCKETS) as i32
}

/// The `(hash, number)` entries to append for these events, per row:
/// 12 bytes an event where a row per event would take about 140.
pub fn encode_id_buckets(events: &[(u32, String)]) -> (Vec<i32>, Vec<Vec<u8>>) {
    let entries = events.iter().map(|(nid, id)| (id_hash(id), *nid));
    pack_rows(entries.map(|(hash, nid)| (bucket_of(hash), (hash, nid))), |out, (hash, nid)| {
        out.extend_from_slice(&hash.to_be_bytes());
        out.extend_from_slice(&nid.to_be_bytes());
    })
}

/// The numbers in `rows` by ID hash, in the order appended.
pub fn decode_id_buckets<'a>(rows: impl Iterator<Item = &'a [u8]>) -> Result<HashMap<u64, Vec<u32>>> {
    let mut all: HashMap<u64, Vec<u32>> = HashMap::new();
    for row in rows {
        if row.len() % 12 != 0 {
            let why = "entry cut short".into();
            return Err(StorageError::Corrupt { keyspace: "room_event_id_buckets", why });
        }
        for entry in row.chunks_exact(12) {
            let (hash, nid) = entry.split_at(8);
            let hash = u64::from_be_bytes(hash.try_into().expect("8 bytes"));
            all.entry(hash).or_default().push(u32::from_be_bytes(nid.try_into().expect("4 bytes")));
        }
    }
    Ok(all)
}

/// The state keys to append, per row.
pub fn encode_state_keys(keys: &[StateKeyRecord]) -> (Vec<i32>, Vec<Vec<u8>>) {
    pack(keys.iter().map(|k| (k.nid, [k.event_type.as_str(), k.state_key.as_str()])))
}

/// The `(number, event ID)` pairs to append, per row.
pub fn encode_event_ids(events: &[(u32, String)]) -> (Vec<i32>, Vec<Vec<u8>>) {
    pack(events.iter().map(|(nid, id)| (*nid, [id.as_str()])))
}

/// The auth events to append, per row: each entry the event's number, a
/// u16 count and that many numbers.
pub fn encode_auth_events(events: &[(u32, Vec<u32>)]) -> (Vec<i32>, Vec<Vec<u8>>) {
    pack_with(events.iter().map(|(nid, auth)| (*nid, auth)), |out, auth| {
        // An event has at most a handful of auth events (10 in v1 rooms);
        // the cut is only a guard.
        let auth = &auth[..auth.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(auth.len() as u16).to_be_bytes());
        auth.iter().for_each(|a| out.extend_from_slice(&a.to_be_bytes()));
    })
}

/// Every event's auth events in `rows`, by number.
pub fn decode_auth_events<'a>(rows: impl Iterator<Item = &'a [u8]>) -> Result<BTreeMap<u32, Vec<u32>>> {
    let corrupt = |why: &str| StorageError::Corrupt { keyspace: "room_auth_event_chunks", why: why.into() };
    let mut all = BTreeMap::new();
    for mut bytes in rows {
        while !bytes.is_empty() {
            let (nid, rest) = bytes.split_first_chunk::<4>().ok_or_else(|| corrupt("entry cut short"))?;
            let (count, rest) = rest.split_first_chunk::<2>().ok_or_else(|| corrupt("count cut short"))?;
            let (list, rest) = rest
                .split_at_checked(u16::from_be_bytes(*count) as usize * 4)
                .ok_or_else(|| corrupt("list cut short"))?;
            let auth = list.chunks_exact(4).map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]])).collect();
            all.insert(u32::from_be_bytes(*nid), auth);
            bytes = rest;
        }
    }
    Ok(all)
}

/// Reads a row's entries, each with `strings` strings, into `out` (a later
/// entry for a number replaces an earlier one).
fn decode(table: &'static str, mut bytes: &[u8], strings: usize, out: &mut BTreeMap<u32, Vec<String>>) -> Result<()> {
    let corrupt = |why: &str| StorageError::Corrupt { keyspace: table, why: why.into() };
    while !bytes.is_empty() {
        let (nid, rest) = bytes.split_first_chunk::<4>().ok_or_else(|| corrupt("entry cut short"))?;
        bytes = rest;
        let mut parts = Vec::with_capacity(strings);
        for _ in 0..strings {
            let (len, rest) = bytes.split_first_chunk::<2>().ok_or_else(|| corrupt("length cut short"))?;
            let len = u16::from_be_bytes(*len) as usize;
            let (s, rest) = rest.split_at_checked(len).ok_or_else(|| corrupt("string cut short"))?;
            parts.push(String::from_utf8(s.to_vec()).map_err(|_| corrupt("not UTF-8"))?);
            bytes = rest;
        }
        out.insert(u32::from_be_bytes(*nid), parts);
    }
    Ok(())
}

/// Every state key in `rows`, by number.
pub fn decode_state_keys<'a>(rows: impl Iterator<Item = &'a [u8]>) -> Result<Vec<StateKeyRecord>> {
    let mut all = BTreeMap::new();
    for row in rows {
        decode("room_state_key_chunks", row, 2, &mut all)?;
    }
    Ok(all
        .into_iter()
        .map(|(nid, mut parts)| {
            let state_key = parts.pop().unwrap_or_default();
            let event_type = parts.pop().unwrap_or_default();
            StateKeyRecord { nid, event_type, state_key }
        })
        .collect())
}

/// Every event ID in `rows`, by number.
pub fn decode_event_ids<'a>(rows: impl Iterator<Item = &'a [u8]>) -> Result<BTreeMap<u32, String>> {
    let mut all = BTreeMap::new();
    for row in rows {
        decode("room_event_nid_chunks", row, 1, &mut all)?;
    }
    Ok(all.into_iter().map(|(nid, mut parts)| (nid, parts.pop().unwrap_or_default())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(nid: u32, state_key: &str) -> StateKeyRecord {
        StateKeyRecord { nid, event_type: "m.room.member".into(), state_key: state_key.into() }
    }

    #[test]
    fn entries_round_trip_by_row_and_a_later_entry_wins() {
        let (chunks, rows) = encode_state_keys(&[key(1, "@a:x"), key(129, "@b:x"), key(2, "")]);
        assert_eq!(chunks, [0, 1]);
        let mut first = rows[0].clone();
        first.extend(encode_state_keys(&[key(1, "@again:x")]).1[0].clone());
        let back = decode_state_keys([first.as_slice(), rows[1].as_slice()].into_iter()).unwrap();
        assert_eq!(back, [key(1, "@again:x"), key(2, ""), key(129, "@b:x")]);
        let (_, ids) = encode_event_ids(&[(5, "$e".into())]);
        assert_eq!(decode_event_ids(ids.iter().map(Vec::as_slice)).unwrap()[&5], "$e");
    }

    #[test]
    fn ids_by_hash_keep_every_number_of_a_colliding_hash() {
        let (buckets, rows) = encode_id_buckets(&[(1, "$a".into()), (2, "$b".into()), (3, "$a".into())]);
        assert_eq!(buckets.len(), rows.len());
        let found = decode_id_buckets(rows.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(found[&id_hash("$a")], [1, 3]);
        assert_eq!(found[&id_hash("$b")], [2]);
        assert_eq!(id_hash("$a"), 0x07b8_4f07_b483_b2d6, "FNV-1a, stable: it is on disk");
        assert!(decode_id_buckets([&rows[0][..11]].into_iter()).is_err());
    }

    #[test]
    fn auth_events_round_trip_and_a_cut_row_is_corruption() {
        let (chunks, rows) = encode_auth_events(&[(3, vec![0, 1, 2]), (200, vec![]), (4, vec![3])]);
        assert_eq!(chunks, [0, 1]);
        let back = decode_auth_events(rows.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(back.into_iter().collect::<Vec<_>>(), [(3, vec![0, 1, 2]), (4, vec![3]), (200, vec![])]);
        // Any cut inside the first entry (number, count, three numbers).
        for cut in 1..4 + 2 + 3 * 4 {
            assert!(decode_auth_events([&rows[0][..cut]].into_iter()).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_cut_or_garbled_row_is_corruption_not_a_panic() {
        let (_, rows) = encode_state_keys(&[key(1, "@a:x")]);
        let row = &rows[0];
        for cut in 1..row.len() {
            assert!(decode_state_keys([&row[..cut]].into_iter()).is_err(), "cut at {cut}");
        }
        assert!(decode_event_ids([&[0, 0, 0, 1, 0, 2, 0xff, 0xfe][..]].into_iter()).is_err());
    }
}
