//! Remote JWKS scheduling shared by worker VMs, free of host calls.
//!
//! Two shared-data values per provider coordinate the workers:
//! - the record (`portcullis.jwt.jwks.NAME.SOURCE`): the last good JWKS body
//!   and the time it was fetched, written only by the worker that fetched it;
//! - the lease (`portcullis.jwt.lease.NAME.SOURCE`): which worker may fetch
//!   until when, and how many fetches failed in a row, which sets the backoff.
//!
//! `SOURCE` is a hash of the cluster, authority and path of the fetch. Shared
//! data outlives a configuration update and is shared by every plugin of
//! the VM, so a provider that names another JWKS endpoint, after an update or
//! in another plugin, never reads the keys of the old one.
//!
//! Each worker parses the record into its own keys when the record changes,
//! so one fetch serves every worker. Keys stay in use after
//! `cache_duration` while refreshing fails, so the last good keys are served
//! until a fetch succeeds.

use super::policy::RemoteJwks;
use crate::fnv::Fnv;
use std::hash::Hasher;

/// Prefix of the record keys.
pub const RECORD_PREFIX: &str = "portcullis.jwt.jwks.";
/// Prefix of the lease keys.
pub const LEASE_PREFIX: &str = "portcullis.jwt.lease.";
/// Margin kept over the call timeout before a lease may be taken over.
const LEASE_MARGIN_MS: u64 = 1_000;

/// Returns the record key of a provider.
pub fn record_key(provider: &str, remote: &RemoteJwks) -> String {
    format!("{RECORD_PREFIX}{provider}.{:016x}", source_hash(remote))
}

/// Returns the lease key of a provider.
pub fn lease_key(provider: &str, remote: &RemoteJwks) -> String {
    format!("{LEASE_PREFIX}{provider}.{:016x}", source_hash(remote))
}

/// FNV-1a over the cluster, authority and path of the fetch, each ended by
/// a NUL byte.
fn source_hash(remote: &RemoteJwks) -> u64 {
    let mut hasher = Fnv::default();
    for part in [&remote.cluster, &remote.authority, &remote.path] {
        hasher.write(part.as_bytes());
        hasher.write(&[0]);
    }
    hasher.finish()
}

/// A fetched JWKS as stored in shared data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Host time of the fetch, in milliseconds since the epoch.
    pub fetched_ms: u64,
    /// The response body.
    pub body: String,
}

impl Record {
    /// Encodes the record as `FETCHED_MS\nBODY`.
    pub fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.fetched_ms, self.body).into_bytes()
    }

    /// Decodes a record; `None` for an empty or malformed value.
    pub fn decode(value: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(value).ok()?;
        let (fetched, body) = text.split_once('\n')?;
        Some(Record {
            fetched_ms: fetched.parse().ok()?,
            body: body.to_string(),
        })
    }

    /// Tells whether a refresh is due: at 90 % of `cache_duration`, so that
    /// fresh keys arrive before the old ones are out of date.
    pub fn refresh_due(&self, remote: &RemoteJwks, now_ms: u64) -> bool {
        let refresh_after = remote.cache_duration_ms / 10 * 9;
        now_ms >= self.fetched_ms.saturating_add(refresh_after)
    }
}

/// Who may fetch, until when, and the failures so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Id of the worker holding the lease.
    pub owner: u64,
    /// Until this time (ms) no other worker fetches.
    pub until_ms: u64,
    /// Failed fetches in a row.
    pub failures: u32,
}

impl Lease {
    /// Encodes the lease as `OWNER:UNTIL_MS:FAILURES`.
    pub fn encode(&self) -> Vec<u8> {
        format!("{}:{}:{}", self.owner, self.until_ms, self.failures).into_bytes()
    }

    /// Decodes a lease; `None` for an empty or malformed value.
    pub fn decode(value: &[u8]) -> Option<Lease> {
        let text = std::str::from_utf8(value).ok()?;
        let mut parts = text.split(':');
        let lease = Lease {
            owner: parts.next()?.parse().ok()?,
            until_ms: parts.next()?.parse().ok()?,
            failures: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(lease)
    }

    /// The lease a worker writes when it starts a fetch.
    pub fn start(owner: u64, failures: u32, remote: &RemoteJwks, now_ms: u64) -> Lease {
        Lease {
            owner,
            until_ms: now_ms + remote.timeout_ms + LEASE_MARGIN_MS,
            failures,
        }
    }

    /// The lease after a successful fetch: free, no failures.
    pub fn succeeded(owner: u64, now_ms: u64) -> Lease {
        Lease {
            owner,
            until_ms: now_ms,
            failures: 0,
        }
    }

    /// The lease after a failed fetch: held for the backoff delay, which
    /// doubles from `retry_base_ms` up to `retry_max_ms`.
    pub fn failed(owner: u64, failures: u32, remote: &RemoteJwks, now_ms: u64) -> Lease {
        let failures = failures.saturating_add(1);
        let doublings = failures.saturating_sub(1).min(20);
        let delay = remote
            .retry_base_ms
            .saturating_mul(1u64 << doublings)
            .min(remote.retry_max_ms);
        Lease {
            owner,
            until_ms: now_ms + delay,
            failures,
        }
    }

    /// Tells whether another worker may take the lease now.
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.until_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote() -> RemoteJwks {
        RemoteJwks {
            cluster: "idp".to_string(),
            authority: "idp.example".to_string(),
            path: "/jwks".to_string(),
            timeout_ms: 1000,
            cache_duration_ms: 300_000,
            retry_base_ms: 1000,
            retry_max_ms: 8000,
            fail_before_keys: false,
        }
    }

    #[test]
    fn keys_name_the_fetch_source() {
        let first = remote();
        let mut moved = remote();
        moved.path = "/jwks-2".to_string();
        assert_ne!(record_key("main", &first), record_key("main", &moved));
        assert_ne!(lease_key("main", &first), lease_key("main", &moved));
        assert_eq!(record_key("main", &first), record_key("main", &remote()));
        assert_ne!(record_key("main", &first), record_key("other", &first));
        assert!(record_key("main", &first).starts_with("portcullis.jwt.jwks.main."));
    }

    #[test]
    fn record_round_trip() {
        let record = Record {
            fetched_ms: 5,
            body: "{\"keys\":[]}\nx".to_string(),
        };
        assert_eq!(Record::decode(&record.encode()), Some(record));
        assert_eq!(Record::decode(b""), None);
    }

    #[test]
    fn refresh_before_expiry() {
        let record = Record {
            fetched_ms: 0,
            body: String::new(),
        };
        assert!(!record.refresh_due(&remote(), 269_999));
        assert!(record.refresh_due(&remote(), 270_000));
    }

    #[test]
    fn backoff_doubles_to_max() {
        let delays: Vec<u64> = (0..6)
            .map(|failures| Lease::failed(1, failures, &remote(), 0).until_ms)
            .collect();
        assert_eq!(delays, vec![1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn lease_round_trip() {
        let lease = Lease {
            owner: 42,
            until_ms: 7,
            failures: 2,
        };
        assert_eq!(Lease::decode(&lease.encode()), Some(lease));
        assert_eq!(Lease::decode(b"1:2"), None);
        assert_eq!(Lease::decode(b"1:2:3:4"), None);
    }
}
