//! Property tests: canonicalisation is stable, redaction never breaks the
//! reference hash or signatures, event IDs have their version's shape, and
//! no input makes the parser panic.

mod common;

use common::{any_version, event, json_value};
use proptest::prelude::*;
use tessera_proto::canonical_json::{parse, parse_object, to_bytes};
use tessera_proto::hashes::{event_id, reference_hash};
use tessera_proto::identifiers::EventIdFormat;
use tessera_proto::keys::SigningKey;
use tessera_proto::redaction::redact;
use tessera_proto::signatures::{hash_and_sign_event, verify_event, ContentHash, KnownKey, KnownKeys};

fn key() -> SigningKey {
    SigningKey::from_seed("1", [7; 32]).unwrap()
}

fn known_keys() -> KnownKeys {
    let mut keys = KnownKeys::new();
    for server in ["example.org", "other.example"] {
        keys.insert(server, "ed25519:1", KnownKey { key: key().public_key(), valid_until_ts: None });
    }
    keys
}

proptest! {
    #![proptest_config(common::config(128))]

    #[test]
    fn parse_canonicalise_parse_is_stable(value in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
        let first = parse(text.as_bytes()).unwrap();
        let canonical = to_bytes(&first);
        let second = parse(&canonical).unwrap();
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(to_bytes(&second), canonical);
    }

    #[test]
    fn every_redacted_event_still_verifies_its_reference_hash(
        (rules, event) in any_version().prop_flat_map(|rules| (Just(rules), event(rules.id)))
    ) {
        let mut event = parse_object(serde_json::to_string(&event).unwrap().as_bytes()).unwrap();
        hash_and_sign_event(&mut event, "example.org", &key(), rules);
        // Joins authorised by another server carry its signature too.
        hash_and_sign_event(&mut event, "other.example", &key(), rules);
        let original = verify_event(&event, rules, &known_keys()).unwrap();
        prop_assert_eq!(original.content_hash, ContentHash::Matches);

        let redacted = redact(&event, rules);
        let verified = verify_event(&redacted, rules, &known_keys()).unwrap();
        prop_assert_eq!(verified.reference_hash, original.reference_hash);
        prop_assert_eq!(reference_hash(&redacted, rules), original.reference_hash);
        prop_assert_eq!(event_id(&redacted, rules).unwrap(), event_id(&event, rules).unwrap());
        // Redacting twice changes nothing.
        prop_assert_eq!(redact(&redacted, rules), redacted);
    }

    #[test]
    fn event_ids_have_the_shape_of_their_room_version(
        (rules, event) in any_version().prop_flat_map(|rules| (Just(rules), event(rules.id)))
    ) {
        let mut event = parse_object(serde_json::to_string(&event).unwrap().as_bytes()).unwrap();
        hash_and_sign_event(&mut event, "example.org", &key(), rules);
        let id = event_id(&event, rules).unwrap();
        prop_assert!(id.is_valid_for(rules.event_id_format));
        let body = &id.as_str()[1..];
        match rules.event_id_format {
            EventIdFormat::DomainScoped => prop_assert_eq!(id.server_name(), Some("example.org")),
            EventIdFormat::Base64 => prop_assert!(body.len() == 43 && !body.contains(['-', '_', ':'])),
            EventIdFormat::UrlSafeBase64 => prop_assert!(body.len() == 43 && !body.contains(['+', '/', ':'])),
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parser_never_panics_on_mutated_json(value in json_value(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = serde_json::to_vec(&value).unwrap();
        let at = cut.index(bytes.len() + 1);
        bytes.insert(at, byte);
        let _ = parse(&bytes);
        bytes.truncate(at);
        let _ = parse(&bytes);
    }
}
