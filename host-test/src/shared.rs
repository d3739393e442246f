//! State shared by every VM of one host: shared data, shared queues, metrics and the clock.
//!
//! Envoy runs one VM per worker thread; only what is in this module crosses between them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::abi::Status;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means another thread panicked while holding it. Every update here is a
    // single insert or push, so the data is still consistent and the harness keeps going.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Key-value store with compare-and-swap, namespaced by VM id, as in proxy-wasm-cpp-host.
#[derive(Default)]
pub struct SharedData {
    inner: Mutex<SharedDataInner>,
}

struct SharedDataInner {
    entries: HashMap<(String, Vec<u8>), (Vec<u8>, u32)>,
    next_cas: u32,
}

impl Default for SharedDataInner {
    fn default() -> Self {
        SharedDataInner {
            entries: HashMap::new(),
            next_cas: 1,
        }
    }
}

impl SharedDataInner {
    /// CAS values come from one counter for the whole store; 0 is skipped on wrap-around
    /// because a CAS of 0 means "unconditional".
    fn take_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

impl SharedData {
    /// Returns the value and CAS of `key`, or `NotFound`.
    pub fn get(&self, vm_id: &str, key: &[u8]) -> Result<(Vec<u8>, u32), Status> {
        let inner = lock(&self.inner);
        inner
            .entries
            .get(&(vm_id.to_string(), key.to_vec()))
            .cloned()
            .ok_or(Status::NotFound)
    }

    /// Stores `value` under `key`. A non-zero `cas` must match the stored CAS of an existing
    /// key; a missing key is written whatever `cas` is, as Envoy does.
    pub fn set(&self, vm_id: &str, key: &[u8], value: &[u8], cas: u32) -> Status {
        self.set_checked(vm_id, key, value, cas, false)
    }

    /// Like [`SharedData::set`]; with `zero_cas_mismatches`, a cas of 0 on an existing key
    /// is a mismatch, as in Kong's ngx_wasm_module.
    pub fn set_checked(
        &self,
        vm_id: &str,
        key: &[u8],
        value: &[u8],
        cas: u32,
        zero_cas_mismatches: bool,
    ) -> Status {
        let mut inner = lock(&self.inner);
        let map_key = (vm_id.to_string(), key.to_vec());
        if let Some((_, stored_cas)) = inner.entries.get(&map_key) {
            if (cas != 0 || zero_cas_mismatches) && cas != *stored_cas {
                return Status::CasMismatch;
            }
        }
        let new_cas = inner.take_cas();
        inner.entries.insert(map_key, (value.to_vec(), new_cas));
        Status::Ok
    }

    /// Number of keys and bytes (keys plus values) stored.
    pub fn usage(&self) -> (usize, usize) {
        let inner = lock(&self.inner);
        let bytes = inner
            .entries
            .iter()
            .map(|((_, k), (v, _))| k.len() + v.len())
            .sum();
        (inner.entries.len(), bytes)
    }
}

/// Where a queue's `on_queue_ready` goes: the VM and root context that registered it last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOwner {
    pub vm_index: usize,
    pub context_id: u32,
}

struct Queue {
    owner: QueueOwner,
    items: VecDeque<Vec<u8>>,
}

/// Shared queues: registered by name within a VM id, enqueued from any VM.
#[derive(Default)]
pub struct SharedQueues {
    inner: Mutex<QueuesInner>,
}

#[derive(Default)]
struct QueuesInner {
    ids: HashMap<(String, Vec<u8>), u32>,
    queues: HashMap<u32, Queue>,
    next_id: u32,
    /// Pending `on_queue_ready` notifications per VM index: (context id, queue id).
    ready: HashMap<usize, Vec<(u32, u32)>>,
}

impl SharedQueues {
    /// Registers (or re-registers) the queue `name` and makes `owner` its consumer.
    pub fn register(&self, vm_id: &str, name: &[u8], owner: QueueOwner) -> u32 {
        let mut inner = lock(&self.inner);
        let key = (vm_id.to_string(), name.to_vec());
        if let Some(id) = inner.ids.get(&key).copied() {
            if let Some(queue) = inner.queues.get_mut(&id) {
                queue.owner = owner;
            }
            return id;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        inner.ids.insert(key, id);
        inner.queues.insert(
            id,
            Queue {
                owner,
                items: VecDeque::new(),
            },
        );
        id
    }

    /// Returns the id of a registered queue.
    pub fn resolve(&self, vm_id: &str, name: &[u8]) -> Option<u32> {
        lock(&self.inner)
            .ids
            .get(&(vm_id.to_string(), name.to_vec()))
            .copied()
    }

    /// Appends a value and schedules `on_queue_ready` for the queue's owner.
    pub fn enqueue(&self, id: u32, value: &[u8]) -> Status {
        let mut inner = lock(&self.inner);
        let Some(queue) = inner.queues.get_mut(&id) else {
            return Status::NotFound;
        };
        queue.items.push_back(value.to_vec());
        let owner = queue.owner;
        inner
            .ready
            .entry(owner.vm_index)
            .or_default()
            .push((owner.context_id, id));
        Status::Ok
    }

    /// Removes the oldest value: `Empty` when there is none, `NotFound` for an unknown id.
    pub fn dequeue(&self, id: u32) -> Result<Vec<u8>, Status> {
        let mut inner = lock(&self.inner);
        let queue = inner.queues.get_mut(&id).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }

    /// Takes the pending notifications of one VM.
    pub fn take_ready(&self, vm_index: usize) -> Vec<(u32, u32)> {
        lock(&self.inner)
            .ready
            .remove(&vm_index)
            .unwrap_or_default()
    }
}

/// Kind of a metric, as Envoy encodes it in the low bits of a metric id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// A metric's current state. Histograms keep their recorded values.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Metric {
    pub kind: MetricKind,
    pub value: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<u64>,
}

/// Metrics by name, shared by all VMs as Envoy's stats store is.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<HashMap<String, Metric>>,
}

impl Metrics {
    /// Creates the metric if it does not exist yet.
    pub fn define(&self, name: &str, kind: MetricKind) {
        lock(&self.inner).entry(name.to_string()).or_insert(Metric {
            kind,
            value: 0,
            samples: Vec::new(),
        });
    }

    /// Applies `change` to the named metric and returns its result.
    pub fn update<R>(&self, name: &str, change: impl FnOnce(&mut Metric) -> R) -> Option<R> {
        lock(&self.inner).get_mut(name).map(change)
    }

    /// Returns a copy of every metric.
    pub fn snapshot(&self) -> HashMap<String, Metric> {
        lock(&self.inner).clone()
    }
}

/// The host's clock. In tests it starts at a chosen instant and moves only when told to;
/// in serve mode it follows the system clock.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Mutex<ClockState>>,
}

#[derive(Clone, Copy)]
enum ClockState {
    Manual {
        epoch_nanos: u64,
        monotonic_nanos: u64,
    },
    System {
        started: std::time::Instant,
    },
}

impl Clock {
    /// A clock that stands still at `start` until advanced.
    pub fn manual(start: SystemTime) -> Clock {
        let epoch_nanos = start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Clock {
            inner: Arc::new(Mutex::new(ClockState::Manual {
                epoch_nanos,
                monotonic_nanos: 0,
            })),
        }
    }

    /// A clock that reads the system clock.
    pub fn system() -> Clock {
        Clock {
            inner: Arc::new(Mutex::new(ClockState::System {
                started: std::time::Instant::now(),
            })),
        }
    }

    /// Wall-clock time in nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> u64 {
        match *lock(&self.inner) {
            ClockState::Manual { epoch_nanos, .. } => epoch_nanos,
            ClockState::System { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }

    /// Monotonic time in nanoseconds since the clock was made.
    pub fn monotonic_nanos(&self) -> u64 {
        match *lock(&self.inner) {
            ClockState::Manual {
                monotonic_nanos, ..
            } => monotonic_nanos,
            ClockState::System { started } => started.elapsed().as_nanos() as u64,
        }
    }

    /// Moves a manual clock forward; a system clock ignores this.
    pub fn advance(&self, by: Duration) {
        if let ClockState::Manual {
            epoch_nanos,
            monotonic_nanos,
        } = &mut *lock(&self.inner)
        {
            let nanos = by.as_nanos() as u64;
            *epoch_nanos = epoch_nanos.saturating_add(nanos);
            *monotonic_nanos = monotonic_nanos.saturating_add(nanos);
        }
    }

    /// Sets the wall clock of a manual clock, forwards or backwards, leaving the monotonic
    /// clock alone, as an NTP step does.
    pub fn set_wall(&self, to: SystemTime) {
        if let ClockState::Manual { epoch_nanos, .. } = &mut *lock(&self.inner) {
            *epoch_nanos = to
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
        }
    }

    /// Whether time moves only when advanced.
    pub fn is_manual(&self) -> bool {
        matches!(*lock(&self.inner), ClockState::Manual { .. })
    }
}

/// Everything the VMs of one host share.
#[derive(Clone)]
pub struct HostShared {
    pub data: Arc<SharedData>,
    pub queues: Arc<SharedQueues>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl HostShared {
    /// Creates empty shared state around `clock`.
    pub fn new(clock: Clock) -> HostShared {
        HostShared {
            data: Arc::default(),
            queues: Arc::default(),
            metrics: Arc::default(),
            clock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_starts_at_one_and_increases() {
        let data = SharedData::default();
        assert_eq!(data.set("", b"a", b"1", 0), Status::Ok);
        assert_eq!(data.get("", b"a"), Ok((b"1".to_vec(), 1)));
        assert_eq!(data.set("", b"b", b"2", 0), Status::Ok);
        assert_eq!(data.get("", b"b"), Ok((b"2".to_vec(), 2)));
    }

    #[test]
    fn stale_cas_mismatches() {
        let data = SharedData::default();
        data.set("", b"k", b"1", 0);
        let (_, cas) = data.get("", b"k").unwrap_or_default();
        assert_eq!(data.set("", b"k", b"2", cas), Status::Ok);
        assert_eq!(data.set("", b"k", b"3", cas), Status::CasMismatch);
        assert_eq!(data.get("", b"k").map(|(v, _)| v), Ok(b"2".to_vec()));
    }

    #[test]
    fn missing_key_written_whatever_cas() {
        let data = SharedData::default();
        assert_eq!(data.set("", b"new", b"x", 12345), Status::Ok);
    }

    #[test]
    fn vm_ids_are_separate_namespaces() {
        let data = SharedData::default();
        data.set("one", b"k", b"1", 0);
        assert_eq!(data.get("two", b"k"), Err(Status::NotFound));
    }

    #[test]
    fn queue_fifo_and_empty() {
        let queues = SharedQueues::default();
        let owner = QueueOwner {
            vm_index: 0,
            context_id: 1,
        };
        let id = queues.register("", b"q", owner);
        assert_eq!(queues.resolve("", b"q"), Some(id));
        assert_eq!(queues.dequeue(id), Err(Status::Empty));
        assert_eq!(queues.enqueue(id, b"a"), Status::Ok);
        assert_eq!(queues.enqueue(id, b"b"), Status::Ok);
        assert_eq!(queues.take_ready(0), vec![(1, id), (1, id)]);
        assert_eq!(queues.dequeue(id), Ok(b"a".to_vec()));
        assert_eq!(queues.dequeue(id), Ok(b"b".to_vec()));
        assert_eq!(queues.dequeue(id + 1), Err(Status::NotFound));
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(100));
        assert_eq!(clock.now_nanos(), 100_000_000_000);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now_nanos(), 101_500_000_000);
        assert_eq!(clock.monotonic_nanos(), 1_500_000_000);
    }
}
