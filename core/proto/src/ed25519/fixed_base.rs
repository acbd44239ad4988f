//! Verification from precomputed multiples of the points, for keys that
//! verify many signatures (a busy server's key signs most events of the
//! rooms we share with it).
//!
//! The equation checked is the one [`super::verify`] checks through
//! `ed25519-dalek`, `[S]B - [k]A == R`, compared by encoding: the same
//! group element is computed, only differently. Writing each scalar in
//! signed base-2^w digits `d_i`, `[x]P = Σ d_i·2^(w·i)·P`; with every
//! `j·2^(w·i)·P` (1 ≤ j ≤ 2^(w-1)) in a table, the sum takes one point
//! addition per non-zero digit and no doublings: about 58 additions with
//! the widths below, where the double-scalar multiplication does 253
//! doublings and about 60 additions.
//! Measured on this machine (2026-12-05, 1,600-byte messages): about
//! 19 µs a verification against 34 µs for `VerifyingKey::verify` and
//! 40–49 µs for `verify_strict` (`docs/benchmarks.md`).
//!
//! The tables are public data and the arithmetic is variable-time:
//! verification handles no secrets.

use std::sync::OnceLock;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use sha2::{Digest, Sha512};

/// Digit width of a key's table: 4,096 points, 640 KiB, built in about
/// 0.75 ms (repaid after about 50 verifications, at 15 µs saved each).
/// With width 6
/// (215 KiB) and a width-8 base table, the `event_core` benchmark's
/// pipeline took 28.9 µs an event instead of 24.8.
pub(super) const KEY_WINDOW: usize = 8;

/// Digit width of the base point's table, built once per process, when
/// the first key table is: 13,312 points, 2 MiB, about 2.3 ms.
const BASE_WINDOW: usize = 10;

/// `j·2^(W·i)·P` for every window `i` of a 253-bit scalar and every digit
/// magnitude `1 ≤ j ≤ 2^(W-1)`, at `i·2^(W-1) + j - 1`.
pub(super) struct Table<const W: usize>(Box<[EdwardsPoint]>);

impl<const W: usize> Table<W> {
    const HALF: usize = 1 << (W - 1);
    /// Scalars below ℓ < 2^253 have at most this many digits.
    const WINDOWS: usize = 253usize.div_ceil(W);

    pub(super) fn new(point: &EdwardsPoint) -> Self {
        let mut points = Vec::with_capacity(Self::WINDOWS * Self::HALF);
        let mut base = *point;
        for _ in 0..Self::WINDOWS {
            let mut multiple = base;
            for _ in 0..Self::HALF {
                points.push(multiple);
                multiple += base;
            }
            // `multiple` is now (2^(W-1) + 1)·base; 2^W·base is twice the last entry.
            let last = points[points.len() - 1];
            base = last + last;
        }
        Self(points.into_boxed_slice())
    }

    /// Adds `[x]P` to `sum`: `x` in signed digits in `[-2^(W-1), 2^(W-1))`,
    /// the last one keeping its carry (a reduced scalar leaves room for it),
    /// one table entry added or subtracted per non-zero digit.
    fn add_multiple(&self, x: &Scalar, sum: &mut EdwardsPoint) {
        let bytes = x.as_bytes();
        let byte = |i: usize| u32::from(bytes.get(i).copied().unwrap_or(0));
        let mut carry = 0i32;
        for window in 0..Self::WINDOWS {
            let (at, shift) = (window * W / 8, window * W % 8);
            let bits = (byte(at) | byte(at + 1) << 8 | byte(at + 2) << 16) >> shift;
            let mut digit = (bits & ((1 << W) - 1)) as i32 + carry;
            carry = i32::from(window + 1 < Self::WINDOWS && digit >= Self::HALF as i32);
            digit -= carry << W;
            if digit != 0 {
                let entry = &self.0[window * Self::HALF + digit.unsigned_abs() as usize - 1];
                if digit < 0 {
                    *sum -= entry
                } else {
                    *sum += entry
                }
            }
        }
    }
}

fn base_table() -> &'static Table<BASE_WINDOW> {
    static TABLE: OnceLock<Table<BASE_WINDOW>> = OnceLock::new();
    TABLE.get_or_init(|| Table::new(&ED25519_BASEPOINT_POINT))
}

/// Verifies `signature` on `message` under the key whose encoding is
/// `key` and whose negation `-A` `table` holds. The caller has refused a
/// small-order `R`; a non-canonical `S` is refused here.
pub(super) fn verify(table: &Table<KEY_WINDOW>, key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let (r, s) = signature.split_at(32);
    let s: [u8; 32] = s.try_into().expect("32 bytes");
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else { return false };
    let k = Scalar::from_hash(Sha512::new().chain_update(r).chain_update(key).chain_update(message));
    let mut sum = EdwardsPoint::identity();
    table.add_multiple(&k, &mut sum);
    base_table().add_multiple(&s, &mut sum);
    sum.compress().as_bytes() == r
}
