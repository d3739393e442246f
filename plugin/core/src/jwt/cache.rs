//! The verified-token cache: a bounded per-VM map from a token's exact bytes
//! to the key that verified it, and fixed shared-data slots, keyed by the
//! token's SHA-256, through which workers share verifications.
//!
//! An entry only spares the signature check. The token is still parsed and
//! its time window, issuer and audiences checked on every request, and the
//! entry counts only while the provider still has the key that verified it.
//!
//! The per-VM map compares whole tokens, so a hit there needs no digest. The
//! digest is computed only when the shared slots are read or written, and
//! HMAC tokens never reach them (see [`Reach`]).

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use super::keys::KeyFamily;
use super::token::Algorithm;

/// Number of shared-data slots for verified tokens. Shared data has no
/// delete, so the key space is fixed: a token's slot is chosen by its hash
/// and a newer token overwrites an older one in the same slot.
pub const SHARED_SLOTS: u16 = 256;

/// Prefix of the shared-data keys of the slots.
pub const SHARED_SLOT_PREFIX: &str = "portcullis.jwt.verified.";

/// Maximum token bytes in the per-VM cache, whatever its entry count: 1 MiB,
/// about 1,900 tokens of 550 bytes.
pub const LOCAL_TOKEN_BYTES: usize = 1 << 20;

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

/// The caches that a verification goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// This VM's cache only. An HMAC costs about as much as the SHA-256 that
    /// names a token's shared slot, so sharing an HMAC verification spares
    /// other workers nothing and adds two shared-data calls to each miss.
    Local,
    /// This VM's cache and the shared slots, so that one public-key
    /// verification serves every worker.
    Shared,
}

impl Reach {
    /// Returns the reach of verifications of tokens signed with `algorithm`.
    pub fn of(algorithm: Algorithm) -> Self {
        if KeyFamily::Hmac.accepts(algorithm) {
            Reach::Local
        } else {
            Reach::Shared
        }
    }
}

/// Storage of verifications, keyed by the token as it arrived.
pub trait VerifiedStore {
    /// Returns the verification of this token from the caches of `reach`.
    fn get(&mut self, token: &[u8], reach: Reach) -> Option<Verified>;
    /// Stores a verification of this token in the caches of `reach`.
    fn put(&mut self, token: &[u8], verified: Verified, reach: Reach);
}

/// A store that keeps nothing.
pub struct NoStore;

impl VerifiedStore for NoStore {
    fn get(&mut self, _token: &[u8], _reach: Reach) -> Option<Verified> {
        None
    }

    fn put(&mut self, _token: &[u8], _verified: Verified, _reach: Reach) {}
}

/// SHA-256 of a token: the key of its shared-data slot.
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Bounded per-VM cache keyed by whole tokens. The oldest entries are
/// evicted first, while the cache is over its entry count or over
/// [`LOCAL_TOKEN_BYTES`] of tokens. An expired entry is never returned and is
/// evicted in its turn.
#[derive(Debug, Clone)]
pub struct LocalCache {
    capacity: usize,
    byte_budget: usize,
    bytes: usize,
    entries: HashMap<Rc<[u8]>, Verified>,
    /// Keys of `entries`, oldest first. It contains the same keys as `entries`.
    order: VecDeque<Rc<[u8]>>,
}

impl LocalCache {
    /// Creates a cache of at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, LOCAL_TOKEN_BYTES)
    }

    /// Creates a cache of at most `capacity` entries and `byte_budget` bytes
    /// of tokens.
    pub fn with_budget(capacity: usize, byte_budget: usize) -> Self {
        LocalCache {
            capacity: capacity.max(1),
            byte_budget,
            bytes: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Returns the entry of this token unless it expired before `now`.
    pub fn get(&self, token: &[u8], now: u64) -> Option<Verified> {
        self.entries
            .get(token)
            .copied()
            .filter(|entry| entry.exp >= now)
    }

    /// Stores an entry, evicting the oldest ones while the cache is over
    /// its entry count or byte budget. A token larger than the whole budget
    /// is not kept.
    pub fn put(&mut self, token: &[u8], verified: Verified) {
        if token.len() > self.byte_budget {
            return;
        }
        if let Some(entry) = self.entries.get_mut(token) {
            *entry = verified;
            return;
        }
        let key: Rc<[u8]> = Rc::from(token);
        self.bytes += key.len();
        self.entries.insert(Rc::clone(&key), verified);
        self.order.push_back(key);
        while self.entries.len() > self.capacity || self.bytes > self.byte_budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
            self.bytes -= oldest.len();
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

    /// Total length of the cached tokens.
    pub fn bytes(&self) -> usize {
        self.bytes
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
    fn cache_is_bounded_by_entries() {
        let mut cache = LocalCache::new(2);
        cache.put(b"a.b.1", entry(100));
        cache.put(b"a.b.2", entry(100));
        cache.put(b"a.b.3", entry(100));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(b"a.b.1", 0).is_none());
        assert!(cache.get(b"a.b.3", 0).is_some());
        assert_eq!(cache.bytes(), 10);
    }

    #[test]
    fn cache_is_bounded_by_bytes() {
        let mut cache = LocalCache::with_budget(100, 10);
        cache.put(b"aaaa", entry(100));
        cache.put(b"bbbb", entry(100));
        assert_eq!(cache.len(), 2);
        cache.put(b"cccc", entry(100));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.bytes(), 8);
        assert!(cache.get(b"aaaa", 0).is_none());
        cache.put(b"a token longer than the budget", entry(100));
        assert!(cache.get(b"a token longer than the budget", 0).is_none());
        assert_eq!(cache.bytes(), 8);
    }

    #[test]
    fn lookups_compare_whole_tokens() {
        let mut cache = LocalCache::new(4);
        cache.put(b"header.payload.signature", entry(100));
        assert!(cache.get(b"header.payload.signature", 0).is_some());
        assert!(cache.get(b"header.payload.signaturf", 0).is_none());
        assert!(cache.get(b"header.payload.signatur", 0).is_none());
        assert!(cache.get(b"header.payload.signature ", 0).is_none());
    }

    #[test]
    fn cache_put_replaces_existing_entry() {
        let mut cache = LocalCache::with_budget(2, 100);
        cache.put(b"one", entry(100));
        cache.put(b"one", entry(200));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.bytes(), 3);
        assert_eq!(cache.get(b"one", 150), Some(entry(200)));
        cache.put(b"two", entry(100));
        cache.put(b"three", entry(100));
        assert!(cache.get(b"one", 0).is_none());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn expired_entries_are_not_returned() {
        let mut cache = LocalCache::new(4);
        cache.put(b"token", entry(100));
        assert!(cache.get(b"token", 100).is_some());
        assert!(cache.get(b"token", 101).is_none());
    }

    #[test]
    fn slot_round_trip() {
        let digest = token_digest(b"header.payload.signature");
        let value = encode_slot(&digest, &entry(5));
        assert_eq!(decode_slot(&value, &digest), Some(entry(5)));
        assert_eq!(decode_slot(&value, &[8; 32]), None);
        assert_eq!(decode_slot(&value[1..], &digest), None);
        assert!(shared_slot_key(&digest).starts_with(SHARED_SLOT_PREFIX));
    }
}
