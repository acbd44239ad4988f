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
//! - [`request_auth`]: the `X-Matrix` signatures on requests between servers.

//!
//! # Example
//!
//! ```
//! use tessera_proto::canonical_json::Object;
//! use tessera_proto::identifiers::ServerName;
//! use tessera_proto::keys::{format_key_file, parse_key_file, server_keys_response, SigningKey};
//! use tessera_proto::signatures::{sign_json, verify_json, KnownKey, KnownKeys};
//!
//! // A key file in Synapse's format, as an operator would migrate it.
//! let key = SigningKey::generate()?;
//! let keys = parse_key_file(&format_key_file(&[key]))?;
//!
//! // The body of GET /_matrix/key/v2/server, valid for a day.
//! let server = ServerName::parse("example.org")?;
//! let body = server_keys_response(&server, &keys, &[], 1_700_086_400_000)?;
//! assert!(body.starts_with(br#"{"old_verify_keys":{},"server_name":"example.org","#));
//!
//! // Signing any JSON object, e.g. one converted from serde_json.
//! let mut request = Object::try_from(serde_json::json!({"method": "GET", "uri": "/x"}))?;
//! sign_json(&mut request, "example.org", &keys[0]);
//! let mut known = KnownKeys::new();
//! let public = KnownKey { key: keys[0].public_key(), valid_until_ts: None };
//! known.insert("example.org", keys[0].key_id().as_str(), public);
//! verify_json(&request, "example.org", &known)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod canonical_json;
mod ed25519;
pub mod hashes;
pub mod identifiers;
pub mod keys;
pub mod pdu;
pub mod redaction;
pub mod request_auth;
pub mod room_version;
pub mod signatures;
