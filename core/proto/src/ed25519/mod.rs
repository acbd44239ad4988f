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
//!
//! A key that verifies many signatures gets tables of its multiples
//! (`key_tables`), with which the same equation costs about 19 µs instead
//! of 34 (`fixed_base`).

mod fixed_base;
mod key_tables;

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
    match key_tables::table_for(key) {
        Some(table) => fixed_base::verify(&table, key.as_bytes(), message, signature),
        // Refuses non-canonical S (this crate does not enable dalek's
        // `legacy_compatibility`), then checks [S]B = R + [k]A by comparing
        // encodings.
        None => key.verify(message, &Signature::from_bytes(signature)).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;
    use sha2::Digest;

    /// The group order ℓ, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// Both ways of verifying (with and without a table for the key) give
    /// `verify_strict`'s answer.
    fn agrees_with_verify_strict(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) {
        let strict = key.verify_strict(message, &Signature::from_bytes(signature)).is_ok();
        assert_eq!(verify(key, message, signature), strict, "signature {signature:?}");
        let table = fixed_base::Table::new(&-key.to_edwards());
        let tabled = !small_order_encodings().iter().any(|e| *e == signature[..32])
            && fixed_base::verify(&table, key.as_bytes(), message, signature);
        assert_eq!(tabled, strict, "with a table, signature {signature:?}");
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
    fn keys_and_nonces_with_a_torsion_part_get_the_cofactorless_answer() {
        // A = aB + T and R = rB + T' with T, T' of small order: the equation
        // [s]B - [k]A = R holds only when T' = -[k]T, which libsodium (and
        // the exact comparison) accepts and a cofactored check would also
        // accept for every other T'.
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
        let a = Scalar::from_bytes_mod_order([7; 32]);
        let key_point = a * B + EIGHT_TORSION[1];
        let key = public_key(key_point.compress().as_bytes()).expect("mixed order is not small order");
        let mut accepted = 0;
        for (round, torsion) in (0..16u8).flat_map(|m| EIGHT_TORSION.iter().map(move |t| (m, t))) {
            let r = Scalar::from_bytes_mod_order([round + 1; 32]);
            let nonce = (r * B + torsion).compress();
            let message = [round; 3];
            let k = Scalar::from_hash(
                sha2::Sha512::new().chain_update(nonce.as_bytes()).chain_update(key.as_bytes()).chain_update(message),
            );
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(nonce.as_bytes());
            signature[32..].copy_from_slice((r + k * a).as_bytes());
            agrees_with_verify_strict(&key, &message, &signature);
            accepted += usize::from(verify(&key, &message, &signature));
        }
        assert!(accepted > 0, "no case where the torsion parts cancel: the test proves nothing");
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
