//! The embedded database's schema version and migrations.
//!
//! The version lives in the `meta` keyspace. Opening a database written by a
//! newer build fails with a clear error instead of misreading it; opening an
//! older one runs the migrations in order, each in one atomic batch.

use crate::error::{Result, StorageError};

/// The schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

const VERSION_KEY: &[u8] = b"schema_version";

/// Checks (and on a new database, stamps) the schema version.
pub(crate) fn check(db: &fjall::Database, meta: &fjall::Keyspace) -> Result<()> {
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
    // Version 1 is the first schema: no migrations exist yet. When version 2
    // comes, its migration runs here for `found == 1`.
    Ok(())
}

/// Overwrites the stored version (tests of the newer-schema refusal).
#[cfg(test)]
pub(crate) fn stamp(db: &fjall::Database, meta: &fjall::Keyspace, version: u32) -> Result<()> {
    meta.insert(VERSION_KEY, version.to_be_bytes().as_slice())?;
    db.persist(fjall::PersistMode::SyncAll)?;
    Ok(())
}
