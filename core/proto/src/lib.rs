//! Matrix protocol primitives shared by every part of the homeserver.
//!
//! The crate is laid out the way the spec is:
//!
//! - [`canonical_json`]: the byte-exact encoding everything is signed over
//!   (appendices § Canonical JSON).
//! - [`identifiers`]: user, room, event IDs, aliases, server names, device
//!   and key IDs (appendices § Identifier Grammar).
//! - [`room_version`]: the per-version rules of rooms 1–12 as data.
//! - [`pdu`]: events as exchanged over federation, checked against their
//!   room version's format.
//! - [`redaction`]: the redaction algorithm of each room version.
//! - [`hashes`]: content hashes, reference hashes, event IDs.
//! - [`signatures`]: signing and verifying JSON objects and events.
//! - [`keys`]: server signing keys, their Synapse-compatible file format and
//!   the `/_matrix/key/v2/server` response.

pub mod canonical_json;
pub mod hashes;
pub mod identifiers;
pub mod keys;
pub mod pdu;
pub mod redaction;
pub mod room_version;
pub mod signatures;
