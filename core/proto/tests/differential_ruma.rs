//! Differential tests against ruma (dev-dependency only) on generated
//! events for every room version: identical canonical bytes, hashes, event
//! IDs, redactions and signatures, and each side verifies the other's
//! signatures.

mod common;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use common::{any_version, event, json_value};
use proptest::prelude::*;
use ruma_common::canonical_json::{CanonicalJsonObject, CanonicalJsonValue};
use ruma_common::room_version_rules::RoomVersionRules as RumaRules;
use ruma_common::serde::Base64;
use tessera_proto::canonical_json::{parse, parse_object, to_bytes, Object, Value};
use tessera_proto::hashes::{content_hash, event_id};
use tessera_proto::keys::SigningKey;
use tessera_proto::redaction::redact;
use tessera_proto::signatures::{hash_and_sign_event, verify_event, ContentHash, KnownKey, KnownKeys};

const SEED: [u8; 32] = [42; 32];

fn ruma_rules(version: &str) -> RumaRules {
    match version {
        "1" => RumaRules::V1,
        "2" => RumaRules::V2,
        "3" => RumaRules::V3,
        "4" => RumaRules::V4,
        "5" => RumaRules::V5,
        "6" => RumaRules::V6,
        "7" => RumaRules::V7,
        "8" => RumaRules::V8,
        "9" => RumaRules::V9,
        "10" => RumaRules::V10,
        "11" => RumaRules::V11,
        "12" => RumaRules::V12,
        other => panic!("no ruma rules for {other}"),
    }
}

fn ruma_key() -> ruma_signatures::Ed25519KeyPair {
    // PKCS#8 v1 wrapping of an ed25519 seed (RFC 8410).
    const PKCS8_V1_PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let der = [&PKCS8_V1_PREFIX[..], &SEED].concat();
    ruma_signatures::Ed25519KeyPair::from_der(&der, "1".into()).unwrap()
}

fn our_key() -> SigningKey {
    SigningKey::from_seed("1", SEED).unwrap()
}

fn ruma_object(text: &str) -> CanonicalJsonObject {
    serde_json::from_str(text).unwrap()
}

fn ruma_bytes(object: &CanonicalJsonObject) -> Vec<u8> {
    serde_json::to_vec(&CanonicalJsonValue::Object(object.clone())).unwrap()
}

fn ours_bytes(object: &Object) -> Vec<u8> {
    to_bytes(&Value::Object(object.clone()))
}

proptest! {
    #![proptest_config(common::config(64))]

    #[test]
    fn canonical_json_matches_ruma(value in json_value()) {
        let text = serde_json::to_string_pretty(&value).unwrap();
        let ours = to_bytes(&parse(text.as_bytes()).unwrap());
        let theirs: CanonicalJsonValue = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(ours, serde_json::to_vec(&theirs).unwrap());
    }

    #[test]
    fn hashes_redaction_and_signatures_match_ruma(
        (rules, event) in any_version().prop_flat_map(|rules| (Just(rules), event(rules.id)))
    ) {
        let text = serde_json::to_string(&event).unwrap();
        let ruma_rules = ruma_rules(rules.id);
        let ours = parse_object(text.as_bytes()).unwrap();
        let theirs = ruma_object(&text);

        prop_assert_eq!(
            STANDARD_NO_PAD.encode(content_hash(&ours)),
            ruma_signatures::content_hash(&theirs).unwrap().encode()
        );
        let ruma_redacted = ruma_common::canonical_json::redact(theirs.clone(), &ruma_rules.redaction, None).unwrap();
        prop_assert_eq!(ours_bytes(&redact(&ours, rules)), ruma_bytes(&ruma_redacted));

        let mut ours_signed = ours.clone();
        hash_and_sign_event(&mut ours_signed, "example.org", &our_key(), rules);
        let mut ruma_signed = theirs.clone();
        ruma_signatures::hash_and_sign_event("example.org", &ruma_key(), &mut ruma_signed, &ruma_rules.redaction).unwrap();
        prop_assert_eq!(ours_bytes(&ours_signed), ruma_bytes(&ruma_signed));

        let id = event_id(&ours_signed, rules).unwrap();
        if !rules.event_id_server_signs {
            let ruma_hash = ruma_signatures::reference_hash(&ruma_signed, &ruma_rules).unwrap();
            prop_assert_eq!(&id.as_str()[1..], ruma_hash.as_str());
        }

        // Each side verifies the other's signed event.
        let mut keys = KnownKeys::new();
        keys.insert("example.org", "ed25519:1", KnownKey { key: our_key().public_key(), valid_until_ts: None });
        keys.insert("other.example", "ed25519:1", KnownKey { key: our_key().public_key(), valid_until_ts: None });
        let signed_text = String::from_utf8(ruma_bytes(&ruma_signed)).unwrap();
        let result = verify_event(&parse_object(signed_text.as_bytes()).unwrap(), rules, &keys);
        // ruma demands the authoriser's signature on any membership; we, like
        // Synapse, only on joins, the only membership auth rule 4.2 reads it on.
        let ruma_needs_authoriser = rules.restricted_join_rule
            && event["type"] == "m.room.member"
            && event["content"].get("join_authorised_via_users_server").is_some();
        let needs_authoriser = ruma_needs_authoriser && event["content"]["membership"] == "join";
        let mut public_keys = ruma_signatures::PublicKeyMap::new();
        let raw = our_key().public_key().as_bytes().to_vec();
        public_keys.insert("example.org".into(), [("ed25519:1".to_owned(), Base64::new(raw.clone()))].into());
        public_keys.insert("other.example".into(), [("ed25519:1".to_owned(), Base64::new(raw))].into());
        let ruma_result = ruma_signatures::verify_event(&public_keys, &ruma_object(&String::from_utf8(ours_bytes(&ours_signed)).unwrap()), &ruma_rules);
        // Only example.org signed: whoever demands other.example's signature fails.
        if needs_authoriser {
            prop_assert!(result.is_err());
        } else {
            prop_assert_eq!(result.unwrap().content_hash, ContentHash::Matches);
        }
        if ruma_needs_authoriser {
            prop_assert!(ruma_result.is_err());
        } else {
            prop_assert_eq!(ruma_result.unwrap(), ruma_signatures::Verified::All);
        }
    }
}
