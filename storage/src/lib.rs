//! Tessera's store: plain records (IDs, bytes, positions) over
//! interchangeable backends. This crate knows nothing of Matrix types.
//!
//! - [`Store`]: what the homeserver may ask of a backend, per shard.
//! - [`Op`]: writes, as domain operations committed atomically and durably.
//! - [`records`]: the rows.
//! - [`embedded`]: the default backend, fjall in the data directory, with
//!   group commit on a committer thread per shard.
//! - [`postgres`]: PostgreSQL through tokio-postgres on the caller's
//!   runtime, for large deployments; group commit in one transaction.
//! - [`data_dir`]: the data directory itself: format stamp and lock.
//!
//! Every backend passes the same conformance suite (`conformance.rs`).

#[cfg(test)]
mod conformance;
pub mod data_dir;
pub mod embedded;
mod error;
mod group_commit;
mod keys;
mod ops;
pub mod postgres;
pub mod records;
mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use error::{Result, StorageError};
pub use ops::Op;
pub use store::{AuthChain, Direction, Store};
