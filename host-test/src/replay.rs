//! `host-test replay`: sends each request of a labelled corpus through the
//! module. The corpus has one JSON request per line, with `id`, `method`,
//! `uri`, `headers`, `body`, `label` and `category`.
//!
//! The output is a Markdown table with, per category, the share of lines that
//! the module blocked with a local 403. The development and held-out halves
//! are split as the native replay splits them, by the parity of the FNV-1a
//! hash of each `id`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;

use crate::abi::Pairs;
use crate::module::{self, Plugin};
use crate::shared::{Clock, HostShared};
use crate::state::{LogLevel, VmOptions};
use crate::stream::{ClientRequest, StreamPoll, UpstreamResponse};
use crate::vm::Vm;

/// Row of the CRS tests written for paranoia levels 3 and 4.
const HIGH_PARANOIA: &str = "CRS tests for PL3 and PL4 (apart)";
/// Category of the CRS tests that must not match, reported apart from the
/// ordinary benign requests.
const CRS_NEGATIVE: &str = "benign-crs-negative";

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The labelled corpus, one JSON request per line.
    pub corpus: PathBuf,
    /// The module.
    #[arg(long, default_value = "dist/portcullis.wasm")]
    pub plugin: PathBuf,
    /// Plugin configuration file (default: `{}`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Heading of the figures column.
    #[arg(long, default_value = "blocked")]
    pub column: String,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: String,
    label: String,
    category: String,
    #[serde(default)]
    crs_pl: Option<u8>,
}

impl Entry {
    fn is_attack(&self) -> bool {
        self.label == "attack"
    }

    /// Returns the table row the line counts in: its category, or the row of
    /// CRS tests written for paranoia levels 3 and 4.
    fn row(&self) -> String {
        if self.is_attack() && self.crs_pl.is_some_and(|level| level >= 3) {
            HIGH_PARANOIA.to_string()
        } else {
            self.category.clone()
        }
    }

    fn is_development(&self) -> bool {
        let hash = self
            .id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        hash % 2 == 0
    }

    fn request(&self, index: u64) -> ClientRequest {
        let mut headers: Pairs = Vec::new();
        let mut authority = Vec::new();
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("host") {
                authority = value.as_bytes().to_vec();
            } else {
                headers.push((
                    name.to_ascii_lowercase().into_bytes(),
                    value.as_bytes().to_vec(),
                ));
            }
        }
        let framed = self.headers.iter().any(|(name, _)| {
            name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
        });
        if !framed && !self.body.is_empty() {
            headers.push((
                b"content-length".to_vec(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        ClientRequest {
            method: self.method.as_bytes().to_vec(),
            path: self.uri.as_bytes().to_vec(),
            authority,
            scheme: b"http".to_vec(),
            headers,
            body_chunks: if self.body.is_empty() {
                Vec::new()
            } else {
                vec![self.body.as_bytes().to_vec()]
            },
            trailers: None,
            source: SocketAddr::from(([198, 51, 100, 7], 40000)),
            destination: SocketAddr::from(([127, 0, 0, 1], 10000)),
            mtls: false,
            connection_id: index,
            ends: true,
        }
    }
}

/// Lines and blocked lines of one half.
#[derive(Default, Clone, Copy)]
struct Count {
    lines: usize,
    blocked: usize,
}

impl Count {
    fn add(&mut self, blocked: bool) {
        self.lines += 1;
        self.blocked += usize::from(blocked);
    }

    fn cell(self) -> String {
        if self.lines == 0 {
            return "n/a".to_string();
        }
        format!(
            "{:.1}% ({}/{})",
            100.0 * self.blocked as f64 / self.lines as f64,
            self.blocked,
            self.lines
        )
    }
}

#[derive(Default, Clone, Copy)]
struct Row {
    development: Count,
    held_out: Count,
}

impl Row {
    fn add(&mut self, development: bool, blocked: bool) {
        if development {
            self.development.add(blocked);
        } else {
            self.held_out.add(blocked);
        }
    }

    fn all(self) -> Count {
        Count {
            lines: self.development.lines + self.held_out.lines,
            blocked: self.development.blocked + self.held_out.blocked,
        }
    }

    fn merge(&mut self, other: Row) {
        self.development.lines += other.development.lines;
        self.development.blocked += other.development.blocked;
        self.held_out.lines += other.held_out.lines;
        self.held_out.blocked += other.held_out.blocked;
    }
}

/// The outcome of a replay.
pub struct Tally {
    rows: BTreeMap<String, Row>,
    attack_rows: BTreeSet<String>,
    other_statuses: BTreeMap<u16, usize>,
    elapsed: Duration,
    lines: usize,
}

impl Tally {
    /// Returns the number of lines and of blocked lines of a table row.
    pub fn row(&self, name: &str) -> Option<(usize, usize)> {
        self.rows
            .get(name)
            .map(|row| (row.all().lines, row.all().blocked))
    }
}

/// Sends every line of `corpus` (JSON lines) through the module at `plugin`
/// configured with `config`.
pub fn tally(plugin: &std::path::Path, config: &str, corpus: &str) -> anyhow::Result<Tally> {
    let entries = corpus
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str::<Entry>(line)
                .with_context(|| format!("invalid corpus line {}", number + 1))
        })
        .collect::<anyhow::Result<Vec<Entry>>>()?;
    let engine = module::engine()?;
    let plugin = Plugin::load(&engine, plugin)?;
    let options = Arc::new(VmOptions {
        plugin_configuration: config.as_bytes().to_vec(),
        log_level: LogLevel::Critical,
        ..VmOptions::default()
    });
    let mut vm = Vm::start(&plugin, options, HostShared::new(Clock::system()), 0)
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let upstream = UpstreamResponse {
        status: 200,
        headers: vec![(b"content-type".to_vec(), b"text/plain".to_vec())],
        body_chunks: vec![b"ok".to_vec()],
        trailers: None,
    };

    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut attack_rows: BTreeSet<String> = BTreeSet::new();
    let mut other_statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut elapsed = Duration::ZERO;
    for (index, entry) in entries.iter().enumerate() {
        let started = Instant::now();
        let id = vm.start_stream(entry.request(index as u64));
        let response = loop {
            match vm.poll_stream(id) {
                StreamPoll::NeedUpstream(_) => vm.set_upstream_response(id, upstream.clone()),
                StreamPoll::Done(done) => break Some(done),
                StreamPoll::Waiting => {
                    vm.take_outgoing_calls();
                    vm.abandon_stream(id);
                    break None;
                }
            }
        };
        elapsed += started.elapsed();
        vm.take_logs();
        if let Some(failure) = vm.failure() {
            anyhow::bail!("the module failed on corpus line {}: {failure}", entry.id);
        }
        let status = response.as_ref().map_or(0, |response| response.status);
        let blocked = response
            .as_ref()
            .is_some_and(|response| response.local && response.status == 403);
        if !blocked && status != 200 {
            *other_statuses.entry(status).or_default() += 1;
        }
        let row = entry.row();
        if entry.is_attack() && row == entry.category {
            attack_rows.insert(row.clone());
        }
        rows.entry(row)
            .or_default()
            .add(entry.is_development(), blocked);
    }
    Ok(Tally {
        rows,
        attack_rows,
        other_statuses,
        elapsed,
        lines: entries.len(),
    })
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let corpus = std::fs::read_to_string(&args.corpus)
        .with_context(|| format!("failed to read {}", args.corpus.display()))?;
    let config = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("failed to read {}", path.display()))?,
        None => "{}".to_string(),
    };
    let Tally {
        rows,
        attack_rows,
        other_statuses,
        elapsed,
        lines,
    } = tally(&args.plugin, &config, &corpus)
        .with_context(|| format!("replaying {}", args.corpus.display()))?;

    println!(
        "| category | lines | {0}, dev half | {0}, held-out half | {0}, all |",
        args.column
    );
    println!("|---|---|---|---|---|");
    let mut attacks = Row::default();
    let mut benign = Row::default();
    for (name, row) in &rows {
        if attack_rows.contains(name) {
            attacks.merge(*row);
        } else if name != CRS_NEGATIVE && name != HIGH_PARANOIA {
            benign.merge(*row);
        }
    }
    let print = |name: &str, row: Row| {
        println!(
            "| {name} | {} | {} | {} | {} |",
            row.all().lines,
            row.development.cell(),
            row.held_out.cell(),
            row.all().cell()
        );
    };
    for (name, row) in &rows {
        if attack_rows.contains(name) {
            print(name, *row);
        }
    }
    print("**all attacks**", attacks);
    if let Some(row) = rows.get(HIGH_PARANOIA) {
        print(HIGH_PARANOIA, *row);
    }
    for (name, row) in &rows {
        if !attack_rows.contains(name) && name != CRS_NEGATIVE && name != HIGH_PARANOIA {
            print(name, *row);
        }
    }
    print("**all ordinary benign** (false positives)", benign);
    if let Some(row) = rows.get(CRS_NEGATIVE) {
        print("benign-crs-negative (apart)", *row);
    }
    println!();
    println!(
        "Mean time per request in the module, harness included: {:.1} µs over {} requests.",
        elapsed.as_secs_f64() * 1e6 / lines.max(1) as f64,
        lines
    );
    if !other_statuses.is_empty() {
        println!(
            "Lines answered with another status (host or module rejections that are not blocks): {other_statuses:?}."
        );
    }
    Ok(())
}
