//! Tessera's store: plain records (IDs, bytes, positions) over
//! interchangeable backends.
//!
//! This crate knows nothing of Matrix types. Today it holds the data
//! directory itself ([`data_dir`]): the on-disk home every backend lives in,
//! its format stamp, and the lock that keeps two servers out of one
//! directory. The record traits and the fjall and PostgreSQL backends build
//! on it.

pub mod data_dir;
