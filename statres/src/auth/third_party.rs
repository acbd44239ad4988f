//! Authorisation rule 5.4.1: an invite carrying `third_party_invite`, checked
//! against the `m.room.third_party_invite` event it redeems, including the
//! ed25519 signature over `signed` (appendices, "Signing JSON").

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;

use super::{Rejection, StateView};
use crate::canonical_json::encode_without_signatures;
use crate::event::{types, Event};

/// Public keys in third-party invites are unpadded base64, standard or URL-safe.
const CONFIG: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);

pub(super) fn check<E: Event, S: StateView<E>>(
    state: &S,
    event: &E,
    target: &str,
    invite: &Value,
) -> Result<(), Rejection> {
    // 5.4.1.2
    let signed = invite.get("signed").ok_or(Rejection("third_party_invite has no signed"))?;
    // 5.4.1.3
    let (Some(mxid), Some(token)) =
        (signed.get("mxid").and_then(Value::as_str), signed.get("token").and_then(Value::as_str))
    else {
        return Err(Rejection("third_party_invite signed lacks mxid or token"));
    };
    // 5.4.1.4
    if mxid != target {
        return Err(Rejection("third_party_invite mxid is not the state key"));
    }
    // 5.4.1.5
    let Some(tpi) = state.get(types::THIRD_PARTY_INVITE, token) else {
        return Err(Rejection("no m.room.third_party_invite for the token"));
    };
    // 5.4.1.6
    if tpi.sender() != event.sender() {
        return Err(Rejection("invite sender is not the third-party invite's sender"));
    }
    // 5.4.1.7
    if signature_matches(signed, tpi.content()) {
        Ok(())
    } else {
        // 5.4.1.8
        Err(Rejection("no signature in signed matches a public key of the third-party invite"))
    }
}

fn signature_matches(signed: &Value, tpi_content: &Value) -> bool {
    let Some(message) = encode_without_signatures(signed) else { return false };
    let keys = tpi_content
        .get("public_key")
        .into_iter()
        .chain(
            tpi_content
                .get("public_keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|k| k.get("public_key")),
        )
        .filter_map(Value::as_str)
        .filter_map(decode::<32>)
        .filter_map(|bytes| VerifyingKey::from_bytes(&bytes).ok());
    let signatures: Vec<Signature> = signed
        .get("signatures")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|servers| servers.values())
        .filter_map(Value::as_object)
        .flat_map(|by_key| by_key.values())
        .filter_map(Value::as_str)
        .filter_map(decode::<64>)
        .map(|bytes| Signature::from_bytes(&bytes))
        .collect();
    keys.into_iter().any(|key| signatures.iter().any(|sig| key.verify_strict(message.as_bytes(), sig).is_ok()))
}

fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok()?;
    bytes.try_into().ok()
}
