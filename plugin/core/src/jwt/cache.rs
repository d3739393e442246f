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

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher as _;
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use super::keys::KeyFamily;
use super::token::{Algorithm, ParsedToken};

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
    /// Returns this VM's unexpired entry of the token when it keeps a parse:
    /// the verification and the parse.
    fn parsed(&mut self, _token: &[u8]) -> Option<(Verified, Rc<ParsedToken>)> {
        None
    }
    /// Keeps a parse with this VM's entry of the token, when it has one.
    fn keep_parsed(&mut self, _token: &[u8], _parsed: Rc<ParsedToken>) {}
    /// Records that an entry from [`Self::get`] served a verification: the
    /// provider still had the key that verified the token.
    fn record_hit(&mut self) {}
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

/// Bounded per-VM cache of whole tokens. The oldest entries are evicted
/// first, while the cache is over its entry count or over
/// [`LOCAL_TOKEN_BYTES`] of tokens. An expired entry is never returned and is
/// evicted in its turn.
///
/// Entries are found by a keyed 64-bit hash of the token and then compared
/// with it in full. Two tokens with one hash share an entry, and the later
/// one replaces the earlier, which costs the earlier one a verification.
///
/// An entry may also keep the token's parse, so that a hit skips decoding
/// and JSON parsing. A kept parse counts the bytes of
/// [`ParsedToken::weight`], an estimate of the memory its claims take.
#[derive(Debug, Clone)]
pub struct LocalCache {
    capacity: usize,
    byte_budget: usize,
    bytes: usize,
    hasher: RandomState,
    entries: HashMap<u64, Entry>,
    /// Hashes of `entries`, oldest first. It contains the same keys as `entries`.
    order: VecDeque<u64>,
}

/// A token, its verification and, once kept, its parse.
#[derive(Debug, Clone)]
struct Entry {
    token: Rc<[u8]>,
    verified: Verified,
    parsed: Option<Rc<ParsedToken>>,
}

impl Entry {
    /// Bytes the entry counts against the byte budget.
    fn weight(&self) -> usize {
        self.token.len() + self.parsed.as_ref().map_or(0, |parsed| parsed.weight())
    }
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
            hasher: RandomState::new(),
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Returns the entry of this token unless it expired before `now`.
    pub fn get(&self, token: &[u8], now: u64) -> Option<Verified> {
        self.entry(token, now).map(|entry| entry.verified)
    }

    /// Returns the entry of this token with its kept parse, unless the
    /// entry expired before `now` or keeps no parse.
    pub fn parsed(&self, token: &[u8], now: u64) -> Option<(Verified, Rc<ParsedToken>)> {
        let entry = self.entry(token, now)?;
        Some((entry.verified, Rc::clone(entry.parsed.as_ref()?)))
    }

    fn entry(&self, token: &[u8], now: u64) -> Option<&Entry> {
        let entry = self.entries.get(&self.hasher.hash_one(token))?;
        if !same_bytes(&entry.token, token) || entry.verified.exp < now {
            return None;
        }
        Some(entry)
    }

    /// Keeps `parsed` with the entry of this token, when there is one, and
    /// evicts the oldest entries while the cache is over its byte budget.
    pub fn keep_parsed(&mut self, token: &[u8], parsed: Rc<ParsedToken>) {
        let Some(entry) = self.entries.get_mut(&self.hasher.hash_one(token)) else {
            return;
        };
        if !same_bytes(&entry.token, token) || entry.parsed.is_some() {
            return;
        }
        self.bytes += parsed.weight();
        entry.parsed = Some(parsed);
        self.evict();
    }

    /// Stores an entry, evicting the oldest ones while the cache is over
    /// its entry count or byte budget. A token larger than the whole budget
    /// is not kept.
    pub fn put(&mut self, token: &[u8], verified: Verified) {
        if token.len() > self.byte_budget {
            return;
        }
        let hash = self.hasher.hash_one(token);
        if let Some(entry) = self.entries.get_mut(&hash) {
            if !same_bytes(&entry.token, token) {
                self.bytes -= entry.weight();
                entry.token = Rc::from(token);
                entry.parsed = None;
                self.bytes += entry.weight();
            }
            entry.verified = verified;
        } else {
            self.bytes += token.len();
            let entry = Entry {
                token: Rc::from(token),
                verified,
                parsed: None,
            };
            self.entries.insert(hash, entry);
            self.order.push_back(hash);
        }
        self.evict();
    }

    /// Evicts the oldest entries while the cache is over its entry count or
    /// byte budget.
    fn evict(&mut self) {
        while self.entries.len() > self.capacity || self.bytes > self.byte_budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.bytes -= entry.weight();
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

    /// Bytes counted against the budget: the length of each cached token,
    /// and the weight of each kept parse.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Compares two byte strings eight bytes at a time. On wasm32 a slice
/// comparison calls the C library's `memcmp`, which compares one byte at a
/// time.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails_equal = a_words.remainder() == b_words.remainder();
    tails_equal
        && a_words.zip(b_words).all(|(x, y)| {
            let word = |bytes: &[u8]| {
                let mut word = [0u8; 8];
                word.copy_from_slice(bytes);
                u64::from_ne_bytes(word)
            };
            word(x) == word(y)
        })
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

    fn parsed_token(raw: &str) -> Rc<ParsedToken> {
        let token = super::super::token::parse(raw).expect("token parses");
        Rc::new(ParsedToken::of(&token))
    }

    /// A token with `{"alg":"RS256"}` and `{"sub":"a","exp":100}`.
    const RAW: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjoxMDB9.c2ln";

    #[test]
    fn parse_kept_with_entry() {
        let mut cache = LocalCache::with_budget(4, 1000);
        cache.keep_parsed(RAW.as_bytes(), parsed_token(RAW));
        assert!(cache.parsed(RAW.as_bytes(), 0).is_none());
        assert_eq!(cache.bytes(), 0);

        cache.put(RAW.as_bytes(), entry(100));
        let parsed = parsed_token(RAW);
        let weight = parsed.weight();
        assert!(weight > 400);
        cache.keep_parsed(RAW.as_bytes(), parsed);
        assert_eq!(cache.bytes(), RAW.len() + weight);
        let (verified, kept) = cache.parsed(RAW.as_bytes(), 100).expect("parse kept");
        assert_eq!(verified, entry(100));
        let token = kept.token(RAW).expect("same bytes");
        assert_eq!(token.registered.sub.as_deref(), Some("a"));
        assert_eq!(token.signature(), b"sig");
        assert!(RAW.starts_with(token.signing_input));
        assert!(cache.parsed(RAW.as_bytes(), 101).is_none());
        assert!(cache.parsed(&RAW.as_bytes()[1..], 0).is_none());
    }

    #[test]
    fn kept_parse_counts_against_budget() {
        let parsed = parsed_token(RAW);
        let mut cache = LocalCache::with_budget(4, RAW.len() + parsed.weight());
        cache.put(RAW.as_bytes(), entry(100));
        cache.put(b"x", entry(100));
        cache.keep_parsed(RAW.as_bytes(), parsed);
        // The token and its parse no longer fit beside "x", so the oldest
        // entry, the token itself, goes.
        assert!(cache.get(RAW.as_bytes(), 0).is_none());
        assert!(cache.get(b"x", 0).is_some());
        assert_eq!(cache.bytes(), 1);
    }

    #[test]
    fn parse_weight_counts_nested_objects() {
        use base64::Engine as _;
        let encode = |json: &str| super::super::token::BASE64URL.encode(json);
        let small = format!(
            "{}.{}.c2ln",
            encode(r#"{"alg":"RS256"}"#),
            encode(r#"{"a":1}"#)
        );
        let objects = "{\"\":0},".repeat(50);
        let nested = format!(
            "{}.{}.c2ln",
            encode(r#"{"alg":"RS256"}"#),
            encode(&format!(r#"{{"a":[{}{{}}]}}"#, objects))
        );
        let small_weight = parsed_token(&small).weight();
        let nested_weight = parsed_token(&nested).weight();
        // Each of the 50 one-member objects takes a node of its own.
        assert!(nested_weight >= small_weight + 50 * 400, "{nested_weight}");
        assert!(nested_weight > 20 * nested.len(), "{nested_weight}");
    }

    #[test]
    fn same_bytes_compares_every_byte() {
        let long: Vec<u8> = (0..37).collect();
        assert!(same_bytes(&long, &long.clone()));
        for at in 0..long.len() {
            let mut other = long.clone();
            other[at] ^= 0x80;
            assert!(!same_bytes(&long, &other), "byte {at}");
        }
        assert!(!same_bytes(&long, &long[..36]));
        assert!(same_bytes(b"", b""));
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
