//! The shared store behind the counters, and the compare-and-swap loop that
//! updates a bucket without losing a concurrent update.
//!
//! Envoy's shared data (proxy-wasm-cpp-host) gives every write a CAS token
//! from one counter for the whole store, starting at 1 and skipping 0. A
//! `set` with a non-zero CAS fails with `CAS_MISMATCH` unless it matches the
//! key's token, but a `set` on a missing key succeeds whatever the CAS. Two
//! workers that both read NOT_FOUND could therefore both write, and one
//! update would be lost.
//!
//! The first insert of a bucket is made conditional with a foreign token:
//! the CAS of a separate anchor key ([`ANCHOR_KEY`]). That token was handed
//! to a write of the anchor, so no write of a bucket key can carry it until
//! the store's counter wraps around after 2^32 writes. A first insert with
//! it therefore creates a missing bucket, and fails with `CAS_MISMATCH` when
//! another worker created the bucket in between, after which the loop reads
//! the bucket again. Every later write passes the CAS that `get` returned,
//! never 0, which Kong's ngx_wasm_module also requires.
//!
//! NOTE: whether ngx_wasm_module creates a missing key on a `set` with a
//! non-zero CAS has not been checked against its source.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

/// Shared-data key whose CAS token makes first inserts conditional.
pub const ANCHOR_KEY: &str = "portcullis.limits.anchor";

/// Attempts of one compare-and-swap update before it gives up.
pub const MAX_ATTEMPTS: u32 = 64;

/// The outcome of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// The value was written.
    Stored,
    /// The key changed since the CAS token was read.
    CasMismatch,
}

/// A failed host call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

/// Shared data as the host provides it.
pub trait SharedStore {
    /// Returns the value and CAS token of a key, or `None` when it is missing.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError>;
    /// Writes a value if `cas` matches the key's token, or unconditionally
    /// with `cas` 0; a missing key is written whatever `cas` is.
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, HostError>;
}

/// Why a counter could not be read or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A host call failed.
    Host(HostError),
    /// Every attempt lost the compare-and-swap race.
    Contention {
        /// Attempts made.
        attempts: u32,
    },
    /// Every entry of the key's bucket holds an active lockout, so the key
    /// cannot be tracked.
    BucketFull,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Host(HostError(message)) => write!(f, "shared data failed: {message}"),
            StoreError::Contention { attempts } => {
                write!(f, "compare-and-swap lost {attempts} times in a row")
            }
            StoreError::BucketFull => {
                f.write_str("every entry of the bucket holds an active lockout")
            }
        }
    }
}

impl From<HostError> for StoreError {
    fn from(error: HostError) -> Self {
        StoreError::Host(error)
    }
}

/// The anchor's CAS token, cached per worker once read.
#[derive(Debug, Default)]
pub struct Anchor {
    cas: Cell<u32>,
}

impl Anchor {
    /// Returns the anchor's CAS token, creating the anchor when it is
    /// missing. Concurrent creators write the same empty value, so their race
    /// is harmless, and any token the anchor ever had works.
    pub fn cas<S: SharedStore + ?Sized>(&self, store: &S) -> Result<u32, StoreError> {
        let cached = self.cas.get();
        if cached != 0 {
            return Ok(cached);
        }
        for _ in 0..MAX_ATTEMPTS {
            if let Some((_, cas)) = store.get(ANCHOR_KEY)? {
                if cas != 0 {
                    self.cas.set(cas);
                    return Ok(cas);
                }
            }
            // A mismatch means another worker created the anchor: read again.
            store.set(ANCHOR_KEY, b"", 0)?;
        }
        Err(StoreError::Contention {
            attempts: MAX_ATTEMPTS,
        })
    }
}

/// What an update function decides for the value it was given.
pub struct Update<T> {
    /// The value to write, or `None` to leave the key as it is.
    pub value: Option<Vec<u8>>,
    /// The result returned to the caller once the write, if any, succeeded.
    pub output: T,
}

/// Applies `update` to the current value of `key` (`None` when missing) and
/// writes the result with compare-and-swap, retrying from a fresh read when
/// another worker wrote in between. `update` may run several times and must
/// not have side effects.
pub fn update<S, T, F>(
    store: &S,
    anchor: &Anchor,
    key: &str,
    mut update: F,
) -> Result<T, StoreError>
where
    S: SharedStore + ?Sized,
    F: FnMut(Option<&[u8]>) -> Result<Update<T>, StoreError>,
{
    for _ in 0..MAX_ATTEMPTS {
        let current = store.get(key)?;
        let (decided, cas) = match &current {
            Some((value, cas)) => (update(Some(value))?, *cas),
            None => (update(None)?, 0),
        };
        let Some(value) = decided.value else {
            return Ok(decided.output);
        };
        // A missing key gets the anchor's token, so that the insert fails
        // when another worker created the key first. A token of 0 never comes
        // from the host and would make the write unconditional, so it is
        // replaced the same way.
        let cas = if cas == 0 { anchor.cas(store)? } else { cas };
        match store.set(key, &value, cas)? {
            SetOutcome::Stored => return Ok(decided.output),
            SetOutcome::CasMismatch => continue,
        }
    }
    Err(StoreError::Contention {
        attempts: MAX_ATTEMPTS,
    })
}

/// An in-memory store with the semantics of Envoy's shared data: one CAS
/// counter for the whole store, and a `set` on a missing key that succeeds
/// whatever the CAS. Safe to share between threads.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug)]
struct MemoryInner {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            inner: Mutex::new(MemoryInner {
                entries: HashMap::new(),
                next_cas: 1,
            }),
        }
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the number of keys and the bytes of keys and values stored.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        let bytes = inner
            .entries
            .iter()
            .map(|(key, (value, _))| key.len() + value.len())
            .sum();
        (inner.entries.len(), bytes)
    }

    /// Returns the stored value of a key.
    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().entries.get(key).map(|(value, _)| value.clone())
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        Ok(self.lock().entries.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, HostError> {
        let mut inner = self.lock();
        if let Some((_, stored)) = inner.entries.get(key) {
            if cas != 0 && cas != *stored {
                return Ok(SetOutcome::CasMismatch);
            }
        }
        let token = inner.next_cas;
        inner.next_cas = inner.next_cas.wrapping_add(1).max(1);
        inner
            .entries
            .insert(key.to_string(), (value.to_vec(), token));
        Ok(SetOutcome::Stored)
    }
}
