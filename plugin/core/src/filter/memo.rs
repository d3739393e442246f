//! A bounded memory of request values on which no rule matched.
//!
//! Clients send the same header values, paths and argument names again and
//! again: one browser's `user-agent` and `accept-language`, the application's
//! paths, the names of its form fields. Whether a rule matches a value
//! depends only on the value's kind, its name and its bytes, so a value that
//! passed every rule once passes them again, and the filter can skip it.
//!
//! A value is stored the second time it passes, not the first, so values
//! that are new on every request (request ids, trace ids, timestamps) cost
//! no allocation and do not push out the values that do repeat. Before that
//! second time, only the value's hash is kept.
//!
//! Only request metadata is remembered: the method, the path, header names
//! and values, cookie names and argument names. Argument values, cookie
//! values, query strings, bodies and any target with a sensitive name are
//! never stored, so the memory contains none of them and its timing reveals
//! nothing about them.

use crate::fnv::Fnv;
use crate::rules::TargetKind;
use crate::targets::Target;
use std::hash::Hasher;
use std::sync::Mutex;

/// Number of remembered values. A value's slot comes from its hash; a new
/// value replaces whatever shared its slot.
const SLOTS: usize = 1024;

/// Number of hashes of values that passed once.
const SEEN_SLOTS: usize = 4096;

/// Longest value that is remembered. Longer values are rarely repeated, and
/// the bound keeps the memory under `SLOTS` times this many bytes.
pub(super) const MAX_VALUE_BYTES: usize = 256;

#[derive(Debug)]
struct Entry {
    hash: u64,
    kind: TargetKind,
    name: Box<str>,
    value: Box<[u8]>,
}

/// Values on which every rule ran without a match.
#[derive(Debug)]
pub(super) struct CleanValues {
    table: Mutex<Table>,
}

/// The remembered values, and the hashes of values that passed once. Both
/// are allocated on first use, so a VM at rest does not pay for them.
#[derive(Debug, Default)]
struct Table {
    slots: Vec<Option<Entry>>,
    seen: Vec<u64>,
}

impl Default for CleanValues {
    fn default() -> Self {
        CleanValues {
            table: Mutex::new(Table::default()),
        }
    }
}

impl Clone for CleanValues {
    /// Returns an empty memory, so that a cloned filter starts with nothing
    /// remembered.
    fn clone(&self) -> Self {
        CleanValues::default()
    }
}

impl CleanValues {
    /// Returns the key of a target whose value may be remembered, or `None`
    /// for a target that is never stored.
    pub(super) fn key(target: &Target, value: &[u8]) -> Option<u64> {
        let remembered = matches!(
            target.kind,
            TargetKind::Method
                | TargetKind::Path
                | TargetKind::HeaderName
                | TargetKind::HeaderValue
                | TargetKind::CookieName
                | TargetKind::ArgName
        );
        if !remembered || value.len() > MAX_VALUE_BYTES || target.is_sensitive() {
            return None;
        }
        Some(hash(target.kind, &target.name, value))
    }

    /// Tells whether the value with this key passed every rule before.
    pub(super) fn contains(&self, key: u64, target: &Target, value: &[u8]) -> bool {
        let Ok(table) = self.table.lock() else {
            return false;
        };
        table
            .slots
            .get(slot(key))
            .and_then(Option::as_ref)
            .is_some_and(|entry| {
                entry.hash == key
                    && entry.kind == target.kind
                    && *entry.name == *target.name
                    && *entry.value == *value
            })
    }

    /// Records that the value with this key passed every rule: its hash the
    /// first time, the value itself when its hash was recorded before.
    pub(super) fn insert(&self, key: u64, target: &Target, value: &[u8]) {
        let Ok(mut table) = self.table.lock() else {
            return;
        };
        if table.seen.is_empty() {
            table.seen = vec![0; SEEN_SLOTS];
        }
        // The high half of the hash picks this slot and the low half the
        // value's slot, so values that share one rarely share the other.
        let seen_slot = ((key >> 32) % SEEN_SLOTS as u64) as usize;
        if table.seen[seen_slot] != key {
            table.seen[seen_slot] = key;
            return;
        }
        if table.slots.is_empty() {
            table.slots.resize_with(SLOTS, || None);
        }
        if let Some(entry) = table.slots.get_mut(slot(key)) {
            *entry = Some(Entry {
                hash: key,
                kind: target.kind,
                name: target.name.as_str().into(),
                value: value.into(),
            });
        }
    }
}

fn slot(key: u64) -> usize {
    (key % SLOTS as u64) as usize
}

/// FNV-1a over the kind, the name and the value. Entries compare all three
/// in full, so two values with one hash only share a slot.
fn hash(kind: TargetKind, name: &str, value: &[u8]) -> u64 {
    let mut hasher = Fnv::default();
    hasher.write(&[kind as u8, 0xff]);
    hasher.write(name.as_bytes());
    hasher.write(&[0xff]);
    hasher.write(value);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::filter::Filter;
    use crate::targets::header_targets;

    fn filter_from(json: &str) -> Filter {
        match Config::from_json(json.as_bytes()) {
            Ok(config) => config.filter,
            Err(error) => panic!("{error}"),
        }
    }

    fn headers(path: &str, extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        [
            (":method", "GET"),
            (":path", path),
            (":authority", "example.com"),
        ]
        .iter()
        .chain(extra)
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
    }

    fn rule_ids(filter: &Filter, headers: &[(String, Vec<u8>)]) -> Vec<&'static str> {
        filter.inspect_headers(headers).rule_ids()
    }

    const SHELLSHOCK: &str = "() { :; }; /bin/cat /etc/passwd";

    #[test]
    fn memory_never_keeps_a_match() {
        let filter = filter_from("{}");
        let request = headers("/", &[("user-agent", SHELLSHOCK)]);
        let first = rule_ids(&filter, &request);
        assert!(!first.is_empty());
        assert_eq!(rule_ids(&filter, &request), first);
    }

    #[test]
    fn memory_keeps_a_clean_value() {
        let filter = filter_from("{}");
        let request = headers("/", &[("user-agent", "Mozilla/5.0 (X11; Linux x86_64)")]);
        assert!(rule_ids(&filter, &request).is_empty());
        let targets = header_targets(&request);
        let agent = targets
            .iter()
            .find(|target| target.label == "header.user-agent")
            .unwrap_or_else(|| panic!("no user-agent target"));
        let key = CleanValues::key(agent, &agent.value).unwrap_or_else(|| panic!("not remembered"));
        let remembered = |filter: &Filter| {
            filter
                .clean
                .as_ref()
                .is_some_and(|clean| clean.contains(key, agent, &agent.value))
        };
        // A value is stored the second time it passes.
        assert!(!remembered(&filter));
        assert!(rule_ids(&filter, &request).is_empty());
        assert!(remembered(&filter));
        let off = filter_from(r#"{"filter": {"remember_clean_metadata": false}}"#);
        assert!(rule_ids(&off, &request).is_empty());
        assert!(rule_ids(&off, &request).is_empty());
        assert!(!remembered(&off));
    }

    #[test]
    fn values_seen_once_not_stored() {
        let filter = filter_from("{}");
        let stored = |filter: &Filter| {
            filter.clean.as_ref().map_or(0, |clean| {
                clean.table.lock().map_or(0, |table| {
                    table.slots.iter().filter(|entry| entry.is_some()).count()
                })
            })
        };
        for id in 0..50 {
            let request_id = format!("5f0c8a8e-4b1e-4a8e-9f0a-{id:012x}");
            let request = headers("/", &[("x-request-id", request_id.as_str())]);
            assert!(rule_ids(&filter, &request).is_empty());
        }
        // The method, the path, the host and the name `x-request-id` came 50
        // times; each request id came once.
        assert_eq!(stored(&filter), 4);
    }

    #[test]
    fn memory_skips_rule_matched_elsewhere() {
        // Both values match the same rule. In the first request the rule
        // counts once, on the first value, and never runs on the second.
        let other = "() { :; }; /bin/cat /etc/shadow";
        let filter = filter_from("{}");
        let fresh = filter.clone();
        let alone = headers("/", &[("referer", other)]);
        let expected = rule_ids(&fresh, &alone);
        assert!(!expected.is_empty());
        let both = headers("/", &[("user-agent", SHELLSHOCK), ("referer", other)]);
        assert!(!rule_ids(&filter, &both).is_empty());
        assert_eq!(rule_ids(&filter, &alone), expected);
    }

    #[test]
    fn memory_skips_excluded_value() {
        let filter = filter_from(
            r#"{"filter": {"exclusions": [{"rules": ["*"], "targets": ["header.user-agent"], "paths": ["/open/*"]}]}}"#,
        );
        let open = headers("/open/x", &[("user-agent", SHELLSHOCK)]);
        assert!(rule_ids(&filter, &open).is_empty());
        let shop = headers("/shop", &[("user-agent", SHELLSHOCK)]);
        assert!(!rule_ids(&filter, &shop).is_empty());
    }

    #[test]
    fn memory_keeps_only_metadata() {
        let long = "a".repeat(MAX_VALUE_BYTES + 1);
        let request = headers(
            "/account/login?user=jane&next=%2Fhome",
            &[
                ("user-agent", "Mozilla/5.0"),
                ("x-request-name", "report"),
                ("authorization", "Basic amFuZTpzZWNyZXQ="),
                ("x-api-key", "k-12345"),
                ("x-long", long.as_str()),
                ("cookie", "session=abc123; theme=dark"),
            ],
        );
        let mut remembered: Vec<String> = header_targets(&request)
            .iter()
            .filter(|target| CleanValues::key(target, &target.value).is_some())
            .map(|target| target.label.to_string())
            .collect();
        remembered.sort();
        let mut expected = vec![
            "method",
            "path",
            "header.host",
            "header.user-agent",
            "header.x-request-name",
            "header_name",
            "query_name",
            "cookie_name",
        ];
        expected.sort_unstable();
        let mut labels: Vec<&str> = remembered.iter().map(String::as_str).collect();
        labels.dedup();
        assert_eq!(labels, expected);
    }
}
