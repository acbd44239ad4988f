//! Server signing keys (spec: server-server API § Retrieving server keys,
//! § Publishing Keys) and the key file format Synapse uses, so operators can
//! bring their server's identity along when migrating.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use ed25519_dalek::Signer;

use crate::canonical_json::{parse_object, to_bytes, Object, ParseError, Value, MAX_SAFE_INTEGER};
use crate::ed25519::{self, KeyRejection};
use crate::identifiers::{IdError, KeyId, ServerName};
use crate::signatures::{sign_json, verify_json, KnownKey, KnownKeys, VerifyError};

/// Standard-alphabet base64 for decoding anything another server or a key
/// file gives us. Spec, appendices § Unpadded Base64: "implementations
/// SHOULD accept input with or without padding"; and like the Python decoder
/// Synapse uses, unused trailing bits are ignored (the spec's own
/// `SIGNING_KEY_SEED` has some set). We still encode without padding.
pub(crate) const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Why a key, key file or key response could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(String),
    #[error("invalid key ID: {0}")]
    InvalidKeyId(#[from] IdError),
    #[error("unsupported key algorithm {0:?} (only ed25519 is supported)")]
    UnsupportedAlgorithm(String),
    #[error("key is not valid base64")]
    InvalidBase64,
    #[error("key is {0} bytes long, not 32")]
    WrongLength(usize),
    #[error("ed25519 public key is not a valid curve point")]
    InvalidPublicKey,
    #[error("ed25519 public key is not canonically encoded")]
    NonCanonicalPublicKey,
    #[error("ed25519 public key has small order, so any signature could match it")]
    WeakPublicKey,
    #[error("line {line} of the key file: expected `ed25519 <version> <base64 seed>`, found {found} fields")]
    MalformedLine { line: usize, found: usize },
    #[error("line {line} of the key file: {source}")]
    Line { line: usize, source: Box<KeyError> },
    #[error("timestamp {0} is beyond what canonical JSON can carry (2^53-1)")]
    TimestampOutOfRange(u64),
    #[error("a key response must be signed by at least one current key")]
    NoCurrentKey,
}

/// An ed25519 key this server signs with, and its key ID.
#[derive(Clone)]
pub struct SigningKey {
    id: KeyId,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("public_key", &self.public_key().to_base64())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from the operating system's randomness, with a version of
    /// the form `a_XXXX` like Synapse generates.
    pub fn generate() -> Result<Self, KeyError> {
        const LETTERS: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| KeyError::Randomness(e.to_string()))?;
        let mut version = String::from("a_");
        while version.len() < 6 {
            let mut byte = [0u8; 1];
            getrandom::getrandom(&mut byte).map_err(|e| KeyError::Randomness(e.to_string()))?;
            // Rejection sampling keeps the letters uniformly distributed.
            if usize::from(byte[0]) < 4 * LETTERS.len() {
                version.push(char::from(LETTERS[usize::from(byte[0]) % LETTERS.len()]));
            }
        }
        Self::from_seed(&version, seed)
    }

    /// The key with ID `ed25519:<version>` derived from a 32-byte seed.
    pub fn from_seed(version: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        Ok(Self { id: KeyId::ed25519(version)?, key: ed25519_dalek::SigningKey::from_bytes(&seed) })
    }

    /// `ed25519:<version>`.
    pub fn key_id(&self) -> &KeyId {
        &self.id
    }

    /// The public half, published in `verify_keys`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// The 32-byte seed, as stored in key files.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The entry to publish under `old_verify_keys` once this key is
    /// rotated out at `expired_ts` (POSIX milliseconds).
    pub fn retire(&self, expired_ts: u64) -> OldVerifyKey {
        OldVerifyKey { key_id: self.id.clone(), key: self.public_key(), expired_ts }
    }

    /// Signs `message`, returning the 64-byte ed25519 signature.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// An ed25519 public (verify) key, already decompressed so verifying with it
/// repeatedly does not redo that work, and checked once against what
/// libsodium refuses (small-order or non-canonical keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses the base64 form found in `verify_keys` (unpadded, but padded
    /// input is accepted too).
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let bytes = LENIENT_BASE64.decode(encoded).map_err(|_| KeyError::InvalidBase64)?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::WrongLength(bytes.len()))?;
        ed25519::public_key(&bytes).map(Self).map_err(|rejection| match rejection {
            KeyRejection::NotAPoint => KeyError::InvalidPublicKey,
            KeyRejection::NonCanonical => KeyError::NonCanonicalPublicKey,
            KeyRejection::SmallOrder => KeyError::WeakPublicKey,
        })
    }

    /// The raw 32-byte key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The unpadded base64 form published in `verify_keys`.
    pub fn to_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.0.as_bytes())
    }
}

/// Parses a Synapse signing key file: one `ed25519 <version> <base64 seed>`
/// line per key; blank lines and lines starting with `#` are ignored.
pub fn parse_key_file(text: &str) -> Result<Vec<SigningKey>, KeyError> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [algorithm, version, seed] = fields[..] else {
            return Err(KeyError::MalformedLine { line: line_number, found: fields.len() });
        };
        let key = parse_key_line(algorithm, version, seed)
            .map_err(|e| KeyError::Line { line: line_number, source: Box::new(e) })?;
        keys.push(key);
    }
    Ok(keys)
}

fn parse_key_line(algorithm: &str, version: &str, seed: &str) -> Result<SigningKey, KeyError> {
    if algorithm != "ed25519" {
        return Err(KeyError::UnsupportedAlgorithm(algorithm.to_owned()));
    }
    let seed = LENIENT_BASE64.decode(seed).map_err(|_| KeyError::InvalidBase64)?;
    let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| KeyError::WrongLength(seed.len()))?;
    SigningKey::from_seed(version, seed)
}

/// Formats keys as a Synapse signing key file, one line per key.
pub fn format_key_file(keys: &[SigningKey]) -> String {
    keys.iter().map(|key| format!("ed25519 {} {}\n", key.id.version(), STANDARD_NO_PAD.encode(key.seed()))).collect()
}

/// A key the server no longer signs with, still published so that events it
/// signed can be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldVerifyKey {
    pub key_id: KeyId,
    pub key: PublicKey,
    /// POSIX milliseconds when the key stopped being used.
    pub expired_ts: u64,
}

fn timestamp(ts: u64) -> Result<Value, KeyError> {
    i64::try_from(ts)
        .ok()
        .filter(|&ts| ts <= MAX_SAFE_INTEGER)
        .map(Value::Integer)
        .ok_or(KeyError::TimestampOutOfRange(ts))
}

/// The body of `GET /_matrix/key/v2/server` (spec: server-server API §
/// Publishing Keys): `server_name`, `verify_keys` (the `current` keys),
/// `old_verify_keys` with their `expired_ts`, and `valid_until_ts`, signed by
/// every current key, as canonical JSON.
pub fn server_keys_response(
    server_name: &ServerName,
    current: &[SigningKey],
    old: &[OldVerifyKey],
    valid_until_ts: u64,
) -> Result<Vec<u8>, KeyError> {
    if current.is_empty() {
        return Err(KeyError::NoCurrentKey);
    }
    let mut verify_keys = Object::new();
    for key in current {
        let mut entry = Object::new();
        entry.insert("key", key.public_key().to_base64());
        verify_keys.insert(key.id.as_str(), entry);
    }
    let mut old_verify_keys = Object::new();
    for key in old {
        let mut entry = Object::new();
        entry.insert("expired_ts", timestamp(key.expired_ts)?);
        entry.insert("key", key.key.to_base64());
        old_verify_keys.insert(key.key_id.as_str(), entry);
    }
    let mut response = Object::new();
    response.insert("old_verify_keys", old_verify_keys);
    response.insert("server_name", server_name.as_str());
    response.insert("valid_until_ts", timestamp(valid_until_ts)?);
    response.insert("verify_keys", verify_keys);
    for key in current {
        sign_json(&mut response, server_name.as_str(), key);
    }
    Ok(to_bytes(&Value::Object(response)))
}

/// A server's published keys, taken from its `/_matrix/key/v2/server`
/// response after checking the response's self-signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeys {
    pub verify_keys: Vec<(KeyId, PublicKey)>,
    pub old_verify_keys: Vec<OldVerifyKey>,
    pub valid_until_ts: u64,
}

/// How long fetched keys may be trusted at most. Spec: "Servers MUST use the
/// lesser of this field and 7 days into the future when determining if a key
/// is valid."
pub const MAX_KEY_VALIDITY_MS: u64 = 7 * 24 * 60 * 60 * 1000;

impl ServerKeys {
    /// Every key, current and old, with until when it may be trusted:
    /// current keys until the lesser of `valid_until_ts` and `now_ms` + 7
    /// days, old keys until their `expired_ts`.
    pub fn usable(&self, now_ms: u64) -> impl Iterator<Item = (&KeyId, KnownKey)> + '_ {
        let valid_until_ts = self.valid_until_ts.min(now_ms.saturating_add(MAX_KEY_VALIDITY_MS));
        let current = self
            .verify_keys
            .iter()
            .map(move |(key_id, key)| (key_id, KnownKey { key: *key, valid_until_ts: Some(valid_until_ts) }));
        let old = self
            .old_verify_keys
            .iter()
            .map(|old| (&old.key_id, KnownKey { key: old.key, valid_until_ts: Some(old.expired_ts) }));
        current.chain(old)
    }

    /// Records these keys as `server`'s in `known`, each until
    /// [`ServerKeys::usable`] says.
    pub fn add_to(&self, server: &ServerName, now_ms: u64, known: &mut KnownKeys) {
        for (key_id, key) in self.usable(now_ms) {
            known.insert(server.as_str(), key_id.as_str(), key);
        }
    }
}

/// Why another server's key response cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerKeysError {
    #[error(transparent)]
    Json(#[from] ParseError),
    #[error("field `{0}` is missing or has the wrong type")]
    Field(&'static str),
    #[error("response is for {found:?}, not {expected:?}")]
    WrongServer { expected: String, found: String },
    #[error("response is not validly signed by its own verify keys: {0}")]
    NotSelfSigned(VerifyError),
}

/// Reads another server's `/_matrix/key/v2/server` response, requiring that
/// it names `server`, has the fields the spec requires (`server_name`,
/// `verify_keys`, `signatures`, `valid_until_ts`), and is signed by at least
/// one key in its own `verify_keys`, with no signature by one of those keys
/// failing. Only then are its `old_verify_keys` read: without that check
/// anyone relaying the response (a notary) could plant old keys for any
/// server.
pub fn parse_server_keys(body: &[u8], server: &ServerName) -> Result<ServerKeys, ServerKeysError> {
    let response = parse_object(body)?;
    let field = |name: &'static str| response.get(name).ok_or(ServerKeysError::Field(name));
    let found = field("server_name")?.as_str().ok_or(ServerKeysError::Field("server_name"))?;
    if found != server.as_str() {
        return Err(ServerKeysError::WrongServer { expected: server.to_string(), found: found.to_owned() });
    }
    let valid_until_ts = field("valid_until_ts")?
        .as_integer()
        .and_then(|ts| u64::try_from(ts).ok())
        .ok_or(ServerKeysError::Field("valid_until_ts"))?;
    // Like Synapse, entries for algorithms other than ed25519 are skipped,
    // and so are ed25519 entries we cannot use (a malformed key ID, key or
    // `expired_ts`, or a weak key): one such key must not make the server's
    // other keys unusable.
    let entries = |name: &'static str| -> Result<Vec<(KeyId, &Object, PublicKey)>, ServerKeysError> {
        let Some(map) = response.get(name) else { return Ok(Vec::new()) };
        let map = map.as_object().ok_or(ServerKeysError::Field(name))?;
        Ok(map
            .iter()
            .filter(|(key_id, _)| key_id.starts_with("ed25519:"))
            .filter_map(|(key_id, entry)| {
                let id = KeyId::parse(key_id).ok()?;
                let entry = entry.as_object()?;
                let key = PublicKey::from_base64(entry.get("key")?.as_str()?).ok()?;
                Some((id, entry, key))
            })
            .collect())
    };

    field("verify_keys")?;
    let mut verify_keys = Vec::new();
    let mut own_keys = KnownKeys::new();
    for (key_id, _, key) in entries("verify_keys")? {
        own_keys.insert(server.as_str(), key_id.as_str(), KnownKey { key, valid_until_ts: None });
        verify_keys.push((key_id, key));
    }
    // Fails unless at least one of the keys above signed, or if a signature
    // by any of them does not match; keys that did not sign are still kept,
    // as Synapse does.
    verify_json(&response, server.as_str(), &own_keys).map_err(ServerKeysError::NotSelfSigned)?;

    let mut old_verify_keys = Vec::new();
    for (key_id, entry, key) in entries("old_verify_keys")? {
        let expired_ts = entry.get("expired_ts").and_then(Value::as_integer).and_then(|ts| u64::try_from(ts).ok());
        if let Some(expired_ts) = expired_ts {
            old_verify_keys.push(OldVerifyKey { key_id, key, expired_ts });
        }
    }
    Ok(ServerKeys { verify_keys, old_verify_keys, valid_until_ts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_synapse_style_versions_and_differ() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.seed(), b.seed());
        let version = a.key_id().version();
        assert!(version.starts_with("a_") && version.len() == 6, "{version}");
        assert!(version[2..].bytes().all(|c| c.is_ascii_alphabetic()), "{version}");
        assert_eq!(a.key_id().algorithm(), "ed25519");
    }

    #[test]
    fn key_file_round_trips() {
        let keys = vec![SigningKey::generate().unwrap(), SigningKey::from_seed("old_1", [7; 32]).unwrap()];
        let text = format_key_file(&keys);
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with("\ned25519 old_1 BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc\n"), "{text}");
        let parsed = parse_key_file(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        for (a, b) in keys.iter().zip(&parsed) {
            assert_eq!((a.key_id(), a.seed()), (b.key_id(), b.seed()));
        }
    }

    #[test]
    fn key_file_skips_comments_and_blank_lines_and_accepts_padding() {
        let text = "# our key\n\n  ed25519 a_AbCd BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=  \n";
        let keys = parse_key_file(text).unwrap();
        assert_eq!((keys.len(), keys[0].key_id().as_str(), keys[0].seed()), (1, "ed25519:a_AbCd", [7; 32]));
    }

    #[test]
    fn key_file_errors_name_the_line() {
        assert_eq!(
            parse_key_file("# c\ned25519 a_b\n").map(|_| ()),
            Err(KeyError::MalformedLine { line: 2, found: 2 })
        );
        let line = |source| Err(KeyError::Line { line: 1, source: Box::new(source) });
        assert_eq!(
            parse_key_file("curve25519 a x").map(|_| ()),
            line(KeyError::UnsupportedAlgorithm("curve25519".into()))
        );
        assert_eq!(parse_key_file("ed25519 a !!!").map(|_| ()), line(KeyError::InvalidBase64));
        assert_eq!(parse_key_file("ed25519 a AAAA").map(|_| ()), line(KeyError::WrongLength(3)));
        assert_eq!(
            parse_key_file("ed25519 a-b BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc").map(|_| ()),
            line(KeyError::InvalidKeyId(IdError::InvalidKeyVersion))
        );
    }

    #[test]
    fn padded_base64_public_keys_are_not_rejected() {
        let key = SigningKey::from_seed("a", [1; 32]).unwrap().public_key();
        let unpadded = key.to_base64();
        assert_eq!(unpadded.len(), 43);
        assert_eq!(PublicKey::from_base64(&format!("{unpadded}=")), Ok(key));
        assert_eq!(PublicKey::from_base64(&unpadded), Ok(key));
    }

    #[test]
    fn public_keys_reject_bad_encodings() {
        assert_eq!(PublicKey::from_base64("AAAA"), Err(KeyError::WrongLength(3)));
        assert_eq!(PublicKey::from_base64("not base64!"), Err(KeyError::InvalidBase64));
    }

    #[test]
    fn server_keys_response_is_self_signed_by_every_current_key() {
        let server = ServerName::parse("example.org").unwrap();
        let current = [SigningKey::from_seed("a", [1; 32]).unwrap(), SigningKey::from_seed("b", [2; 32]).unwrap()];
        let old = [SigningKey::from_seed("old", [3; 32]).unwrap().retire(1_532_645_052_628)];
        let body = server_keys_response(&server, &current, &old, 1_652_262_000_000).unwrap();
        let response = parse_object(&body).unwrap();
        assert_eq!(to_bytes(&Value::Object(response.clone())), body, "body is canonical JSON");

        let text = String::from_utf8(body).unwrap();
        let expected_prefix = format!(
            r#"{{"old_verify_keys":{{"ed25519:old":{{"expired_ts":1532645052628,"key":"{}"}}}},"server_name":"example.org","signatures":{{"example.org":{{"ed25519:a":"#,
            old[0].key.to_base64()
        );
        assert!(text.starts_with(&expected_prefix), "{text}");
        assert!(text.ends_with(&format!(
            r#""valid_until_ts":1652262000000,"verify_keys":{{"ed25519:a":{{"key":"{}"}},"ed25519:b":{{"key":"{}"}}}}}}"#,
            current[0].public_key().to_base64(),
            current[1].public_key().to_base64()
        )));
        for key in &current {
            let mut known = KnownKeys::new();
            known.insert(
                "example.org",
                key.key_id().as_str(),
                KnownKey { key: key.public_key(), valid_until_ts: None },
            );
            verify_json(&response, "example.org", &known).unwrap();
        }
    }

    #[test]
    fn server_keys_response_needs_a_current_key_and_safe_timestamps() {
        let server = ServerName::parse("example.org").unwrap();
        assert_eq!(server_keys_response(&server, &[], &[], 0), Err(KeyError::NoCurrentKey));
        let key = [SigningKey::from_seed("a", [1; 32]).unwrap()];
        assert_eq!(server_keys_response(&server, &key, &[], 1 << 53), Err(KeyError::TimestampOutOfRange(1 << 53)));
    }

    #[test]
    fn debug_output_does_not_leak_the_seed() {
        let key = SigningKey::from_seed("a", [9; 32]).unwrap();
        let debug = format!("{key:?}");
        assert!(!debug.contains(&STANDARD_NO_PAD.encode([9u8; 32])) && !debug.contains("9, 9"), "{debug}");
    }

    fn published(valid_until_ts: u64) -> (ServerName, [SigningKey; 2], Vec<u8>) {
        let server = ServerName::parse("example.org").unwrap();
        let current = [SigningKey::from_seed("a", [1; 32]).unwrap(), SigningKey::from_seed("b", [2; 32]).unwrap()];
        let old = [SigningKey::from_seed("old", [3; 32]).unwrap().retire(500)];
        let body = server_keys_response(&server, &current, &old, valid_until_ts).unwrap();
        (server, current, body)
    }

    #[test]
    fn reads_back_a_published_key_response() {
        let (server, current, body) = published(1_000_000);
        let keys = parse_server_keys(&body, &server).unwrap();
        assert_eq!(keys.valid_until_ts, 1_000_000);
        let ids: Vec<_> = keys.verify_keys.iter().map(|(id, key)| (id.as_str(), *key)).collect();
        assert_eq!(ids, [("ed25519:a", current[0].public_key()), ("ed25519:b", current[1].public_key())]);
        assert_eq!(keys.old_verify_keys[0].expired_ts, 500);

        let mut known = KnownKeys::new();
        keys.add_to(&server, 0, &mut known);
        let mut signed = Object::new();
        crate::signatures::sign_json(&mut signed, "example.org", &current[1]);
        verify_json(&signed, "example.org", &known).unwrap();
    }

    #[test]
    fn caps_fetched_key_validity_at_seven_days() {
        let (server, current, body) = published(u64::from(u32::MAX) * 1000);
        let mut known = KnownKeys::new();
        parse_server_keys(&body, &server).unwrap().add_to(&server, 0, &mut known);
        let mut event = crate::canonical_json::parse_object(
            br#"{"type":"X","sender":"@a:example.org","origin_server_ts":604800001,"content":{},"room_id":"!r:example.org","hashes":{}}"#,
        )
        .unwrap();
        let rules = crate::room_version::RoomVersionRules::get("5").unwrap();
        crate::signatures::hash_and_sign_event(&mut event, "example.org", &current[0], rules);
        assert_eq!(
            crate::signatures::verify_event(&event, rules, &known).map(|_| ()),
            Err(VerifyError::NoKnownKey("example.org".into()))
        );
    }

    #[test]
    fn rejects_key_responses_for_another_server_or_not_self_signed() {
        let (_, _, body) = published(1);
        let other = ServerName::parse("evil.example").unwrap();
        assert!(matches!(parse_server_keys(&body, &other), Err(ServerKeysError::WrongServer { .. })));

        let server = ServerName::parse("example.org").unwrap();
        let tampered = String::from_utf8(body).unwrap().replace("\"valid_until_ts\":1", "\"valid_until_ts\":2");
        assert!(matches!(
            parse_server_keys(tampered.as_bytes(), &server),
            Err(ServerKeysError::NotSelfSigned(VerifyError::BadSignature { key_id, .. })) if key_id == "ed25519:a"
        ));
    }

    /// Re-signs a response body after `edit`, with `keys` as `server`.
    fn resigned(body: &[u8], keys: &[&SigningKey], edit: impl FnOnce(&mut Object)) -> Vec<u8> {
        let mut response = parse_object(body).unwrap();
        response.remove("signatures");
        edit(&mut response);
        for key in keys {
            sign_json(&mut response, "example.org", key);
        }
        to_bytes(&Value::Object(response))
    }

    #[test]
    fn unsigned_response_cannot_plant_old_verify_keys() {
        let (server, _, body) = published(1_000);
        // A notary strips `verify_keys` and the signatures, keeping only an
        // old key of its choosing.
        let planted = resigned(&body, &[], |r| drop(r.remove("verify_keys")));
        assert_eq!(parse_server_keys(&planted, &server), Err(ServerKeysError::Field("verify_keys")));
        let empty = resigned(&body, &[], |r| drop(r.insert("verify_keys", Object::new())));
        assert_eq!(
            parse_server_keys(&empty, &server),
            Err(ServerKeysError::NotSelfSigned(VerifyError::MissingSignatures))
        );
        // Signed, but not by any key the response publishes.
        let notary = SigningKey::from_seed("notary", [9; 32]).unwrap();
        let foreign = resigned(&body, &[&notary], |r| drop(r.insert("verify_keys", Object::new())));
        assert_eq!(
            parse_server_keys(&foreign, &server),
            Err(ServerKeysError::NotSelfSigned(VerifyError::NoKnownKey("example.org".into())))
        );
        let unsigned = resigned(&body, &[], |_| ());
        assert_eq!(
            parse_server_keys(&unsigned, &server),
            Err(ServerKeysError::NotSelfSigned(VerifyError::MissingSignatures))
        );
    }

    #[test]
    fn one_unusable_or_unsigning_key_does_not_reject_the_response() {
        let (server, current, body) = published(1_000);
        // Only key `a` signs; `b` is still published, next to keys of an
        // unknown algorithm, a malformed key ID, bad base64, a weak key and
        // an entry that is not an object.
        // The identity point (y = 1): small order, refused as weak.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = STANDARD_NO_PAD.encode(identity);
        assert_eq!(PublicKey::from_base64(&weak), Err(KeyError::WeakPublicKey));
        let body = resigned(&body, &[&current[0]], |r| {
            let verify_keys = r.get_mut("verify_keys").and_then(Value::as_object_mut).unwrap();
            let mut entry = |id: &str, key: &str| {
                let mut e = Object::new();
                e.insert("key", key);
                verify_keys.insert(id, e);
            };
            entry("curve25519:x", "AAAA");
            entry("ed25519:bad-id!", &current[0].public_key().to_base64());
            entry("ed25519:b64", "not base64!");
            entry("ed25519:weak", &weak);
            verify_keys.insert("ed25519:str", "oops");
            let old = r.get_mut("old_verify_keys").and_then(Value::as_object_mut).unwrap();
            old.insert("unknown:x", Object::new());
            old.insert("ed25519:noexpiry", Object::new());
        });
        let keys = parse_server_keys(&body, &server).unwrap();
        let ids: Vec<_> = keys.verify_keys.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["ed25519:a", "ed25519:b"]);
        let old: Vec<_> = keys.old_verify_keys.iter().map(|k| k.key_id.as_str()).collect();
        assert_eq!(old, ["ed25519:old"]);
    }

    #[test]
    fn bad_signature_by_a_published_key_still_rejects_the_response() {
        let (server, current, body) = published(1_000);
        let other = SigningKey::from_seed("other", [4; 32]).unwrap();
        // `b`'s signature is replaced by one from a different key: `a`'s
        // valid signature does not excuse it.
        let mut response = parse_object(&resigned(&body, &[&current[0], &other], |_| ())).unwrap();
        let signatures = response.get_mut("signatures").and_then(Value::as_object_mut).unwrap();
        let ours = signatures.get_mut("example.org").and_then(Value::as_object_mut).unwrap();
        let forged = ours.remove("ed25519:other").unwrap();
        ours.insert("ed25519:b", forged);
        let body = to_bytes(&Value::Object(response));
        assert_eq!(
            parse_server_keys(&body, &server),
            Err(ServerKeysError::NotSelfSigned(VerifyError::BadSignature {
                entity: "example.org".into(),
                key_id: "ed25519:b".into()
            }))
        );
    }
}
