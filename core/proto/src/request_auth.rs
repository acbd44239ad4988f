//! Request authentication between servers: the `X-Matrix` authorization
//! scheme (server-server API § Request Authentication).
//!
//! Spec: "Every HTTP request made by a homeserver is authenticated using
//! public key digital signatures. The request method, target and body are
//! signed by wrapping them in a JSON object and signing it using the JSON
//! signing algorithm." The object is `{method, uri, origin, destination,
//! content?}`; the header carries `origin`, `destination`, `key` and `sig`.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::canonical_json::{write_object_except, Object, Value};
use crate::hashes::NOT_SIGNED;
use crate::keys::SigningKey;
use crate::signatures::{verify_json, KnownKeys, VerifyError};

/// Longest `Authorization` header value we parse; real ones are ~200 bytes.
const MAX_HEADER: usize = 4096;

/// What a request's `Authorization: X-Matrix ...` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XMatrix {
    /// The sending server's name.
    pub origin: String,
    /// The server the request was meant for. Spec: optional for
    /// compatibility with older servers, which did not send it.
    pub destination: Option<String>,
    /// ID of the origin's key that made `sig`, e.g. `ed25519:a_AbCd`.
    pub key: String,
    /// The unpadded base64 signature.
    pub sig: String,
}

/// Why an `Authorization` header is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XMatrixError {
    #[error("not an X-Matrix authorization header")]
    NotXMatrix,
    #[error("X-Matrix header is malformed")]
    Malformed,
    #[error("X-Matrix header lacks `{0}`")]
    Missing(&'static str),
}

impl XMatrix {
    /// Parses a header value such as `X-Matrix origin="a.example",
    /// destination="b.example",key="ed25519:k",sig="..."`. Parameter names
    /// are case-insensitive and values may be quoted strings (with `\`
    /// escapes) or bare tokens, as RFC 9110's `auth-param` allows; unknown
    /// parameters are ignored.
    pub fn parse(header: &[u8]) -> Result<Self, XMatrixError> {
        if header.len() > MAX_HEADER {
            return Err(XMatrixError::Malformed);
        }
        let header = std::str::from_utf8(header).map_err(|_| XMatrixError::Malformed)?;
        let (scheme, params) = header.trim().split_once(' ').ok_or(XMatrixError::NotXMatrix)?;
        if !scheme.eq_ignore_ascii_case("X-Matrix") {
            return Err(XMatrixError::NotXMatrix);
        }
        let (mut origin, mut destination, mut key, mut sig) = (None, None, None, None);
        let mut rest = params.trim_start();
        while !rest.is_empty() {
            let (name, after) = rest.split_once('=').ok_or(XMatrixError::Malformed)?;
            let name = name.trim().to_ascii_lowercase();
            let (value, after) = param_value(after.trim_start())?;
            match name.as_str() {
                "origin" => origin = Some(value),
                "destination" => destination = Some(value),
                "key" => key = Some(value),
                "sig" => sig = Some(value),
                _ => {}
            }
            rest = after.trim_start();
            if let Some(next) = rest.strip_prefix(',') {
                rest = next.trim_start();
            } else if !rest.is_empty() {
                return Err(XMatrixError::Malformed);
            }
        }
        Ok(XMatrix {
            origin: origin.ok_or(XMatrixError::Missing("origin"))?,
            destination,
            key: key.ok_or(XMatrixError::Missing("key"))?,
            sig: sig.ok_or(XMatrixError::Missing("sig"))?,
        })
    }

    /// The header value, as sent.
    pub fn to_header(&self) -> String {
        let destination = self.destination.as_deref().map(|d| format!("destination=\"{d}\",")).unwrap_or_default();
        format!("X-Matrix origin=\"{}\",{destination}key=\"{}\",sig=\"{}\"", self.origin, self.key, self.sig)
    }
}

/// One parameter value at the start of `input`, and what follows it.
fn param_value(input: &str) -> Result<(String, &str), XMatrixError> {
    if let Some(quoted) = input.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((value, &quoted[i + 1..])),
                '\\' => value.push(chars.next().ok_or(XMatrixError::Malformed)?.1),
                c => value.push(c),
            }
        }
        Err(XMatrixError::Malformed)
    } else {
        let end = input.find(|c: char| c == ',' || c.is_whitespace()).unwrap_or(input.len());
        if end == 0 {
            return Err(XMatrixError::Malformed);
        }
        Ok((input[..end].to_owned(), &input[end..]))
    }
}

/// The object a request's signature covers.
fn signed_object(method: &str, uri: &str, origin: &str, destination: &str, content: Option<&Value>) -> Object {
    let mut object = Object::new();
    object.insert("method", Value::from(method));
    object.insert("uri", Value::from(uri));
    object.insert("origin", Value::from(origin));
    object.insert("destination", Value::from(destination));
    if let Some(content) = content {
        object.insert("content", content.clone());
    }
    object
}

/// Signs a request from `origin` to `destination`: `uri` is the path with
/// its query string, `content` the JSON body if there is one.
pub fn sign_request(
    method: &str,
    uri: &str,
    origin: &str,
    destination: &str,
    content: Option<&Value>,
    key: &SigningKey,
) -> XMatrix {
    let mut json = Vec::with_capacity(256);
    write_object_except(&signed_object(method, uri, origin, destination, content), NOT_SIGNED, &mut json);
    XMatrix {
        origin: origin.to_owned(),
        destination: Some(destination.to_owned()),
        key: key.key_id().as_str().to_owned(),
        sig: STANDARD_NO_PAD.encode(key.sign(&json)),
    }
}

/// Checks that `auth.origin` signed this request to `us` with the key it
/// names. `keys` must hold that key (fetched from the origin beforehand).
pub fn verify_request(
    auth: &XMatrix,
    method: &str,
    uri: &str,
    us: &str,
    content: Option<&Value>,
    keys: &KnownKeys,
) -> Result<(), VerifyError> {
    let mut object = signed_object(method, uri, &auth.origin, us, content);
    let mut by_key = Object::new();
    by_key.insert(auth.key.as_str(), Value::from(auth.sig.as_str()));
    let mut signatures = Object::new();
    signatures.insert(auth.origin.as_str(), by_key);
    object.insert("signatures", signatures);
    verify_json(&object, &auth.origin, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical_json::parse;
    use crate::keys::SigningKey;
    use crate::signatures::KnownKey;

    fn known(key: &SigningKey, server: &str) -> KnownKeys {
        let mut keys = KnownKeys::new();
        keys.insert(server, key.key_id().as_str(), KnownKey { key: key.public_key(), valid_until_ts: None });
        keys
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_to_it_does_not() {
        let key = SigningKey::generate().unwrap();
        let keys = known(&key, "a.example");
        let body = parse(br#"{"pdus":[],"origin":"a.example"}"#).unwrap();
        let auth = sign_request("PUT", "/_matrix/federation/v1/send/1", "a.example", "b.example", Some(&body), &key);
        let parsed = XMatrix::parse(auth.to_header().as_bytes()).unwrap();
        assert_eq!(parsed, auth);
        verify_request(&parsed, "PUT", "/_matrix/federation/v1/send/1", "b.example", Some(&body), &keys).unwrap();
        let other = parse(br#"{"pdus":[1],"origin":"a.example"}"#).unwrap();
        for (method, uri, us, content) in [
            ("POST", "/_matrix/federation/v1/send/1", "b.example", Some(&body)),
            ("PUT", "/_matrix/federation/v1/send/2", "b.example", Some(&body)),
            ("PUT", "/_matrix/federation/v1/send/1", "c.example", Some(&body)),
            ("PUT", "/_matrix/federation/v1/send/1", "b.example", Some(&other)),
            ("PUT", "/_matrix/federation/v1/send/1", "b.example", None),
        ] {
            assert!(verify_request(&parsed, method, uri, us, content, &keys).is_err(), "{method} {uri} {us}");
        }
    }

    #[test]
    fn a_request_signed_by_a_key_we_do_not_know_is_refused() {
        let key = SigningKey::generate().unwrap();
        let stranger = SigningKey::generate().unwrap();
        let auth = sign_request("GET", "/x", "a.example", "b.example", None, &stranger);
        let keys = known(&key, "a.example");
        assert!(verify_request(&auth, "GET", "/x", "b.example", None, &keys).is_err());
    }

    #[test]
    fn header_parameters_may_be_bare_tokens_in_any_case_and_order() {
        let parsed = XMatrix::parse(br#"X-Matrix Sig="c2ln",  KEY=ed25519:k1 , origin=a.example"#).unwrap();
        assert_eq!(
            parsed,
            XMatrix { origin: "a.example".into(), destination: None, key: "ed25519:k1".into(), sig: "c2ln".into() }
        );
        let escaped = XMatrix::parse(br#"x-matrix origin="a\"b",key="k",sig="s""#).unwrap();
        assert_eq!(escaped.origin, "a\"b");
    }

    #[test]
    fn malformed_headers_are_refused_not_guessed() {
        for bad in [
            &b"Bearer abc"[..],
            b"X-Matrix",
            b"X-Matrix origin=\"a\",key=\"k\"",
            b"X-Matrix origin=\"a,key=\"k\",sig=\"s\"",
            b"X-Matrix origin=a key=k sig=s",
            b"X-Matrix origin=,key=k,sig=s",
            b"X-Matrix \xff",
        ] {
            assert!(XMatrix::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
