//! Ed25519 verification (RFC 8032, section 5.1.7) on curve25519-dalek's
//! points, with a fixed-base table of each key's negated point.
//!
//! A verification computes `R' = [s]B + [k](-A)` and accepts when the
//! encoding of `R'` equals the signature's `R` and `R'` does not have small
//! order. curve25519-dalek's variable-base product doubles about 253 times,
//! and those doublings are most of a verification. A table of multiples of
//! `-A` like the library's own table of `B` needs 64 additions and 4
//! doublings per product, and a verification then takes about half the
//! field operations.
//!
//! A table takes about 30 KB and costs about as much as 40 verifications to
//! build (measured natively: 2.0 ms against 48 µs). So it is built when its key
//! first verifies a signature, and at most [`MAX_TABLES`] exist at once. Keys
//! beyond them use the variable-base product, which gives the same results.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable as _;
use sha2::{Digest as _, Sha512};

/// Maximum number of key tables alive at once in this process: about 2 MB.
pub const MAX_TABLES: usize = 64;

/// Number of key tables alive in this process.
static TABLES: AtomicUsize = AtomicUsize::new(0);

/// Reason an Ed25519 public key is rejected when it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ed25519KeyError {
    /// The bytes are not the canonical encoding of a curve point.
    NotAPoint,
    /// The point has small order, so any message verifies under it.
    SmallOrder,
}

/// An Ed25519 public key: its encoding, which the signed hash covers, and
/// its negated point, decompressed when the key loads.
pub struct Ed25519Key {
    encoded: [u8; 32],
    negated: EdwardsPoint,
    table: OnceLock<KeyTable>,
}

/// A fixed-base table of one key's negated point, counted in [`TABLES`]
/// while it lives.
struct KeyTable(Box<EdwardsBasepointTable>);

impl Drop for KeyTable {
    fn drop(&mut self) {
        TABLES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Clone for Ed25519Key {
    /// Copies the key without its table, which the copy builds again if it
    /// verifies a signature.
    fn clone(&self) -> Self {
        Ed25519Key {
            encoded: self.encoded,
            negated: self.negated,
            table: OnceLock::new(),
        }
    }
}

impl fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Key")
            .field("encoded", &self.encoded)
            .field("table", &self.table.get().is_some())
            .finish()
    }
}

impl Ed25519Key {
    /// Decodes a public key (RFC 8032, section 5.1.3) and rejects points of
    /// small order. curve25519-dalek reduces a `y` of `p` or more modulo `p`
    /// where RFC 8032 says decoding fails, so an encoding that does not come
    /// back from the point is rejected here.
    pub fn from_bytes(encoded: [u8; 32]) -> Result<Self, Ed25519KeyError> {
        let point = CompressedEdwardsY(encoded)
            .decompress()
            .filter(|point| point.compress().to_bytes() == encoded)
            .ok_or(Ed25519KeyError::NotAPoint)?;
        if point.is_small_order() {
            return Err(Ed25519KeyError::SmallOrder);
        }
        Ok(Ed25519Key {
            encoded,
            negated: -point,
            table: OnceLock::new(),
        })
    }

    /// Checks a 64-byte signature `R || S` over `message`. `S` must be
    /// below the group order, and `R` must be the canonical encoding of
    /// `[S]B - [k]A` and not of a point of small order.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.verify_on(self.table(), message, signature)
    }

    /// [`Self::verify`] with the key's table, or with the variable-base
    /// product when `table` is `None`.
    fn verify_on(
        &self,
        table: Option<&EdwardsBasepointTable>,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        let (r, s) = signature.split_at(32);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(s);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let mut hash = Sha512::new();
        hash.update(r);
        hash.update(self.encoded);
        hash.update(message);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&hash.finalize());
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let expected = match table {
            Some(table) => table.mul_base(&k) + ED25519_BASEPOINT_TABLE.mul_base(&s),
            None => EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &self.negated, &s),
        };
        expected.compress().as_bytes() == r && !expected.is_small_order()
    }

    /// Returns the key's table, building it on first use while fewer than
    /// [`MAX_TABLES`] exist.
    fn table(&self) -> Option<&EdwardsBasepointTable> {
        if let Some(table) = self.table.get() {
            return Some(&table.0);
        }
        if !reserve(&TABLES, MAX_TABLES) {
            return None;
        }
        let built = KeyTable(Box::new(EdwardsBasepointTable::create(&self.negated)));
        // When another thread set the table first, `built` is dropped here
        // and gives its count back.
        Some(&self.table.get_or_init(|| built).0)
    }

    /// Tells whether the key's table has been built.
    pub fn has_table(&self) -> bool {
        self.table.get().is_some()
    }
}

/// Counts one more table in `counter` unless it has reached `max`.
fn reserve(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn signing_key(seed: u8) -> SigningKey {
        let mut secret = [0u8; 32];
        for (i, byte) in secret.iter_mut().enumerate() {
            *byte = seed.wrapping_mul(31).wrapping_add(i as u8);
        }
        SigningKey::from_bytes(&secret)
    }

    /// Verifies with the key's table and with the variable-base product,
    /// and returns both results.
    fn both_paths(key: &Ed25519Key, message: &[u8], signature: &[u8]) -> (bool, bool) {
        let table = EdwardsBasepointTable::create(&key.negated);
        (
            key.verify_on(Some(&table), message, signature),
            key.verify_on(None, message, signature),
        )
    }

    #[test]
    fn verify_matches_ed25519_dalek_strict() {
        for seed in 0..6u8 {
            let signer = signing_key(seed);
            let public = signer.verifying_key();
            let key = Ed25519Key::from_bytes(public.to_bytes()).expect("valid key");
            for length in [0usize, 1, 64, 300] {
                let message: Vec<u8> = (0..length).map(|i| (i as u8) ^ seed).collect();
                let good = signer.sign(&message).to_bytes();
                assert_eq!(both_paths(&key, &message, &good), (true, true));
                // Every single-bit change of the signature or the message fails,
                // as it does for ed25519-dalek.
                for bit in (0..512).step_by(37) {
                    let mut bad = good;
                    bad[bit / 8] ^= 1 << (bit % 8);
                    let reference = public
                        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&bad))
                        .is_ok();
                    assert!(!reference);
                    assert_eq!(both_paths(&key, &message, &bad), (false, false));
                }
                let mut other = message.clone();
                other.push(1);
                assert_eq!(both_paths(&key, &other, &good), (false, false));
            }
        }
    }

    #[test]
    fn verify_non_canonical_s_fails() {
        let signer = signing_key(9);
        let key = Ed25519Key::from_bytes(signer.verifying_key().to_bytes()).expect("valid key");
        let message = b"message";
        let mut signature = signer.sign(message).to_bytes();
        // S + l has the same value modulo the group order.
        const ORDER: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (byte, add) in signature[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert_eq!(both_paths(&key, message, &signature), (false, false));
    }

    #[test]
    fn verify_wrong_length_fails() {
        let signer = signing_key(3);
        let key = Ed25519Key::from_bytes(signer.verifying_key().to_bytes()).expect("valid key");
        let signature = signer.sign(b"m").to_bytes();
        assert!(!key.verify(b"m", &signature[..63]));
        assert!(!key.verify(b"m", &[signature.as_slice(), &[0]].concat()));
        assert!(!key.verify(b"m", &[]));
    }

    #[test]
    fn from_bytes_small_order_rejected() {
        for point in EIGHT_TORSION {
            assert_eq!(
                Ed25519Key::from_bytes(point.compress().to_bytes()).err(),
                Some(Ed25519KeyError::SmallOrder)
            );
        }
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            Ed25519Key::from_bytes(not_a_point).err(),
            Some(Ed25519KeyError::NotAPoint)
        );
        // y = p + 3 decodes, reduced, to the point with y = 3, whose order
        // is large.
        let mut non_canonical = [0xff; 32];
        non_canonical[0] = 0xf0;
        non_canonical[31] = 0x7f;
        assert!(CompressedEdwardsY(non_canonical).decompress().is_some());
        assert_eq!(
            Ed25519Key::from_bytes(non_canonical).err(),
            Some(Ed25519KeyError::NotAPoint)
        );
    }

    /// With a known secret scalar `a`, `R` the identity and `S = k·a`, the
    /// cofactorless equation is true for any message. ed25519-dalek's plain
    /// check accepts such a signature and its strict check rejects it, as
    /// this module does.
    #[test]
    fn verify_small_order_r_rejected() {
        let a = Scalar::from(0x1234_5678_9abc_u64);
        let public = EdwardsPoint::mul_base(&a).compress().to_bytes();
        let key = Ed25519Key::from_bytes(public).expect("valid key");
        let message = b"forged";
        let r = EdwardsPoint::default().compress().to_bytes();
        let mut hash = Sha512::new();
        hash.update(r);
        hash.update(public);
        hash.update(message);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&hash.finalize());
        let s = Scalar::from_bytes_mod_order_wide(&wide) * a;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r);
        signature[32..].copy_from_slice(s.as_bytes());

        let reference = ed25519_dalek::VerifyingKey::from_bytes(&public).expect("valid key");
        let parsed = ed25519_dalek::Signature::from_bytes(&signature);
        assert!(ed25519_dalek::Verifier::verify(&reference, message, &parsed).is_ok());
        assert!(reference.verify_strict(message, &parsed).is_err());
        assert_eq!(both_paths(&key, message, &signature), (false, false));
    }

    #[test]
    fn reserve_stops_at_max() {
        let counter = AtomicUsize::new(0);
        assert!(reserve(&counter, 2));
        assert!(reserve(&counter, 2));
        assert!(!reserve(&counter, 2));
        assert_eq!(counter.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn table_built_once_not_cloned() {
        let signer = signing_key(5);
        let key = Ed25519Key::from_bytes(signer.verifying_key().to_bytes()).expect("valid key");
        assert!(!key.has_table());
        let signature = signer.sign(b"m").to_bytes();
        assert!(key.verify(b"m", &signature));
        assert!(key.has_table());
        let copy = key.clone();
        assert!(!copy.has_table());
        assert!(copy.verify(b"m", &signature));
    }
}
