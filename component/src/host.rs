//! The component's imports, wrapped for the core: the clock, the store as a
//! [`SharedStore`] and the log sink.

use crate::bindings::portcullis::filter::{clock, log, store};
use crate::State;
use portcullis_core::event::{suppressed_json, EventLevel, SecurityEvent};
use portcullis_core::export::Admission;
use portcullis_core::limits::event::LimitEvent;
use portcullis_core::limits::store::{HostError, SetOutcome, SharedStore};
use portcullis_core::pipeline::SALT_BYTES;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Returns the host clock.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(clock::now_ms())
}

/// The host's key-value store.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
        store::get(key)
            .map(|entry| entry.map(|entry| (entry.value, entry.cas)))
            .map_err(HostError)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<SetOutcome, HostError> {
        match store::set(key, value, cas) {
            Ok(store::SetOutcome::Stored) => Ok(SetOutcome::Stored),
            Ok(store::SetOutcome::CasMismatch) => Ok(SetOutcome::CasMismatch),
            Err(message) => Err(HostError(message)),
        }
    }
}

/// Reads or creates the limits salt; empty, with an error message, when
/// the store keeps failing.
pub fn load_salt() -> Vec<u8> {
    match portcullis_core::pipeline::load_salt(&HostStore, || random_bytes(SALT_BYTES)) {
        Some(salt) => salt,
        None => {
            log::message(
                log::Level::Error,
                "portcullis: the limits salt could not be stored, keys are hashed without it",
            );
            Vec::new()
        }
    }
}

/// Returns bytes from the standard library's randomly keyed hasher, whose
/// keys come from WASI's random interface, mixed with the host clock.
fn random_bytes(count: usize) -> Vec<u8> {
    let nanos = now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(0);
    let mut bytes = Vec::with_capacity(count);
    let mut counter = 0u64;
    while bytes.len() < count {
        let word = RandomState::new().hash_one((nanos, counter));
        bytes.extend_from_slice(&word.to_le_bytes());
        counter += 1;
    }
    bytes.truncate(count);
    bytes
}

fn level(level: EventLevel) -> log::Level {
    match level {
        EventLevel::Info => log::Level::Info,
        EventLevel::Warn => log::Level::Warn,
        EventLevel::Error => log::Level::Error,
    }
}

/// Writes a security event to the log sink without the log rate limit, for
/// events outside any applied configuration.
pub fn write_event(event: &SecurityEvent) {
    log::event(level(event.level), event.action.name(), &event.to_json());
}

/// Writes one event line to the log sink under the per-kind rate limit of
/// `events.log_max_per_kind`, as the proxy module writes its log. The
/// summary of a window that ended with lines left out goes first.
pub fn write_limited(
    state: &State,
    kind: &str,
    event_level: EventLevel,
    line: &str,
    now: SystemTime,
) {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let policy = &state.config.events;
    let Ok(mut limiter) = state.log_limiter.try_borrow_mut() else {
        log::event(level(event_level), kind, line);
        return;
    };
    for (ended_kind, count) in limiter.take_suppressed(now_ms, policy) {
        let summary = suppressed_json(now, &ended_kind, count, None);
        log::event(log::Level::Warn, "events-suppressed", &summary);
    }
    if limiter.admit(kind, now_ms, policy) == Admission::Log {
        log::event(level(event_level), kind, line);
    }
}

/// Writes a limits event to the log sink under the log rate limit.
pub fn write_limit_event(state: &State, event: &LimitEvent, now: SystemTime) {
    write_limited(
        state,
        event.action.name(),
        event.level,
        &event.to_json(),
        now,
    );
}
