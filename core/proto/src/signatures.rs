//! Signing and verifying JSON objects and events (spec: appendices § Signing
//! JSON, § Checking for a Signature; server-server API § Signing Events).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::canonical_json::{write_object_except, Object, Value};
use crate::ed25519;
use crate::hashes::{content_hash, write_signed_part, EVENT_BUFFER_BYTES, NOT_SIGNED};
use crate::keys::{PublicKey, SigningKey, LENIENT_BASE64};
use crate::room_version::RoomVersionRules;

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("object has no `signatures` object")]
    MissingSignatures,
    #[error("no signatures from {0}")]
    NoSignaturesFrom(String),
    #[error("no signature from {0} by an ed25519 key we know and that was valid at the time")]
    NoKnownKey(String),
    #[error("signature {key_id} from {entity} is not valid base64 of 64 bytes")]
    MalformedSignature { entity: String, key_id: String },
    #[error("signature {key_id} from {entity} does not match")]
    BadSignature { entity: String, key_id: String },
    #[error("event has no `hashes.sha256` string")]
    MissingContentHash,
    #[error("event `{field}` is missing or not a valid identifier")]
    MissingField { field: &'static str },
}

/// Signs `object` as `entity` ("the name of the entity signing it", usually
/// the server name) with `key`: the canonical JSON of the object without
/// `signatures` and `unsigned` is signed, and the signature is added under
/// `signatures.<entity>.<key id>`, alongside any existing signatures.
pub fn sign_json(object: &mut Object, entity: &str, key: &SigningKey) {
    let mut json = Vec::with_capacity(512);
    write_object_except(object, NOT_SIGNED, &mut json);
    add_signature(object, entity, key, &json);
}

fn add_signature(object: &mut Object, entity: &str, key: &SigningKey, signed_bytes: &[u8]) {
    let signature = STANDARD_NO_PAD.encode(key.sign(signed_bytes));
    if object.get("signatures").and_then(Value::as_object).is_none() {
        object.insert("signatures", Object::new());
    }
    let signatures = object.get_mut("signatures").and_then(Value::as_object_mut).expect("just ensured");
    if signatures.get(entity).and_then(Value::as_object).is_none() {
        signatures.insert(entity, Object::new());
    }
    let entity_signatures = signatures.get_mut(entity).and_then(Value::as_object_mut).expect("just ensured");
    entity_signatures.insert(key.key_id().as_str(), signature);
}

/// A verify key we know for some server, and until when it may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownKey {
    pub key: PublicKey,
    /// POSIX milliseconds after which the key must not be trusted: the
    /// `valid_until_ts` of a current key, or `expired_ts` of an old one.
    /// `None` for no limit.
    pub valid_until_ts: Option<u64>,
}

/// The verify keys known for each server, by key ID, for checking signatures.
#[derive(Debug, Clone, Default)]
pub struct KnownKeys {
    servers: HashMap<String, HashMap<String, KnownKey>>,
}

impl KnownKeys {
    /// An empty key set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `key` as `server`'s key `key_id` (e.g. `ed25519:a_AbCd`).
    pub fn insert(&mut self, server: &str, key_id: &str, key: KnownKey) {
        self.servers.entry(server.to_owned()).or_default().insert(key_id.to_owned(), key);
    }

    /// Adds every key of `other` (replacing keys with the same IDs).
    pub fn merge(&mut self, other: KnownKeys) {
        for (server, keys) in other.servers {
            self.servers.entry(server).or_default().extend(keys);
        }
    }

    fn get(&self, server: &str, key_id: &str) -> Option<&KnownKey> {
        self.servers.get(server)?.get(key_id)
    }
}

/// Checks that `entity` signed `object`, following § Checking for a
/// Signature: signatures with algorithms other than ed25519 and from keys we
/// do not know are skipped; at least one must remain, and all that remain
/// must be valid.
pub fn verify_json(object: &Object, entity: &str, keys: &KnownKeys) -> Result<(), VerifyError> {
    let mut json = Vec::with_capacity(512);
    write_object_except(object, NOT_SIGNED, &mut json);
    let signatures = object.get("signatures").and_then(Value::as_object).ok_or(VerifyError::MissingSignatures)?;
    verify_entity(signatures, entity, keys, None, &json)
}

/// Verifies `entity`'s signatures over `signed_bytes`, ignoring keys that
/// expired before `at_ts` when it is given.
fn verify_entity(
    signatures: &Object,
    entity: &str,
    keys: &KnownKeys,
    at_ts: Option<u64>,
    signed_bytes: &[u8],
) -> Result<(), VerifyError> {
    let entity_signatures = signatures
        .get(entity)
        .and_then(Value::as_object)
        .ok_or_else(|| VerifyError::NoSignaturesFrom(entity.to_owned()))?;
    let mut verified_any = false;
    for (key_id, signature) in entity_signatures.iter() {
        if !key_id.starts_with("ed25519:") {
            continue;
        }
        let Some(known) = keys.get(entity, key_id) else { continue };
        if let (Some(at), Some(until)) = (at_ts, known.valid_until_ts) {
            if at > until {
                continue;
            }
        }
        let malformed = || VerifyError::MalformedSignature { entity: entity.to_owned(), key_id: key_id.to_owned() };
        let encoded = signature.as_str().ok_or_else(malformed)?;
        let bytes = decode_array::<64>(encoded).ok_or_else(malformed)?;
        if !ed25519::verify(&known.key.0, signed_bytes, &bytes) {
            return Err(VerifyError::BadSignature { entity: entity.to_owned(), key_id: key_id.to_owned() });
        }
        verified_any = true;
    }
    if verified_any {
        Ok(())
    } else {
        Err(VerifyError::NoKnownKey(entity.to_owned()))
    }
}

/// Decodes base64 of exactly `N` bytes, padded or not (spec: appendices §
/// Unpadded Base64, implementations "SHOULD accept input with or without
/// padding").
fn decode_array<const N: usize>(encoded: &str) -> Option<[u8; N]> {
    // Room for the decoder's length estimate, which rounds up to whole
    // 3-byte groups.
    let mut buffer = [0u8; 66];
    let bytes = buffer.get_mut(..N.div_ceil(3) * 3)?;
    match LENIENT_BASE64.decode_slice(encoded, bytes) {
        Ok(len) if len == N => bytes[..N].try_into().ok(),
        _ => None,
    }
}

/// Adds `hashes.sha256` and this server's signature to an outgoing event
/// (spec: § Adding hashes and signatures to outgoing events).
pub fn hash_and_sign_event(event: &mut Object, server_name: &str, key: &SigningKey, rules: &RoomVersionRules) {
    let hash = STANDARD_NO_PAD.encode(content_hash(event));
    let mut hashes = Object::new();
    hashes.insert("sha256", hash);
    event.insert("hashes", hashes);
    let mut json = Vec::with_capacity(EVENT_BUFFER_BYTES);
    write_signed_part(event, rules, &mut json);
    add_signature(event, server_name, key, &json);
}

/// Whether the content hash matched, after the signatures did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentHash {
    /// The event is complete as sent.
    Matches,
    /// Spec: "it is assumed that this is because we have only been given a
    /// redacted version of the event": use the redacted form.
    Mismatch,
}

/// The outcome of [`verify_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedEvent {
    pub content_hash: ContentHash,
    /// The event's reference hash, computed from the same bytes the
    /// signatures cover; [`crate::hashes::event_id`] would compute it again.
    pub reference_hash: [u8; 32],
}

/// The servers whose signatures an event needs (spec: § Validating hashes
/// and signatures on received events): the `sender`'s server, except for an
/// invite made from a third-party invite; in rooms v1–2 also the `event_id`'s
/// server; and, in rooms with restricted joins (v8+), for a join carrying
/// `join_authorised_via_users_server`, that user's server.
///
/// The spec only requires the originating server here and leaves the
/// authoriser's signature to auth rule 4.2 (reject rather than drop), but
/// Synapse (`_check_sigs_on_pdu` in `federation/federation_base.py`) and
/// ruma (`required_server_signatures_to_verify_event`) both drop a join
/// whose authorising server did not sign; we do the same so we do not keep
/// events the rest of the federation never stores. Like Synapse, only joins
/// are held to it: the field means nothing on other memberships.
pub fn required_signers<'a>(event: &'a Object, rules: &RoomVersionRules) -> Result<Vec<&'a str>, VerifyError> {
    let field =
        |field: &'static str| event.get(field).and_then(Value::as_str).ok_or(VerifyError::MissingField { field });
    let server_of = |id: &'a str, field: &'static str| {
        id.split_once(':').map(|(_, server)| server).ok_or(VerifyError::MissingField { field })
    };
    let content = event.get("content").and_then(Value::as_object);
    let content_str = |key: &str| content.and_then(|c| c.get(key)).and_then(Value::as_str);
    let is_member = event.get("type").and_then(Value::as_str) == Some("m.room.member");
    let membership = content_str("membership");

    let mut servers = Vec::with_capacity(2);
    let third_party_invite =
        is_member && membership == Some("invite") && content.is_some_and(|c| c.get("third_party_invite").is_some());
    if !third_party_invite {
        servers.push(server_of(field("sender")?, "sender")?);
    }
    if rules.event_id_server_signs {
        servers.push(server_of(field("event_id")?, "event_id")?);
    }
    if rules.restricted_join_rule && is_member && membership == Some("join") {
        if let Some(authoriser) = content_str("join_authorised_via_users_server") {
            servers.push(server_of(authoriser, "content.join_authorised_via_users_server")?);
        }
    }
    servers.sort_unstable();
    servers.dedup();
    Ok(servers)
}

/// Verifies a received event: the signatures of every required server over
/// its redacted form, then its content hash. Keys that expired before the
/// event's `origin_server_ts` are skipped in rooms that enforce key validity.
pub fn verify_event(event: &Object, rules: &RoomVersionRules, keys: &KnownKeys) -> Result<VerifiedEvent, VerifyError> {
    let signatures = event.get("signatures").and_then(Value::as_object).ok_or(VerifyError::MissingSignatures)?;
    let claimed_hash = event
        .get("hashes")
        .and_then(Value::as_object)
        .and_then(|hashes| hashes.get("sha256"))
        .and_then(Value::as_str)
        .ok_or(VerifyError::MissingContentHash)?;
    let at_ts = match rules.enforce_key_validity {
        true => Some(
            event
                .get("origin_server_ts")
                .and_then(Value::as_integer)
                .and_then(|ts| u64::try_from(ts).ok())
                .ok_or(VerifyError::MissingField { field: "origin_server_ts" })?,
        ),
        false => None,
    };

    let mut signed_bytes = Vec::with_capacity(EVENT_BUFFER_BYTES);
    write_signed_part(event, rules, &mut signed_bytes);
    for server in required_signers(event, rules)? {
        verify_entity(signatures, server, keys, at_ts, &signed_bytes)?;
    }

    let hash_matches = decode_array::<32>(claimed_hash) == Some(content_hash(event));
    Ok(VerifiedEvent {
        content_hash: if hash_matches { ContentHash::Matches } else { ContentHash::Mismatch },
        reference_hash: Sha256::digest(&signed_bytes).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical_json::parse_object;

    fn member_event(membership: &str) -> (Object, KnownKeys, &'static RoomVersionRules) {
        let rules = RoomVersionRules::get("10").unwrap();
        let key = SigningKey::from_seed("1", [1; 32]).unwrap();
        let mut event = parse_object(
            format!(
                r#"{{"type":"m.room.member","state_key":"@u:example.org","sender":"@u:example.org",
                    "room_id":"!r:example.org","origin_server_ts":1,"depth":1,"prev_events":[],"auth_events":[],
                    "content":{{"membership":"{membership}","join_authorised_via_users_server":"@a:other.example"}}}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        hash_and_sign_event(&mut event, "example.org", &key, rules);
        let mut keys = KnownKeys::new();
        let known = KnownKey { key: key.public_key(), valid_until_ts: None };
        keys.insert("example.org", "ed25519:1", known);
        keys.insert("other.example", "ed25519:1", known);
        (event, keys, rules)
    }

    /// Synapse drops only joins whose authorising server did not sign; a
    /// leave or invite that happens to carry the field must not be dropped.
    #[test]
    fn non_join_with_authoriser_field_is_not_dropped_for_its_missing_signature() {
        for membership in ["leave", "invite", "ban", "knock"] {
            let (event, keys, rules) = member_event(membership);
            assert_eq!(verify_event(&event, rules, &keys).map(|v| v.content_hash), Ok(ContentHash::Matches));
        }
    }

    /// As Synapse and ruma do, a restricted join the authorising server did
    /// not sign is dropped on receipt.
    #[test]
    fn join_without_authorising_server_signature_is_dropped_like_synapse() {
        let (mut event, keys, rules) = member_event("join");
        assert_eq!(
            verify_event(&event, rules, &keys).map(|_| ()),
            Err(VerifyError::NoSignaturesFrom("other.example".into()))
        );
        let authoriser = SigningKey::from_seed("1", [1; 32]).unwrap();
        let mut json = Vec::new();
        write_signed_part(&event, rules, &mut json);
        add_signature(&mut event, "other.example", &authoriser, &json);
        assert!(verify_event(&event, rules, &keys).is_ok());
    }
}
