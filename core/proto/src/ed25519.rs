//! Ed25519 verification that accepts exactly what libsodium accepts.
//!
//! Synapse verifies through PyNaCl, i.e. libsodium's
//! `crypto_sign_verify_detached`, which on top of the RFC 8032 equation
//! refuses non-canonical `S`, small-order `R`, and small-order or
//! non-canonically encoded public keys. A server that accepted more would
//! accept events the rest of the federation rejects.
//!
//! `ed25519-dalek`'s `verify_strict` has the same outcome but decompresses
//! `R` on every call to test its order. Here the key checks happen once,
//! when a [`PublicKey`](crate::keys::PublicKey) is made, and `R` is compared
//! against the eight canonical small-order encodings instead: a
//! non-canonical `R` can never equal the canonical encoding the verification
//! equation produces, so it is refused by the final comparison anyway.

use std::sync::OnceLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// Why bytes are not an acceptable ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRejection {
    NotAPoint,
    NonCanonical,
    SmallOrder,
}

/// Parses a public key, refusing what libsodium refuses.
pub(crate) fn public_key(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyRejection> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyRejection::NotAPoint)?;
    if key.to_edwards().compress().as_bytes() != bytes {
        return Err(KeyRejection::NonCanonical);
    }
    if key.is_weak() {
        return Err(KeyRejection::SmallOrder);
    }
    Ok(key)
}

fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static ENCODINGS: OnceLock<[[u8; 32]; 8]> = OnceLock::new();
    ENCODINGS.get_or_init(|| EIGHT_TORSION.map(|point| point.compress().to_bytes()))
}

/// Verifies `signature` on `message` under a key from [`public_key`].
pub(crate) fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let r: &[u8] = &signature[..32];
    if small_order_encodings().iter().any(|encoding| encoding == r) {
        return false;
    }
    // Refuses non-canonical S (this crate does not enable dalek's
    // `legacy_compatibility`), then checks [S]B = R + [k]A by comparing
    // encodings.
    key.verify(message, &Signature::from_bytes(signature)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    /// The group order ℓ, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn agrees_with_verify_strict(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) {
        let strict = key.verify_strict(message, &Signature::from_bytes(signature)).is_ok();
        assert_eq!(verify(key, message, signature), strict, "signature {signature:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn agrees_with_verify_strict_on_valid_and_tampered_signatures(
            seed in any::<[u8; 32]>(),
            message in prop::collection::vec(any::<u8>(), 0..200),
            flip in any::<prop::sample::Index>(),
        ) {
            let signing = SigningKey::from_bytes(&seed);
            let key = public_key(signing.verifying_key().as_bytes()).unwrap();
            let signature = signing.sign(&message).to_bytes();
            prop_assert!(verify(&key, &message, &signature));
            agrees_with_verify_strict(&key, &message, &signature);
            let mut tampered = signature;
            tampered[flip.index(64)] ^= 1;
            agrees_with_verify_strict(&key, &message, &tampered);
        }
    }

    #[test]
    fn refuses_small_order_r_even_when_the_equation_holds() {
        // Refused before the equation is tried, as `verify_strict` does.
        let signing = SigningKey::from_bytes(&[5; 32]);
        let key = public_key(signing.verifying_key().as_bytes()).unwrap();
        for encoding in small_order_encodings() {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(encoding);
            assert!(!verify(&key, b"m", &signature));
            agrees_with_verify_strict(&key, b"m", &signature);
        }
    }

    #[test]
    fn refuses_non_canonical_s() {
        let signing = SigningKey::from_bytes(&[6; 32]);
        let key = public_key(signing.verifying_key().as_bytes()).unwrap();
        let mut signature = signing.sign(b"m").to_bytes();
        // S + ℓ is the same scalar, not reduced: a malleated signature.
        let s = Scalar::from_canonical_bytes(signature[32..].try_into().unwrap()).unwrap();
        let mut sum = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let total = u16::from(s.as_bytes()[i]) + u16::from(L[i]) + carry;
            sum[i] = total as u8;
            carry = total >> 8;
        }
        assert_eq!(sum[31] & 0xe0, 0, "S + ℓ still fits in 253 bits");
        signature[32..].copy_from_slice(&sum);
        assert!(!verify(&key, b"m", &signature));
        agrees_with_verify_strict(&key, b"m", &signature);
    }

    #[test]
    fn refuses_small_order_and_non_canonical_keys() {
        for encoding in small_order_encodings() {
            assert!(public_key(encoding).is_err(), "{encoding:?}");
        }
        // y = p + y' for small y' is a non-canonical spelling of the point
        // with y = y'; at least one such y' < 19 is on the curve.
        let mut found = 0;
        for small_y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = small_y;
            let Some(point) = CompressedEdwardsY(canonical).decompress() else { continue };
            if point.is_small_order() {
                continue;
            }
            let mut non_canonical = [0xff; 32];
            non_canonical[0] = 0xed + small_y;
            non_canonical[31] = 0x7f;
            assert_eq!(public_key(&non_canonical), Err(KeyRejection::NonCanonical));
            assert!(public_key(&canonical).is_ok());
            found += 1;
        }
        assert!(found > 0);
    }
}
