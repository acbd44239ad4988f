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
//! for state keys, `event ID` for events.

use std::collections::BTreeMap;

use crate::error::{Result, StorageError};
use crate::records::StateKeyRecord;

/// Numbers per row.
pub const CHUNK: u32 = 128;

/// The row a number is in.
pub fn chunk_of(nid: u32) -> i32 {
    (nid / CHUNK) as i32
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
    let mut rows: BTreeMap<i32, Vec<u8>> = BTreeMap::new();
    for (nid, strings) in entries {
        let out = rows.entry(chunk_of(nid)).or_default();
        out.extend_from_slice(&nid.to_be_bytes());
        strings.into_iter().for_each(|s| put_str(out, s));
    }
    rows.into_iter().unzip()
}

/// The state keys to append, per row.
pub fn encode_state_keys(keys: &[StateKeyRecord]) -> (Vec<i32>, Vec<Vec<u8>>) {
    pack(keys.iter().map(|k| (k.nid, [k.event_type.as_str(), k.state_key.as_str()])))
}

/// The `(number, event ID)` pairs to append, per row.
pub fn encode_event_ids(events: &[(u32, String)]) -> (Vec<i32>, Vec<Vec<u8>>) {
    pack(events.iter().map(|(nid, id)| (*nid, [id.as_str()])))
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
    fn a_cut_or_garbled_row_is_corruption_not_a_panic() {
        let (_, rows) = encode_state_keys(&[key(1, "@a:x")]);
        let row = &rows[0];
        for cut in 1..row.len() {
            assert!(decode_state_keys([&row[..cut]].into_iter()).is_err(), "cut at {cut}");
        }
        assert!(decode_event_ids([&[0, 0, 0, 1, 0, 2, 0xff, 0xfe][..]].into_iter()).is_err());
    }
}
