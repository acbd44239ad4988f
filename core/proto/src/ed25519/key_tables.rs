//! Which keys get a [`Table`]: per thread (a shard verifies on its own
//! thread, so no lock), the keys that verified [`BUILD_AFTER`] signatures,
//! at most [`MAX_TABLES`] of them, the least recently used given up first.
//! A key seen a few times (a server met once) never pays the build.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ed25519_dalek::VerifyingKey;

use super::fixed_base::{Table, KEY_WINDOW};

/// Verifications with a key before its table is built (the build is
/// repaid after about 50 more).
const BUILD_AFTER: u32 = 64;
/// Tables kept per thread: 4 × 640 KiB. A server shares most rooms with a
/// handful of busy servers.
const MAX_TABLES: usize = 4;
/// Keys counted per thread before the counts start over, so that a stream
/// of one-off keys cannot grow the map.
const MAX_COUNTED: usize = 4096;

type KeyTable = Rc<Table<KEY_WINDOW>>;

#[derive(Default)]
struct KeyTables {
    uses: HashMap<[u8; 32], u32>,
    /// Most recently used last.
    tables: Vec<([u8; 32], KeyTable)>,
}

thread_local! {
    static TABLES: RefCell<KeyTables> = RefCell::default();
}

/// The table of `-key` if `key` is used often enough to have one, counting
/// this use.
pub(super) fn table_for(key: &VerifyingKey) -> Option<KeyTable> {
    let bytes = key.to_bytes();
    TABLES.with_borrow_mut(|cache| {
        if let Some(at) = cache.tables.iter().position(|(k, _)| *k == bytes) {
            let entry = cache.tables.remove(at);
            let table = entry.1.clone();
            cache.tables.push(entry);
            return Some(table);
        }
        if cache.uses.len() >= MAX_COUNTED && !cache.uses.contains_key(&bytes) {
            cache.uses.clear();
        }
        let uses = cache.uses.entry(bytes).or_insert(0);
        *uses += 1;
        if *uses < BUILD_AFTER {
            return None;
        }
        cache.uses.remove(&bytes);
        let table = Rc::new(Table::new(&-key.to_edwards()));
        if cache.tables.len() == MAX_TABLES {
            cache.tables.remove(0);
        }
        cache.tables.push((bytes, table.clone()));
        Some(table)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key(seed: u8) -> VerifyingKey {
        SigningKey::from_bytes(&[seed; 32]).verifying_key()
    }

    #[test]
    fn a_table_comes_after_enough_uses_and_the_least_recently_used_goes_first() {
        let first = key(1);
        for _ in 1..BUILD_AFTER {
            assert!(table_for(&first).is_none(), "built too early");
        }
        let table = table_for(&first).expect("built");
        assert!(Rc::ptr_eq(&table, &table_for(&first).unwrap()), "kept, not rebuilt");
        for seed in 2..2 + MAX_TABLES as u8 {
            for _ in 0..BUILD_AFTER {
                table_for(&key(seed));
            }
        }
        TABLES.with_borrow(|cache| {
            assert_eq!(cache.tables.len(), MAX_TABLES);
            assert!(cache.tables.iter().all(|(k, _)| *k != first.to_bytes()), "the oldest was given up");
        });
    }
}
