//! The verified-token cache: a bounded per-VM map from the SHA-256 of a token
//! to the key that verified it, and the encoding of the same entries in
//! fixed shared-data slots so that workers share verifications.
//!
//! An entry only spares the signature check. The token is still parsed and
//! its time window, issuer and audiences checked on every request, and the
//! entry counts only while the provider still has the key that verified it.

use std::collections::{HashMap, VecDeque};

/// Number of shared-data slots for verified tokens. Shared data has no
/// delete, so the key space is fixed: a token's slot is chosen by its hash
/// and a newer token overwrites an older one in the same slot.
pub const SHARED_SLOTS: u16 = 256;

/// Prefix of the shared-data keys of the slots.
pub const SHARED_SLOT_PREFIX: &str = "portcullis.jwt.verified.";

/// One verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Index of the provider that verified the token.
    pub provider: u16,
    /// Fingerprint of the key that verified it.
    pub fingerprint: [u8; 32],
    /// `exp` of the token; the entry is not used after it.
    pub exp: u64,
}

/// Storage of verifications, keyed by token digest.
pub trait VerifiedStore {
    /// Returns the verification of the token with this digest.
    fn get(&mut self, digest: &[u8; 32]) -> Option<Verified>;
    /// Stores a verification.
    fn put(&mut self, digest: [u8; 32], verified: Verified);
}

/// A store that keeps nothing.
pub struct NoStore;

impl VerifiedStore for NoStore {
    fn get(&mut self, _digest: &[u8; 32]) -> Option<Verified> {
        None
    }

    fn put(&mut self, _digest: [u8; 32], _verified: Verified) {}
}

/// Bounded per-VM cache; the oldest entry goes first when it is full.
#[derive(Debug, Clone)]
pub struct LocalCache {
    capacity: usize,
    entries: HashMap<[u8; 32], Verified>,
    order: VecDeque<[u8; 32]>,
}

impl LocalCache {
    /// Creates a cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        LocalCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Returns the entry unless it expired before `now`, dropping it then.
    pub fn get(&mut self, digest: &[u8; 32], now: u64) -> Option<Verified> {
        let entry = *self.entries.get(digest)?;
        if entry.exp < now {
            self.entries.remove(digest);
            return None;
        }
        Some(entry)
    }

    /// Stores an entry, evicting the oldest one when full.
    pub fn put(&mut self, digest: [u8; 32], verified: Verified) {
        if self.entries.insert(digest, verified).is_none() {
            self.order.push_back(digest);
        }
        while self.entries.len() > self.capacity || self.order.len() > self.capacity * 2 {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.entries.len() > self.capacity || !self.entries.contains_key(&oldest) {
                self.entries.remove(&oldest);
            } else {
                self.order.push_back(oldest);
                break;
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Tells whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Returns the shared-data key of the slot for a digest.
pub fn shared_slot_key(digest: &[u8; 32]) -> String {
    let slot = u16::from_be_bytes([digest[0], digest[1]]) % SHARED_SLOTS;
    format!("{SHARED_SLOT_PREFIX}{slot}")
}

/// Encodes a slot value: digest, provider, fingerprint and `exp`.
pub fn encode_slot(digest: &[u8; 32], verified: &Verified) -> Vec<u8> {
    let mut value = Vec::with_capacity(74);
    value.extend_from_slice(digest);
    value.extend_from_slice(&verified.provider.to_be_bytes());
    value.extend_from_slice(&verified.fingerprint);
    value.extend_from_slice(&verified.exp.to_be_bytes());
    value
}

/// Decodes a slot value when it contains this digest.
pub fn decode_slot(value: &[u8], digest: &[u8; 32]) -> Option<Verified> {
    if value.len() != 74 || &value[..32] != digest {
        return None;
    }
    let provider = u16::from_be_bytes([value[32], value[33]]);
    let fingerprint: [u8; 32] = value[34..66].try_into().ok()?;
    let exp = u64::from_be_bytes(value[66..74].try_into().ok()?);
    Some(Verified {
        provider,
        fingerprint,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exp: u64) -> Verified {
        Verified {
            provider: 1,
            fingerprint: [7; 32],
            exp,
        }
    }

    #[test]
    fn cache_is_bounded() {
        let mut cache = LocalCache::new(2);
        cache.put([1; 32], entry(100));
        cache.put([2; 32], entry(100));
        cache.put([3; 32], entry(100));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&[1; 32], 0).is_none());
        assert!(cache.get(&[3; 32], 0).is_some());
    }

    #[test]
    fn expired_entries_are_dropped() {
        let mut cache = LocalCache::new(4);
        cache.put([1; 32], entry(100));
        assert!(cache.get(&[1; 32], 100).is_some());
        assert!(cache.get(&[1; 32], 101).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn slot_round_trip() {
        let digest = [9; 32];
        let value = encode_slot(&digest, &entry(5));
        assert_eq!(decode_slot(&value, &digest), Some(entry(5)));
        assert_eq!(decode_slot(&value, &[8; 32]), None);
        assert_eq!(decode_slot(&value[1..], &digest), None);
        assert!(shared_slot_key(&digest).starts_with(SHARED_SLOT_PREFIX));
    }
}
