//! Replay of the labelled request corpus through the core filter, shared by
//! the `replay` example and the detection-rate test.

use portcullis_core::config::Config;
use portcullis_core::filter::Filter;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Category of the CRS tests that only expect a rule to stay quiet.
pub const CRS_NEGATIVE: &str = "benign-crs-negative";

/// One corpus line.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub id: String,
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub body: String,
    pub label: String,
    pub category: String,
    #[serde(default)]
    pub crs_pl: Option<u8>,
}

impl Entry {
    /// Tells whether the line is an attack.
    pub fn is_attack(&self) -> bool {
        self.label == "attack"
    }

    /// Tells whether the line is a CRS test aimed at paranoia level 3 or 4,
    /// which the reports count apart.
    pub fn is_high_paranoia_test(&self) -> bool {
        self.crs_pl.is_some_and(|level| level >= 3)
    }

    /// Returns the request as the host hands it to the module: pseudo-headers
    /// first, `Host` as `:authority`, other names lower-cased.
    pub fn header_pairs(&self) -> Vec<(String, Vec<u8>)> {
        let mut pairs = vec![
            (":method".to_string(), self.method.as_bytes().to_vec()),
            (":path".to_string(), self.uri.as_bytes().to_vec()),
            (":scheme".to_string(), b"http".to_vec()),
        ];
        let framed = self.headers.iter().any(|(name, _)| {
            name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
        });
        if !framed && !self.body.is_empty() {
            pairs.push((
                "content-length".to_string(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("host") {
                pairs.push((":authority".to_string(), value.as_bytes().to_vec()));
            } else {
                pairs.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
            }
        }
        pairs
    }
}

/// Finds the corpus beside the repository: `../shared/corpora/waf/requests.jsonl`
/// from the repository root, which is two levels above this crate.
pub fn corpus_path() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("../shared/corpora/waf/requests.jsonl")
}

/// Reads every corpus line; `None` when the file is absent.
pub fn load(path: &Path) -> Option<Vec<Entry>> {
    let text = std::fs::read_to_string(path).ok()?;
    let entries = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str::<Entry>(line) {
            Ok(entry) => entry,
            Err(error) => panic!("invalid corpus line: {error}: {line}"),
        })
        .collect();
    Some(entries)
}

/// Tells whether a line belongs to the development half of the corpus: the
/// FNV-1a hash of its `id` is even. Rules are tuned on the misses of this
/// half only, and the other half is held out to measure how well they
/// generalize.
pub fn is_development(entry: &Entry) -> bool {
    let hash = entry
        .id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    hash % 2 == 0
}

/// Compiles a filter at `paranoia` with the other settings at their defaults.
pub fn filter(paranoia: u8) -> Filter {
    let document = format!(r#"{{"filter": {{"paranoia_level": {paranoia}}}}}"#);
    match Config::from_json(document.as_bytes()) {
        Ok(config) => config.filter,
        Err(error) => panic!("{error}"),
    }
}

/// Runs one request through the filter and tells whether it is blocked.
pub fn blocked(filter: &Filter, entry: &Entry) -> bool {
    let headers = entry.header_pairs();
    let mut assessment = filter.inspect_headers(&headers);
    if filter.verdict(&assessment).is_some() {
        return true;
    }
    if !entry.body.is_empty() {
        filter.inspect_body(&mut assessment, &headers, entry.body.as_bytes());
    }
    filter.verdict(&assessment).is_some()
}

/// Blocked and total counts of one group of lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count {
    pub blocked: usize,
    pub total: usize,
}

impl Count {
    pub fn rate(self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        100.0 * self.blocked as f64 / self.total as f64
    }
}

/// Results of one replay.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Attack lines by category, CRS tests for paranoia 3 and 4 left out.
    pub attacks: BTreeMap<String, Count>,
    /// CRS attack tests for paranoia 3 and 4.
    pub high_paranoia_attacks: Count,
    /// Ordinary benign lines by category.
    pub benign: BTreeMap<String, Count>,
    /// CRS negative tests.
    pub crs_negative: Count,
    /// Ids of the lines whose outcome is wrong.
    pub misses: Vec<String>,
    /// Ids of ordinary benign lines that were blocked.
    pub false_positives: Vec<String>,
    /// Time spent in the filter.
    pub elapsed: Duration,
    pub requests: usize,
}

impl Report {
    pub fn attack_total(&self) -> Count {
        self.attacks
            .values()
            .fold(Count::default(), |sum, count| Count {
                blocked: sum.blocked + count.blocked,
                total: sum.total + count.total,
            })
    }

    pub fn benign_total(&self) -> Count {
        self.benign
            .values()
            .fold(Count::default(), |sum, count| Count {
                blocked: sum.blocked + count.blocked,
                total: sum.total + count.total,
            })
    }
}

/// Replays every entry through `filter`.
pub fn replay(filter: &Filter, entries: &[Entry]) -> Report {
    let mut report = Report::default();
    for entry in entries {
        let started = Instant::now();
        let is_blocked = blocked(filter, entry);
        report.elapsed += started.elapsed();
        report.requests += 1;
        let count = if entry.is_attack() {
            if entry.is_high_paranoia_test() {
                &mut report.high_paranoia_attacks
            } else {
                report.attacks.entry(entry.category.clone()).or_default()
            }
        } else if entry.category == CRS_NEGATIVE {
            &mut report.crs_negative
        } else {
            report.benign.entry(entry.category.clone()).or_default()
        };
        count.total += 1;
        count.blocked += usize::from(is_blocked);
        if entry.is_attack() && !is_blocked && !entry.is_high_paranoia_test() {
            report.misses.push(entry.id.clone());
        }
        if !entry.is_attack() && is_blocked && entry.category != CRS_NEGATIVE {
            report.false_positives.push(entry.id.clone());
        }
    }
    report
}

/// Returns the ids of the rules that match one request, with their targets.
pub fn explain(filter: &Filter, entry: &Entry) -> Vec<String> {
    let headers = entry.header_pairs();
    let mut assessment = filter.inspect_headers(&headers);
    if !entry.body.is_empty() {
        filter.inspect_body(&mut assessment, &headers, entry.body.as_bytes());
    }
    assessment
        .detections
        .iter()
        .map(|detection| {
            format!(
                "{}@{}[{}]",
                detection.rule.id, detection.target, detection.excerpt
            )
        })
        .collect()
}
