//! The spec's own test vectors (appendices § Cryptographic Test Vectors),
//! run through the public API.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use tessera_proto::canonical_json::{parse_object, to_bytes, Object, Value};
use tessera_proto::hashes::{content_hash, event_id, reference_hash};
use tessera_proto::identifiers::EventIdFormat;
use tessera_proto::keys::{parse_key_file, PublicKey, SigningKey};
use tessera_proto::room_version::{RoomVersionRules, STABLE};
use tessera_proto::signatures::{
    hash_and_sign_event, sign_json, verify_event, verify_json, ContentHash, KnownKey, KnownKeys, VerifyError,
};

/// `SIGNING_KEY_SEED`, with `SERVER_NAME = "domain"`, `KEY_ID = "ed25519:1"`.
fn spec_key() -> SigningKey {
    parse_key_file("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n").unwrap().remove(0)
}

fn spec_keys() -> KnownKeys {
    let mut keys = KnownKeys::new();
    keys.insert("domain", "ed25519:1", KnownKey { key: spec_key().public_key(), valid_until_ts: None });
    keys
}

fn json(text: &str) -> Object {
    parse_object(text.as_bytes()).unwrap()
}

fn v1() -> &'static RoomVersionRules {
    RoomVersionRules::get("1").unwrap()
}

#[test]
fn signs_the_empty_object_like_the_spec() {
    let mut object = Object::new();
    sign_json(&mut object, "domain", &spec_key());
    let expected = json(
        r#"{"signatures":{"domain":{"ed25519:1":"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}}}"#,
    );
    assert_eq!(object, expected);
    verify_json(&object, "domain", &spec_keys()).unwrap();
}

#[test]
fn signs_an_object_with_data_like_the_spec() {
    let mut object = json(r#"{"one": 1, "two": "Two"}"#);
    sign_json(&mut object, "domain", &spec_key());
    let expected = json(
        r#"{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}"#,
    );
    assert_eq!(to_bytes(&Value::Object(object.clone())), to_bytes(&Value::Object(expected)));
    verify_json(&object, "domain", &spec_keys()).unwrap();
}

#[test]
fn signs_the_minimal_event_like_the_spec() {
    let mut event = json(
        r#"{"room_id": "!x:domain", "sender": "@a:domain", "origin": "domain", "origin_server_ts": 1000000,
            "signatures": {}, "hashes": {}, "type": "X", "content": {}, "prev_events": [], "auth_events": [],
            "depth": 3, "unsigned": {"age_ts": 1000000}}"#,
    );
    hash_and_sign_event(&mut event, "domain", &spec_key(), v1());
    let expected = json(
        r#"{"auth_events":[],"content":{},"depth":3,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
            "origin":"domain","origin_server_ts":1000000,"prev_events":[],"room_id":"!x:domain","sender":"@a:domain",
            "signatures":{"domain":{"ed25519:1":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},
            "type":"X","unsigned":{"age_ts":1000000}}"#,
    );
    assert_eq!(event, expected);
}

#[test]
fn signs_the_redactable_event_like_the_spec() {
    let mut event = json(
        r#"{"content": {"body": "Here is the message content"}, "event_id": "$0:domain", "origin": "domain",
            "origin_server_ts": 1000000, "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain",
            "signatures": {}, "unsigned": {"age_ts": 1000000}}"#,
    );
    hash_and_sign_event(&mut event, "domain", &spec_key(), v1());
    let expected = json(
        r#"{"content":{"body":"Here is the message content"},"event_id":"$0:domain",
            "hashes":{"sha256":"onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},"origin":"domain",
            "origin_server_ts":1000000,"type":"m.room.message","room_id":"!r:domain","sender":"@u:domain",
            "signatures":{"domain":{"ed25519:1":"Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}},
            "unsigned":{"age_ts":1000000}}"#,
    );
    assert_eq!(event, expected);

    let verified = verify_event(&event, v1(), &spec_keys()).unwrap();
    assert_eq!(verified.content_hash, ContentHash::Matches);
    assert_eq!(verified.reference_hash, reference_hash(&event, v1()));
    assert_eq!(event_id(&event, v1()).unwrap().as_str(), "$0:domain");
}

#[test]
fn verification_survives_redaction_but_flags_the_content_hash() {
    let mut event = json(
        r#"{"content": {"body": "secret"}, "event_id": "$0:domain", "origin": "domain", "origin_server_ts": 1,
            "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain"}"#,
    );
    hash_and_sign_event(&mut event, "domain", &spec_key(), v1());
    let redacted = tessera_proto::redaction::redact(&event, v1());
    let verified = verify_event(&redacted, v1(), &spec_keys()).unwrap();
    assert_eq!(verified.content_hash, ContentHash::Mismatch);
    assert_eq!(verified.reference_hash, reference_hash(&event, v1()));
}

#[test]
fn rejects_a_tampered_signed_field() {
    let mut event = json(
        r#"{"content": {}, "event_id": "$0:domain", "origin_server_ts": 1, "type": "X", "room_id": "!r:domain",
            "sender": "@u:domain"}"#,
    );
    hash_and_sign_event(&mut event, "domain", &spec_key(), v1());
    event.insert("type", "Y");
    assert_eq!(
        verify_event(&event, v1(), &spec_keys()),
        Err(VerifyError::BadSignature { entity: "domain".into(), key_id: "ed25519:1".into() })
    );
}

#[test]
fn spec_public_key_round_trips_through_base64() {
    let key = spec_key().public_key();
    assert_eq!(PublicKey::from_base64(&key.to_base64()).unwrap(), key);
}

#[test]
fn content_hash_ignores_unsigned_signatures_and_hashes() {
    let plain = json(r#"{"a":1}"#);
    let decorated = json(r#"{"a":1,"unsigned":{"x":1},"signatures":{"s":{}},"hashes":{"sha256":"x"}}"#);
    assert_eq!(content_hash(&plain), content_hash(&decorated));
}

#[test]
fn events_get_the_id_shape_of_their_room_version() {
    for rules in &STABLE {
        let mut event = json(
            r#"{"content": {"body": "hi"}, "event_id": "$local:domain", "origin_server_ts": 1, "type": "m.room.message",
                "room_id": "!r:domain", "sender": "@u:domain", "auth_events": [], "prev_events": [], "depth": 1}"#,
        );
        hash_and_sign_event(&mut event, "domain", &spec_key(), rules);
        let id = event_id(&event, rules).unwrap();
        assert!(id.is_valid_for(rules.event_id_format), "v{}: {id}", rules.id);
        match rules.event_id_format {
            EventIdFormat::DomainScoped => assert_eq!(id.as_str(), "$local:domain"),
            _ => assert_eq!(id.as_str().len(), 44, "v{}: {id}", rules.id),
        }
    }
}

/// Appendices § Unpadded Base64: "implementations SHOULD accept input with
/// or without padding". A server that pads its signatures or hashes must not
/// have its events dropped or treated as redacted.
#[test]
fn padded_signatures_and_hashes_are_not_rejected() {
    let mut event = json(
        r#"{"content": {"body": "hi"}, "event_id": "$0:domain", "origin_server_ts": 1, "type": "X",
            "room_id": "!r:domain", "sender": "@u:domain"}"#,
    );
    let mut hashes = Object::new();
    hashes.insert("sha256", format!("{}=", STANDARD_NO_PAD.encode(content_hash(&event))));
    event.insert("hashes", hashes);
    // The hash is signed as sent, padding included: sign the redacted form.
    let mut redacted = tessera_proto::redaction::redact(&event, v1());
    sign_json(&mut redacted, "domain", &spec_key());
    let signatures = redacted.get("signatures").unwrap().clone();
    event.insert("signatures", signatures);
    let text = String::from_utf8(to_bytes(&Value::Object(event))).unwrap();
    let signature = text.split(r#""ed25519:1":""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(signature.len(), 86);
    let padded = json(&text.replace(&signature, &format!("{signature}==")));
    let verified = verify_event(&padded, v1(), &spec_keys()).unwrap();
    assert_eq!(verified.content_hash, ContentHash::Matches);

    let mut object = Object::new();
    sign_json(&mut object, "domain", &spec_key());
    let text = String::from_utf8(to_bytes(&Value::Object(object))).unwrap();
    verify_json(&json(&text.replace("AQ\"", "AQ==\"")), "domain", &spec_keys()).unwrap();
    // Still exactly 64 bytes, whatever the padding.
    assert_eq!(
        verify_json(&json(&text.replace("AQ\"", "AQAA\"")), "domain", &spec_keys()),
        Err(VerifyError::MalformedSignature { entity: "domain".into(), key_id: "ed25519:1".into() })
    );
}
