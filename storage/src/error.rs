//! Storage errors.

/// Why a storage call failed. Callers answer 500 and log it; no storage
/// error is the client's fault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The backend failed (I/O, corruption, lost connection).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored value could not be decoded.
    #[error("corrupt record in {keyspace}: {why}")]
    Corrupt {
        /// Where.
        keyspace: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The data was written by a newer schema than this build knows.
    #[error("the database has schema version {found}, newer than this build's {supported}: run the newer tessera")]
    NewerSchema {
        /// On disk.
        found: u32,
        /// This build.
        supported: u32,
    },
    /// The store is shutting down and takes no more writes.
    #[error("the store is closed")]
    Closed,
}

impl From<fjall::Error> for StorageError {
    fn from(e: fjall::Error) -> Self {
        Self::Backend(e.to_string())
    }
}

/// Result of a storage call.
pub type Result<T> = std::result::Result<T, StorageError>;
