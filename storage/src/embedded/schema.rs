//! The embedded database's schema version and migrations.
//!
//! The version lives in the `meta` keyspace. Opening a database written by a
//! newer build fails with a clear error instead of misreading it; opening an
//! older one runs the migrations in order, each in one atomic batch.

use super::Keyspaces;
use crate::error::{Result, StorageError};

/// The schema this build reads and writes.
///
/// 2: `event_nids_by_id` (event numbers looked up by ID) and `auth_events`
/// (the auth-chain index). Migrating fills the first from `event_nids`;
/// the index starts with the events written from then on (older ones are
/// walked from their JSON).
pub const SCHEMA_VERSION: u32 = 2;

const VERSION_KEY: &[u8] = b"schema_version";

/// Checks (and on a new database, stamps) the schema version.
pub(crate) fn check(db: &fjall::Database, ks: &Keyspaces) -> Result<()> {
    let meta = &ks.meta;
    let found =
        match meta.get(VERSION_KEY)? {
            None => {
                // A new database starts at the current version: there is
                // nothing to migrate.
                let mut batch = db.batch();
                batch.insert(meta, VERSION_KEY, SCHEMA_VERSION.to_be_bytes().as_slice());
                batch.commit()?;
                db.persist(fjall::PersistMode::SyncAll)?;
                return Ok(());
            }
            Some(bytes) => u32::from_be_bytes(bytes.as_ref().try_into().map_err(|_| StorageError::Corrupt {
                keyspace: "meta",
                why: "schema_version is not 4 bytes".into(),
            })?),
        };
    if found > SCHEMA_VERSION {
        return Err(StorageError::NewerSchema { found, supported: SCHEMA_VERSION });
    }
    if found < 2 {
        to_v2(db, ks)?;
    }
    Ok(())
}

/// Entries written per batch by a migration: bounds its memory on a large
/// database.
const MIGRATION_BATCH: usize = 100_000;

/// Fills `event_nids_by_id` from `event_nids` (keys `room ‖ number`) in
/// batches, then stamps version 2. The entries are idempotent, so a crash
/// part-way leaves version 1 and the next start fills them again.
fn to_v2(db: &fjall::Database, ks: &Keyspaces) -> Result<()> {
    let mut batch = db.batch();
    let mut in_batch = 0;
    for entry in ks.event_nids.iter() {
        let (key, event_id) = entry.into_inner()?;
        let corrupt = || StorageError::Corrupt { keyspace: "event_nids", why: "key is not room ‖ number".into() };
        let (room, nid) = key.split_first_chunk::<8>().ok_or_else(corrupt)?;
        let nid: [u8; 4] = nid.try_into().map_err(|_| corrupt())?;
        let event_id = std::str::from_utf8(&event_id)
            .map_err(|_| StorageError::Corrupt { keyspace: "event_nids", why: "event ID is not UTF-8".into() })?;
        let key = crate::keys::room_hash_nid(
            u64::from_be_bytes(*room),
            crate::keys::id_hash(event_id),
            u32::from_be_bytes(nid),
        );
        batch.insert(&ks.event_nids_by_id, key.as_slice(), []);
        in_batch += 1;
        if in_batch == MIGRATION_BATCH {
            std::mem::replace(&mut batch, db.batch()).commit()?;
            in_batch = 0;
        }
    }
    batch.insert(&ks.meta, VERSION_KEY, 2u32.to_be_bytes().as_slice());
    batch.commit()?;
    db.persist(fjall::PersistMode::SyncAll)?;
    Ok(())
}

/// Overwrites the stored version (tests of the newer-schema refusal).
#[cfg(test)]
pub(crate) fn stamp(db: &fjall::Database, meta: &fjall::Keyspace, version: u32) -> Result<()> {
    meta.insert(VERSION_KEY, version.to_be_bytes().as_slice())?;
    db.persist(fjall::PersistMode::SyncAll)?;
    Ok(())
}
