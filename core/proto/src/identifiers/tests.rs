use super::*;

#[test]
fn accepts_the_spec_server_name_examples() {
    for name in
        ["matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]", "[1234:5678::abcd]:5678"]
    {
        ServerName::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let name = ServerName::parse("[1234:5678::abcd]:5678").unwrap();
    assert_eq!((name.host(), name.port()), ("[1234:5678::abcd]", Some(5678)));
    let name = ServerName::parse("matrix.org").unwrap();
    assert_eq!((name.host(), name.port()), ("matrix.org", None));
}

#[test]
fn rejects_malformed_server_names() {
    let cases = [
        ("", IdError::Empty),
        (":8448", IdError::EmptyHost),
        ("exa_mple.org", IdError::InvalidHostChar('_')),
        ("example.org:", IdError::InvalidPort),
        ("example.org:123456", IdError::InvalidPort),
        ("example.org:80a", IdError::InvalidPort),
        ("[1234:5678::abcd", IdError::UnclosedIpv6),
        ("[1234:zz::1]", IdError::InvalidIpv6),
        ("[1:2:3]", IdError::InvalidIpv6),
        ("[::1]x", IdError::InvalidPort),
        ("[fe80::1%eth0]", IdError::InvalidIpv6),
    ];
    for (input, expected) in cases {
        assert_eq!(ServerName::parse(input), Err(expected), "{input:?}");
    }
}

#[test]
fn treats_server_names_case_sensitively() {
    assert_ne!(ServerName::parse("matrix.org").unwrap(), ServerName::parse("MATRIX.org").unwrap());
}

#[test]
fn accepts_historical_user_ids_but_flags_them_non_compliant() {
    let id = UserId::parse("@Alice!:example.org").unwrap();
    assert_eq!((id.localpart(), id.server_name()), ("Alice!", "example.org"));
    assert!(id.is_compliant());
    assert!(!UserId::parse("@:example.org").unwrap().is_compliant());
    assert!(!UserId::parse("@ünï:example.org").unwrap().is_compliant());
}

#[test]
fn rejects_user_ids_with_nul_or_without_server() {
    assert_eq!(UserId::parse("@a\0b:example.org"), Err(IdError::NulCharacter));
    assert_eq!(UserId::parse("@alice"), Err(IdError::MissingServerName));
    assert_eq!(UserId::parse("alice:example.org"), Err(IdError::MissingSigil('@')));
    assert_eq!(UserId::parse("@alice:exa mple.org"), Err(IdError::InvalidHostChar(' ')));
}

#[test]
fn new_user_ids_follow_the_current_grammar() {
    UserId::parse_new("@a.b_c=d-e/f+9:example.org").unwrap();
    assert_eq!(UserId::parse_new("@Alice:example.org"), Err(IdError::InvalidLocalpartChar('A')));
    assert_eq!(UserId::parse_new("@:example.org"), Err(IdError::EmptyLocalpart));
}

#[test]
fn rejects_identifiers_longer_than_255_bytes() {
    let localpart = "a".repeat(255 - "@:example.org".len());
    UserId::parse(&format!("@{localpart}:example.org")).unwrap();
    assert_eq!(UserId::parse(&format!("@{localpart}a:example.org")), Err(IdError::TooLong(256)));
    assert_eq!(RoomAlias::parse(&format!("#{localpart}aa:example.org")), Err(IdError::TooLong(257)));
}

#[test]
fn parses_every_event_id_format() {
    let v1 = EventId::parse("$0:domain").unwrap();
    assert_eq!((v1.format(), v1.server_name()), (EventIdFormat::DomainScoped, Some("domain")));
    let v3 = EventId::parse("$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk").unwrap();
    assert_eq!(v3.format(), EventIdFormat::Base64);
    assert!(v3.is_valid_for(EventIdFormat::Base64) && !v3.is_valid_for(EventIdFormat::UrlSafeBase64));
    let v4 = EventId::parse("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg").unwrap();
    assert_eq!(v4.format(), EventIdFormat::UrlSafeBase64);
    assert!(v4.is_valid_for(EventIdFormat::UrlSafeBase64) && !v4.is_valid_for(EventIdFormat::Base64));
    assert!(!v4.is_valid_for(EventIdFormat::DomainScoped));
}

#[test]
fn rejects_event_ids_that_are_not_32_byte_hashes() {
    for bad in [
        "$short",
        "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJ",   // 42 chars
        "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk=", // padded
        "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7Xc-k",  // mixed alphabets
        "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJl",  // non-zero trailing bits
    ] {
        assert_eq!(EventId::parse(bad), Err(IdError::InvalidHash), "{bad}");
    }
    assert_eq!(EventId::parse("$:domain"), Err(IdError::EmptyLocalpart));
}

#[test]
fn builds_event_ids_from_reference_hashes() {
    let hash = [0xfb; 32];
    let v3 = EventId::from_reference_hash(&hash, EventIdFormat::Base64).unwrap();
    let v4 = EventId::from_reference_hash(&hash, EventIdFormat::UrlSafeBase64).unwrap();
    assert_eq!(v3.as_str(), "$+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s");
    assert_eq!(v4.as_str(), "$-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s");
    assert_eq!(EventId::parse(v3.as_str()).unwrap(), v3);
    assert_eq!(EventId::from_reference_hash(&hash, EventIdFormat::DomainScoped), None);
}

#[test]
fn parses_domain_scoped_and_v12_room_ids() {
    assert_eq!(RoomId::parse("!x:domain").unwrap().server_name(), Some("domain"));
    let v12 = RoomId::from_create_event_reference_hash(&[0xfb; 32]);
    assert_eq!(v12.as_str(), "!-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s");
    assert_eq!(RoomId::parse(v12.as_str()).unwrap().server_name(), None);
    assert_eq!(RoomId::parse("!+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s"), Err(IdError::InvalidHash));
    assert_eq!(RoomId::parse("!opaque"), Err(IdError::InvalidHash));
}

#[test]
fn parses_room_aliases() {
    let alias = RoomAlias::parse("#chat room ☕:example.org:8448").unwrap();
    assert_eq!((alias.alias(), alias.server_name()), ("chat room ☕", "example.org:8448"));
    assert_eq!(RoomAlias::parse("#:example.org"), Err(IdError::EmptyLocalpart));
}

#[test]
fn key_ids_follow_the_published_version_grammar() {
    let key = KeyId::parse("ed25519:a_AbCd").unwrap();
    assert_eq!((key.algorithm(), key.version()), ("ed25519", "a_AbCd"));
    assert_eq!(KeyId::parse("signed_curve25519:AAAAHQ").unwrap().algorithm(), "signed_curve25519");
    assert_eq!(KeyId::parse("ed25519:a-b"), Err(IdError::InvalidKeyVersion));
    assert_eq!(KeyId::parse("ed25519:"), Err(IdError::InvalidKeyVersion));
    assert_eq!(KeyId::parse("Ed25519:1"), Err(IdError::InvalidKeyAlgorithm));
    assert_eq!(KeyId::parse("ed25519"), Err(IdError::MissingKeyVersion));
}

#[test]
fn device_ids_are_opaque_but_bounded() {
    DeviceId::parse("ABCDEF ghi").unwrap();
    assert_eq!(DeviceId::parse(""), Err(IdError::Empty));
    assert_eq!(DeviceId::parse("a\0"), Err(IdError::NulCharacter));
}

#[test]
fn identifiers_round_trip_through_serde() {
    let id: UserId = serde_json::from_str("\"@alice:example.org\"").unwrap();
    assert_eq!(serde_json::to_string(&id).unwrap(), "\"@alice:example.org\"");
    let err = serde_json::from_str::<UserId>("\"alice\"").unwrap_err();
    assert!(err.to_string().contains("sigil"), "{err}");
}

#[test]
fn clones_share_storage() {
    let a = UserId::parse("@alice:example.org").unwrap();
    let b = a.clone();
    assert!(std::ptr::eq(a.as_str(), b.as_str()));
}
