//! Per-key counter state and its binary encoding in a shared-data bucket.
//!
//! A bucket is one shared-data value holding up to [`WAYS`] entries:
//!
//! ```text
//! byte 0      format version (2)
//! byte 1      number of entries, at most WAYS
//! then        ENTRY_BYTES per entry, all integers little-endian:
//!   [0..16)   key hash (SHA-256, truncated)
//!   [16..24)  last seen, ms since the Unix epoch (the clamp for a clock
//!             that moves backwards)
//!   [24..32)  sliding window: start of the current fixed window, ms;
//!             token bucket: time of the last refill, ms
//!   [32..36)  sliding window: count in the previous fixed window;
//!             token bucket: high half of the deficit
//!   [36..40)  sliding window: count in the current fixed window;
//!             token bucket: low half of the deficit
//!   [40..48)  end of the last lockout, ms (0 when never locked out)
//!   [48..50)  number of lockouts remembered for escalation
//!   [50]      flags: bit 0 set while a lockout has not been released
//!   [51..55)  requests let through whose response has not come (in flight)
//!   [55..63)  time the in-flight count was last raised, ms
//! ```
//!
//! Version 1 had 51-byte entries without the last two fields. A version-1
//! bucket decodes as entries with nothing in flight and is written back as
//! version 2.

use super::key::{KeyHash, KEY_HASH_BYTES};

/// Entries per bucket: the probe window of a key.
pub const WAYS: usize = 4;
/// Encoded size of one entry.
pub const ENTRY_BYTES: usize = 63;
/// Encoded size of one entry in a version-1 bucket.
pub const V1_ENTRY_BYTES: usize = 51;
/// Encoded size of the bucket header.
pub const HEADER_BYTES: usize = 2;
/// Bucket format version.
const VERSION: u8 = 2;
/// The format before in-flight counts, still decoded.
const VERSION_1: u8 = 1;
const FLAG_LOCK_ACTIVE: u8 = 1;

/// Counter state of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Hash of the key.
    pub hash: KeyHash,
    /// Latest host time this entry has seen, in ms. Earlier times are
    /// clamped to it.
    pub last_seen_ms: u64,
    /// Window start or last refill, in ms.
    pub counter_time_ms: u64,
    /// Count in the previous window, or the high half of the deficit.
    pub previous: u32,
    /// Count in the current window, or the low half of the deficit.
    pub current: u32,
    /// End of the last lockout, in ms.
    pub locked_until_ms: u64,
    /// Lockouts remembered for escalation.
    pub lockouts: u16,
    /// Whether a lockout is in force or ended without its release reported.
    pub lock_active: bool,
    /// Requests of a failure-counting policy let through whose response has
    /// not come. The policy reads an old count as 0.
    pub in_flight: u32,
    /// Time the in-flight count was last raised, in ms.
    pub in_flight_since_ms: u64,
}

impl Entry {
    /// Creates an entry with no counts.
    pub fn new(hash: KeyHash, now_ms: u64) -> Self {
        Entry {
            hash,
            last_seen_ms: now_ms,
            counter_time_ms: now_ms,
            previous: 0,
            current: 0,
            locked_until_ms: 0,
            lockouts: 0,
            lock_active: false,
            in_flight: 0,
            in_flight_since_ms: 0,
        }
    }

    /// Token-bucket deficit: how far the bucket is below full, in units
    /// where one token is the window length in ms.
    pub fn deficit(&self) -> u64 {
        (u64::from(self.previous) << 32) | u64::from(self.current)
    }

    /// Stores the token-bucket deficit.
    pub fn set_deficit(&mut self, deficit: u64) {
        self.previous = (deficit >> 32) as u32;
        self.current = deficit as u32;
    }

    /// Tells whether a lockout is in force at `now_ms`.
    pub fn is_locked(&self, now_ms: u64) -> bool {
        self.lock_active && now_ms < self.locked_until_ms
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.hash.0);
        out.extend_from_slice(&self.last_seen_ms.to_le_bytes());
        out.extend_from_slice(&self.counter_time_ms.to_le_bytes());
        out.extend_from_slice(&self.previous.to_le_bytes());
        out.extend_from_slice(&self.current.to_le_bytes());
        out.extend_from_slice(&self.locked_until_ms.to_le_bytes());
        out.extend_from_slice(&self.lockouts.to_le_bytes());
        out.push(if self.lock_active {
            FLAG_LOCK_ACTIVE
        } else {
            0
        });
        out.extend_from_slice(&self.in_flight.to_le_bytes());
        out.extend_from_slice(&self.in_flight_since_ms.to_le_bytes());
    }

    /// Decodes an entry of either format. A version-1 entry has nothing in
    /// flight.
    fn decode(raw: &[u8]) -> Option<Entry> {
        if raw.len() != ENTRY_BYTES && raw.len() != V1_ENTRY_BYTES {
            return None;
        }
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(raw.get(at..at + 8)?.try_into().ok()?))
        };
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(raw.get(at..at + 4)?.try_into().ok()?))
        };
        let mut hash = [0u8; KEY_HASH_BYTES];
        hash.copy_from_slice(&raw[..KEY_HASH_BYTES]);
        Some(Entry {
            hash: KeyHash(hash),
            last_seen_ms: u64_at(16)?,
            counter_time_ms: u64_at(24)?,
            previous: u32_at(32)?,
            current: u32_at(36)?,
            locked_until_ms: u64_at(40)?,
            lockouts: u16::from_le_bytes(raw.get(48..50)?.try_into().ok()?),
            lock_active: raw[50] & FLAG_LOCK_ACTIVE != 0,
            in_flight: if raw.len() == ENTRY_BYTES {
                u32_at(51)?
            } else {
                0
            },
            in_flight_since_ms: if raw.len() == ENTRY_BYTES {
                u64_at(55)?
            } else {
                0
            },
        })
    }
}

/// The entries of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Entries, at most [`WAYS`].
    pub entries: Vec<Entry>,
}

impl Bucket {
    /// Decodes a stored bucket of version 2 or 1. A value in another format
    /// or cut short (such as the SDK's empty "removed" value) reads as an
    /// empty bucket, which the next write replaces.
    pub fn decode(raw: &[u8]) -> Bucket {
        let (Some(&version), Some(&count)) = (raw.first(), raw.get(1)) else {
            return Bucket::default();
        };
        let entry_bytes = match version {
            VERSION => ENTRY_BYTES,
            VERSION_1 => V1_ENTRY_BYTES,
            _ => return Bucket::default(),
        };
        let count = usize::from(count);
        if count > WAYS || raw.len() != HEADER_BYTES + count * entry_bytes {
            return Bucket::default();
        }
        let entries = raw[HEADER_BYTES..]
            .chunks_exact(entry_bytes)
            .filter_map(Entry::decode)
            .collect();
        Bucket { entries }
    }

    /// Encodes the bucket.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.entries.len() * ENTRY_BYTES);
        out.push(VERSION);
        out.push(self.entries.len() as u8);
        for entry in &self.entries {
            entry.encode_into(&mut out);
        }
        out
    }

    /// Returns the index of the entry for `hash`.
    pub fn position(&self, hash: &KeyHash) -> Option<usize> {
        self.entries.iter().position(|entry| entry.hash == *hash)
    }
}
