//! A compiled policy and its counter state machine over one bucket.
//!
//! Every function here is pure: it takes the decoded bucket and the host
//! time and returns the new bucket and the decision, so that the caller can
//! retry it in a compare-and-swap loop.

use super::entry::{Bucket, Entry, WAYS};
use super::key::{KeyHash, KeySpec};
use regex_lite::Regex;

/// Age after which a key's in-flight count reads as 0, in ms: requests
/// last let through this long ago no longer hold the key, so that a worker
/// that stopped mid-request cannot keep a key at its limit.
pub const IN_FLIGHT_MAX_AGE_MS: u64 = 60_000;

/// `Retry-After` of a request rejected because the key's failures and
/// requests in flight reach the limit, in seconds. It estimates how long the
/// requests in flight take to end, and no lockout starts.
pub const IN_FLIGHT_RETRY_SECONDS: u64 = 2;

/// How `:path` is matched, without its query string.
#[derive(Debug, Clone)]
pub enum PathMatch {
    /// The whole path.
    Exact(String),
    /// A path prefix.
    Prefix(String),
    /// A regular expression searched in the path; anchor it with `^` and `$`
    /// to match the whole path.
    Regex(Regex),
}

/// What a policy counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counting {
    /// Every request that the policy lets through.
    Requests,
    /// Responses with one of these statuses, and streams that end without a
    /// response.
    Failures(Vec<u16>),
}

/// The limit's algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Two fixed windows, the previous one weighted by how much of it still
    /// overlaps the sliding window, as Cloudflare and nginx approximate a
    /// sliding window. The estimate assumes that the previous window's
    /// events were spread evenly.
    SlidingWindow,
    /// A bucket of `limit` tokens that refills at `limit` per window.
    TokenBucket,
}

/// Whether a policy rejects or only logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reject requests over the limit.
    Block,
    /// Log what would be rejected and let the request through.
    Monitor,
}

/// What happens to a request when its counter cannot be read or updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    /// Reject the request (fail closed).
    Reject,
    /// Let the request through uncounted (fail open).
    Allow,
}

/// Repeat-offender escalation, after fail2ban's `bantime.increment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    /// Each lockout lasts this many times the previous one.
    pub factor: u32,
    /// Upper bound of a lockout, in ms.
    pub max_ms: u64,
    /// Lockouts are forgotten this long after the last one ended, in ms.
    pub forget_after_ms: u64,
}

/// The lockout applied at the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Length of the first lockout, in ms.
    pub base_ms: u64,
    /// Escalation for repeat offenders.
    pub escalation: Option<Escalation>,
}

/// A compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Name, used in shared-data keys, headers, events and logs.
    pub name: String,
    /// Path condition, `None` for every path.
    pub path: Option<PathMatch>,
    /// Upper-case methods, empty for every method.
    pub methods: Vec<String>,
    /// The counting key.
    pub key: KeySpec,
    /// What is counted.
    pub counting: Counting,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Events allowed per window.
    pub limit: u32,
    /// Window length in ms.
    pub window_ms: u64,
    /// Lockout at the limit, `None` to reject only while over the limit.
    pub lockout: Option<Lockout>,
    /// Block or monitor.
    pub mode: Mode,
    /// Status of the reject response.
    pub status: u32,
    /// Body of the reject response.
    pub body: Vec<u8>,
    /// Fail-open or fail-closed choice.
    pub on_store_failure: StoreFailure,
    /// Number of shared-data buckets, each holding up to [`WAYS`] keys.
    pub buckets: u32,
    /// Whether forwarded responses carry the `RateLimit` headers.
    pub response_headers: bool,
    /// Value of the `RateLimit-Policy` item, such as `"login";q=5;w=300`.
    pub policy_item: String,
}

/// A policy's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Under the limit.
    Allow {
        /// Events left in the window.
        remaining: u32,
        /// Seconds until the quota is whole again.
        reset_seconds: u64,
        /// Whether the check raised the key's in-flight count, which the
        /// response must lower again.
        in_flight: bool,
    },
    /// Under the failure limit, but failures in the window and requests in
    /// flight together reach it. No lockout starts.
    Busy {
        /// Seconds until a request may pass.
        retry_after_seconds: u64,
        /// Requests of the key in flight.
        in_flight: u32,
    },
    /// Over the limit or locked out.
    Reject {
        /// Seconds until a request may pass.
        retry_after_seconds: u64,
        /// Whether the key is locked out, rather than only over the limit.
        locked: bool,
    },
}

/// What is left of a key's quota, for the `RateLimit` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Events left in the window.
    pub remaining: u32,
    /// Seconds until the quota is whole again.
    pub reset_seconds: u64,
}

/// A change of lockout state, reported as a security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A key was locked out.
    LockedOut {
        /// The key.
        key: KeyHash,
        /// Length of this lockout, in ms.
        duration_ms: u64,
        /// 1 for a first lockout, 2 for the next one, and so on.
        level: u16,
    },
    /// A lockout ended.
    Released {
        /// The key.
        key: KeyHash,
    },
}

/// The result of a state-machine step on a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step<T> {
    /// The new bucket, or `None` when nothing changed and no write is needed.
    pub bucket: Option<Bucket>,
    /// The step's answer.
    pub output: T,
    /// Lockout changes made by the step.
    pub transitions: Vec<Transition>,
}

/// Why a key could not be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketFull;

fn seconds_ceil(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

impl Policy {
    /// Builds a policy from checked values.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: String,
        path: Option<PathMatch>,
        methods: Vec<String>,
        key: KeySpec,
        counting: Counting,
        algorithm: Algorithm,
        limit: u32,
        window_ms: u64,
        lockout: Option<Lockout>,
        mode: Mode,
        status: u32,
        body: Vec<u8>,
        on_store_failure: StoreFailure,
        max_keys: u32,
        response_headers: bool,
    ) -> Policy {
        let policy_item = format!("\"{name}\";q={limit};w={}", window_ms / 1000);
        Policy {
            name,
            path,
            methods,
            key,
            counting,
            algorithm,
            limit,
            window_ms,
            lockout,
            mode,
            status,
            body,
            on_store_failure,
            buckets: max_keys.div_ceil(WAYS as u32),
            response_headers,
            policy_item,
        }
    }

    /// Tells whether the policy applies to a request's method and path
    /// (without the query string). A policy for GET also applies to HEAD,
    /// which servers answer with the GET handler's status.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let listed = |name: &str| self.methods.iter().any(|m| m == name);
        let head_as_get = method == "HEAD" && listed("GET");
        if !self.methods.is_empty() && !listed(method) && !head_as_get {
            return false;
        }
        match &self.path {
            None => true,
            Some(PathMatch::Exact(exact)) => crate::http::exact_path_matches(path, exact),
            Some(PathMatch::Prefix(prefix)) => path.starts_with(prefix.as_str()),
            Some(PathMatch::Regex(regex)) => regex.is_match(path),
        }
    }

    /// Tells whether failures, rather than requests, are counted.
    pub fn counts_failures(&self) -> bool {
        matches!(self.counting, Counting::Failures(_))
    }

    /// Tells whether a response status counts as a failure.
    pub fn is_failure_status(&self, status: u32) -> bool {
        match &self.counting {
            Counting::Failures(statuses) => statuses.iter().any(|s| u32::from(*s) == status),
            Counting::Requests => false,
        }
    }

    /// Returns the bucket index of a key.
    pub fn bucket_of(&self, key: &KeyHash) -> u32 {
        (key.prefix_u64() % u64::from(self.buckets)) as u32
    }

    /// Returns the shared-data key of a bucket. Besides the policy name it
    /// names the algorithm, what is counted and the number of buckets,
    /// because stored entries mean something else under another algorithm
    /// or count, and keys map to other buckets under another number. After
    /// a configuration update that changes one of them, the policy starts
    /// from empty buckets instead of misreading the old ones.
    pub fn bucket_key(&self, index: u32) -> String {
        let algorithm = match self.algorithm {
            Algorithm::SlidingWindow => "sliding",
            Algorithm::TokenBucket => "bucket",
        };
        let counted = match self.counting {
            Counting::Requests => "requests",
            Counting::Failures(_) => "failures",
        };
        format!(
            "portcullis.limits.{}.{algorithm}.{counted}.{}.{index}",
            self.name, self.buckets
        )
    }

    /// The request-time check. For failure counting it reads the lockout and
    /// the count, and raises the in-flight count of a request it lets
    /// through. For request counting it counts the request it lets through.
    pub fn check(
        &self,
        bucket: &Bucket,
        key: &KeyHash,
        now_ms: u64,
    ) -> Result<Step<Decision>, BucketFull> {
        if self.counts_failures() {
            return self.check_failures(bucket, key, now_ms);
        }
        let mut bucket = bucket.clone();
        let mut transitions = Vec::new();
        let Some(index) = bucket.position(key) else {
            let index = self.insert(&mut bucket, *key, now_ms, &mut transitions)?;
            let output = self.admit(&mut bucket.entries[index], now_ms, &mut transitions);
            return Ok(Step {
                bucket: Some(bucket),
                output,
                transitions,
            });
        };
        let before = bucket.entries[index];
        let output = self.admit(&mut bucket.entries[index], now_ms, &mut transitions);
        let changed = bucket.entries[index] != before;
        Ok(Step {
            bucket: changed.then_some(bucket),
            output,
            transitions,
        })
    }

    /// Checks a request under a failure-counting policy. A request is let
    /// through while failures in the window plus requests in flight stay
    /// under the limit, and the same write raises the in-flight count, so
    /// that concurrent requests of one key on any worker see each other.
    ///
    /// Returns `BucketFull` for a key whose bucket is full of active
    /// lockouts, and the caller applies `on_store_failure` as for request
    /// counting. Let through untracked, its guesses would never be counted.
    fn check_failures(
        &self,
        bucket: &Bucket,
        key: &KeyHash,
        now_ms: u64,
    ) -> Result<Step<Decision>, BucketFull> {
        let mut bucket = bucket.clone();
        let mut transitions = Vec::new();
        let (index, inserted) = match bucket.position(key) {
            Some(index) => (index, false),
            None => (
                self.insert(&mut bucket, *key, now_ms, &mut transitions)?,
                true,
            ),
        };
        let before = bucket.entries[index];
        let entry = &mut bucket.entries[index];
        let output = match self.peek(entry, now_ms, &mut transitions) {
            Decision::Allow {
                remaining,
                reset_seconds,
                ..
            } => {
                let now = now_ms.max(entry.last_seen_ms);
                let in_flight = self.in_flight(entry, now);
                if in_flight >= remaining {
                    Decision::Busy {
                        retry_after_seconds: IN_FLIGHT_RETRY_SECONDS,
                        in_flight,
                    }
                } else {
                    entry.last_seen_ms = now;
                    entry.in_flight = in_flight + 1;
                    entry.in_flight_since_ms = now;
                    Decision::Allow {
                        remaining,
                        reset_seconds,
                        in_flight: true,
                    }
                }
            }
            other => other,
        };
        let changed = inserted || bucket.entries[index] != before;
        Ok(Step {
            bucket: changed.then_some(bucket),
            output,
            transitions,
        })
    }

    /// Requests of a key in flight at `now`. A count last raised
    /// [`IN_FLIGHT_MAX_AGE_MS`] or more ago reads as 0.
    pub fn in_flight(&self, entry: &Entry, now: u64) -> u32 {
        if now.saturating_sub(entry.in_flight_since_ms) >= IN_FLIGHT_MAX_AGE_MS {
            0
        } else {
            entry.in_flight
        }
    }

    /// Ends a request that a failure-counting policy let through: lowers
    /// the key's in-flight count when the check raised it (`raised`), and
    /// counts a failure when `failed`. Returns the quota left after a
    /// counted failure. The lockout decision reads failures only.
    pub fn settle(
        &self,
        bucket: &Bucket,
        key: &KeyHash,
        now_ms: u64,
        raised: bool,
        failed: bool,
    ) -> Result<Step<Option<Quota>>, BucketFull> {
        let mut bucket = bucket.clone();
        let mut transitions = Vec::new();
        let index = match bucket.position(key) {
            Some(index) => index,
            None if failed => self.insert(&mut bucket, *key, now_ms, &mut transitions)?,
            // The entry was evicted or reclaimed, and its in-flight count
            // with it.
            None => {
                return Ok(Step {
                    bucket: None,
                    output: None,
                    transitions,
                })
            }
        };
        let entry = &mut bucket.entries[index];
        let now = self.observe(entry, now_ms, &mut transitions);
        if raised {
            entry.in_flight = self.in_flight(entry, now).saturating_sub(1);
        }
        let quota = failed.then(|| self.count_failure(entry, now, &mut transitions));
        Ok(Step {
            bucket: Some(bucket),
            output: quota,
            transitions,
        })
    }

    /// Counts one failure for a key, locking it out when it reaches the
    /// limit, and returns the quota left after it. A failure while the key is
    /// locked out is not counted, so a lockout is not extended by the
    /// requests that were already in flight.
    pub fn record_failure(
        &self,
        bucket: &Bucket,
        key: &KeyHash,
        now_ms: u64,
    ) -> Result<Step<Quota>, BucketFull> {
        let mut bucket = bucket.clone();
        let mut transitions = Vec::new();
        let index = match bucket.position(key) {
            Some(index) => index,
            None => self.insert(&mut bucket, *key, now_ms, &mut transitions)?,
        };
        let entry = &mut bucket.entries[index];
        let now = self.observe(entry, now_ms, &mut transitions);
        let quota = self.count_failure(entry, now, &mut transitions);
        Ok(Step {
            bucket: Some(bucket),
            output: quota,
            transitions,
        })
    }

    /// Counts one failure at the clamped time `now` unless the key is locked
    /// out, locks the key when the failure reaches the limit, and returns
    /// the quota left.
    fn count_failure(
        &self,
        entry: &mut Entry,
        now: u64,
        transitions: &mut Vec<Transition>,
    ) -> Quota {
        if !entry.is_locked(now) {
            self.advance(entry, now);
            self.consume(entry);
            if self.remaining(entry, now) == 0 {
                self.lock(entry, now, transitions);
            }
        }
        if entry.is_locked(now) {
            // The counts restart when a lockout starts, so the quota is whole
            // again when it ends.
            Quota {
                remaining: 0,
                reset_seconds: seconds_ceil(entry.locked_until_ms - now),
            }
        } else {
            Quota {
                remaining: self.remaining(entry, now),
                reset_seconds: self.reset_seconds(entry, now),
            }
        }
    }

    /// Reports ended lockouts and drops expired entries of a bucket. The
    /// bucket is rewritten only when something changed.
    pub fn reclaim(&self, bucket: &Bucket, now_ms: u64) -> Step<usize> {
        let mut bucket = bucket.clone();
        let mut transitions = Vec::new();
        let before = bucket.clone();
        for entry in &mut bucket.entries {
            // A sweep is no request by the key: the last-seen time, which
            // orders eviction, stays as it was, so that a bucket is written
            // only when a lockout ended or an entry expired.
            let last_seen_ms = entry.last_seen_ms;
            self.observe(entry, now_ms, &mut transitions);
            entry.last_seen_ms = last_seen_ms;
        }
        bucket
            .entries
            .retain(|entry| !self.is_expired(entry, now_ms.max(entry.last_seen_ms)));
        let changed = bucket != before;
        let live = bucket.entries.len();
        Step {
            bucket: changed.then_some(bucket),
            output: live,
            transitions,
        }
    }

    /// Finds room for a new key: a free way, else an expired entry, else the
    /// unlocked entry seen longest ago. Entries under an active lockout are
    /// never evicted; when every way holds one, the key cannot be counted.
    fn insert(
        &self,
        bucket: &mut Bucket,
        key: KeyHash,
        now_ms: u64,
        transitions: &mut Vec<Transition>,
    ) -> Result<usize, BucketFull> {
        let entry = Entry::new(key, now_ms);
        if bucket.entries.len() < WAYS {
            bucket.entries.push(entry);
            return Ok(bucket.entries.len() - 1);
        }
        let expired = bucket.entries.iter().position(|old| {
            let now = now_ms.max(old.last_seen_ms);
            !old.is_locked(now) && self.is_expired(old, now)
        });
        let victim = expired.or_else(|| {
            bucket
                .entries
                .iter()
                .enumerate()
                .filter(|(_, old)| !old.is_locked(now_ms.max(old.last_seen_ms)))
                .min_by_key(|(_, old)| old.last_seen_ms)
                .map(|(index, _)| index)
        });
        let index = victim.ok_or(BucketFull)?;
        let old = bucket.entries[index];
        if old.lock_active {
            transitions.push(Transition::Released { key: old.hash });
        }
        bucket.entries[index] = entry;
        Ok(index)
    }

    /// Clamps the time to the entry's last-seen time, so that a clock moving
    /// backwards neither ends a lockout nor reopens a window, and reports a
    /// lockout that has ended. Returns the clamped time.
    fn observe(&self, entry: &mut Entry, now_ms: u64, transitions: &mut Vec<Transition>) -> u64 {
        let now = now_ms.max(entry.last_seen_ms);
        entry.last_seen_ms = now;
        if entry.lock_active && now >= entry.locked_until_ms {
            entry.lock_active = false;
            transitions.push(Transition::Released { key: entry.hash });
        }
        now
    }

    fn peek(&self, entry: &mut Entry, now_ms: u64, transitions: &mut Vec<Transition>) -> Decision {
        // Only a release is written back; a plain read leaves the stored
        // last-seen time alone so that it needs no write.
        let stored_last_seen = entry.last_seen_ms;
        let now = self.observe(entry, now_ms, transitions);
        if transitions.is_empty() {
            entry.last_seen_ms = stored_last_seen;
        }
        if entry.is_locked(now) {
            return Decision::Reject {
                retry_after_seconds: seconds_ceil(entry.locked_until_ms - now).max(1),
                locked: true,
            };
        }
        let mut view = *entry;
        self.advance(&mut view, now);
        let remaining = self.remaining(&view, now);
        if remaining == 0 {
            return Decision::Reject {
                retry_after_seconds: self.wait_for_one(&view, now),
                locked: false,
            };
        }
        Decision::Allow {
            remaining,
            reset_seconds: self.reset_seconds(&view, now),
            in_flight: false,
        }
    }

    fn admit(&self, entry: &mut Entry, now_ms: u64, transitions: &mut Vec<Transition>) -> Decision {
        let now = self.observe(entry, now_ms, transitions);
        if entry.is_locked(now) {
            return Decision::Reject {
                retry_after_seconds: seconds_ceil(entry.locked_until_ms - now).max(1),
                locked: true,
            };
        }
        self.advance(entry, now);
        if self.remaining(entry, now) == 0 {
            if self.lockout.is_some() {
                let duration_ms = self.lock(entry, now, transitions);
                return Decision::Reject {
                    retry_after_seconds: seconds_ceil(duration_ms).max(1),
                    locked: true,
                };
            }
            return Decision::Reject {
                retry_after_seconds: self.wait_for_one(entry, now),
                locked: false,
            };
        }
        self.consume(entry);
        Decision::Allow {
            remaining: self.remaining(entry, now),
            reset_seconds: self.reset_seconds(entry, now),
            in_flight: false,
        }
    }

    /// Rolls the fixed windows or refills the bucket up to `now`.
    fn advance(&self, entry: &mut Entry, now: u64) {
        let window = self.window_ms;
        match self.algorithm {
            Algorithm::SlidingWindow => {
                let start = now - now % window;
                if start == entry.counter_time_ms {
                    return;
                }
                if start == entry.counter_time_ms.saturating_add(window) {
                    entry.previous = entry.current;
                } else {
                    entry.previous = 0;
                }
                entry.current = 0;
                entry.counter_time_ms = start;
            }
            Algorithm::TokenBucket => {
                let elapsed = now.saturating_sub(entry.counter_time_ms);
                let refill = elapsed.saturating_mul(u64::from(self.limit));
                entry.set_deficit(entry.deficit().saturating_sub(refill));
                entry.counter_time_ms = now;
            }
        }
    }

    fn consume(&self, entry: &mut Entry) {
        match self.algorithm {
            Algorithm::SlidingWindow => entry.current = entry.current.saturating_add(1),
            Algorithm::TokenBucket => {
                entry.set_deficit(entry.deficit().saturating_add(self.window_ms))
            }
        }
    }

    /// Events left before the limit, after [`Policy::advance`].
    fn remaining(&self, entry: &Entry, now: u64) -> u32 {
        let window = u128::from(self.window_ms);
        let limit = u128::from(self.limit);
        match self.algorithm {
            Algorithm::SlidingWindow => {
                let elapsed = u128::from(now.saturating_sub(entry.counter_time_ms)).min(window);
                // The estimate times the window length, kept in integers.
                let scaled = u128::from(entry.previous) * (window - elapsed)
                    + u128::from(entry.current) * window;
                let used = scaled.div_ceil(window);
                limit.saturating_sub(used) as u32
            }
            Algorithm::TokenBucket => {
                let tokens = (limit * window).saturating_sub(u128::from(entry.deficit()));
                (tokens / window) as u32
            }
        }
    }

    /// Seconds until one more event fits, after [`Policy::advance`].
    fn wait_for_one(&self, entry: &Entry, now: u64) -> u64 {
        let window = self.window_ms;
        let wait_ms = match self.algorithm {
            Algorithm::SlidingWindow => {
                let window_end = entry.counter_time_ms + window;
                if entry.current >= self.limit {
                    // Only the next fixed window can fit one more; there the
                    // current count becomes the weighted previous one.
                    let previous = u128::from(entry.current);
                    let room = u128::from(self.limit - 1);
                    let overlap = room * u128::from(window) / previous;
                    window_end + (window - overlap as u64) - now
                } else {
                    // The previous window must weigh at most what is left.
                    let previous = u128::from(entry.previous.max(1));
                    let room = u128::from(self.limit - 1 - entry.current);
                    let overlap = (room * u128::from(window) / previous) as u64;
                    (entry.counter_time_ms + window.saturating_sub(overlap)).saturating_sub(now)
                }
            }
            Algorithm::TokenBucket => {
                let full = u64::from(self.limit) * window;
                let needed = entry.deficit().saturating_sub(full - window);
                needed.div_ceil(u64::from(self.limit))
            }
        };
        seconds_ceil(wait_ms).max(1)
    }

    /// Seconds until the quota is whole again, after [`Policy::advance`].
    fn reset_seconds(&self, entry: &Entry, now: u64) -> u64 {
        let ms = match self.algorithm {
            Algorithm::SlidingWindow => {
                // Counts of the current fixed window weigh on the sliding
                // window until the end of the next one, and counts of the
                // previous window until the end of this one.
                let whole_at = if entry.current > 0 {
                    entry.counter_time_ms + 2 * self.window_ms
                } else if entry.previous > 0 {
                    entry.counter_time_ms + self.window_ms
                } else {
                    now
                };
                whole_at.saturating_sub(now)
            }
            Algorithm::TokenBucket => entry.deficit().div_ceil(u64::from(self.limit)),
        };
        seconds_ceil(ms)
    }

    /// Starts a lockout and returns its length. The counts restart, so that
    /// a released key has its full allowance and escalation alone remembers
    /// the offence.
    fn lock(&self, entry: &mut Entry, now: u64, transitions: &mut Vec<Transition>) -> u64 {
        let Some(lockout) = self.lockout else {
            return 0;
        };
        let mut level = 0u16;
        let mut duration = lockout.base_ms;
        if let Some(escalation) = lockout.escalation {
            let forgotten = entry.lockouts > 0
                && now
                    >= entry
                        .locked_until_ms
                        .saturating_add(escalation.forget_after_ms);
            level = if forgotten { 0 } else { entry.lockouts };
            for _ in 0..level {
                duration = duration.saturating_mul(u64::from(escalation.factor));
                if duration >= escalation.max_ms {
                    break;
                }
            }
            duration = duration.min(escalation.max_ms);
        }
        entry.lockouts = level.saturating_add(1);
        entry.locked_until_ms = now + duration;
        entry.lock_active = true;
        entry.previous = 0;
        entry.current = 0;
        entry.counter_time_ms = match self.algorithm {
            Algorithm::SlidingWindow => now - now % self.window_ms,
            Algorithm::TokenBucket => now,
        };
        transitions.push(Transition::LockedOut {
            key: entry.hash,
            duration_ms: duration,
            level: entry.lockouts,
        });
        duration
    }

    /// Tells whether an entry holds nothing worth keeping at `now`: no
    /// lockout in force or unreported, no request in flight, no count left
    /// in any window, and no lockout remembered for escalation.
    fn is_expired(&self, entry: &Entry, now: u64) -> bool {
        if entry.lock_active || self.in_flight(entry, now) > 0 {
            return false;
        }
        let counts_end = match self.algorithm {
            Algorithm::SlidingWindow => {
                if entry.current > 0 {
                    entry.counter_time_ms + 2 * self.window_ms
                } else if entry.previous > 0 {
                    entry.counter_time_ms + self.window_ms
                } else {
                    0
                }
            }
            Algorithm::TokenBucket => {
                entry.counter_time_ms + entry.deficit().div_ceil(u64::from(self.limit))
            }
        };
        let memory_end = match self.lockout.and_then(|lockout| lockout.escalation) {
            Some(escalation) if entry.lockouts > 0 => entry
                .locked_until_ms
                .saturating_add(escalation.forget_after_ms),
            _ => 0,
        };
        now >= counts_end.max(memory_end)
    }
}
